//! Percentiles and the request-count arithmetic of the report.

use serde::Deserialize;

/// The `p`-th percentile (0..=1, nearest rank) of `values`, or NaN when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One counter of the sandbox's `GET /sandbox/metrics`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RequestCount {
    /// `User-Agent` product name (empty when absent).
    pub(crate) agent: String,
    /// Kubernetes verb.
    pub(crate) verb: String,
    /// Resource, with subresource.
    pub(crate) resource: String,
    /// Requests.
    pub(crate) count: u64,
}

/// The body of `GET /sandbox/metrics`.
#[derive(Debug, Deserialize)]
pub(crate) struct Requests {
    /// Every counter.
    pub(crate) requests: Vec<RequestCount>,
}

/// Whether a verb writes.
pub(crate) fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Whether a verb is a one-shot read (watches are counted apart).
pub(crate) fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list")
}

/// Sum of the counters matching `keep`.
pub(crate) fn total(counts: &[RequestCount], keep: impl Fn(&RequestCount) -> bool) -> u64 {
    counts.iter().filter(|c| keep(c)).map(|c| c.count).sum()
}
