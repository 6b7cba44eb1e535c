//! The CustomResourceDefinitions generated from the API types (`kiln crd`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
    vec![BuildConfig::crd(), Build::crd(), ImageStream::crd()]
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
