//! End to end, a token in a repository URL: nothing kiln prints or stores carries it.
//!
//! Against `kiln-sandbox serve --kubelet` (RBAC enforced, no CEL rules: like an API server with an
//! older CRD, it stores what the CRD's rules would refuse), the real `kiln controller` and
//! `kiln builder` and a `docker-registry`, a tenant writes a BuildConfig whose git URL holds a
//! token (its ConfigChange trigger fires), runs `kiln start-build` of it, writes a Build with that
//! URL directly (under a BuildConfig whose URL is clean, whose run policy starts it), and builds
//! the same repository the right way — the URL clean, the same token in the source secret. The
//! token then appears in no line of the controller's log or of any build's log, no Build status,
//! no Pod (the Build holding it gets none), no Event, no `/metrics` series, no output of
//! `kiln get`, `kiln describe` or `kiln logs`, and no label or environment variable of the image
//! pushed; no image is pushed from the URL that carries it.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cluster::{enforcing, Cluster, Options};
use support::{git, run_bounded, GitDaemon};

const NAMESPACE: &str = "redact";
/// The secret the test watches for (shaped like a GitHub token).
const TOKEN: &str = "ghp_kilnRedactionCanary7f3a9c2e51d4";

fn build_config(name: &str, uri: &str, secret: Option<&str>) -> Value {
    let mut source = json!({"git": {"uri": uri, "ref": "main"}});
    if let Some(secret) = secret {
        source["sourceSecret"] = json!({"name": secret});
    }
    json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": source,
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "ImageStreamTag", "name": format!("{name}:latest")}},
            "triggers": [{"type": "ConfigChange"}],
        }
    })
}

/// A repository whose Dockerfile needs no base image, served by `git daemon`.
fn repository(base: &Path) -> GitDaemon {
    let src = base.join("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Dockerfile"),
        "FROM scratch\nCOPY app.txt /app.txt\n",
    )
    .unwrap();
    std::fs::write(src.join("app.txt"), "hello\n").unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "an image from scratch"]);
    git(base, &["clone", "-q", "--bare", "app", "app.git"]);
    GitDaemon::start(base)
}

