//! Failures are visible: `/metrics`, scraped over HTTP from the running controller, counts a
//! Complete and a Failed build with their reasons and durations; a build Pod the API refuses (its
//! ServiceAccount is missing) shows as a `warn` log line, a Warning Event and the Build's reason
//! (`CannotRetrieveServiceAccount`), each carrying the API's message, and ends the build `Error`
//! once the refusal has lasted the retry window; `/healthz` fails once a controller task has stopped;
//! a BuildConfig, Build and ImageStream changed in the store past every check are each skipped
//! with a `warn` line, a Warning Event `InvalidObject` and a count, while other namespaces build on.

mod controller_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use controller_support::{bc_yaml, eventually, Harness, NS};
use k8s_openapi::api::events::v1::Event;
use kiln::api::{BuildPhase, StatusReason};
use kiln::controller::Settings;
use kiln_sandbox::ServerConfig;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything the controller logs in this test binary (one global subscriber, no colour).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    })
    .clone()
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves the controller's routes on a free port of 127.0.0.1 and returns the address.
async fn serve(h: &Harness) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.running().router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// GETs `path` over HTTP/1.0 and returns the status code and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[tokio::test]
async fn metrics_count_a_complete_and_a_failed_build_with_reason_and_duration() {
    logs();
    let h = Harness::start().await;
    let addr = serve(&h).await;
    h.create_bc(&bc_yaml("good", "Serial", "")).await;
    h.create_bc(&bc_yaml("bad", "Serial", "")).await;
    h.start_build("good", "one").await;
    h.start_build("bad", "one").await;
    h.complete("good-1", &controller_support::digest(1)).await;
    h.wait_pod("bad-1").await;
    h.run_pod("bad-1").await;
    h.wait_phase("bad-1", BuildPhase::Running).await;
    h.fail_pod("bad-1").await;
    h.wait_phase("bad-1", BuildPhase::Failed).await;

    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    for line in [
        "kiln_builds_finished_total{phase=\"Complete\",reason=\"\"} 1",
        "kiln_builds_finished_total{phase=\"Failed\",reason=\"DockerBuildFailed\"} 1",
        "kiln_build_duration_seconds_count{phase=\"Complete\"} 1",
        "kiln_build_duration_seconds_count{phase=\"Failed\"} 1",
        "kiln_build_pods_created_total 2",
        "kiln_tag_events_total 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in /metrics:\n{text}");
    }
    assert!(
        text.contains("kiln_reconcile_duration_seconds_count{controller=\"build\"}"),
        "reconciles are timed:\n{text}"
    );
    assert!(
        !text.contains("phase=\"Error\""),
        "Failed and Error are counted apart:\n{text}"
    );
    assert_eq!(get(addr, "/healthz").await, (200, "ok".to_string()));
}

#[tokio::test]
async fn a_refused_build_pod_shows_as_a_warning_log_line_and_event_with_the_api_message() {
    let logs = logs();
    let h = Harness::start_with(ServerConfig {
        service_account_admission: true,
        ..ServerConfig::default()
    })
    .await;
    // The build Pod runs as the `builder` ServiceAccount, which this namespace lacks.
    h.create_bc(&bc_yaml("nosa", "Serial", "")).await;
    h.start_build("nosa", "one").await;
    let api_message = "serviceaccount \"builder\" not found";

    let line = eventually("a warn line naming the API's message", || {
        let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
        let found = text
            .lines()
            .find(|l| l.contains("WARN") && l.contains("nosa") && l.contains(api_message))
            .map(str::to_string);
        async move { found }
    })
    .await;
    assert!(line.contains("reconcile failed"), "{line}");
    assert!(line.contains("Forbidden"), "the category is named: {line}");

    let events: Api<Event> = Api::namespaced(h.client.clone(), NS);
    let event = eventually("a Warning Event on the BuildConfig", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("ReconcileFailed")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("nosa")
                })
        }
    })
    .await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains(api_message), "{note}");
    assert_eq!(
        event.regarding.and_then(|r| r.kind).as_deref(),
        Some("BuildConfig")
    );
    // Retried every 100 ms here, yet reported once per minute.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("nosa") && l.contains(api_message))
        .count();
    assert_eq!(warnings, 1, "rate-limited:\n{text}");
    // The Build waits with the refusal as its reason and the API's message.
    let status = eventually("nosa-1 to carry the refusal", || async {
        let build = h
            .builds()
            .await
            .into_iter()
            .find(|b| b.metadata.name.as_deref() == Some("nosa-1"))?;
        build.status.filter(|s| s.reason.is_some())
    })
    .await;
    assert_eq!(status.phase, BuildPhase::New);
    assert_eq!(
        status.reason,
        Some(StatusReason::CannotRetrieveServiceAccount)
    );
    assert!(
        status.message.unwrap_or_default().contains(api_message),
        "the API's message is the Build's"
    );

    // A refusal that lasts the whole retry window ends the build with that reason.
    let mut h = h;
    h.start_controller_with(Settings {
        pod_create_retry_window: std::time::Duration::from_secs(1),
        ..controller_support::settings()
    })
    .await;
    let ended = h.wait_phase("nosa-1", BuildPhase::Error).await;
    let status = ended.status.unwrap_or_default();
    assert_eq!(
        status.reason,
        Some(StatusReason::CannotRetrieveServiceAccount)
    );
    assert!(
        status.message.unwrap_or_default().contains(api_message),
        "the API's message stays in the Build's"
    );
}

