//! Wiring: one watch per kind feeding the caches and indexes, the Build and BuildConfig
//! controllers, and the HTTP server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::{future, StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use tokio::sync::mpsc;

use super::cache::index::{BuildIndex, TriggerIndex};
use super::cache::superseded::Superseded;
use super::cache::views::{slim_build, BuildPod};
use super::context::{event_publisher, Context, Settings};
use super::events::EventType;
use super::health::Health;
use super::metrics::Metrics;
use super::reconcile::{error_policy, FailureLog};
use super::{build, build_config, imports};
use crate::api::decode::{self, Undecodable};
use crate::api::{Build, BuildConfig, ImageStream};
use crate::naming;

/// A running controller: its shared context, for the HTTP server and tests.
pub struct Running {
    /// The reconcilers' shared state.
    pub(crate) context: Arc<Context>,
    configs: reflector::Store<BuildConfig>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// The HTTP server's routes: `/healthz`, `/readyz` and `/metrics`.
    pub fn router(&self) -> axum::Router {
        super::server::router(self.context.clone(), None)
    }

    /// The controller's BuildConfig cache (the webhook receiver in the same process reads it).
    pub fn build_configs(&self) -> reflector::Store<BuildConfig> {
        self.configs.clone()
    }

    /// Waits until every task has ended: after `shutdown` resolved, once the reconciles in
    /// flight have finished.
    pub async fn finished(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stops every task at once, wherever it is, as a crash would (tests use this).
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs the controllers until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Running {
    let config = watcher::Config::default();
    let (pod_reader, pod_writer) = reflector::store::<BuildPod>();
    let (is_reader, is_writer) = reflector::store::<ImageStream>();
    let (build_reader, build_writer) = reflector::store::<Build>();
    let builds = Arc::new(BuildIndex::new(build_reader.clone()));
    let triggers = Arc::new(TriggerIndex::default());
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(settings.watch_failure_timeout));
    let ready = Arc::new(AtomicBool::new(false));
    let context = Arc::new(Context {
        client: client.clone(),
        settings,
        pods: pod_reader.clone(),
        image_streams: is_reader.clone(),
        imports: imports::ImportLog::default(),
        builds: builds.clone(),
        triggers: triggers.clone(),
        events: event_publisher(client.clone()),
        superseded: Superseded::default(),
        metrics,
        health,
        failures: FailureLog::default(),
        ready: ready.clone(),
    });

    let synced = Arc::new(Synced {
        ready: ready.clone(),
        ..Synced::default()
    });

    // BuildConfigs to reconcile because one of their Builds or watched ImageStreams changed.
    let (config_tx, config_rx) = mpsc::unbounded_channel::<ObjectRef<BuildConfig>>();

    let build_tx = config_tx.clone();
    let build_index = builds.clone();
    let build_context = context.clone();
    let build_stream = decode::watch(
        client.clone(),
        config.clone(),
        Some(build_reader.clone()),
        report_undecodable(&context, "builds"),
    )
    .default_backoff()
    .inspect(observe_watch(&context, "builds"))
    .modify(slim_build)
    .reflect(build_writer)
    .inspect_ok(move |event| {
        if let watcher::Event::Delete(build) = event {
            build_context.superseded.forget(build);
        }
        if let Some(config) = build_index.apply(event) {
            let _ = build_tx.send(config);
        }
    })
    .inspect_ok(synced.mark(Cache::Builds))
    .touched_objects();

    let pod_stream = watcher(
        Api::<BuildPod>::all(client.clone()),
        config.clone().labels(naming::BUILD_NAME_LABEL),
    )
    .default_backoff()
    .inspect(observe_watch(&context, "pods"))
    .modify(BuildPod::slim)
    .reflect(pod_writer)
    .inspect_ok(synced.mark(Cache::Pods))
    .touched_objects();

    let is_tx = config_tx;
    let is_triggers = triggers.clone();
    let is_stream = decode::watch(
        client.clone(),
        config.clone(),
        Some(is_reader.clone()),
        report_undecodable(&context, "imagestreams"),
    )
    .default_backoff()
    .inspect(observe_watch(&context, "imagestreams"))
    .reflect(is_writer)
    .inspect_ok(synced.mark(Cache::ImageStreams))
    .touched_objects()
    .inspect_ok(move |stream| {
        // A changed ImageStream reconciles the BuildConfigs that watch it (their triggers).
        let namespace = stream.metadata.namespace.clone().unwrap_or_default();
        let name = stream.metadata.name.clone().unwrap_or_default();
        for config in is_triggers.configs_for(&namespace, &name) {
            let _ = is_tx.send(config);
        }
    });

    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut build_shutdown = shutdown_tx.subscribe();
    let mut config_shutdown = shutdown_tx.subscribe();
    let mut is_shutdown = shutdown_tx.subscribe();
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(());
    });

    let build_controller = Controller::for_stream(build_stream, build_reader.clone())
        .owns_stream(pod_stream)
        .graceful_shutdown_on(async move {
            let _ = build_shutdown.recv().await;
        })
        .run(build::reconcile, error_policy, context.clone())
        .for_each(log_controller_error);

    let is_controller = Controller::for_stream(is_stream, is_reader)
        .graceful_shutdown_on(async move {
            let _ = is_shutdown.recv().await;
        })
        .run(imports::reconcile, error_policy, context.clone())
        .for_each(log_controller_error);

    let (config_reader, config_writer) = reflector::store::<BuildConfig>();
    let config_stream = decode::watch(
        client.clone(),
        config,
        Some(config_reader.clone()),
        report_undecodable(&context, "buildconfigs"),
    )
    .default_backoff()
    .inspect(observe_watch(&context, "buildconfigs"))
    .modify(|bc| bc.metadata.managed_fields = None)
    .reflect(config_writer)
    .touched_objects();
    let config_controller = Controller::for_stream(config_stream, config_reader.clone())
        .reconcile_on(tokio_stream_from(config_rx))
        .graceful_shutdown_on(async move {
            let _ = config_shutdown.recv().await;
        })
        .run(build_config::reconcile, error_policy, context.clone())
        .for_each(log_controller_error);

    let is_guard = context.health.task("imagestream controller");
    let build_guard = context.health.task("build controller");
    let config_guard = context.health.task("buildconfig controller");
    let tasks = vec![
        tokio::spawn(async move {
            let _alive = is_guard;
            is_controller.await;
        }),
        tokio::spawn(async move {
            let _alive = build_guard;
            build_controller.await;
        }),
        tokio::spawn(async move {
            let _alive = config_guard;
            config_controller.await;
        }),
    ];
    Running {
        context,
        configs: config_reader,
        tasks,
    }
}

