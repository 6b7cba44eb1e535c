//! `kiln controller` with leader election: every replica serves the webhooks, `/healthz`,
//! `/readyz` and `/metrics`; only the replica holding the Lease runs the reconcilers (Builds,
//! BuildConfigs, ImageStream imports), through a client fenced by the Lease.
//!
//! `/readyz` answers whether this replica can serve webhooks (its BuildConfig cache has synced),
//! not whether it leads: a Service sends webhooks to every replica, and a rolling update waits
//! for readiness, which a follower would otherwise never reach. `/healthz` fails when the
//! election task stopped or, on the leader, when a controller task stopped or a watch has failed
//! too long. `/metrics` carries `kiln_leader` (1 on the leader), the webhook families, and on
//! the leader the controller's families (they start from zero each time a replica takes over).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::controller::context::Context;
use crate::controller::leader::{fenced, Elector};
use crate::controller::{LeaseConfig, Settings};
use crate::webhook::Webhooks;

/// What the HTTP handlers read: the receiver, the elector, and the current term's controllers.
struct Replica {
    webhooks: Arc<Webhooks>,
    elector: Elector,
    term: Mutex<Option<Arc<Context>>>,
}

impl Replica {
    fn term(&self) -> Option<Arc<Context>> {
        self.term
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_term(&self, context: Option<Arc<Context>>) {
        *self.term.lock().unwrap_or_else(PoisonError::into_inner) = context;
    }
}

fn router(replica: Arc<Replica>) -> Router {
    let (health, ready, metrics) = (replica.clone(), replica.clone(), replica.clone());
    replica
        .webhooks
        .router()
        .route(
            "/healthz",
            get(move || async move {
                let mut problems = Vec::new();
                if !health.elector.is_running() {
                    problems.push("the leader election task has stopped".to_string());
                }
                if let Some(term) = health.term() {
                    problems.extend(term.health.problems(Instant::now()));
                }
                if problems.is_empty() {
                    (StatusCode::OK, "ok".to_string())
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n"))
                }
            }),
        )
        .route(
            "/readyz",
            get(move || async move {
                if ready.webhooks.is_ready() {
                    (StatusCode::OK, "ok")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the BuildConfig cache is not synced yet",
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                let mut text = String::new();
                if let Some(term) = metrics.term() {
                    crate::controller::server::encode_families(&term, &mut text);
                }
                metrics.webhooks.metrics().encode_families(&mut text);
                metrics.elector.encode_metrics(&mut text);
                crate::controller::server::openmetrics(text)
            }),
        )
}

/// Serves on `listener` and reconciles while this replica holds the Lease, until `shutdown`
/// resolves; then lets the reconciles in flight finish and releases the Lease.
pub(crate) async fn run(
    client: kube::Client,
    settings: Settings,
    lease: LeaseConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let replica = Arc::new(Replica {
        webhooks: Arc::new(Webhooks::start(client.clone())),
        elector: Elector::start(client.clone(), lease),
        term: Mutex::new(None),
    });
    let (server_stop, mut server_stopped) = watch::channel(false);
    // The registry token server answers on every replica, as the webhooks do.
    let app = match &settings.registry_tokens {
        Some(tokens) => router(replica.clone()).merge(tokens.router()),
        None => router(replica.clone()),
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_stopped.changed().await;
    });
    let server = tokio::spawn(async move { server.await });

    let mut leading = replica.elector.leading();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = leading.wait_for(|leads| *leads) => if changed.is_err() { break },
        }
        let (stop, stopped) = watch::channel(false);
        let running = crate::controller::run(
            fenced(client.clone(), replica.elector.fence()),
            settings.clone(),
            async move {
                let mut stopped = stopped;
                let _ = stopped.changed().await;
            },
        )
        .await;
        replica.set_term(Some(running.context.clone()));
        let lost = tokio::select! {
            _ = &mut shutdown => false,
            _ = leading.wait_for(|leads| !*leads) => true,
        };
        replica.set_term(None);
        if lost {
            // The fence already refuses this replica's writes; nothing in flight may finish.
            running.abort();
            continue;
        }
        tracing::info!("shutting down: letting the reconciles in flight finish");
        let _ = stop.send(true);
        running.finished().await;
        break;
    }
    tracing::info!("shutting down");
    let _ = server_stop.send(true);
    // Give up the Lease last: until the reconciles have finished it must stay held.
    replica.elector.release().await;
    let _ = server.await;
}