#[tokio::test]
async fn healthz_fails_once_a_controller_task_has_stopped() {
    logs();
    let mut h = Harness::start().await;
    let addr = serve(&h).await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    // Aborting the tasks is what a panic or an early return would leave behind.
    h.running().abort();
    let (code, body) = eventually("an unhealthy /healthz", || async {
        let (code, body) = get(addr, "/healthz").await;
        (code == 503).then_some((code, body))
    })
    .await;
    assert_eq!(code, 503);
    assert!(body.contains("controller task has stopped"), "{body}");
    h.kill_controller();
}

#[tokio::test]
async fn a_build_pod_pending_too_long_gives_the_pods_reason_a_warn_line_and_an_event() {
    use kube::api::{Patch, PatchParams};
    let logs = logs();
    let mut h = Harness::start().await;
    h.start_controller_with(Settings {
        pod_pending_timeout: std::time::Duration::from_secs(1),
        ..controller_support::settings()
    })
    .await;
    h.create_bc(&bc_yaml("stuck", "Serial", "")).await;
    h.start_build("stuck", "one").await;
    h.wait_pod("stuck-1").await;
    // What kube-scheduler writes when no node fits.
    let scheduler_says =
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.";
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(h.client.clone(), NS)
        .patch_status(
            "stuck-1-build",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": scheduler_says}]}}),
            ),
        )
        .await
        .unwrap();
    let message = eventually("stuck-1 to say why it waits", || async {
        let build = h
            .builds()
            .await
            .into_iter()
            .find(|b| b.metadata.name.as_deref() == Some("stuck-1"))?;
        let status = build.status?;
        status
            .message
            .filter(|m| status.phase == BuildPhase::Pending && m.contains("Unschedulable"))
    })
    .await;
    assert_eq!(
        message,
        format!("The build Pod has been Pending for more than 1s: Unschedulable: {scheduler_says}")
    );
    let events: Api<Event> = Api::namespaced(h.client.clone(), NS);
    let event = eventually("a Warning Event on the Build", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("BuildPodPending")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("stuck-1")
                })
        }
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap_or_default().contains(scheduler_says));
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("stuck-1") && l.contains("Unschedulable")),
        "{text}"
    );
}

/// The Warning Events in `namespace` about `kind`/`name` with the undecodable-object reason.
async fn invalid_object_events(h: &Harness, namespace: &str, kind: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(h.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            let regarding = e.regarding.clone().unwrap_or_default();
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some("InvalidObject")
                && regarding.kind.as_deref() == Some(kind)
                && regarding.name.as_deref() == Some(name)
        })
        .collect()
}

