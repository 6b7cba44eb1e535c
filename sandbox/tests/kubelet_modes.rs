//! Instant mode, restart policies, missing configuration and kubelet shutdown.

mod kubelet_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kiln_sandbox::kubelet::InstantMode;
use kube::api::PostParams;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use kubelet_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_mode_completes_pods_without_running_them() {
    let s = Setup::with_config(|c| {
        c.instant = Some(InstantMode {
            default_message: "default-message".into(),
        })
    });
    // Record every phase the Pods go through.
    let api: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let record = seen.clone();
    let watch = tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) = event {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let p = phase(&pod).to_string();
                if !p.is_empty() {
                    record.lock().unwrap().push((name, p));
                }
            }
        }
    });
    // Commands that would fail if they ran.
    s.create(json!({
        "metadata": {"name": "quick", "annotations": {"sandbox.kiln.dev/termination-message": "{\"digest\":\"sha256:1\"}"}},
        "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "i", "image": "busybox", "command": ["sh", "-c", "exit 1"]}],
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 1"]}]}
    }))
    .await;
    s.create(json!({
        "metadata": {"name": "plain"},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "no-such-image"}]}
    }))
    .await;
    s.create(json!({
        "metadata": {"name": "failing", "annotations": {"sandbox.kiln.dev/exit-code": "2"}},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    }))
    .await;
    let quick = s.wait_for("quick", finished).await;
    assert_eq!(phase(&quick), "Succeeded");
    let t = terminated(&quick, "c").unwrap();
    assert_eq!(t.message.as_deref(), Some("{\"digest\":\"sha256:1\"}"));
    assert_eq!(terminated(&quick, "i").unwrap().exit_code, 0);
    let plain = s.wait_for("plain", finished).await;
    assert_eq!(phase(&plain), "Succeeded");
    let t = terminated(&plain, "c").unwrap();
    assert_eq!(t.message.as_deref(), Some("default-message"));
    let failing = s.wait_for("failing", finished).await;
    assert_eq!(phase(&failing), "Failed");
    assert_eq!(terminated(&failing, "c").unwrap().exit_code, 2);
    assert!(s.server.logs().read("default", "quick", "c").is_none());

    let start = Instant::now();
    loop {
        let mut phases: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == "quick")
            .map(|(_, p)| p.clone())
            .collect();
        phases.dedup();
        if phases.last().map(String::as_str) == Some("Succeeded") {
            assert_eq!(phases, ["Pending", "Running", "Succeeded"]);
            break;
        }
        assert!(start.elapsed() < LIMIT, "phases seen: {phases:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_until_success() {
    let s = Setup::start();
    // Fails on its first run, succeeds on its second (the emptyDir survives restarts).
    s.create(json!({
        "metadata": {"name": "flaky"},
        "spec": {"restartPolicy": "OnFailure",
            "volumes": [{"name": "state", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "if [ -e /state/ran ]; then echo second; exit 0; fi; touch /state/ran; echo first; exit 5"],
                "volumeMounts": [{"name": "state", "mountPath": "/state"}]}]}
    }))
    .await;
    // Between the runs: waiting in CrashLoopBackOff with the failed run as lastState; Running.
    let backing_off = s
        .wait_for("flaky", |p| {
            let c = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c[0].clone());
            let reason = c
                .as_ref()
                .and_then(|c| c.state.clone())
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason);
            reason.as_deref() == Some("CrashLoopBackOff")
        })
        .await;
    assert_eq!(phase(&backing_off), "Running");
    let c = &backing_off
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, c.restart_count), (5, 0));
    let pod = s.wait_for("flaky", finished).await;
    assert_eq!(phase(&pod), "Succeeded");
    let status = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(status.restart_count, 1);
    let last = status
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.exit_code, 5);
    let logs = s.server.logs().read("default", "flaky", "c").unwrap();
    let text: String = logs.lines.iter().map(|l| l.text.clone()).collect();
    assert_eq!(text, "second\n", "the log restarts with the container");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_waits_then_runs() {
    let s = Setup::start();
    s.create(json!({
        "metadata": {"name": "needs-secret"},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "printf %s \"$PASS\" > /dev/termination-log"],
                "env": [{"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "late", "key": "pass"}}}]}]}
    }))
    .await;
    let waiting = s
        .wait_for("needs-secret", |p| {
            let reason = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c[0].state.as_ref())
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.clone());
            reason.as_deref() == Some("CreateContainerConfigError")
        })
        .await;
    let w = waiting
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(w.message.as_deref(), Some("secret \"late\" not found"));
    assert_eq!(phase(&waiting), "Pending");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "late"}, "stringData": {"pass": "now-here"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pod = s.wait_for("needs-secret", finished).await;
    assert_eq!(phase(&pod), "Succeeded");
    assert_eq!(
        terminated(&pod, "c").unwrap().message.as_deref(),
        Some("now-here")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_kubelet_kills_containers_and_cleans_up() {
    let s = Setup::start();
    let pod = s
        .create(json!({
            "metadata": {"name": "long"},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "4545"]}]}
        }))
        .await;
    s.wait_for("long", |p| phase(p) == "Running").await;
    assert!(!processes_with("sleep 4545").is_empty());
    let dir = s
        .root
        .path()
        .join("pods")
        .join(pod.metadata.uid.clone().unwrap());
    assert!(dir.exists());
    let root = s.root.path().to_path_buf();
    let api = s.pods();
    s.stop().await;
    assert_eq!(processes_with("sleep 4545"), Vec::<String>::new());
    assert!(!dir.exists());
    assert_eq!(mounts_under(&root), Vec::<String>::new());
    // The Pod object stays as it was: the kubelet only stopped.
    assert_eq!(phase(&api.get("long").await.unwrap()), "Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kubelet_does_not_rerun_started_pods() {
    let mut s = Setup::start();
    s.create(json!({
        "metadata": {"name": "orphan"},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "4646"]}]}
    }))
    .await;
    s.wait_for("orphan", |p| phase(p) == "Running").await;
    // The first kubelet goes away (its containers die with it); a second one takes over.
    s.kubelet.take().unwrap().stop().await;
    assert_eq!(processes_with("sleep 4646"), Vec::<String>::new());
    let mut config = kiln_sandbox::kubelet::KubeletConfig::new(s.root.path());
    config.max_grace = Duration::from_millis(500);
    let second = kiln_sandbox::kubelet::Kubelet::new(s.client.clone(), config)
        .with_logs(std::sync::Arc::new(s.server.logs()))
        .run();
    s.kubelet = Some(second);
    let pod = s.wait_for("orphan", finished).await;
    let status = pod.status.clone().unwrap();
    assert_eq!(phase(&pod), "Failed");
    assert_eq!(status.reason.as_deref(), Some("ContainersLost"));
    assert_eq!(processes_with("sleep 4646"), Vec::<String>::new());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_restarts_even_after_success() {
    let s = Setup::start();
    s.create(json!({
        "metadata": {"name": "looping"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo tick"]}]}
    }))
    .await;
    // `restartPolicy` defaults to Always: the container keeps coming back, the Pod keeps Running.
    let pod = s
        .wait_for("looping", |p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |c| c[0].restart_count);
            restarts >= 1
        })
        .await;
    assert_eq!(phase(&pod), "Running");
    let status = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let last = status
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(
        (last.exit_code, last.reason.as_deref()),
        (0, Some("Completed"))
    );
    s.pods()
        .delete("looping", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("looping").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_while_the_watch_is_down_is_cleaned_up_after_relisting() {
    let s = Setup::start();
    let pod = s
        .create(json!({
            "metadata": {"name": "ghost"},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "4747"]}]}
        }))
        .await;
    s.wait_for("ghost", |p| phase(p) == "Running").await;
    let dir = s
        .root
        .path()
        .join("pods")
        .join(pod.metadata.uid.clone().unwrap());
    assert!(dir.exists());
    // The kubelet's watch ends and cannot come back for a while; the Pod goes meanwhile, and
    // history is compacted, so only a relist can tell the kubelet.
    let faults = s.server.faults();
    faults.inject(
        Some("watch"),
        Some("pods"),
        kiln_sandbox::apiserver::FaultAction::Fail(500),
        2,
    );
    faults.drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let now = kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    s.pods().delete("ghost", &now).await.unwrap();
    faults.compact();
    wait_removed(&dir).await;
    let start = Instant::now();
    while !processes_with("sleep 4747").is_empty() {
        assert!(start.elapsed() < LIMIT, "container left running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}
