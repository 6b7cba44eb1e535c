//! Field ownership for server-side apply, tracked through `managedFields[*].fieldsV1`.
//!
//! Fields are handled as leaf paths of maps (lists are atomic). An `Apply` manager owns exactly the
//! fields of its last applied configuration: fields it stops applying are removed from the object
//! unless another manager owns them; applying a field another manager owns with a different value is
//! a conflict unless `force` is set, which transfers ownership. An `Update` manager (any other write)
//! owns the fields it changed, taking them away from other managers.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::meta;

/// A field path, e.g. `["spec", "size"]`.
pub type FieldPath = Vec<String>;

/// Which part of the object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `Some("status")` for status writes.
    pub subresource: Option<&'a str>,
    /// Whether status is a separate subresource for this kind.
    pub has_status: bool,
}

impl Scope<'_> {
    fn contains(&self, path: &[String]) -> bool {
        let is_status = path.first().is_some_and(|p| p == "status");
        match self.subresource {
            Some("status") => is_status,
            _ => !(self.has_status && is_status),
        }
    }
}

/// Leaf paths of a `fieldsV1` tree.
pub fn leaf_paths(fields: &Value) -> BTreeSet<FieldPath> {
    fn walk(node: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let children: Vec<(&String, &Value)> = node
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        for (key, child) in children {
            prefix.push(key[2..].to_string());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// A `fieldsV1` tree from leaf paths.
pub fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for key in path {
            node = meta::as_map(node.entry(format!("f:{key}")).or_insert_with(|| json!({})));
        }
    }
    Value::Object(root)
}

/// The value at a path.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, k| v.get(k))
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents.iter().try_fold(&mut *object, |v, k| v.get_mut(k));
    if let Some(Value::Object(map)) = parent {
        map.remove(last);
    }
}

