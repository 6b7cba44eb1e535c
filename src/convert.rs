//! `kiln convert`: OpenShift build and image manifests → kiln manifests, losing nothing silently.

use serde_json::{Map, Value};

use crate::api::{self, strict, Build, BuildConfig, ImageStream};

/// Why a conversion could not be done at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a readable manifest stream.
    #[error("{source_name}: {error}")]
    Read {
        /// Where the input came from (file name or `-`).
        source_name: String,
        /// The parse error, with line and column.
        error: crate::yaml::Error,
    },
    /// Some documents hold what kiln cannot carry; nothing was written.
    #[error("{} problem{} found; nothing was written:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Unconvertible(Vec<Problem>),
    /// Writing the output failed.
    #[error(transparent)]
    Write(crate::yaml::Error),
}

/// Something in one input document that kiln cannot carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The document, e.g. `document 2 (BuildConfig/web)`.
    pub document: String,
    /// The field path, e.g. `spec.strategy.sourceStrategy`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.path, self.message)
    }
}

/// Metadata fields the API server populates; they must not be applied to a new cluster.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
];

/// Fields of OpenShift kinds that kiln has no equivalent for, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("spec.strategy.sourceStrategy", "the Source (S2I) strategy is not supported; kiln builds Dockerfiles (Docker strategy) only"),
    ("spec.strategy.customStrategy", "the Custom strategy is not supported; kiln builds Dockerfiles (Docker strategy) only"),
    ("spec.strategy.jenkinsPipelineStrategy", "the JenkinsPipeline strategy is not supported (it is deprecated in OpenShift too)"),
    ("spec.source.images", "image sources (copying files out of other images) are not supported; use a multistage Dockerfile with COPY --from"),
    ("spec.source.secrets", "build input secrets are not supported; use spec.strategy.dockerStrategy.volumes, which never land in a layer"),
    ("spec.source.configMaps", "build input ConfigMaps are not supported; use spec.strategy.dockerStrategy.volumes"),
];

/// Converts every document; returns the kiln documents, or every problem found.
pub fn convert_documents(docs: Vec<Value>) -> Result<Vec<Value>, Vec<Problem>> {
    let mut out = Vec::with_capacity(docs.len());
    let mut problems = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        match convert_document(doc, index + 1) {
            Ok(doc) => out.push(doc),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The kiln kind an OpenShift document maps to, if it is one kiln handles.
fn target_api_version(api_version: &str, kind: &str) -> Option<Result<&'static str, ()>> {
    let group = api_version.split('/').next().unwrap_or_default();
    let openshift = match group {
        "build.openshift.io" | "image.openshift.io" => true,
        // OpenShift's legacy un-grouped API served these kinds as `v1`.
        "v1" => matches!(kind, "BuildConfig" | "Build" | "ImageStream"),
        _ => false,
    };
    if !openshift {
        return None;
    }
    Some(match kind {
        "BuildConfig" | "Build" => Ok("build.kiln.dev/v1alpha1"),
        "ImageStream" => Ok("image.kiln.dev/v1alpha1"),
        _ => Err(()),
    })
}

fn convert_document(mut doc: Value, index: usize) -> Result<Value, Vec<Problem>> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let document = format!("document {index} ({kind}/{name})");
    let problem = |path: &str, message: String| Problem {
        document: document.clone(),
        path: path.to_string(),
        message,
    };
    let target = match target_api_version(&api_version, &kind) {
        None => return Ok(doc),
        Some(Err(())) => {
            return Err(vec![problem(
                "kind",
                format!("{api_version} {kind} has no kiln equivalent (kiln carries BuildConfig, Build and ImageStream)"),
            )])
        }
        Some(Ok(target)) => target,
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(vec![problem("(document)", "not an object".into())]);
    };
    object.insert("apiVersion".into(), Value::String(target.into()));
    object.remove("status");
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
    }
    let mut problems: Vec<Problem> = UNSUPPORTED
        .iter()
        .filter(|(path, _)| lookup(object, path).is_some_and(|v| !v.is_null()))
        .map(|(path, why)| problem(path, (*why).to_string()))
        .collect();
    if kind != "ImageStream" {
        problems.extend(
            check_build_spec(object)
                .into_iter()
                .map(|(p, m)| problem(&p, m)),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let typed = match kind.as_str() {
        "BuildConfig" => strict::from_value::<BuildConfig>(&doc).map(drop),
        "Build" => strict::from_value::<Build>(&doc).map(drop),
        _ => strict::from_value::<ImageStream>(&doc).map(drop),
    };
    match typed {
        Ok(()) => Ok(doc),
        Err(strict::Error::Invalid { path, message }) => Err(vec![problem(&path, message)]),
        Err(strict::Error::UnknownFields(paths)) => Err(paths
            .iter()
            .map(|p| {
                problem(
                    p,
                    "kiln has no such field; remove it or ask for it to be supported".into(),
                )
            })
            .collect()),
    }
}

/// Normalises trigger types and checks the strategy and source types of a (BuildConfig or Build) spec.
fn check_build_spec(object: &mut Map<String, Value>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if let Some(Value::Array(triggers)) = object.get_mut("spec").and_then(|s| s.get_mut("triggers"))
    {
        for (i, trigger) in triggers.iter_mut().enumerate() {
            let Some(ty) = trigger.get_mut("type") else {
                continue;
            };
            if let Some(normal) = ty.as_str().and_then(normalise_trigger_type) {
                *ty = Value::String(normal.into());
            } else {
                problems.push((
                    format!("spec.triggers[{i}].type"),
                    format!("unknown trigger type {ty}"),
                ));
            }
        }
    }
    if let Some(ty) = lookup(object, "spec.strategy.type").and_then(Value::as_str) {
        if ty != "Docker" {
            problems.push((
                "spec.strategy.type".into(),
                format!("strategy type {ty} is not supported; kiln builds Dockerfiles (Docker strategy) only"),
            ));
        }
    }
    if lookup(object, "spec.source.git.uri")
        .and_then(Value::as_str)
        .is_some_and(|uri| crate::api::validate::url_credentials(uri).is_some())
    {
        problems.push((
            "spec.source.git.uri".into(),
            crate::api::validate::URL_CREDENTIALS_MESSAGE.into(),
        ));
    }
    if let Some(commit) = lookup(object, "spec.revision.git.commit").and_then(Value::as_str) {
        if let Err(e) = crate::api::validate::commit(commit) {
            problems.push(("spec.revision.git.commit".into(), e));
        }
    }
    if let Some(ty) = lookup(object, "spec.source.type").and_then(Value::as_str) {
        if ty == "Image" {
            problems.push((
                "spec.source.type".into(),
                "source type Image is not supported".into(),
            ));
        }
    }
    problems
}

/// OpenShift's normalisation of trigger type names, deprecated lower-case forms included.
pub fn normalise_trigger_type(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "GitHub" | "github" => "GitHub",
        "Generic" | "generic" => "Generic",
        "GitLab" | "gitlab" => "GitLab",
        "Bitbucket" | "bitbucket" => "Bitbucket",
        "ImageChange" | "imageChange" => "ImageChange",
        "ConfigChange" | "configChange" => "ConfigChange",
        _ => return None,
    })
}

fn lookup<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = object.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current)
}

/// The kiln API groups, for callers that need to tell converted documents apart.
pub fn is_kiln_api_version(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default();
    group == api::BUILD_GROUP || group == api::IMAGE_GROUP
}
