//! Timestamps of the watch events the driver receives: Build added, Pod added, Pod Succeeded
//! (with its digest), each digest's first appearance in an ImageStream, and probe ConfigMaps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kiln::api::{Build, BuildPhase, ImageStream};
use kiln::naming;
use kube::api::Api;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;

/// What the watches saw, with the instant each thing was first seen.
#[derive(Default)]
pub(crate) struct Seen {
    /// Build name → first event.
    pub(crate) build_added: HashMap<String, Instant>,
    /// Build name → its Pod's first event.
    pub(crate) pod_added: HashMap<String, Instant>,
    /// Build name → (first event with phase Succeeded, the digest in its termination message).
    pub(crate) pod_succeeded: HashMap<String, (Instant, Option<String>)>,
    /// Digest → first ImageStream event listing it.
    pub(crate) image_recorded: HashMap<String, Instant>,
    /// Build name → terminal phase.
    pub(crate) finished: HashMap<String, BuildPhase>,
    /// ConfigMap name → first event (the baseline probes).
    pub(crate) probe_seen: HashMap<String, Instant>,
}

/// Shared, lockable [`Seen`].
pub(crate) type Shared = Arc<Mutex<Seen>>;

/// Locks the record (a poisoned lock is recovered: entries are only ever inserted).
pub(crate) fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the four watches on `namespace`; returns their tasks once each has listed once.
pub(crate) async fn start(
    client: &kube::Client,
    namespace: &str,
    seen: &Shared,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(4);
    let tasks = vec![
        spawn::<Build>(client, namespace, seen, ready_tx.clone(), on_build),
        spawn::<Pod>(client, namespace, seen, ready_tx.clone(), on_pod),
        spawn::<ImageStream>(client, namespace, seen, ready_tx.clone(), on_image_stream),
        spawn::<ConfigMap>(client, namespace, seen, ready_tx, on_probe),
    ];
    for _ in 0..4 {
        let _ = ready_rx.recv().await;
    }
    tasks
}

fn spawn<K>(
    client: &kube::Client,
    namespace: &str,
    seen: &Shared,
    ready: tokio::sync::mpsc::Sender<()>,
    on: fn(&mut Seen, &K, Instant),
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let seen = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            match event {
                Ok(Event::Apply(object)) | Ok(Event::InitApply(object)) => {
                    on(&mut lock(&seen), &object, now)
                }
                Ok(Event::InitDone) => {
                    let _ = ready.send(()).await;
                }
                Ok(_) => {}
                Err(err) => eprintln!("watch error: {err}"),
            }
        }
    })
}

fn on_build(seen: &mut Seen, build: &Build, now: Instant) {
    let name = build.name_any();
    seen.build_added.entry(name.clone()).or_insert(now);
    let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase.is_terminal() {
        seen.finished.entry(name).or_insert(phase);
    }
}

fn on_pod(seen: &mut Seen, pod: &Pod, now: Instant) {
    let Some(build) = pod.labels().get(naming::BUILD_NAME_LABEL).cloned() else {
        return;
    };
    seen.pod_added.entry(build.clone()).or_insert(now);
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Succeeded") {
        return;
    }
    let digest = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.as_deref())
        .find_map(|m| {
            let report: serde_json::Value = serde_json::from_str(m).ok()?;
            Some(report.get("imageDigest")?.as_str()?.to_string())
        });
    seen.pod_succeeded.entry(build).or_insert((now, digest));
}

fn on_image_stream(seen: &mut Seen, stream: &ImageStream, now: Instant) {
    for tag in stream.status.iter().flat_map(|s| &s.tags) {
        for item in &tag.items {
            seen.image_recorded.entry(item.image.clone()).or_insert(now);
        }
    }
}

fn on_probe(seen: &mut Seen, probe: &ConfigMap, now: Instant) {
    seen.probe_seen.entry(probe.name_any()).or_insert(now);
}
