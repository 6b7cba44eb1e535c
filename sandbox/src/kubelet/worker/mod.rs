//! One Pod's life on the local kubelet: volumes, init containers, containers, status,
//! deadline, deletion and clean-up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::config::KubeletConfig;
use super::control::{PodControl, StopReason};
use super::env::{references, resolve_env, ObjectData, Objects};
use super::error::{Error, Result};
use super::logs::{ContainerKey, LogSink};
use super::patch::merge_diff;
use super::plan::{container_plan, HostVolume};
use super::runtime::{start, ContainerDirs};
use super::status::{
    phase, pod_status, termination_message, ContainerRecord, PodRecord, State, Termination,
    DEADLINE_MESSAGE,
};
use super::volumes::{forced_read_only, materialize, volume_content};

/// Everything a worker shares with the kubelet.
#[derive(Clone)]
pub struct Shared {
    /// API client.
    pub client: Client,
    /// Kubelet configuration.
    pub config: Arc<KubeletConfig>,
    /// Where container output goes.
    pub sink: Arc<dyn LogSink>,
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

    async fn run_with_deadline(&self) {
        let deadline = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        let grace = self.grace();
        let control = self.control.clone();
        let timer = async move {
            match deadline {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    control.request_stop(StopReason::Deadline, grace);
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
        if self.control.reason() == Some(StopReason::Deadline) {
            self.record.lock().await.failure =
                Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into()));
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
    /// Prepares volumes, runs init containers in order, then the containers together.
    async fn execute(&self) {
        if let Some(instant) = self.shared.config.instant.clone() {
            self.run_instant(&instant.default_message).await;
            return;
        }
        let Some((objects, volumes)) = self.prepare().await else {
            return;
        };
        let spec = self.pod.spec.clone().unwrap_or_default();
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            if !self.run_container(true, i, c, &objects, &volumes).await {
                return;
            }
        }
        let main = spec.containers.iter().enumerate();
        join_all(main.map(|(i, c)| self.run_container(false, i, c, &objects, &volumes))).await;
    }

    /// Fetches referenced objects and writes volumes, retrying while something is missing.
    async fn prepare(&self) -> Option<(Objects, BTreeMap<String, HostVolume>)> {
        loop {
            if self.stopped() {
                return None;
            }
            match self.try_prepare().await {
                Ok(ready) => return Some(ready),
                Err(e) => {
                    let message = e.to_string();
                    tracing::info!(pod = %self.name, error = %message, "volumes not ready");
                    let mut guard = self.record.lock().await;
                    let record = &mut *guard;
                    for c in record.init.iter_mut().chain(record.main.iter_mut()) {
                        if matches!(c.state, State::Waiting { .. }) {
                            c.state = waiting("ContainerCreating", message.clone());
                        }
                    }
                    drop(guard);
                    self.publish().await;
                    self.pause(CONFIG_RETRY).await;
                }
            }
        }
    }

    async fn try_prepare(&self) -> Result<(Objects, BTreeMap<String, HostVolume>)> {
        let objects = self.fetch_objects().await?;
        let dir = self.pod_dir.join("volumes");
        let mut volumes = BTreeMap::new();
        let spec = self.pod.spec.clone().unwrap_or_default();
        for v in spec.volumes.iter().flatten() {
            let content = volume_content(&self.pod, v, &objects)?;
            let path = materialize(&dir, &v.name, &content)?;
            let forced_read_only = forced_read_only(v);
            volumes.insert(
                v.name.clone(),
                HostVolume {
                    path,
                    forced_read_only,
                },
            );
        }
        Ok((objects, volumes))
    }

    async fn fetch_objects(&self) -> Result<Objects> {
        let refs = references(&self.pod);
        let client = &self.shared.client;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        let mut objects = Objects::default();
        for name in &refs.secrets {
            if let Some(s) = secrets.get_opt(name).await? {
                let data: ObjectData = s
                    .data
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                objects.secrets.insert(name.clone(), data);
            }
        }
        for name in &refs.config_maps {
            if let Some(m) = maps.get_opt(name).await? {
                let mut data: ObjectData = m
                    .data
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(m.binary_data.into_iter().flatten().map(|(k, v)| (k, v.0)));
                objects.config_maps.insert(name.clone(), data);
            }
        }
        Ok(objects)
    }

    /// Sleeps, returning early when the Pod is being stopped.
    async fn pause(&self, how_long: Duration) {
        let mut stop = self.control.stop_signal();
        let _ = tokio::time::timeout(how_long, stop.wait_for(|s| s.is_some())).await;
    }

    async fn set_state(&self, init: bool, index: usize, state: State) {
        let mut record = self.record.lock().await;
        let list = if init {
            &mut record.init
        } else {
            &mut record.main
        };
        if let Some(c) = list.get_mut(index) {
            c.state = state;
        }
    }

    /// Runs one container (with restarts per the restart policy); true if it succeeded.
    async fn run_container(
        &self,
        init: bool,
        index: usize,
        container: &Container,
        objects: &Objects,
        volumes: &BTreeMap<String, HostVolume>,
    ) -> bool {
        let policy = self.record.lock().await.restart_policy.clone();
        let mut backoff = Duration::from_secs(1);
        loop {
            if self.stopped() {
                return false;
            }
            let plan = resolve_env(&self.pod, container, objects).and_then(|env| {
                container_plan(
                    &self.pod,
                    container,
                    env,
                    volumes,
                    &self.shared.config.image_map,
                )
            });
            let plan = match plan {
                Ok(plan) => plan,
                Err(Error::Config(message)) => {
                    let state = waiting("CreateContainerConfigError", message);
                    self.set_state(init, index, state).await;
                    self.publish().await;
                    self.pause(CONFIG_RETRY).await;
                    continue;
                }
                Err(e) => {
                    self.record_end(init, index, cannot_run(e.to_string()))
                        .await;
                    return false;
                }
            };
            let kind = if init { "init" } else { "app" };
            let dirs = ContainerDirs::new(&self.pod_dir, kind, &plan.name);
            let key = ContainerKey::new(&self.namespace, &self.name, &plan.name);
            let sink = self.shared.sink.clone();
            let end = match start(&plan, &dirs, &self.name, sink, key) {
                Err(e) => cannot_run(e.to_string()),
                Ok(running) => {
                    let started_at = running.started_at;
                    self.set_state(init, index, State::Running(started_at))
                        .await;
                    self.publish().await;
                    let out = running.wait(self.control.stop_signal()).await;
                    let message = termination_message(
                        &out.termination_file,
                        plan.fallback_to_logs,
                        out.exit_code,
                        &out.log_tail,
                    );
                    let reason = if out.exit_code == 0 {
                        "Completed"
                    } else {
                        "Error"
                    };
                    Termination {
                        exit_code: out.exit_code,
                        signal: out.signal,
                        reason: reason.into(),
                        message,
                        started_at: Some(started_at),
                        finished_at: out.finished_at,
                    }
                }
            };
            let succeeded = end.exit_code == 0;
            self.record_end(init, index, end).await;
            let restart = match policy.as_str() {
                "Always" => !init || !succeeded,
                "OnFailure" => !succeeded,
                _ => false,
            };
            if !restart || self.stopped() {
                return succeeded;
            }
            self.pause(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
            let mut record = self.record.lock().await;
            let list = if init {
                &mut record.init
            } else {
                &mut record.main
            };
            if let Some(c) = list.get_mut(index) {
                c.restart_count += 1;
                c.last_state = Some(c.state.clone());
            }
        }
    }

    async fn record_end(&self, init: bool, index: usize, end: Termination) {
        self.set_state(init, index, State::Terminated(end)).await;
        self.publish().await;
    }

    /// Instant mode: Running, then every container terminates with the configured result.
    async fn run_instant(&self, default_message: &str) {
        let annotations = self.pod.metadata.annotations.clone().unwrap_or_default();
        let message = annotations
            .get(super::config::INSTANT_MESSAGE_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| default_message.to_string());
        let exit_code = annotations
            .get(super::config::INSTANT_EXIT_CODE_ANNOTATION)
            .and_then(|c| c.parse::<i32>().ok())
            .unwrap_or(0);
        let now = Timestamp::now();
        let ended = |code: i32, msg: Option<String>| {
            State::Terminated(Termination {
                exit_code: code,
                signal: None,
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                message: msg,
                started_at: Some(now),
                finished_at: Timestamp::now(),
            })
        };
        {
            let mut record = self.record.lock().await;
            for c in record.init.iter_mut() {
                c.state = ended(0, None);
            }
            for c in record.main.iter_mut() {
                c.state = State::Running(now);
            }
        }
        self.publish().await;
        {
            let mut record = self.record.lock().await;
            let msg = (!message.is_empty()).then_some(message);
            for c in record.main.iter_mut() {
                c.state = ended(exit_code, msg.clone());
            }
        }
    }
}

/// The end of a container that could not be started (runtimes report 128).
fn cannot_run(message: String) -> Termination {
    let now = Timestamp::now();
    Termination {
        exit_code: 128,
        signal: None,
        reason: "ContainerCannotRun".into(),
        message: Some(message),
        started_at: None,
        finished_at: now,
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
        if let Err(e) = std::fs::remove_dir_all(&self.pod_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.pod_dir.display(), error = %e, "pod clean-up");
            }
        }
    }

    /// The Pod's current phase as the kubelet computes it.
    pub async fn phase(&self) -> &'static str {
        phase(&*self.record.lock().await)
    }
}
