//! Webhook request counters for `/metrics` through `prometheus-client`: by provider, outcome and
//! reason, all from fixed sets. The receiver keeps its own registry so that `kiln webhooks` serves
//! it alone and `kiln controller` serves it after the controller's own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// One request's labels; every value is a `&'static str` from a fixed set, so the series are
/// bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: &'static str,
    outcome: &'static str,
    reason: &'static str,
}

/// Counts of webhook requests.
pub struct WebhookMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kiln");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by provider, outcome and reason",
            requests.clone(),
        );
        WebhookMetrics { registry, requests }
    }
}

impl WebhookMetrics {
    /// Counts one request.
    pub(crate) fn record(
        &self,
        provider: &'static str,
        outcome: &'static str,
        reason: &'static str,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                provider,
                outcome,
                reason,
            })
            .inc();
    }

    /// The count for one label set (tests and the bench read it).
    pub fn count(
        &self,
        provider: &'static str,
        outcome: &'static str,
        reason: &'static str,
    ) -> u64 {
        self.requests
            .get(&RequestLabels {
                provider,
                outcome,
                reason,
            })
            .map(|counter| counter.get())
            .unwrap_or_default()
    }

    /// The counters' families in the OpenMetrics text format, without the closing `# EOF` (the
    /// caller ends the exposition, after any other registry's families).
    pub fn encode_families(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }

    /// The counters as a whole OpenMetrics exposition (`kiln webhooks` serves this alone).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.encode_families(&mut out);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label_set_and_renders_openmetrics() {
        let metrics = WebhookMetrics::default();
        metrics.record("github", "accepted", "");
        metrics.record("github", "accepted", "");
        metrics.record("gitlab", "refused", "bad_token");
        assert_eq!(metrics.count("github", "accepted", ""), 2);
        assert_eq!(metrics.count("gitlab", "refused", "bad_token"), 1);
        assert_eq!(metrics.count("gitlab", "accepted", ""), 0);
        assert_eq!(metrics.count("nobody", "accepted", ""), 0);
        let text = metrics.render();
        assert!(
            text.contains("# TYPE kiln_webhook_requests counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "kiln_webhook_requests_total{provider=\"github\",outcome=\"accepted\",reason=\"\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        let mut families = String::new();
        metrics.encode_families(&mut families);
        assert!(!families.contains("# EOF"), "{families}");
    }
}
