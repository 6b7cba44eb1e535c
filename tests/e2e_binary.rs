//! End to end, Binary builds: the real `kiln controller` and `kiln builder` against
//! `kiln-sandbox serve --kubelet` over TCP, enforcing RBAC (the tenant holds only `edit`).
//!
//! A Binary build nobody uploads to ends Failed with FetchSourceFailed once the controller's
//! `--binary-input-timeout` passes, instead of waiting for its one-week deadline.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cluster::{enforcing, Cluster, Options};

const NAMESPACE: &str = "bin";
/// How long build Pods wait for their upload in these tests.
const INPUT_TIMEOUT_SECS: u64 = 10;

fn binary_build_config(name: &str, triggers: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"type": "Binary", "binary": {}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": format!("127.0.0.1:1/{NAMESPACE}/{name}:latest")}},
            "triggers": triggers,
        }
    })
}

#[test]
fn a_binary_build_nobody_uploads_to_fails_with_a_reason_in_bounded_time() {
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            controller_args: vec![
                "--binary-input-timeout".into(),
                INPUT_TIMEOUT_SECS.to_string(),
            ],
            ..Options::default()
        },
    );
    // A ConfigChange trigger starts build 1 of a Binary BuildConfig: nothing will ever upload.
    cluster.tenant_apply(
        "waiting",
        &binary_build_config("waiting", json!([{"type": "ConfigChange"}])),
    );
    let started = std::time::Instant::now();
    let first = cluster.wait_build("waiting-1", Duration::from_secs(120));
    let waited = started.elapsed();
    let status = &first["status"];
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert_eq!(status["reason"], "FetchSourceFailed", "{status:#}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "no binary input arrived within {INPUT_TIMEOUT_SECS}s"
        )),
        "{message}"
    );
    assert!(
        waited >= Duration::from_secs(INPUT_TIMEOUT_SECS),
        "it waited for the upload first ({waited:?})"
    );
    if enforcing() {
        let refused = cluster.refusals();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
}
