//! Shared set-up of the kubelet tests: an in-process API server and a kubelet.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kiln_sandbox::kubelet::{Kubelet, KubeletConfig, KubeletHandle};
use kiln_sandbox::ApiServer;
use kube::api::PostParams;
use kube::{Api, Client};

pub const LIMIT: Duration = Duration::from_secs(30);

pub struct Setup {
    pub server: ApiServer,
    pub client: Client,
    pub kubelet: Option<KubeletHandle>,
    pub root: tempfile::TempDir,
}

impl Setup {
    pub fn start() -> Setup {
        Self::with_config(|_| {})
    }

    pub fn with_config(tune: impl FnOnce(&mut KubeletConfig)) -> Setup {
        let server = ApiServer::new();
        let client = server.client();
        let root = tempfile::tempdir().unwrap();
        let mut config = KubeletConfig::new(root.path());
        config.max_grace = Duration::from_millis(500);
        tune(&mut config);
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

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create(&self, pod: serde_json::Value) -> Pod {
        let pod: Pod = serde_json::from_value(pod).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
    }

    /// Polls the Pod until `done` holds, failing after LIMIT.
    pub async fn wait_for(&self, name: &str, done: impl Fn(&Pod) -> bool) -> Pod {
        let start = Instant::now();
        loop {
            let pod = self.pods().get_opt(name).await.unwrap();
            if let Some(pod) = &pod {
                if done(pod) {
                    return pod.clone();
                }
            }
            if start.elapsed() > LIMIT {
                let status = pod.and_then(|p| p.status);
                panic!("pod {name} never got there; last status: {status:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_gone(&self, name: &str) {
        let start = Instant::now();
        while self.pods().get_opt(name).await.unwrap().is_some() {
            assert!(start.elapsed() < LIMIT, "pod {name} never went away");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(k) = self.kubelet.take() {
            k.stop().await;
        }
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.display().to_string();
    table
        .lines()
        .filter(|l| l.contains(&dir) || l.contains("/sandbox-test-"))
        .map(str::to_string)
        .collect()
}

/// The terminated state of a container (init or regular), if it ended.
pub fn terminated(pod: &Pod, container: &str) -> Option<ContainerStateTerminated> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten()
        .find(|c| c.name == container)?
        .state
        .as_ref()?
        .terminated
        .clone()
}

/// Waits until a host path no longer exists.
pub async fn wait_removed(path: &Path) {
    let start = Instant::now();
    while path.exists() {
        assert!(start.elapsed() < LIMIT, "{} left behind", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Host processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(marker) && !text.contains("cargo") {
                found.push(format!("{name}: {text}"));
            }
        }
    }
    found
}
