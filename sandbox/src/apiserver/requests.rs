//! Request counters per client, verb and resource, for load tests (`GET /sandbox/metrics`).
//!
//! The client is the product name of the `User-Agent` header (the text before the first `/`,
//! as the apiserver derives a default field manager), or `""` when the header is absent.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// Counts of API requests, keyed by (client, verb, resource).
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(String, String, String), u64>>,
}

/// One counter of [`RequestCounts::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    /// The client: the `User-Agent` product name, or empty.
    pub agent: String,
    /// The Kubernetes verb (`get list watch create update patch delete deletecollection`).
    pub verb: String,
    /// The plural resource, with its subresource if any (`pods/status`).
    pub resource: String,
    /// Requests seen.
    pub count: u64,
}

impl RequestCounts {
    /// Counts one request.
    pub fn record(&self, user_agent: Option<&str>, verb: &str, resource: &str) {
        let agent = agent_of(user_agent.unwrap_or_default());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts
            .entry((agent.to_string(), verb.to_string(), resource.to_string()))
            .or_default() += 1;
    }

    /// Every counter, sorted by client, verb and resource.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .iter()
            .map(|((agent, verb, resource), count)| RequestCount {
                agent: agent.clone(),
                verb: verb.clone(),
                resource: resource.clone(),
                count: *count,
            })
            .collect()
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The product name of a `User-Agent` value (`kubectl/v1.32 (linux)` → `kubectl`).
pub fn agent_of(user_agent: &str) -> &str {
    user_agent
        .split('/')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_agent_verb_and_resource() {
        let counts = RequestCounts::default();
        counts.record(Some("kubectl/v1.32.0 (linux/amd64)"), "get", "pods");
        counts.record(Some("kubectl/v1.33.1"), "get", "pods");
        counts.record(None, "create", "pods/binding");
        let snapshot = counts.snapshot();
        assert_eq!(
            snapshot,
            vec![
                RequestCount {
                    agent: String::new(),
                    verb: "create".into(),
                    resource: "pods/binding".into(),
                    count: 1
                },
                RequestCount {
                    agent: "kubectl".into(),
                    verb: "get".into(),
                    resource: "pods".into(),
                    count: 2
                },
            ]
        );
        counts.reset();
        assert!(counts.snapshot().is_empty());
    }

    #[test]
    fn agent_is_the_product_name() {
        assert_eq!(agent_of("kiln-bench"), "kiln-bench");
        assert_eq!(agent_of("kube/5.0 x"), "kube");
        assert_eq!(agent_of(""), "");
    }
}
