//! The controller's HTTP server: `/healthz` (fails when a controller task stopped or a watch has
//! failed for too long), `/readyz` (the caches have synced) and `/metrics` (OpenMetrics text).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::context::Context;
use super::metrics::waiting_per_policy;
use crate::api::RunPolicy;
use crate::naming;

/// Writes more metric families after the controller's on `/metrics` (the webhook receiver's),
/// in the OpenMetrics text format without `# EOF`.
pub(crate) type MoreMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

/// The router serving health, readiness and metrics (the controller's families, then `more`'s).
pub(crate) fn router(context: Arc<Context>, more: Option<MoreMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |state| async move { metrics(state, more).await }),
        )
        .with_state(context)
}

async fn healthz(State(ctx): State<Arc<Context>>) -> (StatusCode, String) {
    let problems = ctx.health.problems(Instant::now());
    if problems.is_empty() {
        (StatusCode::OK, "ok".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n"))
    }
}

async fn readyz(State(ctx): State<Arc<Context>>) -> (StatusCode, &'static str) {
    if ctx.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
    }
}

async fn metrics(State(ctx): State<Arc<Context>>, more: Option<MoreMetrics>) -> impl IntoResponse {
    let mut text = String::new();
    encode_families(&ctx, &mut text);
    if let Some(more) = more {
        more(&mut text);
    }
    openmetrics(text)
}

/// The controller's metric families (without `# EOF`).
pub(crate) fn encode_families(ctx: &Context, text: &mut String) {
    let builds = ctx.builds.all();
    let waiting = waiting_per_policy(builds.iter().map(|b| {
        let phase = b.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let policy = RunPolicy::from_label(
            b.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(naming::START_POLICY_LABEL))
                .map(String::as_str),
        );
        (phase, policy)
    }));
    ctx.metrics.encode_families(&waiting, text);
}

/// `text` (metric families) ended with `# EOF` and served as OpenMetrics.
pub(crate) fn openmetrics(mut text: String) -> impl IntoResponse {
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_eof(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
