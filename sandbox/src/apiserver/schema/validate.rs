//! Validation of values against a structural schema, with apiserver-style messages.

use serde_json::{Map, Value};

use super::child_path;
use crate::apiserver::error::{value_text, FieldCause};

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
