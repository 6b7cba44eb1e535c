//! A small structural-schema engine for CRD `openAPIV3Schema`: pruning of unknown fields,
//! defaulting, and validation with apiserver-style field paths.
//!
//! Supported keywords: `type`, `nullable`, `enum`, `required`, `properties`,
//! `additionalProperties`, `items`, `minimum`/`maximum` (+ `exclusive*`), `minLength`/`maxLength`,
//! `pattern`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `default`, `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`. CEL rules (`x-kubernetes-validations`) and `format` are not
//! evaluated.

use serde_json::{Map, Value};

use super::error::{value_text, FieldCause};

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

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    let actual = type_name(value);
    actual == expected || (expected == "number" && actual == "integer")
}

fn number_bound(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn usize_bound(schema: &Value, key: &str) -> Option<usize> {
    schema
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

/// Validates a value against a schema, pushing causes with field paths.
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    if value.is_null() && nullable {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(has_type(value, "integer") || has_type(value, "string")) {
            let detail = format!(
                "{path} in body must be of type integer-or-string: {:?}",
                type_name(value)
            );
            causes.push(FieldCause::invalid(
                path,
                &Value::String(type_name(value).into()),
                &detail,
            ));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !has_type(value, expected) {
            let detail = format!(
                "{path} in body must be of type {expected}: {:?}",
                type_name(value)
            );
            causes.push(FieldCause::invalid(
                path,
                &Value::String(type_name(value).into()),
                &detail,
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let supported: Vec<String> = allowed.iter().map(value_text).collect();
            causes.push(FieldCause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    value_text(value),
                    supported.join(", ")
                ),
            ));
        }
    }
    validate_bounds(schema, value, path, causes);
    validate_combinators(schema, value, path, causes, int_or_string);
    match value {
        Value::Object(map) => validate_object(schema, map, path, causes),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn validate_bounds(schema: &Value, value: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if let Some(n) = value.as_f64().filter(|_| value.is_number()) {
        if let Some(min) = number_bound(schema, "minimum") {
            let exclusive = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            if n < min || (exclusive && n == min) {
                let op = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                causes.push(FieldCause::invalid(
                    path,
                    value,
                    &format!("{path} in body should be {op} {min}"),
                ));
            }
        }
        if let Some(max) = number_bound(schema, "maximum") {
            let exclusive = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if n > max || (exclusive && n == max) {
                let op = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                causes.push(FieldCause::invalid(
                    path,
                    value,
                    &format!("{path} in body should be {op} {max}"),
                ));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let length = s.chars().count();
        if let Some(max) = usize_bound(schema, "maxLength").filter(|max| length > *max) {
            causes.push(FieldCause::new(
                "FieldValueTooLong",
                path,
                format!("Too long: may not be more than {max} bytes"),
            ));
        }
        if let Some(min) = usize_bound(schema, "minLength").filter(|min| length < *min) {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            if let Ok(re) = regex::Regex::new(pattern) {
                if !re.is_match(s) {
                    causes.push(FieldCause::invalid(
                        path,
                        value,
                        &format!("{path} in body should match '{pattern}'"),
                    ));
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(max) = usize_bound(schema, "maxItems").filter(|max| items.len() > *max) {
            causes.push(FieldCause::new(
                "FieldValueTooMany",
                path,
                format!("Too many: {}: must have at most {max} items", items.len()),
            ));
        }
        if let Some(min) = usize_bound(schema, "minItems").filter(|min| items.len() < *min) {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body should have at least {min} items"),
            ));
        }
    }
    if let Some(map) = value.as_object() {
        if let Some(max) = usize_bound(schema, "maxProperties").filter(|max| map.len() > *max) {
            causes.push(FieldCause::new(
                "FieldValueTooMany",
                path,
                format!("Too many: {}: must have at most {max} items", map.len()),
            ));
        }
        if let Some(min) = usize_bound(schema, "minProperties").filter(|min| map.len() < *min) {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body should have at least {min} properties"),
            ));
        }
    }
}

fn validate_combinators(
    schema: &Value,
    value: &Value,
    path: &str,
    causes: &mut Vec<FieldCause>,
    int_or_string: bool,
) {
    let passes = |s: &Value| {
        let mut inner = Vec::new();
        validate(s, value, path, &mut inner);
        inner.is_empty()
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(s, value, path, causes);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !int_or_string && !any.is_empty() && !any.iter().any(passes) {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body must match at least one schema in anyOf"),
            ));
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one.iter().filter(|s| passes(s)).count();
        if !one.is_empty() && matching != 1 {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body must match exactly one schema in oneOf"),
            ));
        }
    }
    if let Some(not) = schema.get("not") {
        if passes(not) {
            causes.push(FieldCause::invalid(
                path,
                value,
                &format!("{path} in body must not match the schema in not"),
            ));
        }
    }
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    causes: &mut Vec<FieldCause>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                causes.push(FieldCause::required(child_path(path, key)));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (key, child) in map {
        let child_field = child_path(path, key);
        if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
            validate(child_schema, child, &child_field, causes);
        } else if let Some(additional) =
            schema.get("additionalProperties").filter(|a| a.is_object())
        {
            validate(additional, child, &child_field, causes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["source"],
                    "properties": {
                        "runPolicy": {"type": "string", "enum": ["Serial", "Parallel"], "default": "Serial"},
                        "source": {"type": "object", "properties": {"uri": {"type": "string", "minLength": 1}}},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                        "port": {"x-kubernetes-int-or-string": true,
                                 "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "env": {"type": "array", "maxItems": 2,
                                "items": {"type": "object", "required": ["name"],
                                          "properties": {"name": {"type": "string", "pattern": "^[A-Z_]+$"}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "note": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        })
    }

    fn run(mut object: Value) -> (Value, SchemaReport) {
        let report = process(&schema(), &mut object);
        (object, report)
    }

    #[test]
    fn defaults_and_pruning() {
        let (object, report) = run(json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"source": {"uri": "u", "junk": 1}, "free": {"anything": [1]}, "labels": {"a": "b"}},
            "extra": true
        }));
        assert!(report.causes.is_empty(), "{:?}", report.causes);
        assert_eq!(report.pruned, vec!["spec.source.junk", "extra"]);
        assert_eq!(object["spec"]["runPolicy"], "Serial");
        assert_eq!(object["spec"]["free"]["anything"], json!([1]));
        assert_eq!(object["metadata"]["name"], "a");
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({}), "spec", "Required value"),
            (json!({"spec": {}}), "spec.source", "Required value"),
            (json!({"spec": {"source": {}, "runPolicy": "Foo"}}), "spec.runPolicy",
             "Unsupported value: \"Foo\": supported values: \"Serial\", \"Parallel\""),
            (json!({"spec": {"source": {}, "limit": "3"}}), "spec.limit",
             "Invalid value: \"string\": spec.limit in body must be of type integer: \"string\""),
            (json!({"spec": {"source": {}, "limit": 0}}), "spec.limit",
             "Invalid value: 0: spec.limit in body should be greater than or equal to 1"),
            (json!({"spec": {"source": {}, "limit": 11}}), "spec.limit",
             "Invalid value: 11: spec.limit in body should be less than or equal to 10"),
            (json!({"spec": {"source": {"uri": ""}}}), "spec.source.uri",
             "Invalid value: \"\": spec.source.uri in body should be at least 1 chars long"),
            (json!({"spec": {"source": {}, "port": true}}), "spec.port",
             "Invalid value: \"boolean\": spec.port in body must be of type integer-or-string: \"boolean\""),
            (json!({"spec": {"source": {}, "env": [{"name": "a"}]}}), "spec.env[0].name",
             "Invalid value: \"a\": spec.env[0].name in body should match '^[A-Z_]+$'"),
            (json!({"spec": {"source": {}, "env": [{}]}}), "spec.env[0].name", "Required value"),
            (json!({"spec": {"source": {}, "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}}), "spec.env",
             "Too many: 3: must have at most 2 items"),
            (json!({"spec": {"source": {}, "labels": {"a": 1}}}), "spec.labels.a",
             "Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""),
        ];
        for (object, field, message) in cases {
            let (_, report) = run(object.clone());
            assert_eq!(report.causes.len(), 1, "{object}: {:?}", report.causes);
            assert_eq!(report.causes[0].field, field, "{object}");
            assert_eq!(report.causes[0].message, message, "{object}");
        }
    }

    #[test]
    fn valid_values_pass() {
        for object in [
            json!({"spec": {"source": {}, "port": 8080, "note": null}}),
            json!({"spec": {"source": {}, "port": "http", "limit": 10}}),
        ] {
            let (_, report) = run(object.clone());
            assert!(report.causes.is_empty(), "{object}: {:?}", report.causes);
        }
    }
}