#[tokio::test]
async fn poisoned_objects_are_skipped_with_an_event_and_stop_no_other_namespace() {
    let logs = logs();
    let mut h = Harness::start().await;
    let addr = serve(&h).await;
    // A tenant's BuildConfig, Build and ImageStream, valid when written, then changed in the
    // store past every check (an older schema, a skipped bound, a direct etcd write).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(h.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "tenant-a"}})).unwrap(),
        )
        .await
        .unwrap();
    let bad =
        bc_yaml("bad", "Parallel", "").replace(&format!("namespace: {NS}"), "namespace: tenant-a");
    let bad: kiln::api::BuildConfig =
        serde_json::from_value(kiln::yaml::read_documents(&bad).unwrap().remove(0)).unwrap();
    Api::<kiln::api::BuildConfig>::namespaced(h.client.clone(), "tenant-a")
        .create(&Default::default(), &bad)
        .await
        .unwrap();
    let request = kiln::instantiate::BuildRequest {
        request_id: "one".into(),
        ..Default::default()
    };
    kiln::instantiate::instantiate(&h.client, "tenant-a", "bad", &request)
        .await
        .unwrap();
    let stream: kiln::api::ImageStream =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "bad"}, "spec": {}}))
            .unwrap();
    Api::<kiln::api::ImageStream>::namespaced(h.client.clone(), "tenant-a")
        .create(&Default::default(), &stream)
        .await
        .unwrap();
    let poison = [
        ("build.kiln.dev", "buildconfigs", "bad", "BuildConfig"),
        ("build.kiln.dev", "builds", "bad-1", "Build"),
        ("image.kiln.dev", "imagestreams", "bad", "ImageStream"),
    ];
    for (group, plural, name, _) in poison {
        h.server
            .edit_unchecked(group, plural, "tenant-a", name, |object| {
                // Past i64, and a string where an object belongs.
                object["spec"]["completionDeadlineSeconds"] = serde_json::json!(u64::MAX);
                object["spec"]["lookupPolicy"] = serde_json::json!("local");
            })
            .unwrap();
    }

    // Running: each watch event is decoded on its own; the bad ones are reported and skipped.
    for (_, _, name, kind) in poison {
        let event = eventually(
            &format!("an InvalidObject Event on {kind} {name}"),
            || async {
                invalid_object_events(&h, "tenant-a", kind, name)
                    .await
                    .pop()
            },
        )
        .await;
        let note = event.note.unwrap_or_default();
        assert!(note.contains(&format!("{kind} tenant-a/{name}")), "{note}");
        assert!(note.contains("spec"), "where it fails is named: {note}");
    }
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("BuildConfig tenant-a/bad")
            && l.contains("does not decode")),
        "a warn line names the object:\n{text}"
    );
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "one").await;
    h.complete("app-1", &controller_support::digest(1)).await;
    let (_, metrics) = get(addr, "/metrics").await;
    for watch in ["buildconfigs", "builds", "imagestreams"] {
        let line = format!("kiln_objects_skipped_total{{watch=\"{watch}\"}}");
        assert!(
            metrics.contains(&line),
            "missing {line:?} in /metrics:\n{metrics}"
        );
    }

    // Restarted: the first list of every watch holds the bad objects; it still syncs.
    h.start_controller().await;
    h.start_build("app", "two").await;
    h.complete("app-2", &controller_support::digest(2)).await;
    eventually(
        "the restarted controller reports the BuildConfig again",
        || async {
            (invalid_object_events(&h, "tenant-a", "BuildConfig", "bad")
                .await
                .len()
                >= 2)
                .then_some(())
        },
    )
    .await;

    // Repaired in place, the BuildConfig is the controller's again: its next build runs.
    h.server
        .edit_unchecked(
            "build.kiln.dev",
            "buildconfigs",
            "tenant-a",
            "bad",
            |object| {
                let spec = object["spec"].as_object_mut().unwrap();
                spec.remove("completionDeadlineSeconds");
                spec.remove("lookupPolicy");
            },
        )
        .unwrap();
    let request = kiln::instantiate::BuildRequest {
        request_id: "two".into(),
        ..Default::default()
    };
    kiln::instantiate::instantiate(&h.client, "tenant-a", "bad", &request)
        .await
        .unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(h.client.clone(), "tenant-a");
    eventually(
        "a build Pod for the repaired BuildConfig's build",
        || async { pods.get_opt("bad-2-build").await.unwrap().map(|_| ()) },
    )
    .await;
}
