//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and a strategic merge
//! patch for built-in kinds (lists merged by their Kubernetes merge keys).

use serde_json::{Map, Value};

/// The patch types the server accepts, from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// Content types accepted for PATCH.
pub const PATCH_CONTENT_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchKind {
    /// Parses a Content-Type header value.
    pub fn from_content_type(content_type: &str) -> Option<PatchKind> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (400).
    #[error("{0}")]
    Malformed(String),
    /// An operation failed, e.g. a `test` did not match or a path is missing (422).
    #[error("{0}")]
    Failed(String),
}

/// Applies an RFC 7386 merge patch.
pub fn merge(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// Applies an RFC 6902 JSON patch (including `test`).
///
/// As in the apiserver, a `test` of `null` succeeds when the tested key is absent from an
/// existing parent (kube-rs's finalizer helper relies on this).
pub fn json(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Malformed(format!("json: cannot unmarshal JSON patch: {e}")))?;
    let mut out = target.clone();
    for operation in operations.0 {
        if let json_patch::PatchOperation::Test(test) = &operation {
            let path = test.path.as_str();
            let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            if test.value.is_null() && out.pointer(path).is_none() && out.pointer(parent).is_some()
            {
                continue;
            }
        }
        json_patch::patch(&mut out, &[operation]).map_err(|e| PatchError::Failed(e.to_string()))?;
    }
    Ok(out)
}

/// The merge key of a list field in built-in kinds, by field name (and element shape).
fn merge_key(field: &str, sample: Option<&Map<String, Value>>) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => Some(if field == "readinessGates" {
            "conditionType"
        } else {
            "name"
        }),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        "ports" => Some(if sample.is_some_and(|s| s.contains_key("containerPort")) {
            "containerPort"
        } else {
            "port"
        }),
        _ => None,
    }
}

/// Lists of scalars that strategic merge unions instead of replacing.
fn is_primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch (as kubectl sends for built-in kinds).
///
/// Supported: merge keys for the common list fields, `$patch: replace|delete` on maps and list
/// elements, `$deleteFromPrimitiveList/<field>`, `$retainKeys`; `$setElementOrder/<field>` is
/// accepted and ignored (the merged order is existing elements first, then new ones).
pub fn strategic(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(strategic_map(t, p)?
            .map(Value::Object)
            .unwrap_or(Value::Null)),
        (_, Value::Object(p)) => Ok(strategic_map(&Map::new(), p)?
            .map(Value::Object)
            .unwrap_or(Value::Null)),
        _ => Err(PatchError::Malformed(
            "strategic merge patch must be a JSON object".into(),
        )),
    }
}

fn strategic_map(
    target: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            return Ok(Some(strip_directives(&replaced)));
        }
        Some(other) if other != "merge" => {
            return Err(PatchError::Malformed(format!(
                "unknown patch type: {other}"
            )));
        }
        _ => {}
    }
    let mut out = target.clone();
    for (key, value) in patch {
        if key == "$patch" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if key == "$retainKeys" {
            if let Some(keep) = value.as_array() {
                let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
                out.retain(|k, _| keep.contains(&k.as_str()) || patch.contains_key(k));
            }
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (out.get_mut(field), value.as_array())
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let merged = match (out.get(key), value) {
            (Some(Value::Object(existing)), Value::Object(p)) => {
                strategic_map(existing, p)?.map(Value::Object)
            }
            (existing, Value::Array(p)) => {
                let existing = existing
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                Some(Value::Array(strategic_list(key, &existing, p)?))
            }
            (_, Value::Object(p)) => strategic_map(&Map::new(), p)?.map(Value::Object),
            (_, other) => Some(other.clone()),
        };
        match merged {
            Some(v) => {
                out.insert(key.clone(), v);
            }
            None => {
                out.remove(key);
            }
        }
    }
    Ok(Some(out))
}

