//! `kiln webhooks`: serves only the webhook endpoints (plus `/healthz`, `/readyz`, `/metrics`),
//! so a cluster can expose this process alone on its Ingress. Same code as the controller's.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use clap::Args;

use super::Error;
use crate::webhook::Webhooks;

/// Arguments of `kiln webhooks`.
#[derive(Debug, Args)]
pub(crate) struct WebhooksArgs {
    /// Address of the HTTP server.
    #[arg(long, env = "KILN_WEBHOOKS_LISTEN", default_value = "0.0.0.0:8081")]
    pub(crate) listen: SocketAddr,
}

/// The routes of the standalone receiver: the webhooks, health, readiness and metrics.
pub(crate) fn router(webhooks: Arc<Webhooks>) -> Router {
    let (ready, counters) = (webhooks.clone(), webhooks.clone());
    webhooks
        .router()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.is_ready() {
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
            get(move || async move { counters.metrics().render() }),
        )
}

/// Serves the webhooks until SIGINT or SIGTERM.
pub(crate) fn run(args: &WebhooksArgs) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        context: "starting the runtime".into(),
        source,
    })?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(Error::Kube)?;
        let webhooks = Arc::new(Webhooks::start(client));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| Error::Io {
                context: format!("listening on {}", args.listen),
                source,
            })?;
        tracing::info!(listen = %args.listen, "kiln webhooks started");
        axum::serve(listener, router(webhooks))
            .with_graceful_shutdown(async {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(term) => term,
                        Err(_) => return std::future::pending().await,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await
            .map_err(|source| Error::Io {
                context: "serving webhooks".into(),
                source,
            })?;
        Ok(ExitCode::SUCCESS)
    })
}
