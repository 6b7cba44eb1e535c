//! One Pod's life on the local kubelet: volumes, init containers, containers, status,
//! deadline, deletion and clean-up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::config::KubeletConfig;
use super::control::{PodControl, StopReason};
use super::logs::LogSink;
use super::patch::merge_diff;
use super::status::{pod_status, ContainerRecord, PodRecord, State, DEADLINE_MESSAGE};

mod containers;
mod launch;
mod prepare;

/// Everything a worker shares with the kubelet.
#[derive(Clone)]
pub struct Shared {
    /// API client.
    pub client: Client,
    /// Kubelet configuration.
    pub config: Arc<KubeletConfig>,
    /// Where container output goes.
    pub sink: Arc<dyn LogSink>,
    /// Where `stdin: true` containers' stdin waits for `pods/attach`.
    pub stdin: crate::apiserver::StdinHub,
}

/// Runs one Pod.
pub struct Worker {
    shared: Shared,
    pod: Pod,
    namespace: String,
    name: String,
    uid: String,
    pod_dir: PathBuf,
    control: Arc<PodControl>,
    record: Mutex<PodRecord>,
    written: Mutex<Value>,
}

/// How long to wait before retrying a container whose configuration is not ready.
const CONFIG_RETRY: Duration = Duration::from_secs(1);

fn waiting(reason: &str, message: String) -> State {
    State::Waiting {
        reason: reason.to_string(),
        message: Some(message),
    }
}

impl Worker {
    /// A worker for `pod`, controlled through `control`.
    pub fn new(shared: Shared, pod: Pod, control: Arc<PodControl>) -> Self {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let pod_dir = shared.config.root_dir.join("pods").join(&uid);
        let spec = pod.spec.clone().unwrap_or_default();
        let records = |cs: &[Container], reason: &str| -> Vec<ContainerRecord> {
            cs.iter()
                .map(|c| ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or(""), reason))
                .collect()
        };
        let has_init = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
        let main_reason = if has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let record = PodRecord {
            start_time: Timestamp::now(),
            init: records(
                spec.init_containers.as_deref().unwrap_or(&[]),
                "PodInitializing",
            ),
            main: records(&spec.containers, main_reason),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            failure: None,
        };
        let written = pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        Worker {
            shared,
            pod,
            namespace,
            name,
            uid,
            pod_dir,
            control,
            record: Mutex::new(record),
            written: Mutex::new(written),
        }
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.shared.client.clone(), &self.namespace)
    }

    /// Runs the Pod to completion, then waits for its deletion and cleans up.
    pub async fn run(self) {
        let status = self.pod.status.clone().unwrap_or_default();
        let done = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let started_before = status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .flatten()
            .any(|c| c.state.as_ref().is_some_and(|s| s.waiting.is_none()));
        if !done && self.control.reason().is_none() && !self.bind().await {
            // Bound to another node meanwhile: not ours to run.
            return;
        }
        if !done && self.control.reason().is_none() {
            if started_before {
                self.record.lock().await.failure = Some((
                    "ContainersLost".into(),
                    "the sandbox kubelet restarted while this pod was running".into(),
                ));
                self.publish().await;
            } else {
                self.run_with_deadline().await;
            }
        }
        self.control.deleted().await;
        self.finish_deletion().await;
    }

    /// Binds an unscheduled Pod to this node through `pods/binding`, as the scheduler would.
    /// False when another node got it first; other failures leave the Pod unbound but run.
    async fn bind(&self) -> bool {
        let node = self.pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if node.is_some_and(|n| !n.is_empty()) {
            return true;
        }
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.shared.config.node_name},
        });
        let params = PostParams::default();
        let bound: kube::Result<Value> = self
            .api()
            .create_subresource("binding", &self.name, &params, &binding)
            .await;
        match bound {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 409 => false,
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "binding failed; running unbound");
                true
            }
        }
    }

    async fn run_with_deadline(&self) {
        let deadline = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        let grace = self.grace();
        let timer = async {
            match deadline {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    // Like the kubelet: the Pod is Failed/DeadlineExceeded first, then killed.
                    if self.control.reason().is_none() {
                        self.record.lock().await.failure =
                            Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into()));
                        self.publish().await;
                    }
                    self.control.request_stop(StopReason::Deadline, grace);
                }
                None => std::future::pending::<()>().await,
            }
        };
        self.publish().await;
        let execute = self.execute();
        tokio::pin!(execute);
        tokio::select! {
            _ = &mut execute => {}
            // The deadline stopped the containers; let execute() record how they ended.
            _ = timer => execute.await,
        }
        self.publish().await;
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        Duration::from_secs(u64::try_from(secs).unwrap_or(0)).min(self.shared.config.max_grace)
    }

    fn stopped(&self) -> bool {
        self.control.reason().is_some()
    }
}

impl Worker {
    /// Writes the current status through the status subresource as a merge patch of
    /// what changed since the last successful write (retrying transient failures).
    async fn publish(&self) {
        if self.control.is_gone() {
            return;
        }
        let mut written = self.written.lock().await;
        let previous: Option<PodStatus> = serde_json::from_value(written.clone()).ok();
        let status = {
            let record = self.record.lock().await;
            pod_status(&record, previous.as_ref(), Timestamp::now())
        };
        let Ok(new) = serde_json::to_value(&status) else {
            return;
        };
        let Some(diff) = merge_diff(&written, &new) else {
            return;
        };
        let params = PatchParams {
            field_manager: Some(self.shared.config.field_manager.clone()),
            ..Default::default()
        };
        let patch = Patch::Merge(json!({ "status": diff }));
        for attempt in 0..5u32 {
            match self.api().patch_status(&self.name, &params, &patch).await {
                Ok(_) => {
                    *written = new;
                    return;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(e) => {
                    tracing::warn!(pod = %self.name, attempt, error = %e, "status write failed");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }

    /// After deletion was requested: stop everything, remove the object, clean the host.
    async fn finish_deletion(&self) {
        if !self.control.is_gone() && self.control.reason() != Some(StopReason::Shutdown) {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            if let Err(e) = self.api().delete(&self.name, &params).await {
                tracing::debug!(pod = %self.name, error = %e, "final delete");
            }
        }
        if self.control.reason() != Some(StopReason::Shutdown) {
            self.shared.sink.remove_pod(&self.namespace, &self.name);
        }
        if let super::config::Runtime::Runc(runtime) = &self.shared.config.runtime {
            runtime.release_pod(&self.uid);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.pod_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.pod_dir.display(), error = %e, "pod clean-up");
            }
        }
    }
}
