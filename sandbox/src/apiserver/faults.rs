//! Fault injection: fail or delay the next N matching requests, drop watches, compact history.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a matching request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer with this HTTP code and a Status body (409, 429, 500, ...).
    Fail(u16),
    /// Wait this many milliseconds, then serve normally.
    DelayMs(u64),
}

/// A rule: match verb/resource, act, for the next `count` matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; None = any.
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural resource, optionally with subresource (`pods/status`); None = any.
    #[serde(default)]
    pub resource: Option<String>,
    /// What to do.
    pub action: FaultAction,
    /// How many matching requests are affected.
    pub count: u32,
}

impl FaultRule {
    fn matches(&self, verb: &str, resource: &str) -> bool {
        let resource_matches = match &self.resource {
            None => true,
            Some(r) => {
                r == resource
                    || (!r.contains('/') && resource.split('/').next() == Some(r.as_str()))
            }
        };
        self.verb.as_deref().is_none_or(|v| v == verb) && resource_matches
    }
}

/// The active rules (shared between the router and test handles).
#[derive(Debug, Clone, Default)]
pub struct FaultRules {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl FaultRules {
    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(rule);
        }
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The rules still active.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Consumes one use of the first rule matching a request and returns its action.
    pub fn take(&self, verb: &str, resource: &str) -> Option<FaultAction> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let index = rules.iter().position(|r| r.matches(verb, resource))?;
        let action = rules[index].action;
        rules[index].count -= 1;
        if rules[index].count == 0 {
            rules.remove(index);
        }
        Some(action)
    }
}

/// The delay of a `DelayMs` action.
pub fn delay_of(action: FaultAction) -> Option<Duration> {
    match action {
        FaultAction::DelayMs(ms) => Some(Duration::from_millis(ms)),
        FaultAction::Fail(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_count_down() {
        let rules = FaultRules::default();
        rules.add(FaultRule {
            verb: Some("update".into()),
            resource: Some("pods".into()),
            action: FaultAction::Fail(409),
            count: 2,
        });
        let cases = [
            ("get", "pods", None),
            ("update", "configmaps", None),
            ("update", "pods/status", Some(FaultAction::Fail(409))),
            ("update", "pods", Some(FaultAction::Fail(409))),
            ("update", "pods", None),
        ];
        for (verb, resource, expected) in cases {
            assert_eq!(rules.take(verb, resource), expected, "{verb} {resource}");
        }
    }

    #[test]
    fn subresource_rules_are_exact() {
        let rules = FaultRules::default();
        rules.add(FaultRule {
            verb: None,
            resource: Some("pods/status".into()),
            action: FaultAction::DelayMs(5),
            count: 1,
        });
        assert_eq!(rules.take("patch", "pods"), None);
        assert_eq!(
            rules.take("patch", "pods/status"),
            Some(FaultAction::DelayMs(5))
        );
        assert!(rules.list().is_empty());
    }
}