/// The caches the reconcilers decide from.
#[derive(Clone, Copy)]
enum Cache {
    Builds,
    Pods,
    ImageStreams,
}

/// Which caches have completed their first list; `ready` is set once all have. (Tracked from the
/// watch events themselves: every list ends with `InitDone`.)
#[derive(Default)]
struct Synced {
    builds: AtomicBool,
    pods: AtomicBool,
    image_streams: AtomicBool,
    ready: Arc<AtomicBool>,
}

impl Synced {
    /// A watch-event inspector that marks `cache` synced at its first `InitDone`.
    fn mark<K>(
        self: &Arc<Self>,
        cache: Cache,
    ) -> impl Fn(&watcher::Event<K>) + Send + Sync + 'static {
        let synced = self.clone();
        move |event| {
            if !matches!(event, watcher::Event::InitDone) {
                return;
            }
            let flag = match cache {
                Cache::Builds => &synced.builds,
                Cache::Pods => &synced.pods,
                Cache::ImageStreams => &synced.image_streams,
            };
            flag.store(true, Ordering::Relaxed);
            let all = [&synced.builds, &synced.pods, &synced.image_streams]
                .iter()
                .all(|f| f.load(Ordering::Relaxed));
            if all && !synced.ready.swap(true, Ordering::Relaxed) {
                tracing::info!("caches synced; reconciling");
            }
        }
    }
}

/// A watch-event inspector: an event marks the watch healthy; an error (the watch restarts after
/// a backoff) is counted, logged at `warn` at most once a minute per watch, and starts the clock
/// `/healthz` reads.
fn observe_watch<K>(
    context: &Arc<Context>,
    watch: &'static str,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send + Sync + 'static {
    let context = context.clone();
    move |item| match item {
        Ok(_) => context.health.watch_ok(watch),
        Err(err) => {
            let now = std::time::Instant::now();
            context.health.watch_failed(watch, now);
            context.metrics.watch_restarted(watch);
            if context
                .failures
                .should_report(&format!("watch/{watch}"), now)
            {
                tracing::warn!(watch, %err, "watch failed; restarting after a backoff");
            } else {
                tracing::debug!(watch, %err, "watch failed again");
            }
        }
    }
}

/// What becomes of a watched object that does not decode: it is counted, logged at `warn` and
/// published as a Warning Event about the object (once a minute per object version, since every
/// relist meets it again); the watch skips it and goes on.
fn report_undecodable(
    context: &Arc<Context>,
    watch: &'static str,
) -> impl Fn(Undecodable) + Send + Sync + 'static {
    let context = context.clone();
    move |bad| {
        context.metrics.object_skipped(watch);
        let key = format!(
            "undecodable/{}/{}@{}",
            bad.subject(),
            bad.object.uid.as_deref().unwrap_or_default(),
            bad.object.resource_version.as_deref().unwrap_or_default()
        );
        if !context
            .failures
            .should_report(&key, std::time::Instant::now())
        {
            tracing::debug!(watch, object = %bad.subject(), error = %bad.error, "undecodable object skipped again");
            return;
        }
        tracing::warn!(watch, object = %bad.subject(), error = %bad.error, "object does not decode; skipped");
        let events = context.events.clone();
        tokio::spawn(async move {
            let note = bad.to_string();
            if let Err(err) = events
                .publish(&bad.object, EventType::Warning, UNDECODABLE_REASON, note)
                .await
            {
                tracing::debug!(%err, "cannot publish the undecodable-object event");
            }
        });
    }
}

/// The reason of the Event about an object the controller cannot decode.
pub(crate) const UNDECODABLE_REASON: &str = "InvalidObject";

/// What a controller's result stream carries besides reconcile results: reconcile failures were
/// reported by the error policy; anything else is logged.
fn log_controller_error<K, E>(
    result: Result<
        (ObjectRef<K>, kube::runtime::controller::Action),
        kube::runtime::controller::Error<E, watcher::Error>,
    >,
) -> future::Ready<()>
where
    K: kube::Resource,
    E: std::error::Error + 'static,
{
    use kube::runtime::controller::Error as ControllerError;
    match result {
        Ok(_) | Err(ControllerError::ReconcilerFailed(..)) => {}
        Err(ControllerError::ObjectNotFound(object)) => {
            tracing::debug!(%object, "object gone before its reconcile");
        }
        // Watch errors are counted and reported by the watch's observer.
        Err(ControllerError::QueueError(err)) => tracing::debug!(%err, "watch error"),
        Err(err) => tracing::warn!(%err, "controller error"),
    }
    future::ready(())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