fn strip_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| {
            let v = match v {
                Value::Object(m) => Value::Object(strip_directives(m)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn strategic_list(
    field: &str,
    existing: &[Value],
    patch: &[Value],
) -> Result<Vec<Value>, PatchError> {
    let replace = patch
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return Ok(patch
            .iter()
            .filter(|item| item.get("$patch").is_none())
            .map(|item| match item {
                Value::Object(m) => Value::Object(strip_directives(m)),
                other => other.clone(),
            })
            .collect());
    }
    if is_primitive_merge_list(field) {
        let mut out = existing.to_vec();
        for item in patch {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Ok(out);
    }
    let sample = patch.iter().chain(existing).find_map(Value::as_object);
    let Some(key) = merge_key(field, sample) else {
        return Ok(patch
            .iter()
            .map(|item| match item {
                Value::Object(m) => Value::Object(strip_directives(m)),
                other => other.clone(),
            })
            .collect());
    };
    let mut out: Vec<Value> = existing.to_vec();
    for item in patch {
        let Some(item_map) = item.as_object() else {
            return Err(PatchError::Malformed(format!(
                "list {field} must contain objects with merge key {key}"
            )));
        };
        let Some(id) = item_map.get(key) else {
            return Err(PatchError::Malformed(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let position = out.iter().position(|e| e.get(key) == Some(id));
        let delete = item_map.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let base = out[i].as_object().cloned().unwrap_or_default();
                match strategic_map(&base, item_map)? {
                    Some(merged) => out[i] = Value::Object(merged),
                    None => {
                        out.remove(i);
                    }
                }
            }
            (None, false) => out.push(Value::Object(strip_directives(item_map))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchKind::Json)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchKind::Merge),
            ),
            (
                "application/strategic-merge-patch+json",
                Some(PatchKind::Strategic),
            ),
            ("application/apply-patch+yaml", Some(PatchKind::Apply)),
            ("text/plain", None),
        ];
        for (ct, kind) in cases {
            assert_eq!(PatchKind::from_content_type(ct), kind, "{ct}");
        }
    }

    #[test]
    fn json_patch_test_op() {
        let target = json!({"metadata": {"finalizers": ["a"]}});
        let ok = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                        {"op": "remove", "path": "/metadata/finalizers/0"}]);
        assert_eq!(
            json(&target, &ok).unwrap(),
            json!({"metadata": {"finalizers": []}})
        );
        let absent_is_null = json!([{"op": "test", "path": "/spec", "value": null},
                                    {"op": "add", "path": "/spec", "value": {"a": 1}}]);
        assert_eq!(
            json(&target, &absent_is_null).unwrap()["spec"],
            json!({"a": 1})
        );
        let missing_parent = json!([{"op": "test", "path": "/nope/x", "value": null}]);
        assert!(matches!(
            json(&target, &missing_parent),
            Err(PatchError::Failed(_))
        ));
        let failing = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "b"}]);
        assert!(matches!(
            json(&target, &failing),
            Err(PatchError::Failed(_))
        ));
        assert!(matches!(
            json(&target, &json!({"op": "x"})),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn strategic_merge_table() {
        let pod = json!({"metadata": {"finalizers": ["a"]}, "spec": {
            "containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
                           {"name": "b", "image": "y"}],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "args": ["1"]}});
        let cases = [
            (
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                                "containers": [{"name": "b", "image": "z"}]}}),
                json!({"metadata": {"finalizers": ["a"]}, "spec": {
                    "containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
                                   {"name": "b", "image": "z"}],
                    "volumes": [{"name": "v", "emptyDir": {}}], "args": ["1"]}}),
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}], "args": ["2"]},
                       "metadata": {"finalizers": ["b"]}}),
                json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {
                    "containers": [{"name": "b", "image": "y"}],
                    "volumes": [{"name": "v", "emptyDir": {}}], "args": ["2"]}}),
            ),
            (
                json!({"spec": {"containers": [{"name": "a", "env": [{"name": "F", "value": "2"}]}],
                                "volumes": null}}),
                json!({"metadata": {"finalizers": ["a"]}, "spec": {
                    "containers": [{"name": "a", "image": "x",
                                    "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]},
                                   {"name": "b", "image": "y"}],
                    "args": ["1"]}}),
            ),
            (
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
                       "spec": {"$patch": "replace", "containers": []}}),
                json!({"metadata": {"finalizers": []}, "spec": {"containers": []}}),
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(strategic(&pod, &patch).unwrap(), expected, "{patch}");
        }
    }

    #[test]
    fn strategic_rejects_bad_lists() {
        let target = json!({"spec": {"containers": []}});
        assert!(strategic(&target, &json!({"spec": {"containers": [1]}})).is_err());
        assert!(strategic(&target, &json!({"spec": {"containers": [{"image": "x"}]}})).is_err());
        assert!(strategic(&target, &json!([1])).is_err());
    }
}
