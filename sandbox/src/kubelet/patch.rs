//! JSON merge patches (RFC 7386) computed from an old and a new document (pure).

use serde_json::{Map, Value};

/// The merge patch turning `old` into `new`; `None` when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return Some(new.clone());
    };
    let mut patch = Map::new();
    for (key, value) in new {
        let previous = old.get(key).unwrap_or(&Value::Null);
        if value.is_null() && !old.contains_key(key) {
            continue;
        }
        if let Some(diff) = merge_diff(previous, value) {
            // A nested object diffed against a missing or non-object value is sent whole.
            patch.insert(key.clone(), diff);
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    Some(Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Applies a merge patch (RFC 7386), to check diffs round-trip.
    fn apply(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let Value::Object(map) = target else { return };
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                apply(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    #[test]
    fn diffs() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1}), None),
            (json!({"a": 1}), json!({"a": 2}), Some(json!({"a": 2}))),
            (
                json!({"a": 1, "b": 2}),
                json!({"a": 1}),
                Some(json!({"b": null})),
            ),
            (
                json!({"s": {"running": {"t": 1}}}),
                json!({"s": {"terminated": {"code": 0}}}),
                Some(json!({"s": {"running": null, "terminated": {"code": 0}}})),
            ),
            (
                json!({"l": [1, 2]}),
                json!({"l": [1]}),
                Some(json!({"l": [1]})),
            ),
            (
                json!({}),
                json!({"o": {"x": 1}}),
                Some(json!({"o": {"x": 1}})),
            ),
            (
                json!({"o": 1}),
                json!({"o": {"x": 1}}),
                Some(json!({"o": {"x": 1}})),
            ),
            (json!(null), json!({"x": 1}), Some(json!({"x": 1}))),
        ];
        for (old, new, want) in cases {
            let diff = merge_diff(&old, &new);
            assert_eq!(diff, want, "{old} -> {new}");
            let mut applied = old.clone();
            if let Some(d) = &diff {
                apply(&mut applied, d);
            }
            assert_eq!(applied, new, "{old} -> {new} round trip");
        }
    }
}