fn tenant_kiln(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let mut cmd = cluster.tenant_kiln();
    cmd.args(args).args(["-n", NAMESPACE]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Waits (at most two minutes) until `check` returns Some.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every Event of the namespace, `events.k8s.io/v1` and `v1`, as JSON.
fn events(cluster: &Cluster) -> Vec<Value> {
    let mut all = Vec::new();
    for resource in ["events.events.k8s.io", "events"] {
        let out = cluster.kubectl_ok(&["-n", NAMESPACE, "get", resource, "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        all.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    all
}

/// The image's config (labels, env) as `skopeo inspect --config` prints it.
fn image_config(reference: &str) -> Value {
    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{reference}"));
    let out = run_bounded(inspect, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_token_in_a_git_url_appears_nowhere_kiln_writes() {
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            registry: true,
            ..Options::default()
        },
    );
    let registry = cluster.registry.as_ref().unwrap().addr();
    let repos = cluster.work.path().join("git");
    std::fs::create_dir_all(&repos).unwrap();
    let daemon = repository(&repos);
    let clean_url = daemon.url("app.git");
    let leaky_url = clean_url.replacen("git://", &format!("git://kiln:{TOKEN}@"), 1);

    // The right way: the token in a basic-auth source secret, the URL clean.
    cluster.tenant_kubectl_ok(&[
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "git-token",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=kiln",
        &format!("--from-literal=password={TOKEN}"),
    ]);
    cluster.tenant_apply(
        "clean",
        &build_config("clean", &clean_url, Some("git-token")),
    );
    let clean = cluster.wait_build("clean-1", Duration::from_secs(180));
    assert_eq!(
        clean["status"]["phase"], "Complete",
        "{:#}",
        clean["status"]
    );

    // The wrong way: the token in the URL, through every door a tenant has.
    cluster.tenant_apply("leaky", &build_config("leaky", &leaky_url, None));
    let refused = eventually("a Warning Event about BuildConfig leaky", || {
        events(&cluster).into_iter().find(|e| {
            let regarding = if e["regarding"].is_object() {
                &e["regarding"]
            } else {
                &e["involvedObject"]
            };
            e["type"] == "Warning"
                && regarding["kind"] == "BuildConfig"
                && regarding["name"] == "leaky"
        })
    });
    let note = refused["note"]
        .as_str()
        .or(refused["message"].as_str())
        .unwrap_or_default();
    assert!(
        note.contains("source secret"),
        "the Event says what to do: {refused:#}"
    );
    let (started, start_output) = tenant_kiln(&cluster, &["start-build", "leaky"]);
    assert!(!started, "start-build of leaky is refused: {start_output}");
    assert!(start_output.contains("source secret"), "{start_output}");
    // A Build holding the token in its URL, of a BuildConfig whose URL is clean (what an older
    // kiln, or a BuildConfig since fixed, leaves behind): its run policy starts it.
    let mut direct_config = build_config("direct", &clean_url, None);
    direct_config["spec"]["triggers"] = json!([]);
    cluster.tenant_apply("direct-config", &direct_config);
    let direct = json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {
            "name": "direct-1", "namespace": NAMESPACE,
            "labels": {"build.kiln.dev/build-config.name": "direct"},
            "annotations": {
                "build.kiln.dev/build-config.name": "direct",
                "build.kiln.dev/build.number": "1",
            },
        },
        "spec": {
            "source": {"git": {"uri": leaky_url, "ref": "main"}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "direct:latest"}},
        }
    });
    cluster.tenant_apply("direct", &direct);
    let direct = cluster.wait_build("direct-1", Duration::from_secs(180));
    assert_eq!(
        direct["status"]["phase"], "Failed",
        "{:#}",
        direct["status"]
    );
    assert_eq!(
        direct["status"]["reason"], "FetchSourceFailed",
        "{:#}",
        direct["status"]
    );
    let message = direct["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.source.git.uri"), "{message}");
    assert!(
        cluster.get("pod", "direct-1-build").is_none(),
        "the controller refuses it before any Pod holds the URL"
    );

    // Everything kiln wrote or printed, by where it was found.
    let mut found: Vec<(String, String)> = Vec::new();
    found.push(("the output of kiln start-build leaky".into(), start_output));
    found.push((
        "the controller's log".into(),
        std::fs::read_to_string(cluster.log("controller.log")).unwrap(),
    ));
    let builds: Value = serde_json::from_str(
        &cluster.kubectl_ok(&["-n", NAMESPACE, "get", "builds", "-o", "json"]),
    )
    .unwrap();
    for build in builds["items"].as_array().unwrap() {
        let name = build["metadata"]["name"].as_str().unwrap_or_default();
        found.push((
            format!("Build {name}'s status"),
            build["status"].to_string(),
        ));
        // What kiln adds to the metadata (kubectl's copy of what the tenant applied aside).
        let mut annotations = build["metadata"]["annotations"].clone();
        if let Some(map) = annotations.as_object_mut() {
            map.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        found.push((
            format!("Build {name}'s annotations and labels"),
            format!("{annotations} {}", build["metadata"]["labels"]),
        ));
        for verb in [vec!["logs", name], vec!["describe", "build", name]] {
            let (_, out) = tenant_kiln(&cluster, &verb);
            found.push((format!("kiln {}", verb.join(" ")), out));
        }
    }
    let configs: Value = serde_json::from_str(&cluster.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "buildconfigs",
        "-o",
        "json",
    ]))
    .unwrap();
    for config in configs["items"].as_array().unwrap() {
        let name = config["metadata"]["name"].as_str().unwrap_or_default();
        found.push((
            format!("BuildConfig {name}'s status"),
            config["status"].to_string(),
        ));
        let (_, out) = tenant_kiln(&cluster, &["describe", "bc", name]);
        found.push((format!("kiln describe bc {name}"), out));
    }
    for kind in ["builds", "bc"] {
        let (_, out) = tenant_kiln(&cluster, &["get", kind]);
        found.push((format!("kiln get {kind}"), out));
    }
    let pods: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["-n", NAMESPACE, "get", "pods", "-o", "json"]))
            .unwrap();
    for pod in pods["items"].as_array().unwrap() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        found.push((format!("Pod {name}'s status"), pod["status"].to_string()));
        found.push((format!("Pod {name}'s spec"), pod["spec"].to_string()));
        for container in ["clone", "build"] {
            let (_, out, err) = cluster.kubectl(&["-n", NAMESPACE, "logs", name, "-c", container]);
            found.push((
                format!("Pod {name}'s {container} log"),
                format!("{out}{err}"),
            ));
        }
    }
    for event in events(&cluster) {
        found.push(("an Event".into(), event.to_string()));
    }
    let (code, metrics) = cluster
        .controller_get("/metrics")
        .expect("the controller serves /metrics");
    assert_eq!(code, 200, "{metrics}");
    found.push(("/metrics".into(), metrics));
    let image = image_config(&format!("{registry}/{NAMESPACE}/clean:latest"));
    let labels = image["config"]["Labels"].clone();
    let env = image["config"]["Env"].clone();
    assert!(
        labels.to_string().contains(&clean_url),
        "the image records its source: {labels:#}"
    );
    found.push(("the image's labels".into(), labels.to_string()));
    found.push(("the image's environment".into(), env.to_string()));
    found.push(("the image's whole config".into(), image.to_string()));

    let leaks: Vec<String> = found
        .iter()
        .filter(|(_, text)| text.contains(TOKEN))
        .map(|(place, text)| {
            let line = text.lines().find(|l| l.contains(TOKEN)).unwrap_or_default();
            format!("{place}: {line}")
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "the token leaked into:\n{}",
        leaks.join("\n")
    );
    for repository in ["leaky", "direct"] {
        assert_eq!(
            cluster.registry.as_ref().unwrap().manifest_digest(
                &format!("{NAMESPACE}/{repository}"),
                "latest",
                None
            ),
            None,
            "no image is built from the URL with the token"
        );
    }
    if enforcing() {
        let refused = cluster.refusals();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
}
