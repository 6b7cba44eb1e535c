//! Webhook request counters for `/metrics`: by provider, outcome and reason, all from fixed sets.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts of webhook requests.
#[derive(Default)]
pub struct WebhookMetrics {
    counts: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
}

impl WebhookMetrics {
    /// Counts one request. Every label is a `&'static str` from a fixed set, so the series are
    /// bounded.
    pub(crate) fn record(
        &self,
        provider: &'static str,
        outcome: &'static str,
        reason: &'static str,
    ) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((provider, outcome, reason)).or_default() += 1;
    }

    /// The count for one label set (tests read it).
    pub fn count(&self, provider: &str, outcome: &str, reason: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .filter(|((p, o, r), _)| *p == provider && *o == outcome && *r == reason)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
            "# HELP kiln_webhook_requests_total Webhook requests by provider, outcome and reason.\n\
             # TYPE kiln_webhook_requests_total counter\n",
        );
        for ((provider, outcome, reason), n) in counts.iter() {
            out.push_str(&format!(
                "kiln_webhook_requests_total{{provider=\"{provider}\",outcome=\"{outcome}\",reason=\"{reason}\"}} {n}\n"
            ));
        }
        out
    }
}
