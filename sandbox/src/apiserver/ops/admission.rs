//! Checks every write goes through: metadata shape, names, kind, schema, built-in rules.

use serde_json::Value;

use super::super::error::{ApiError, ApiResult, FieldCause};
use super::super::names::{validate_generate_name, validate_name, validate_path_segment, NameRule};
use super::super::schema;
use super::{builtin, FieldValidation, WriteContext};

/// Rejects bodies that are not objects or whose metadata fields have the wrong JSON types (400).
pub fn check_shape(ctx: &WriteContext, object: &Value) -> ApiResult<()> {
    let kind = &ctx.info.kind;
    let fail = |detail: String| {
        Err(ApiError::BadRequest(format!(
            "{kind} in version {:?} cannot be handled as a {kind}: {detail}",
            ctx.info.version
        )))
    };
    if !object.is_object() {
        return fail("json: cannot unmarshal non-object into Go value of type struct".into());
    }
    let Some(metadata) = object.get("metadata") else {
        return Ok(());
    };
    if metadata.is_null() {
        return Ok(());
    }
    let Some(metadata) = metadata.as_object() else {
        return fail(
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta".into(),
        );
    };
    for field in ["labels", "annotations"] {
        match metadata.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) if map.values().all(Value::is_string) => {}
            Some(_) => return fail(format!("json: cannot unmarshal into Go struct field ObjectMeta.metadata.{field} of type map[string]string")),
        }
    }
    for field in [
        "name",
        "generateName",
        "namespace",
        "resourceVersion",
        "uid",
    ] {
        if metadata
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return fail(format!("json: cannot unmarshal into Go struct field ObjectMeta.metadata.{field} of type string"));
        }
    }
    match metadata.get("finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => return fail("json: cannot unmarshal into Go struct field ObjectMeta.metadata.finalizers of type []string".into()),
    }
    match metadata.get("ownerReferences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => {}
        Some(_) => return fail("json: cannot unmarshal into Go struct field ObjectMeta.metadata.ownerReferences of type []v1.OwnerReference".into()),
    }
    Ok(())
}

/// Checks `apiVersion`/`kind` against the endpoint, filling them in when absent.
pub fn check_kind(ctx: &WriteContext, object: &mut Value) -> ApiResult<()> {
    let api_version = ctx.info.api_version();
    let map = super::super::meta::as_map(object);
    match map.get("kind").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() && kind != ctx.info.kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                ctx.info.kind
            )));
        }
        _ => {}
    }
    if let Some(version) = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        let group = version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != ctx.info.group {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({version}) does not match the expected API version ({api_version})"
            )));
        }
    }
    map.insert("kind".into(), Value::String(ctx.info.kind.clone()));
    map.insert("apiVersion".into(), Value::String(api_version));
    Ok(())
}

/// Validates `metadata.name` (or `generateName`) and label keys/values (422).
pub fn check_names(ctx: &WriteContext, object: &Value) -> ApiResult<()> {
    let rule = NameRule::for_resource(&ctx.info.group, &ctx.info.plural);
    let name = super::super::meta::str_field(object, "name").unwrap_or_default();
    let generate = super::super::meta::str_field(object, "generateName").unwrap_or_default();
    let mut causes = Vec::new();
    if name.is_empty() && generate.is_empty() {
        causes.push(FieldCause::new(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    } else if !name.is_empty() {
        let mut errors = validate_name(name, rule);
        errors.extend(validate_path_segment(name));
        if !errors.is_empty() {
            causes.push(FieldCause::invalid(
                "metadata.name",
                &Value::String(name.into()),
                &errors.join(", "),
            ));
        }
    } else {
        let errors = validate_generate_name(generate, rule);
        if !errors.is_empty() {
            causes.push(FieldCause::invalid(
                "metadata.generateName",
                &Value::String(generate.into()),
                &errors.join(", "),
            ));
        }
    }
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or_default();
            if !valid_qualified_name(key) {
                causes.push(FieldCause::invalid("metadata.labels", &Value::String(key.clone()), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
            if !valid_label_value(value) {
                causes.push(FieldCause::invalid("metadata.labels", &Value::String(value.into()), "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(
            ctx.info
                .subject(if name.is_empty() { generate } else { name }),
            causes,
        ))
    }
}

fn valid_name_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && part.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        }
        _ => false,
    }
}

/// A qualified name (`prefix/name` with a DNS subdomain prefix), as label keys must be.
pub fn valid_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            validate_name(prefix, NameRule::Subdomain).is_empty() && valid_name_part(name)
        }
        None => valid_name_part(key),
    }
}

/// A label value: empty, or a name part.
pub fn valid_label_value(value: &str) -> bool {
    value.is_empty() || valid_name_part(value)
}

/// Unknown (or pruned) fields under the request's `fieldValidation`: Strict refuses the write
/// naming every field, Warn adds a warning per field, Ignore drops them silently.
fn report_unknown(
    ctx: &WriteContext,
    unknown: &[String],
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    if unknown.is_empty() {
        return Ok(());
    }
    let fields = unknown.iter().map(|p| format!("unknown field {p:?}"));
    match ctx.validation {
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
            ctx.info.kind,
            ctx.info.version,
            ctx.info.kind,
            fields.collect::<Vec<_>>().join(", ")
        ))),
        FieldValidation::Warn => {
            warnings.extend(fields);
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Runs built-in rules, the CRD schema and its CEL rules (transition rules against `old`);
/// returns warnings.
pub fn admit(
    ctx: &WriteContext,
    object: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    let name = super::super::meta::name(object)
        .unwrap_or_default()
        .to_string();
    let mut warnings = Vec::new();
    if !ctx.info.custom {
        let unknown = super::typed::normalize(&ctx.info, object).map_err(|e| {
            ApiError::BadRequest(format!(
                "{} in version {:?} cannot be handled as a {}: {e}",
                ctx.info.kind, ctx.info.version, ctx.info.kind
            ))
        })?;
        report_unknown(ctx, &unknown, &mut warnings)?;
        let causes = builtin::validate(&ctx.info, object);
        if !causes.is_empty() {
            return Err(ApiError::Invalid(ctx.info.subject(&name), causes));
        }
        return Ok(warnings);
    }
    let Some(root) = ctx.info.schema.clone() else {
        return Ok(warnings);
    };
    let report = schema::process(&root, object);
    report_unknown(ctx, &report.pruned, &mut warnings)?;
    let mut causes = report.causes;
    if causes.is_empty() && ctx.cel_rules {
        schema::cel::check_rules(&root, object, old, "", &mut causes);
    }
    if !causes.is_empty() {
        return Err(ApiError::Invalid(ctx.info.subject(&name), causes));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        let keys = [
            ("app", true),
            ("kiln.dev/build", true),
            ("a/b/c", false),
            ("-x", false),
            ("Bad_Prefix/x", false),
        ];
        for (key, ok) in keys {
            assert_eq!(valid_qualified_name(key), ok, "{key}");
        }
        let values = [("", true), ("v1.2_3", true), ("-v", false), ("a b", false)];
        for (value, ok) in values {
            assert_eq!(valid_label_value(value), ok, "{value}");
        }
    }
}
