//! Helpers to read and write `metadata` fields of JSON objects.

use serde_json::{json, Map, Value};

/// The current time as the apiserver writes timestamps (RFC 3339, seconds, `Z`).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `metadata` as a mutable map, created if missing or not an object.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let map = as_map(object);
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    as_map(metadata)
}

/// The value as a mutable map, replacing it with `{}` first if it is not an object.
pub fn as_map(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("value was just made an object"),
    }
}

/// A string field of `metadata`.
pub fn str_field<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// `metadata.name`.
pub fn name(object: &Value) -> Option<&str> {
    str_field(object, "name").filter(|s| !s.is_empty())
}

/// `metadata.uid`.
pub fn uid(object: &Value) -> Option<&str> {
    str_field(object, "uid")
}

/// `metadata.resourceVersion` as a number (0 if missing or malformed).
pub fn resource_version(object: &Value) -> u64 {
    str_field(object, "resourceVersion")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(object: &mut Value, resource_version: u64) {
    metadata_mut(object).insert(
        "resourceVersion".into(),
        Value::String(resource_version.to_string()),
    );
}

/// `metadata.deletionTimestamp` is set.
pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The strings of the array at JSON `pointer` (empty when absent; non-strings are skipped).
pub fn strings_at(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    strings_at(object, "/metadata/finalizers")
}

/// Replaces `metadata.finalizers` (removing the field when empty).
pub fn set_finalizers(object: &mut Value, finalizers: &[String]) {
    let metadata = metadata_mut(object);
    if finalizers.is_empty() {
        metadata.remove("finalizers");
    } else {
        metadata.insert("finalizers".into(), json!(finalizers));
    }
}

/// `metadata.ownerReferences[*].uid`.
pub fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The object without `metadata` and `status`: what a spec change means for `generation`.
pub fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// The object without fields the server changes on every write (for no-op detection).
pub fn comparable(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        metadata.remove("managedFields");
    }
    copy
}

/// The field set (`fieldsV1`) touched by a request body, for `managedFields`.
pub fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                if matches!(key.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if key == "metadata" {
                    if let Some(m) = child.as_object() {
                        let mut meta_out = Map::new();
                        for (k, v) in m {
                            if matches!(
                                k.as_str(),
                                "labels" | "annotations" | "finalizers" | "ownerReferences"
                            ) {
                                meta_out.insert(format!("f:{k}"), fields_v1(v));
                            }
                        }
                        if !meta_out.is_empty() {
                            out.insert("f:metadata".into(), Value::Object(meta_out));
                        }
                    }
                    continue;
                }
                out.insert(format!("f:{key}"), fields_v1(child));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_helpers() {
        let mut o = json!({"metadata": {"name": "a", "finalizers": ["x"], "ownerReferences": [{"uid": "u1"}]}});
        assert_eq!(name(&o), Some("a"));
        assert_eq!(finalizers(&o), vec!["x"]);
        assert_eq!(owner_uids(&o), vec!["u1"]);
        set_finalizers(&mut o, &[]);
        assert!(o.pointer("/metadata/finalizers").is_none());
        set_resource_version(&mut o, 7);
        assert_eq!(resource_version(&o), 7);
        let mut not_object = json!(3);
        metadata_mut(&mut not_object).insert("name".into(), json!("b"));
        assert_eq!(name(&not_object), Some("b"));
    }

    #[test]
    fn fields_v1_of_body() {
        let body = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "labels": {"l": "1"}},
                          "spec": {"a": 1, "b": {"c": [1]}}});
        assert_eq!(
            fields_v1(&body),
            json!({"f:metadata": {"f:labels": {"f:l": {}}}, "f:spec": {"f:a": {}, "f:b": {"f:c": {}}}})
        );
    }
}
