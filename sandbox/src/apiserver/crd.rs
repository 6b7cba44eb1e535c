//! Reading a CustomResourceDefinition: validation and the resources it serves.

use std::sync::Arc;

use serde_json::Value;

use super::error::{ApiError, ApiResult, FieldCause, Subject};
use super::resources::{singular_of, ResourceInfo};

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn crd_invalid(name: &str, causes: Vec<FieldCause>) -> ApiError {
    ApiError::Invalid(
        Subject {
            group: "apiextensions.k8s.io".into(),
            resource: "customresourcedefinitions".into(),
            kind: "CustomResourceDefinition".into(),
            name: name.to_string(),
        },
        causes,
    )
}

/// Validates a CRD and returns one `ResourceInfo` per served version.
pub fn crd_resources(crd: &Value) -> ApiResult<Vec<ResourceInfo>> {
    let name = str_at(crd, &["metadata", "name"]).unwrap_or_default();
    let mut causes = Vec::new();
    let group = str_at(crd, &["spec", "group"]).unwrap_or_default();
    let plural = str_at(crd, &["spec", "names", "plural"]).unwrap_or_default();
    let kind = str_at(crd, &["spec", "names", "kind"]).unwrap_or_default();
    if group.is_empty() {
        causes.push(FieldCause::required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(FieldCause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(FieldCause::required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(FieldCause::invalid(
            "metadata.name",
            &Value::String(name.to_string()),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = str_at(crd, &["spec", "scope"]).unwrap_or_default();
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(FieldCause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                crate::apiserver::error::value_text(&Value::String(scope.to_string()))
            ),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(FieldCause::required("spec.versions"));
    }
    if !causes.is_empty() {
        return Err(crd_invalid(name, causes));
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let strings = |key: &str| super::meta::strings_at(&names, &format!("/{key}"));
    let mut infos = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        let Some(version_name) = version.get("name").and_then(Value::as_str) else {
            return Err(crd_invalid(
                name,
                vec![FieldCause::required(format!("spec.versions[{index}].name"))],
            ));
        };
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let has_status = version.pointer("/subresources/status").is_some();
        infos.push(ResourceInfo {
            group: group.to_string(),
            version: version_name.to_string(),
            plural: plural.to_string(),
            singular: str_at(&names, &["singular"])
                .map(String::from)
                .unwrap_or_else(|| singular_of(kind)),
            kind: kind.to_string(),
            list_kind: str_at(&names, &["listKind"])
                .map(String::from)
                .unwrap_or_else(|| format!("{kind}List")),
            namespaced: scope == "Namespaced",
            short_names: strings("shortNames"),
            categories: strings("categories"),
            has_status,
            tracks_generation: true,
            allow_unconditional_update: false,
            custom: true,
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .map(Arc::new),
            extra_subresources: vec![],
            printer_columns: version
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
    }
    Ok(infos)
}
