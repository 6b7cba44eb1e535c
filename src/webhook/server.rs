//! The HTTP edge: routes, body limit, BuildConfig and secret lookup, instantiate, answers,
//! metrics and logs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

use super::decide::{self, Decision, Ignored, Incoming, Outcome, Refused};
use super::metrics::WebhookMetrics;
use super::provider::Provider;
use super::secrets::SecretCache;
use crate::api::BuildConfig;
use crate::instantiate::{self, instantiate};

/// The largest body accepted (GitHub caps its payloads at 25 MiB).
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;

/// The prefix of the OpenShift-shaped URL; `{ns}/buildconfigs/{name}/webhooks/{secret}/{type}`
/// follows.
pub const OPENSHIFT_PREFIX: &str = "/apis/build.kiln.dev/v1alpha1/namespaces";

struct Shared {
    client: kube::Client,
    configs: Store<BuildConfig>,
    synced: AtomicBool,
    secrets: SecretCache,
    metrics: WebhookMetrics,
    sequence: AtomicU64,
}

impl Shared {
    fn new(client: kube::Client, configs: Store<BuildConfig>) -> Arc<Self> {
        Arc::new(Shared {
            secrets: SecretCache::new(client.clone()),
            client,
            configs,
            synced: AtomicBool::new(false),
            metrics: WebhookMetrics::default(),
            sequence: AtomicU64::new(0),
        })
    }
}

/// The webhook receiver: a BuildConfig cache, a secret cache and the routes. Dropping it stops
/// its watch.
pub struct Webhooks {
    shared: Arc<Shared>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Webhooks {
    /// Starts the receiver with its own BuildConfig watch (`kiln webhooks`).
    pub fn start(client: kube::Client) -> Self {
        let (reader, writer) = reflector::store::<BuildConfig>();
        let shared = Shared::new(client.clone(), reader.clone());
        let marker = shared.clone();
        let stream = crate::api::decode::watch(
            client,
            watcher::Config::default(),
            Some(reader.clone()),
            |bad| tracing::warn!(object = %bad.subject(), error = %bad.error, "webhooks: object does not decode; skipped"),
        )
        .default_backoff()
            .modify(|bc| {
                bc.metadata.managed_fields = None;
                bc.status = None;
            })
            .reflect(writer);
        let watch = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => marker.synced.store(true, Ordering::Relaxed),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(%err, "webhooks: buildconfig watch failed; retrying")
                    }
                }
            }
        });
        Webhooks { shared, watch }
    }

    /// Starts the receiver on a BuildConfig cache someone else keeps (the controller's own), so
    /// one process watches BuildConfigs once.
    pub fn on_store(client: kube::Client, configs: Store<BuildConfig>) -> Self {
        let shared = Shared::new(client, configs.clone());
        let marker = shared.clone();
        let watch = tokio::spawn(async move {
            if configs.wait_until_ready().await.is_ok() {
                marker.synced.store(true, Ordering::Relaxed);
            }
        });
        Webhooks { shared, watch }
    }

    /// Whether the BuildConfig cache has synced (webhooks answer 503 until then).
    pub fn is_ready(&self) -> bool {
        self.shared.synced.load(Ordering::Relaxed)
    }

    /// The request counters.
    pub fn metrics(&self) -> &WebhookMetrics {
        &self.shared.metrics
    }

    /// The webhook routes, both URL shapes, any method (others than POST answer 405).
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("{OPENSHIFT_PREFIX}/{{ns}}/buildconfigs/{{name}}/webhooks/{{*rest}}"),
                any(openshift_shape),
            )
            .route("/webhooks/{ns}/{name}/{kind}", any(plain_shape))
            .with_state(self.shared.clone())
    }
}

