//! The CustomResourceDefinitions generated from the API types (`kiln crd`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, JSON,
};
use kube::CustomResourceExt;

use crate::api::{Build, BuildConfig, ImageStream};

/// Why the CRDs could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serializing a CRD to YAML failed.
    #[error("cannot render CRD {name} as YAML: {source}")]
    Render {
        /// The CRD's name.
        name: String,
        /// The serializer's error.
        source: serde_norway::Error,
    },
}

/// The path of the generated CRD file, relative to the repository root.
pub const CRD_FILE: &str = "crds/kiln.yaml";

/// The chart's copy of [`CRD_FILE`], which must be identical.
pub const CHART_CRD_FILE: &str = "charts/kiln/crds/kiln.yaml";

/// The command that regenerates [`CRD_FILE`].
pub const REGENERATE_COMMAND: &str = "make crds";

/// Every kiln CRD, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        BuildConfig::crd(),
        Build::crd(),
        spec_optional(ImageStream::crd()),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                bound_int32(schema);
            }
        }
    }
    crds
}

/// Makes `spec` optional, defaulting to `{}`: OpenShift's usual output stream is an ImageStream
/// with only metadata. The API server applies the default, so readers always see a `spec`.
fn spec_optional(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = schema.required.as_mut() {
            required.retain(|r| r != "spec");
            if required.is_empty() {
                schema.required = None;
            }
        }
        if let Some(spec) = schema.properties.as_mut().and_then(|p| p.get_mut("spec")) {
            spec.default = Some(JSON(serde_json::json!({})));
        }
    }
    crd
}

/// Gives every `int32` field the int32 range as `minimum`/`maximum` where the type sets none.
///
/// API servers do not enforce the range of `format: int32` on custom resources, and a value
/// outside it fails to decode in kiln (and any typed client): one such object would stop the
/// watch that lists it.
fn bound_int32(schema: &mut JSONSchemaProps) {
    if schema.format.as_deref() == Some("int32") {
        schema.minimum.get_or_insert(f64::from(i32::MIN));
        schema.maximum.get_or_insert(f64::from(i32::MAX));
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        bound_int32(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => bound_int32(s),
        Some(JSONSchemaPropsOrArray::Schemas(list)) => list.iter_mut().for_each(bound_int32),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = &mut schema.additional_properties {
        bound_int32(s);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(bound_int32);
    }
}

/// Every kiln CRD as one multi-document YAML stream.
pub fn all_crds_yaml() -> Result<String, Error> {
    let mut out = String::new();
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        out.push_str("---\n");
        out.push_str(
            &serde_norway::to_string(&crd).map_err(|source| Error::Render { name, source })?,
        );
    }
    Ok(out)
}

/// Compares committed CRD YAML with the generated one; returns a description of the drift.
pub fn drift(committed: &str, generated: &str) -> Option<String> {
    drift_of(CRD_FILE, committed, generated)
}

/// Like [`drift`], naming `file` as the one that differs.
pub fn drift_of(file: &str, committed: &str, generated: &str) -> Option<String> {
    if committed == generated {
        return None;
    }
    let first = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    Some(format!(
        "{file} differs from the CRDs generated from src/api (first difference at line {}); run `{REGENERATE_COMMAND}` and commit the result",
        first + 1
    ))
}