/// Leaf paths whose values differ between two objects (maps recursed, everything else a leaf).
pub fn changed_paths(old: &Value, new: &Value) -> BTreeSet<FieldPath> {
    fn walk(
        old: Option<&Value>,
        new: &Value,
        prefix: &mut FieldPath,
        out: &mut BTreeSet<FieldPath>,
    ) {
        match (old, new) {
            (Some(Value::Object(o)), Value::Object(n)) => {
                for (key, child) in n {
                    prefix.push(key.clone());
                    walk(o.get(key), child, prefix, out);
                    prefix.pop();
                }
            }
            (old, Value::Object(n)) if !n.is_empty() && !matches!(old, Some(Value::Object(_))) => {
                for (key, child) in n {
                    prefix.push(key.clone());
                    walk(None, child, prefix, out);
                    prefix.pop();
                }
            }
            (old, new) if old != Some(new) && !prefix.is_empty() => {
                out.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(
        Some(&meta::comparable(old)),
        &meta::comparable(new),
        &mut Vec::new(),
        &mut out,
    );
    out.retain(|p| tracked(p));
    out
}

/// Fields under `metadata` other than labels/annotations/finalizers/ownerReferences are not tracked.
fn tracked(path: &[String]) -> bool {
    match path.first().map(String::as_str) {
        Some("apiVersion" | "kind") => false,
        Some("metadata") => path.get(1).is_some_and(|k| {
            matches!(
                k.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            )
        }),
        _ => true,
    }
}

/// Paths of an applied configuration.
pub fn applied_paths(applied: &Value, scope: Scope<'_>) -> BTreeSet<FieldPath> {
    let mut paths = leaf_paths(&meta::fields_v1(applied));
    let empty_map = |p: &FieldPath| {
        value_at(applied, p).is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
    };
    paths.retain(|p| scope.contains(p) && !empty_map(p));
    paths
}

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    subresource: Option<String>,
    paths: BTreeSet<FieldPath>,
}

fn entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| Entry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(String::from),
                    paths: e.get("fieldsV1").map(leaf_paths).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn is_self(entry: &Entry, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
    entry.manager == manager
        && entry.operation == operation
        && entry.subresource.as_deref() == subresource
}

/// One SSA conflict: the other manager and the field (`.spec.size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager owning the field.
    pub manager: String,
    /// The field, dotted with a leading dot.
    pub field: String,
}

/// Whether a field (`.a.b`) still has the value recorded in the client-side apply annotation.
fn unchanged_since_last_applied(live: &Value, field: &str) -> bool {
    let Some(text) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get("kubectl.kubernetes.io/last-applied-configuration"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    let Ok(last_applied) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let path: FieldPath = field
        .trim_start_matches('.')
        .split('.')
        .map(String::from)
        .collect();
    value_at(&last_applied, &path).is_some_and(|v| Some(v) == value_at(live, &path))
}

/// Prepares the live object for an apply: checks conflicts (unless `force`) and removes fields the
/// manager applied before but no longer applies (unless another manager owns them).
pub fn prepare_apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    scope: Scope<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let all = entries(live);
    let mine = applied_paths(applied, scope);
    if !force {
        let mut conflicts = Vec::new();
        for path in &mine {
            let live_value = value_at(live, path);
            if live_value.is_none() || live_value == value_at(applied, path) {
                continue;
            }
            for other in all
                .iter()
                .filter(|e| !is_self(e, manager, "Apply", scope.subresource))
            {
                if other.paths.iter().any(|p| overlaps(p, path)) {
                    conflicts.push(Conflict {
                        manager: other.manager.clone(),
                        field: format!(".{}", path.join(".")),
                    });
                }
            }
        }
        // Upgrading from client-side apply: for the `kubectl` manager, conflicts on fields whose
        // live value is still the one in the last-applied annotation are allowed (the apiserver's
        // last-applied manager does the same).
        if manager == "kubectl" {
            conflicts.retain(|c| !unchanged_since_last_applied(live, &c.field));
        }
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
    }
    let mut base = live.clone();
    let previous: BTreeSet<FieldPath> = all
        .iter()
        .filter(|e| is_self(e, manager, "Apply", scope.subresource))
        .flat_map(|e| e.paths.iter().cloned())
        .collect();
    for path in previous.difference(&mine) {
        let owned_elsewhere = all
            .iter()
            .filter(|e| !is_self(e, manager, "Apply", scope.subresource))
            .any(|e| e.paths.iter().any(|p| overlaps(p, path)));
        let still_applied = mine.iter().any(|p| overlaps(p, path));
        if !owned_elsewhere && !still_applied && scope.contains(path) {
            remove_at(&mut base, path);
        }
    }
    Ok(base)
}

/// Records the manager of a write in `managedFields`: an `Apply` manager owns its applied fields;
/// an `Update` manager adds the fields it changed. Changed fields are taken from other managers.
pub fn record(
    object: &mut Value,
    old: &Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    scope: Scope<'_>,
    applied: Option<&Value>,
) {
    let mut changed = changed_paths(old, object);
    changed.retain(|p| scope.contains(p));
    let all = entries(old);
    let mine: BTreeSet<FieldPath> = match applied {
        Some(config) => applied_paths(config, scope),
        None => all
            .iter()
            .filter(|e| is_self(e, manager, operation, scope.subresource))
            .flat_map(|e| e.paths.iter().cloned())
            .chain(changed.iter().cloned())
            .collect(),
    };
    let existing = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut updated: Vec<Value> = Vec::new();
    for (raw, entry) in existing.iter().zip(entries(object)) {
        if is_self(&entry, manager, operation, scope.subresource) {
            continue;
        }
        let kept: BTreeSet<FieldPath> = entry
            .paths
            .iter()
            .filter(|p| !changed.iter().any(|c| overlaps(c, p)))
            .cloned()
            .collect();
        if kept.is_empty() {
            continue;
        }
        let mut raw = raw.clone();
        meta::as_map(&mut raw).insert("fieldsV1".into(), to_fields_v1(&kept));
        updated.push(raw);
    }
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": meta::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(&mine),
    });
    if let (Some(sub), Some(map)) = (scope.subresource, entry.as_object_mut()) {
        map.insert("subresource".into(), Value::String(sub.to_string()));
    }
    if !mine.is_empty() || operation == "Apply" {
        updated.push(entry);
    }
    let metadata = meta::metadata_mut(object);
    if updated.is_empty() {
        metadata.remove("managedFields");
    } else {
        metadata.insert("managedFields".into(), Value::Array(updated));
    }
}

#[cfg(test)]
#[path = "ssa_tests.rs"]
mod tests;
