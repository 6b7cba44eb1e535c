//! The controller's HTTP server: `/healthz`, `/readyz` and `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::context::Context;

/// Renders more counters after the controller's on `/metrics` (the webhook receiver's).
pub(crate) type MoreMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The router serving health, readiness and metrics (the controller's, then `more`'s).
pub(crate) fn router(context: Arc<Context>, more: Option<MoreMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |state| async move {
                let mut text = metrics(state).await;
                text.extend(more.map(|more| more()));
                text
            }),
        )
        .with_state(context)
}

async fn readyz(State(ctx): State<Arc<Context>>) -> (StatusCode, &'static str) {
    if ctx.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> String {
    ctx.metrics.render()
}
