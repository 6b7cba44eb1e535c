//! ClusterRole aggregation, as Kubernetes' clusterrole-aggregation controller does it: a
//! ClusterRole with an `aggregationRule` gets as its `rules` the rules of every other ClusterRole
//! matched by any of its `clusterRoleSelectors` (roles in name order, duplicate rules dropped).
//! The sandbox runs it synchronously after every ClusterRole write, to a fixpoint (aggregated
//! roles may themselves be aggregated).

use serde_json::{json, Value};

use super::super::error::ApiResult;
use super::super::ops::{self, FieldValidation, UpdateMode, WriteContext};
use super::super::selector::{LabelRequirement, LabelSelector};
use super::super::store::Store;

/// The field manager the aggregation writes as.
pub const MANAGER: &str = "clusterrole-aggregation-controller";

/// A `metav1.LabelSelector` as a selector; `None` when it is malformed (matches nothing).
pub fn label_selector(selector: &Value) -> Option<LabelSelector> {
    let mut requirements = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            requirements.push(LabelRequirement::Equals(
                key.clone(),
                value.as_str()?.to_string(),
            ));
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression.get("key").and_then(Value::as_str)?.to_string();
        let values: Vec<String> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        requirements.push(match expression.get("operator").and_then(Value::as_str)? {
            "In" => LabelRequirement::In(key, values),
            "NotIn" => LabelRequirement::NotIn(key, values),
            "Exists" => LabelRequirement::Exists(key),
            "DoesNotExist" => LabelRequirement::DoesNotExist(key),
            _ => return None,
        });
    }
    Some(LabelSelector(requirements))
}

/// The rules an aggregated ClusterRole should hold, given every ClusterRole (`None` when the role
/// has no `aggregationRule`).
pub fn aggregated_rules(role: &Value, cluster_roles: &[&Value]) -> Option<Vec<Value>> {
    let selectors = role.pointer("/aggregationRule/clusterRoleSelectors")?;
    let name = role.pointer("/metadata/name");
    let mut sorted: Vec<&Value> = cluster_roles.to_vec();
    sorted.sort_by_key(|r| r.pointer("/metadata/name").and_then(Value::as_str));
    let mut rules: Vec<Value> = Vec::new();
    for selector in selectors.as_array().into_iter().flatten() {
        let Some(selector) = label_selector(selector) else {
            continue;
        };
        for other in &sorted {
            if other.pointer("/metadata/name") == name || !selector.matches(other) {
                continue;
            }
            for rule in other
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

/// Fills in the rules of every aggregated ClusterRole that is out of date (writes go through the
/// normal update path, so they get resourceVersions and watch events).
pub fn reconcile(store: &mut Store) -> ApiResult<()> {
    let Some(info) = store
        .registry
        .get("rbac.authorization.k8s.io", "v1", "clusterroles")
        .cloned()
    else {
        return Ok(());
    };
    let ctx = WriteContext {
        info: info.clone(),
        namespace: String::new(),
        manager: Some(MANAGER.into()),
        dry_run: false,
        validation: FieldValidation::Ignore,
        apply_config: None,
        cel_rules: false,
    };
    // Each round settles one more level of nested aggregation; a cycle cannot grow forever
    // because rules only come from existing roles, but the rounds are bounded anyway.
    for _ in 0..16 {
        let roles: Vec<Value> = store
            .range(&info.storage_id(), None, None)
            .map(|(_, v)| (**v).clone())
            .collect();
        let refs: Vec<&Value> = roles.iter().collect();
        let mut changed = false;
        for role in &roles {
            let Some(rules) = aggregated_rules(role, &refs) else {
                continue;
            };
            let current = role.get("rules").cloned().unwrap_or(json!([]));
            if current == Value::Array(rules.clone()) || (rules.is_empty() && current.is_null()) {
                continue;
            }
            let mut updated = role.clone();
            if let Some(map) = updated.as_object_mut() {
                map.insert("rules".into(), Value::Array(rules));
            }
            let name = role
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            ops::update(store, &ctx, &name, updated, None, UpdateMode::Put)?;
            changed = true;
        }
        if !changed {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, labels: Value, rules: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    #[test]
    fn aggregation_table() {
        let r1 = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        let r2 = json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]});
        let a = role("a", json!({"agg": "edit"}), json!([r2.clone()]));
        let b = role(
            "b",
            json!({"agg": "edit", "tier": "x"}),
            json!([r1.clone(), r2.clone()]),
        );
        let c = role("c", json!({"agg": "view"}), json!([r1.clone()]));
        let by_labels = |selectors: Value| json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": selectors}});
        let cases = [
            // Roles in name order, duplicates dropped.
            (
                by_labels(json!([{"matchLabels": {"agg": "edit"}}])),
                Some(vec![r2.clone(), r1.clone()]),
            ),
            (
                by_labels(
                    json!([{"matchLabels": {"agg": "view"}}, {"matchLabels": {"agg": "edit"}}]),
                ),
                Some(vec![r1.clone(), r2.clone()]),
            ),
            (
                by_labels(json!([{"matchExpressions": [{"key": "tier", "operator": "Exists"}]}])),
                Some(vec![r1.clone(), r2.clone()]),
            ),
            (
                by_labels(
                    json!([{"matchExpressions": [{"key": "agg", "operator": "In", "values": ["view"]}]}]),
                ),
                Some(vec![r1.clone()]),
            ),
            (
                by_labels(json!([{"matchExpressions": [{"key": "agg", "operator": "Bogus"}]}])),
                Some(vec![]),
            ),
            (
                by_labels(json!([{"matchLabels": {"agg": "none"}}])),
                Some(vec![]),
            ),
            (json!({"metadata": {"name": "plain"}, "rules": []}), None),
        ];
        for (aggregated, expected) in cases {
            let all = [&a, &b, &c, &aggregated];
            assert_eq!(
                aggregated_rules(&aggregated, &all),
                expected,
                "{aggregated}"
            );
        }
    }

    #[test]
    fn a_role_never_aggregates_itself() {
        let own = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        let aggregated = json!({"metadata": {"name": "x", "labels": {"agg": "y"}}, "rules": [own],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "y"}}]}});
        assert_eq!(aggregated_rules(&aggregated, &[&aggregated]), Some(vec![]));
    }
}
