//! The local kubelet: runs Pods as host processes in private mount namespaces.
//!
//! It watches Pods in all namespaces and runs those bound to its node name and those not
//! bound to any node (which it first binds to itself through `pods/binding`, as a scheduler
//! would). See the "Local kubelet" section of the sandbox README for the rules it follows.

pub mod claims;
pub mod config;
pub mod control;
pub mod env;
pub mod error;
pub mod logs;
pub mod patch;
pub mod plan;
pub mod runc;
pub mod runtime;
pub mod script;
pub mod status;
pub mod stdin;
pub mod volumes;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ImageMap, ImageMapping, InstantMode, KubeletConfig, Runtime};
pub use error::{Error, Result};
pub use logs::{ContainerKey, LogSink, MemoryLogSink};

use control::{PodControl, StopReason};
use worker::{Shared, Worker};

impl LogSink for crate::apiserver::LogStore {
    fn start(&self, key: &ContainerKey) {
        crate::apiserver::LogStore::start(self, &key.namespace, &key.pod, &key.container);
    }

    fn append(&self, key: &ContainerKey, bytes: &[u8]) {
        crate::apiserver::LogStore::append(self, &key.namespace, &key.pod, &key.container, bytes);
    }

    fn finish(&self, key: &ContainerKey) {
        crate::apiserver::LogStore::finish(self, &key.namespace, &key.pod, &key.container);
    }

    fn remove_pod(&self, namespace: &str, pod: &str) {
        crate::apiserver::LogStore::remove_pod(self, namespace, pod);
    }
}

/// The local kubelet, before it is started.
pub struct Kubelet {
    shared: Shared,
}

/// A running kubelet; [`KubeletHandle::stop`] kills its containers and cleans up.
pub struct KubeletHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl KubeletHandle {
    /// Stops the kubelet: kills every container (no grace), removes Pod directories, and
    /// waits for all of it. Pod objects are left as they are.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for KubeletHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Entry {
    control: Arc<PodControl>,
    task: JoinHandle<()>,
}

impl Kubelet {
    /// A kubelet talking to the API through `client`; logs go to a [`MemoryLogSink`]
    /// unless [`Kubelet::with_logs`] is used.
    pub fn new(client: Client, config: KubeletConfig) -> Self {
        Kubelet {
            shared: Shared {
                client,
                config: Arc::new(config),
                sink: Arc::new(MemoryLogSink::new()),
                stdin: crate::apiserver::StdinHub::new(),
            },
        }
    }

    /// Sends container output to `sink` (e.g. the API server's log store).
    pub fn with_logs(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.shared.sink = sink;
        self
    }

    /// Offers `stdin: true` containers' stdin through `hub` (e.g. the API server's, for
    /// `pods/attach`); without it nobody can attach and such containers wait for input forever.
    pub fn with_stdin(mut self, hub: crate::apiserver::StdinHub) -> Self {
        self.shared.stdin = hub;
        self
    }

    /// Starts the kubelet as a tokio task.
    pub fn run(self) -> KubeletHandle {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(self.watch(rx));
        KubeletHandle {
            stop: Some(tx),
            task,
        }
    }

    fn ours(&self, pod: &Pod) -> bool {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        node.is_none_or(|n| n.is_empty() || n == self.shared.config.node_name)
    }

    fn grace(&self, pod: &Pod) -> Duration {
        let secs = pod.metadata.deletion_grace_period_seconds.or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        });
        let secs = u64::try_from(secs.unwrap_or(30)).unwrap_or(0);
        Duration::from_secs(secs).min(self.shared.config.max_grace)
    }

    async fn watch(self, mut stop: oneshot::Receiver<()>) {
        // The claims' stand-in provisioner lives as long as the kubelet.
        let provisioner = tokio::spawn(claims::provisioner(
            self.shared.client.clone(),
            claims::claims_root(&self.shared.config.root_dir),
        ));
        let api: Api<Pod> = Api::all(self.shared.client.clone());
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut pods: HashMap<String, Entry> = HashMap::new();
        let mut leaving: Vec<JoinHandle<()>> = Vec::new();
        let mut relisted: HashSet<String> = HashSet::new();
        loop {
            let event = tokio::select! {
                _ = &mut stop => break,
                event = events.next() => event,
            };
            match event {
                None => break,
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch"),
                Some(Ok(Event::Init)) => relisted.clear(),
                Some(Ok(Event::InitApply(pod))) => {
                    if let Some(uid) = pod.metadata.uid.clone() {
                        relisted.insert(uid);
                    }
                    self.apply(&mut pods, pod);
                }
                Some(Ok(Event::InitDone)) => {
                    let vanished: Vec<String> = pods
                        .keys()
                        .filter(|uid| !relisted.contains(*uid))
                        .cloned()
                        .collect();
                    for uid in vanished {
                        if let Some(entry) = pods.remove(&uid) {
                            entry.control.mark_gone();
                            let grace = self.shared.config.max_grace;
                            entry.control.request_stop(StopReason::Deleting, grace);
                            leaving.push(entry.task);
                        }
                    }
                }
                Some(Ok(Event::Apply(pod))) => self.apply(&mut pods, pod),
                Some(Ok(Event::Delete(pod))) => {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    if let Some(entry) = pods.remove(&uid) {
                        entry.control.mark_gone();
                        entry
                            .control
                            .request_stop(StopReason::Deleting, self.grace(&pod));
                        leaving.push(entry.task);
                    }
                }
            }
            leaving.retain(|t| !t.is_finished());
        }
        for entry in pods.values() {
            entry.control.mark_gone();
            entry
                .control
                .request_stop(StopReason::Shutdown, Duration::ZERO);
        }
        leaving.extend(pods.into_values().map(|e| e.task));
        for task in leaving {
            let _ = task.await;
        }
        provisioner.abort();
    }

    fn apply(&self, pods: &mut HashMap<String, Entry>, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if !self.ours(&pod) && !pods.contains_key(&uid) {
            return;
        }
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let grace = self.grace(&pod);
        let entry = pods.entry(uid).or_insert_with(|| {
            let control = Arc::new(PodControl::default());
            let worker = Worker::new(self.shared.clone(), pod, control.clone());
            Entry {
                control,
                task: tokio::spawn(worker.run()),
            }
        });
        if deleting {
            entry.control.request_stop(StopReason::Deleting, grace);
        }
    }
}
