//! The local kubelet against the in-process API server: real processes in mount namespaces.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kiln_sandbox::kubelet::{Kubelet, KubeletConfig, KubeletHandle};
use kiln_sandbox::ApiServer;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

struct Setup {
    server: ApiServer,
    client: Client,
    kubelet: Option<KubeletHandle>,
    root: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let server = ApiServer::new();
        let client = server.client();
        let root = tempfile::tempdir().unwrap();
        let mut config = KubeletConfig::new(root.path());
        config.max_grace = Duration::from_millis(500);
        let kubelet = Kubelet::new(client.clone(), config)
            .with_logs(Arc::new(server.logs()))
            .run();
        Setup {
            server,
            client,
            kubelet: Some(kubelet),
            root,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create(&self, pod: serde_json::Value) -> Pod {
        let pod: Pod = serde_json::from_value(pod).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
    }

    /// Polls the Pod until `done` holds, failing after LIMIT.
    async fn wait_for(&self, name: &str, done: impl Fn(&Pod) -> bool) -> Pod {
        let start = Instant::now();
        loop {
            if let Some(pod) = self.pods().get_opt(name).await.unwrap() {
                if done(&pod) {
                    return pod;
                }
            }
            assert!(start.elapsed() < LIMIT, "pod {name} never got there");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_gone(&self, name: &str) {
        let start = Instant::now();
        while self.pods().get_opt(name).await.unwrap().is_some() {
            assert!(start.elapsed() < LIMIT, "pod {name} never went away");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.display().to_string();
    table
        .lines()
        .filter(|l| l.contains(&dir) || l.contains("/sandbox-test-"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_container_emptydir_secret_and_termination_message() {
    let s = Setup::start();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"token": "s3cret-value"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // mountPaths that do not exist on the host: created inside the container only.
    let work = "/sandbox-test-work/shared";
    s.create(json!({
        "metadata": {"name": "happy"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "work", "emptyDir": {}},
                        {"name": "sec", "secret": {"secretName": "creds"}}],
            "initContainers": [{
                "name": "writer", "image": "busybox",
                "command": ["sh", "-c", format!("echo from-init > {work}/note; echo init says hi")],
                "volumeMounts": [{"name": "work", "mountPath": work}]
            }],
            "containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c"],
                "args": [format!(
                    "set -e; n=$(cat {work}/note); t=$(cat /sandbox-test-sec/token); \
                     [ \"$TOKEN\" = s3cret-value ]; [ \"$t\" = \"$TOKEN\" ]; \
                     [ \"$POD\" = happy ]; [ \"$(hostname)\" = happy ]; \
                     [ \"$(pwd)\" = {work} ]; \
                     if touch /sandbox-test-sec/x 2>/dev/null; then echo writable; exit 9; fi; \
                     echo \"read $n\"; printf 'digest=sha256:abc %s' \"$n\" > /dev/termination-log")],
                "workingDir": work,
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "volumeMounts": [{"name": "work", "mountPath": work},
                                 {"name": "sec", "mountPath": "/sandbox-test-sec"}]
            }]
        }
    }))
    .await;
    let pod = s.wait_for("happy", finished).await;
    let status = pod.status.clone().unwrap();
    let main = &status.container_statuses.as_ref().unwrap()[0];
    let term = main.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(phase(&pod), "Succeeded", "{status:#?}");
    assert_eq!(term.exit_code, 0);
    assert_eq!(term.reason.as_deref(), Some("Completed"));
    assert_eq!(term.message.as_deref(), Some("digest=sha256:abc from-init"));
    assert!(term.started_at.is_some() && term.finished_at.is_some());
    assert_eq!(main.image, "busybox");
    assert!(!main.ready);
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    let init_term = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((init.name.as_str(), init_term.exit_code), ("writer", 0));
    assert!(status.start_time.is_some());
    let logs = s.server.logs();
    let read = |c: &str| {
        let snap = logs.read("default", "happy", c).unwrap();
        assert!(snap.finished);
        snap.lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<String>()
    };
    assert_eq!(read("writer"), "init says hi\n");
    assert_eq!(read("main"), "read from-init\n");
    // Nothing of the container's file system reached the host.
    assert!(!Path::new("/sandbox-test-work").exists());
    assert!(!Path::new("/sandbox-test-sec").exists());

    let pod_dir = s
        .root
        .path()
        .join("pods")
        .join(pod.metadata.uid.clone().unwrap());
    assert!(
        pod_dir.join("volumes/work/note").exists(),
        "emptyDir kept until deletion"
    );
    s.pods()
        .delete("happy", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("happy").await;
    let start = Instant::now();
    while pod_dir.exists() {
        assert!(start.elapsed() < LIMIT, "pod dir left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logs.read("default", "happy", "main").is_none());
    assert_eq!(mounts_under(s.root.path()), Vec::<String>::new());
    s.stop().await;
}
