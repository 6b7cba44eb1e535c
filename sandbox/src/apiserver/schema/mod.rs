//! A small structural-schema engine for CRD `openAPIV3Schema`: pruning of unknown fields,
//! defaulting, and validation with apiserver-style field paths.
//!
//! Supported keywords: `type`, `nullable`, `enum`, `required`, `properties`,
//! `additionalProperties`, `items`, `minimum`/`maximum` (+ `exclusive*`), `minLength`/`maxLength`,
//! `pattern`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `default`, `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`. CEL rules (`x-kubernetes-validations`) and `format` are not
//! evaluated.

use serde_json::Value;

pub mod cel;
mod validate;

pub use validate::validate;

use super::error::FieldCause;

/// The result of running an object through a CRD schema.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SchemaReport {
    /// Validation failures (422 Invalid when non-empty).
    pub causes: Vec<FieldCause>,
    /// Paths of fields removed by pruning.
    pub pruned: Vec<String>,
}

/// Prunes, defaults and validates a whole object against a version's root schema.
pub fn process(schema: &Value, object: &mut Value) -> SchemaReport {
    let mut report = SchemaReport::default();
    let Some(root) = object.as_object_mut() else {
        report
            .causes
            .push(FieldCause::invalid("", object, "must be an object"));
        return report;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let preserve = preserves_unknown(schema);
    for (key, child) in root.iter_mut() {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
            prune(child_schema, child, key, &mut report.pruned);
        }
    }
    if !preserve {
        let unknown: Vec<String> = root
            .keys()
            .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            .filter(|k| !properties.is_some_and(|p| p.contains_key(*k)))
            .cloned()
            .collect();
        for key in unknown {
            root.remove(&key);
            report.pruned.push(key);
        }
    }
    if let Some(properties) = properties {
        for (key, child_schema) in properties {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let (false, Some(default)) = (root.contains_key(key), child_schema.get("default")) {
                root.insert(key.clone(), default.clone());
            }
            if let Some(child) = root.get_mut(key) {
                apply_defaults(child_schema, child);
            }
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !root.contains_key(key) && !matches!(key, "apiVersion" | "kind" | "metadata") {
                report.causes.push(FieldCause::required(key));
            }
        }
    }
    if let Some(properties) = properties {
        for (key, child) in root.iter() {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(child_schema) = properties.get(key) {
                validate(child_schema, child, key, &mut report.causes);
            }
        }
    }
    report
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not declare (recording their paths).
pub fn prune(schema: &Value, value: &mut Value, path: &str, pruned: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keep_unknown =
                preserves_unknown(schema) || additional.is_some_and(|a| a != &Value::Bool(false));
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let declared = properties.and_then(|p| p.get(&key));
                let is_embedded_meta =
                    embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                match (declared, additional) {
                    (Some(child_schema), _) => {
                        if let Some(child) = map.get_mut(&key) {
                            prune(child_schema, child, &child_path(path, &key), pruned);
                        }
                    }
                    (None, Some(additional_schema)) if additional_schema.is_object() => {
                        if let Some(child) = map.get_mut(&key) {
                            prune(additional_schema, child, &child_path(path, &key), pruned);
                        }
                    }
                    _ if keep_unknown || is_embedded_meta => {}
                    _ => {
                        map.remove(&key);
                        pruned.push(child_path(path, &key));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of missing properties, recursively.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child_schema) in properties {
                    if let (false, Some(default)) =
                        (map.contains_key(key), child_schema.get("default"))
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child_schema, child);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(additional, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items
                    .iter_mut()
                    .for_each(|item| apply_defaults(item_schema, item));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
