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

/// Renders more counters after the controller's on `/metrics` (the webhook receiver's).
pub(crate) type MoreMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The router serving health, readiness and metrics (the controller's, then `more`'s).
pub(crate) fn router(context: Arc<Context>, more: Option<MoreMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |state| async move { metrics(state, more.map(|more| more())).await }),
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

async fn metrics(State(ctx): State<Arc<Context>>, more: Option<String>) -> impl IntoResponse {
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        with_more(ctx.metrics.render(&waiting), more.as_deref()),
    )
}

/// The controller's OpenMetrics text with `more` (counters in Prometheus' classic text format)
/// placed before its `# EOF`, their metadata naming the family without `_total` as OpenMetrics
/// wants.
fn with_more(openmetrics: String, more: Option<&str>) -> String {
    let Some(more) = more.filter(|m| !m.is_empty()) else {
        return openmetrics;
    };
    let mut out = openmetrics
        .strip_suffix("# EOF\n")
        .unwrap_or(&openmetrics)
        .to_string();
    for line in more.lines() {
        let metadata = line.starts_with("# HELP ") || line.starts_with("# TYPE ");
        match line.split_whitespace().nth(2) {
            Some(name) if metadata && name.ends_with("_total") => {
                out.push_str(&line.replacen(name, name.trim_end_matches("_total"), 1));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_counters_go_before_eof_in_openmetrics_form() {
        let mine = "# TYPE kiln_tag_events counter\nkiln_tag_events_total 1\n# EOF\n".to_string();
        let more = "# HELP kiln_webhook_requests_total Webhook requests.\n# TYPE kiln_webhook_requests_total counter\nkiln_webhook_requests_total{provider=\"github\"} 2\n";
        assert_eq!(
            with_more(mine.clone(), Some(more)),
            "# TYPE kiln_tag_events counter\nkiln_tag_events_total 1\n\
             # HELP kiln_webhook_requests Webhook requests.\n\
             # TYPE kiln_webhook_requests counter\n\
             kiln_webhook_requests_total{provider=\"github\"} 2\n# EOF\n"
        );
        assert_eq!(with_more(mine.clone(), None), mine);
    }
}
