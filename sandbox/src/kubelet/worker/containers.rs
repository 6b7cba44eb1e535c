//! Running a Pod's containers: init containers in order, then the rest together, with
//! restarts per the restart policy; and instant mode.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;

use super::{waiting, Worker, CONFIG_RETRY};
use crate::kubelet::config::{
    InstantMode, INSTANT_EXIT_CODE_ANNOTATION, INSTANT_MESSAGE_ANNOTATION,
};
use crate::kubelet::env::Objects;
use crate::kubelet::logs::ContainerKey;
use crate::kubelet::plan::HostVolume;
use crate::kubelet::runc::NotReady;
use crate::kubelet::script::ContainerDirs;
use crate::kubelet::status::{termination_message, ContainerRecord, State, Termination};
use crate::kubelet::stdin::ContainerStdin;

impl Worker {
    /// Prepares volumes, runs init containers in order, then the containers together.
    pub(super) async fn execute(&self) {
        if let Some(instant) = self.shared.config.instant.clone() {
            self.run_instant(&instant).await;
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

    /// Sleeps, returning early when the Pod is being stopped.
    pub(super) async fn pause(&self, how_long: Duration) {
        let mut stop = self.control.stop_signal();
        let _ = tokio::time::timeout(how_long, stop.wait_for(|s| s.is_some())).await;
    }

    async fn update(&self, init: bool, index: usize, change: impl FnOnce(&mut ContainerRecord)) {
        let mut record = self.record.lock().await;
        let list = if init {
            &mut record.init
        } else {
            &mut record.main
        };
        if let Some(c) = list.get_mut(index) {
            change(c);
        }
    }

    async fn set_state(&self, init: bool, index: usize, state: State) {
        self.update(init, index, |c| c.state = state).await;
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
        let mut pull_backoff = Duration::from_secs(1);
        let mut objects = objects.clone();
        loop {
            if self.stopped() {
                return false;
            }
            let kind = if init { "init" } else { "app" };
            let dirs = ContainerDirs::new(&self.pod_dir, kind, &container.name);
            let prepared = self
                .prepare_container(kind, container, &objects, volumes, &dirs)
                .await;
            let launch = match prepared {
                Ok(launch) => {
                    pull_backoff = Duration::from_secs(1);
                    launch
                }
                Err(NotReady::Config(message)) => {
                    let state = waiting("CreateContainerConfigError", message);
                    self.set_state(init, index, state).await;
                    self.publish().await;
                    self.pause(CONFIG_RETRY).await;
                    // The missing Secret or ConfigMap may exist now.
                    if let Ok(fresh) = self.fetch_objects().await {
                        objects = fresh;
                    }
                    continue;
                }
                Err(NotReady::Pull(e)) => {
                    self.set_state(init, index, waiting(e.reason(), e.to_string()))
                        .await;
                    self.publish().await;
                    self.pause(pull_backoff).await;
                    let image = container.image.clone().unwrap_or_default();
                    let message = format!("Back-off pulling image {image:?}");
                    let state = waiting("ImagePullBackOff", message);
                    self.set_state(init, index, state).await;
                    self.publish().await;
                    pull_backoff = (pull_backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
                Err(NotReady::Busy(message)) => {
                    self.set_state(init, index, waiting("ContainerCreating", message))
                        .await;
                    self.publish().await;
                    self.pause(CONFIG_RETRY).await;
                    continue;
                }
                Err(NotReady::Fatal(message)) => {
                    self.record_end(init, index, cannot_run(message)).await;
                    return false;
                }
            };
            let fallback_to_logs = launch.plan().fallback_to_logs;
            if let Some((image_id, container_id)) = launch.ids() {
                self.update(init, index, |c| {
                    c.image_id = image_id;
                    c.container_id = Some(container_id);
                })
                .await;
            }
            let key = ContainerKey::new(&self.namespace, &self.name, &container.name);
            let stdin = ContainerStdin::new(container, &self.shared.stdin, &key);
            let end = match self.start_container(launch, &dirs, key, stdin) {
                Err(e) => cannot_run(e.to_string()),
                Ok(mut running) => {
                    let stop = self.control.stop_signal();
                    let started_at = running.wait_started(&stop).await;
                    if let Some(at) = started_at {
                        self.set_state(init, index, State::Running(at)).await;
                        self.publish().await;
                    }
                    let out = running.wait(stop).await;
                    let message = termination_message(
                        &out.termination_file,
                        fallback_to_logs,
                        out.exit_code,
                        &out.log_tail,
                    );
                    // A runtime that failed to start the container says why on stderr.
                    let message = message.or_else(|| {
                        let tail = String::from_utf8_lossy(&out.log_tail).trim().to_string();
                        (!out.started && !tail.is_empty()).then_some(tail)
                    });
                    let reason = match (out.started, out.exit_code) {
                        (true, _) if out.oom_killed => "OOMKilled",
                        (false, _) => "ContainerCannotRun",
                        (true, 0) => "Completed",
                        (true, _) => "Error",
                    };
                    Termination {
                        exit_code: out.exit_code,
                        signal: out.signal,
                        reason: reason.into(),
                        message,
                        started_at,
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
            let message = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                backoff.as_secs(),
                container.name,
                self.name,
                self.namespace,
                self.uid
            );
            self.update(init, index, |c| {
                c.last_state = Some(c.state.clone());
                c.state = waiting("CrashLoopBackOff", message);
            })
            .await;
            self.publish().await;
            self.pause(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
            self.update(init, index, |c| c.restart_count += 1).await;
        }
    }

    async fn record_end(&self, init: bool, index: usize, end: Termination) {
        self.set_state(init, index, State::Terminated(end)).await;
        self.publish().await;
    }

    /// Instant mode: Running, then every container terminates with the configured result.
    async fn run_instant(&self, instant: &InstantMode) {
        let annotations = self.pod.metadata.annotations.clone().unwrap_or_default();
        let uid = self.pod.metadata.uid.clone().unwrap_or_default();
        let message = instant.message_for(
            annotations
                .get(INSTANT_MESSAGE_ANNOTATION)
                .map(String::as_str),
            &uid,
        );
        let exit_code = annotations
            .get(INSTANT_EXIT_CODE_ANNOTATION)
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
pub(super) fn cannot_run(message: String) -> Termination {
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