async fn openshift_shape(
    State(shared): State<Arc<Shared>>,
    Path((ns, name, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let parts: Vec<&str> = rest.split('/').collect();
    let (secret, kind) = match parts.as_slice() {
        [secret, kind] if !secret.is_empty() && !kind.is_empty() => (*secret, *kind),
        _ if request.method() != Method::POST => {
            return finish(
                &shared,
                None,
                &name,
                Outcome::Refused(Refused::MethodNotAllowed),
            )
        }
        _ => return finish(&shared, None, &name, Outcome::Refused(Refused::BadPath)),
    };
    handle(&shared, &ns, &name, Some(secret), kind, request).await
}

async fn plain_shape(
    State(shared): State<Arc<Shared>>,
    Path((ns, name, kind)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    handle(&shared, &ns, &name, None, &kind, request).await
}

async fn handle(
    shared: &Shared,
    ns: &str,
    name: &str,
    url_secret: Option<&str>,
    kind: &str,
    request: Request,
) -> Response {
    if request.method() != Method::POST {
        return finish(
            shared,
            None,
            name,
            Outcome::Refused(Refused::MethodNotAllowed),
        );
    }
    let Some(provider) = Provider::from_segment(kind) else {
        return finish(shared, None, name, Outcome::Refused(Refused::UnknownType));
    };
    let outcome = receive(shared, provider, ns, name, url_secret, request).await;
    if let Outcome::Accepted { build } = &outcome {
        tracing::info!(
            provider = provider.segment(),
            namespace = ns,
            buildconfig = name,
            build,
            "webhook started a build"
        );
    } else {
        tracing::debug!(
            provider = provider.segment(),
            namespace = ns,
            buildconfig = name,
            reason = outcome.reason(),
            "webhook answered without a build"
        );
    }
    finish(shared, Some(provider), name, outcome)
}

async fn receive(
    shared: &Shared,
    provider: Provider,
    ns: &str,
    name: &str,
    url_secret: Option<&str>,
    request: Request,
) -> Outcome {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Outcome::Refused(Refused::TooLarge);
    }
    let Ok(body) = axum::body::to_bytes(Body::new(body), BODY_LIMIT).await else {
        return Outcome::Refused(Refused::TooLarge);
    };
    if !shared.synced.load(Ordering::Relaxed) {
        return Outcome::Refused(Refused::NotReady);
    }
    let bc = shared.configs.get(&ObjectRef::new(name).within(ns));
    let mut secrets = Vec::new();
    if let Some(bc) = &bc {
        for trigger in provider.triggers(bc) {
            secrets.push(shared.secrets.resolve(ns, trigger).await);
        }
    }
    let secret_refs: Vec<Option<&[u8]>> = secrets.iter().map(|s| s.as_deref()).collect();
    let incoming = Incoming {
        provider,
        url_secret,
        headers: &parts.headers,
        body: &body,
    };
    let mut request = match decide::decide(&incoming, bc.as_deref(), &secret_refs) {
        Decision::Answer(outcome) => return outcome,
        Decision::Build(request) => request,
    };
    if request.request_id.is_empty() {
        // No delivery id: a request id of its own (no replay protection is possible).
        let n = shared.sequence.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        request.request_id = format!("webhook:{}:{nanos}-{n}", provider.segment());
    }
    match instantiate(&shared.client, ns, name, &request).await {
        Ok(build) => Outcome::Accepted {
            build: build.name_any(),
        },
        Err(instantiate::Error::Paused { .. }) => Outcome::Refused(Refused::Paused),
        Err(err) => {
            tracing::warn!(provider = provider.segment(), namespace = ns, buildconfig = name, %err, "webhook could not start a build");
            Outcome::Refused(Refused::InstantiateFailed)
        }
    }
}

/// Counts the answer and writes it as JSON. Nothing from the URL but the BuildConfig's name
/// goes into a body.
fn finish(shared: &Shared, provider: Option<Provider>, name: &str, outcome: Outcome) -> Response {
    let provider_label = provider.map_or("unknown", Provider::segment);
    shared
        .metrics
        .record(provider_label, outcome.kind(), outcome.reason());
    let message = match &outcome {
        Outcome::Accepted { build } => format!("build {build} started"),
        Outcome::Ignored(Ignored::Ping) => "pong: the webhook is reachable and authenticated".into(),
        Outcome::Ignored(Ignored::RefMismatch) => "skipping build: the pushed ref is not the BuildConfig's source.git.ref nor one of the trigger's branches or tags".into(),
        Outcome::Ignored(Ignored::DeletedRef) => "skipping build: the push deleted the ref".into(),
        Outcome::Refused(r) => match r {
            Refused::MethodNotAllowed => "only POST is accepted".into(),
            Refused::BadPath => "the webhook path must end in <secret>/<type>".into(),
            Refused::UnknownType => "unknown webhook type; use github, gitlab, bitbucket or generic".into(),
            Refused::TooLarge => format!("the body exceeds {} MiB", BODY_LIMIT >> 20),
            Refused::Unauthorized(_) => decide::unauthorized_message(provider_label, name),
            Refused::ContentType(m) | Refused::BadRequest(_, m) => m.clone(),
            Refused::Paused => format!("BuildConfig {name} is paused"),
            Refused::NotReady => "starting: the BuildConfig cache is not synced yet".into(),
            Refused::InstantiateFailed => "could not generate a build".into(),
        },
    };
    let mut body = serde_json::json!({
        "outcome": outcome.kind(),
        "message": message,
    });
    match &outcome {
        // Every 401 carries the same body: nothing tells which check failed.
        Outcome::Refused(Refused::Unauthorized(_)) => {}
        Outcome::Accepted { build } => {
            body["reason"] = outcome.reason().into();
            body["build"] = build.as_str().into();
        }
        _ => body["reason"] = outcome.reason().into(),
    }
    let mut response = (outcome.status(), axum::Json(body)).into_response();
    if outcome.status() == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    response
}
