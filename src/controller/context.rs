//! What every reconciler shares: settings, caches, indexes, the event recorder and counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use kube::runtime::reflector::Store;

use super::build::pod::PodSettings;
use super::cache::index::{BuildIndex, TriggerIndex};
use super::cache::superseded::Superseded;
use super::cache::views::BuildPod;
use super::events::{EventPublisher, EventType};
use crate::api::{Build, ImageStream};

/// The field manager and event reporter name of the controller.
pub(crate) const CONTROLLER_NAME: &str = "kiln-controller";

/// The controller's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The internal registry (`host[:port]`) ImageStreamTag outputs are pushed to.
    pub registry: Option<String>,
    /// What every build Pod gets from the configuration.
    pub pod: PodSettings,
    /// How many TagEvents each ImageStream tag keeps.
    pub tag_history_limit: usize,
    /// How long a failed reconcile waits before it runs again (conflicts retry sooner).
    pub retry_after: std::time::Duration,
}

/// Why a reconcile failed; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The API server refused or failed a request.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Starting a build failed.
    #[error(transparent)]
    Instantiate(#[from] crate::instantiate::Error),
    /// The build Pod could not be generated.
    #[error(transparent)]
    PodSpec(#[from] super::build::pod::Error),
    /// A write lost a race with another writer; the reconcile runs again.
    #[error("{0} changed while being reconciled; retrying")]
    Conflict(String),
}

impl Error {
    /// A short, bounded category for metrics and logs.
    pub(crate) fn category(&self) -> &'static str {
        match self {
            Self::Api { .. } => "ApiError",
            Self::Instantiate(_) => "InstantiateFailed",
            Self::PodSpec(_) => "PodSpecFailed",
            Self::Conflict(_) => "Conflict",
        }
    }
}

/// Maps a kube error to [`Error`], turning 409 Conflict into [`Error::Conflict`].
pub(crate) fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| match &source {
        kube::Error::Api(status) if status.code == 409 => Error::Conflict(action),
        _ => Error::Api { action, source },
    }
}

/// Counters served on `/metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Reconciles run, per controller.
    pub(crate) reconciles_build: AtomicU64,
    /// Reconciles of BuildConfigs.
    pub(crate) reconciles_build_config: AtomicU64,
    /// Reconciles that failed.
    pub(crate) reconcile_failures: AtomicU64,
    /// Builds started by instantiate.
    pub(crate) builds_created: AtomicU64,
    /// Build Pods created.
    pub(crate) pods_created: AtomicU64,
    /// Builds that reached Complete.
    pub(crate) builds_complete: AtomicU64,
    /// Builds that reached Failed or Error.
    pub(crate) builds_failed: AtomicU64,
    /// Builds that reached Cancelled.
    pub(crate) builds_cancelled: AtomicU64,
    /// TagEvents recorded in ImageStreams.
    pub(crate) tag_events: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 9] = [
            (
                "kiln_reconciles_total{controller=\"build\"}",
                "Reconciles run",
                &self.reconciles_build,
            ),
            (
                "kiln_reconciles_total{controller=\"buildconfig\"}",
                "Reconciles run",
                &self.reconciles_build_config,
            ),
            (
                "kiln_reconcile_failures_total",
                "Reconciles that failed",
                &self.reconcile_failures,
            ),
            (
                "kiln_builds_created_total",
                "Builds created",
                &self.builds_created,
            ),
            (
                "kiln_build_pods_created_total",
                "Build pods created",
                &self.pods_created,
            ),
            (
                "kiln_builds_finished_total{phase=\"Complete\"}",
                "Builds finished",
                &self.builds_complete,
            ),
            (
                "kiln_builds_finished_total{phase=\"Failed\"}",
                "Builds finished",
                &self.builds_failed,
            ),
            (
                "kiln_builds_finished_total{phase=\"Cancelled\"}",
                "Builds finished",
                &self.builds_cancelled,
            ),
            (
                "kiln_tag_events_total",
                "TagEvents recorded",
                &self.tag_events,
            ),
        ];
        let mut out = String::new();
        let mut last_family = "";
        for (name, help, value) in rows {
            let family = name.split('{').next().unwrap_or(name);
            if family != last_family {
                out.push_str(&format!(
                    "# HELP {family} {help}.\n# TYPE {family} counter\n"
                ));
                last_family = family;
            }
            out.push_str(&format!("{name} {}\n", value.load(Ordering::Relaxed)));
        }
        out
    }
}

/// Shared state of the reconcilers.
pub(crate) struct Context {
    /// The API client.
    pub(crate) client: kube::Client,
    /// The controller's configuration.
    pub(crate) settings: Settings,
    /// Build Pods, from the controller's watch.
    pub(crate) pods: Store<BuildPod>,
    /// ImageStreams, from the controller's watch.
    pub(crate) image_streams: Store<ImageStream>,
    /// Builds per BuildConfig.
    pub(crate) builds: Arc<BuildIndex>,
    /// BuildConfigs per watched ImageStream.
    pub(crate) triggers: Arc<TriggerIndex>,
    /// Publishes Kubernetes events.
    pub(crate) events: EventPublisher,
    /// Build versions the controller's own writes replaced (its cache may still show them).
    pub(crate) superseded: Superseded,
    /// Counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Set once every cache has synced.
    pub(crate) ready: Arc<AtomicBool>,
}

impl Context {
    /// Publishes an event about `build`; failures are logged, never fatal.
    pub(crate) async fn event(
        &self,
        build: &Build,
        event_type: EventType,
        reason: &str,
        note: String,
    ) {
        if let Err(err) = self.events.publish(build, event_type, reason, note).await {
            tracing::warn!(%err, reason, "cannot publish event");
        }
    }
}

/// The publisher of the controller's events (instance: `POD_NAME` when set).
pub(crate) fn event_publisher(client: kube::Client) -> EventPublisher {
    EventPublisher::new(client, CONTROLLER_NAME, std::env::var("POD_NAME").ok())
}
