//! What every reconciler shares: settings, caches, indexes, the event recorder, metrics and
//! health.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;

use super::build::pod::PodSettings;
use super::cache::index::{BuildIndex, TriggerIndex};
use super::cache::superseded::Superseded;
use super::cache::views::BuildPod;
use super::events::{EventPublisher, EventType};
use super::health::Health;
use super::metrics::Metrics;
use super::reconcile::FailureLog;
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
    pub retry_after: Duration,
    /// How long a watch may fail without a break before `/healthz` reports the controller
    /// unhealthy.
    pub watch_failure_timeout: Duration,
    /// How long a build whose Pod the API server refuses keeps being retried (New, with the
    /// refusal as its reason) before it ends `Error`.
    pub pod_create_retry_window: Duration,
    /// How long a build Pod may stay Pending before the Build's message, a `warn` line and a
    /// Warning Event say why (from the Pod's own conditions).
    pub pod_pending_timeout: Duration,
    /// How often ImageStream tags with `importPolicy.scheduled` are imported again.
    pub import_interval: Duration,
    /// Confirm each reported digest in the output repository before recording it in an
    /// ImageStream (off only where no registry exists, as in the scripted scenario tests).
    pub confirm_digests: bool,
    /// kiln's registry token server, when the internal registry uses it: the controller reads
    /// that registry (digest confirmation) with pull tokens it signs for itself.
    pub registry_tokens: Option<crate::registry::token::RegistryTokens>,
}

/// How long a refused build Pod is retried, unless configured.
pub(crate) const DEFAULT_POD_CREATE_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// How long a build Pod may stay Pending before the Build says why, unless configured.
pub(crate) const DEFAULT_POD_PENDING_TIMEOUT: Duration = Duration::from_secs(300);

/// How often scheduled imports run unless configured (OpenShift's default).
pub(crate) const DEFAULT_IMPORT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// How long a watch may fail without a break before `/healthz` fails, unless configured.
pub(crate) const DEFAULT_WATCH_FAILURE_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// A registry could not be reached; the reconcile runs again.
    #[error("{0}")]
    Registry(String),
    /// A write lost a race with another writer; the reconcile runs again.
    #[error("{0} changed while being reconciled; retrying")]
    Conflict(String),
}

impl Error {
    /// A short, bounded category for metrics and logs.
    pub(crate) fn category(&self) -> &'static str {
        match self {
            Self::Api { source, .. } => api_category(source),
            Self::Instantiate(crate::instantiate::Error::Api { source, .. }) => {
                api_category(source)
            }
            Self::Instantiate(_) => "InstantiateFailed",
            Self::PodSpec(_) => "PodSpecFailed",
            Self::Registry(_) => "RegistryUnreachable",
            Self::Conflict(_) => "Conflict",
        }
    }
}

/// The category of a failed API request: its HTTP status class, or `Unreachable`.
fn api_category(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) => match status.code {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            400 | 422 => "Invalid",
            429 => "Throttled",
            500..=599 => "ServerError",
            _ => "ApiError",
        },
        _ => "Unreachable",
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

/// Whether the API server refused a request for lack of permission (403). Secrets are readable
/// only in the namespaces that grant the controller the chart's secret-reader role, so a 403 on a
/// Secret means "not granted here", not a failure to retry.
pub(crate) fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

/// Reads a Secret by name: `SecretRead::Read(None)` when it does not exist (a name no object
/// can have, say `../x`, is not looked up: it goes into the request path as written),
/// `SecretRead::Forbidden` (apart from other failures) when this namespace does not let the
/// controller read Secrets.
pub(crate) async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<SecretRead, Error> {
    if let Err(why) = crate::api::path_names::object(namespace, name) {
        tracing::warn!(namespace, secret = name, "Secret not read: {why}");
        return Ok(SecretRead::Read(None));
    }
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), namespace);
    match secrets.get_opt(name).await {
        Ok(secret) => Ok(SecretRead::Read(secret.map(Box::new))),
        Err(e) if is_forbidden(&e) => Ok(SecretRead::Forbidden),
        Err(e) => Err(api_error(format!("reading Secret {namespace}/{name}"))(e)),
    }
}

/// The outcome of [`read_secret`].
pub(crate) enum SecretRead {
    /// The Secret, or `None` when it does not exist.
    Read(Option<Box<k8s_openapi::api::core::v1::Secret>>),
    /// The namespace does not grant the controller `get secrets`.
    Forbidden,
}

/// What a build or import message says when Secrets could not be read in a namespace.
pub(crate) fn secrets_not_granted(namespace: &str) -> String {
    format!(
        "the controller may not read Secrets in namespace {namespace}: bind the chart's \
         secret-reader ClusterRole to its ServiceAccount there (docs/install.md)"
    )
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
    /// What `/metrics` serves.
    pub(crate) metrics: Arc<Metrics>,
    /// What `/healthz` reports.
    pub(crate) health: Arc<Health>,
    /// When each object's reconcile failure was last logged at warn and published.
    pub(crate) failures: FailureLog,
    /// Set once every cache has synced.
    pub(crate) ready: Arc<AtomicBool>,
    /// The last import of each ImageStream tag.
    pub(crate) imports: super::imports::ImportLog,
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
        let regarding = kube::Resource::object_ref(build, &());
        if let Err(err) = self
            .events
            .publish(&regarding, event_type, reason, note)
            .await
        {
            tracing::warn!(%err, reason, "cannot publish event");
        }
    }
}

/// The publisher of the controller's events (instance: `POD_NAME` when set).
pub(crate) fn event_publisher(client: kube::Client) -> EventPublisher {
    EventPublisher::new(client, CONTROLLER_NAME, std::env::var("POD_NAME").ok())
}
