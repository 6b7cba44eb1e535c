//! `kiln convert`: OpenShift build and image manifests → kiln manifests, losing nothing silently.

use serde_json::{Map, Value};

use crate::api::build_config::BuildTriggerType;
use crate::api::{strict, Build, BuildConfig, CommonSpec, ImageStream};
use crate::template;

mod inert;

#[cfg(test)]
#[path = "convert/fuzz_tests.rs"]
mod fuzz_tests;
#[cfg(test)]
#[path = "convert/regression_tests.rs"]
mod regression_tests;

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

/// Options of a conversion.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Template parameter values in the order given (`--param-file` first, then `-p`); a later
    /// value of the same name wins.
    pub params: Vec<(String, String)>,
}

/// What a conversion produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversion {
    /// The kiln documents, Templates replaced by their processed objects.
    pub documents: Vec<Value>,
    /// Fields kept that kiln does not act on (yet), each named by its path.
    pub warnings: Vec<Problem>,
}

/// Converts every document with default options; returns the kiln documents, or every problem.
pub fn convert_documents(docs: Vec<Value>) -> Result<Vec<Value>, Vec<Problem>> {
    convert(docs, &Options::default(), &mut crate::template::os_random).map(|c| c.documents)
}

/// Converts every document, processing Templates first (generated values come from `random`,
/// see [`crate::template::process`]); returns the kiln documents and warnings, or every problem.
pub fn convert(
    docs: Vec<Value>,
    options: &Options,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<Conversion, Vec<Problem>> {
    let given: std::collections::BTreeMap<String, String> =
        options.params.iter().cloned().collect();
    let mut problems = Vec::new();
    let mut known_params = std::collections::BTreeSet::new();
    let mut expanded: Vec<(String, Value)> = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let label = document_label(&format!("document {}", index + 1), &doc);
        if !template::is_template(&doc) {
            expanded.push((label, doc));
            continue;
        }
        known_params.extend(template::parameter_names(&doc));
        match template::process(&doc, &given, random) {
            Ok(objects) => {
                for (i, object) in objects.into_iter().enumerate() {
                    let object_label = document_label(&format!("{label} objects[{i}]"), &object);
                    expanded.push((object_label, object));
                }
            }
            Err(errors) => problems.extend(errors.into_iter().map(|(path, message)| Problem {
                document: label.clone(),
                path,
                message,
            })),
        }
    }
    for name in given.keys().filter(|n| !known_params.contains(*n)) {
        problems.push(Problem {
            document: "parameters".into(),
            path: name.clone(),
            message: "no Template in the input has this parameter".into(),
        });
    }
    let mut out = Vec::with_capacity(expanded.len());
    let mut warnings = Vec::new();
    for (label, doc) in expanded {
        match convert_document(doc, &label) {
            Ok((doc, mut w)) => {
                out.push(doc);
                warnings.append(&mut w);
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(Conversion {
            documents: out,
            warnings,
        })
    } else {
        Err(problems)
    }
}

/// `document 2 (BuildConfig/web)`.
fn document_label(prefix: &str, doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{prefix} ({kind}/{name})")
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

/// The `apiVersion` and `kind` of a manifest, or the (path, message) saying why `doc` is not one:
/// not an object, or either field missing, empty or not a string.
fn manifest_type(doc: &Value) -> Result<(String, String), (String, String)> {
    let Some(object) = doc.as_object() else {
        return Err((
            "(document)".into(),
            format!(
                "a manifest is a mapping with apiVersion, kind and metadata, not {}",
                json_type(doc)
            ),
        ));
    };
    let field = |name: &str, example: &str| match object.get(name) {
        Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
        None | Some(Value::Null) => Err((name.to_string(), format!("missing (e.g. {example})"))),
        Some(other) => Err((
            name.to_string(),
            format!(
                "must be a non-empty string such as {example}, not {}",
                json_type(other)
            ),
        )),
    };
    Ok((
        field("apiVersion", "build.openshift.io/v1")?,
        field("kind", "BuildConfig")?,
    ))
}

/// How a JSON value's type is named in messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn convert_document(mut doc: Value, document: &str) -> Result<(Value, Vec<Problem>), Vec<Problem>> {
    let problem = |path: &str, message: String| Problem {
        document: document.to_string(),
        path: path.to_string(),
        message,
    };
    let (api_version, kind) =
        manifest_type(&doc).map_err(|(path, message)| vec![problem(&path, message)])?;
    let target = match target_api_version(&api_version, &kind) {
        None => return Ok((doc, Vec::new())),
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
    problems.extend(
        reference_kinds(object, &kind)
            .into_iter()
            .map(|(p, m)| problem(&p, m)),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let typed = match kind.as_str() {
        "BuildConfig" => strict::from_value::<BuildConfig>(&doc)
            .map(|bc| normalise_build_spec(&mut doc, &bc.spec.common)),
        "Build" => strict::from_value::<Build>(&doc)
            .map(|b| normalise_build_spec(&mut doc, &b.spec.common)),
        _ => {
            // OpenShift's usual output stream has no spec; kiln's type needs one, so it is
            // written as the `{}` the CRD would default it to.
            if doc.get("spec").is_none_or(Value::is_null) {
                doc["spec"] = Value::Object(Map::new());
            }
            strict::from_value::<ImageStream>(&doc).map(drop)
        }
    };
    match typed {
        Ok(()) => {
            let warnings = inert::fields(&kind, &doc)
                .into_iter()
                .map(|(path, why)| problem(&path, why))
                .collect();
            Ok((doc, warnings))
        }
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

/// Writes the canonical values decoding settled on back into the document: the inferred source
/// type (and OpenShift's default empty `binary`) and the strategy type.
fn normalise_build_spec(doc: &mut Value, common: &CommonSpec) {
    if let (Some(source), Some(Value::Object(out))) =
        (&common.source, doc.pointer_mut("/spec/source"))
    {
        if let Some(ty) = source.type_ {
            if let Ok(v) = serde_json::to_value(ty) {
                out.insert("type".into(), v);
            }
        }
        if let (Some(binary), false) = (&source.binary, out.contains_key("binary")) {
            if let Ok(v) = serde_json::to_value(binary) {
                out.insert("binary".into(), v);
            }
        }
    }
    if let Some(ty) = doc.pointer_mut("/spec/strategy/type") {
        if let Ok(v) = serde_json::to_value(common.strategy.type_) {
            *ty = v;
        }
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
                    format!("unknown trigger type {ty} (OpenShift accepts GitHub, Generic, GitLab, Bitbucket, ImageChange, ConfigChange, and the deprecated github, generic, imageChange)"),
                ));
            }
        }
    }
    if let Some(ty) = lookup(object, "spec.strategy.type").and_then(Value::as_str) {
        if !ty.eq_ignore_ascii_case("Docker") {
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
        if ty.eq_ignore_ascii_case("Image") {
            problems.push((
                "spec.source.type".into(),
                "source type Image is not supported".into(),
            ));
        }
    }
    problems
}

/// Image references whose `kind` OpenShift refuses there (`kind: ImageStream`, say), as
/// (path, message); the CRDs refuse the same.
fn reference_kinds(object: &Map<String, Value>, kind: &str) -> Vec<(String, String)> {
    use crate::api::validate::{reference_kind, FROM_KINDS, OUTPUT_KINDS, TRIGGER_FROM_KINDS};
    let list = |path: &str| lookup(object, path).and_then(Value::as_array).cloned();
    let mut refs: Vec<(String, Option<Value>, &[&str])> = Vec::new();
    if kind == "ImageStream" {
        for (i, tag) in list("spec.tags").unwrap_or_default().iter().enumerate() {
            let kind = tag.pointer("/from/kind").cloned();
            refs.push((format!("spec.tags[{i}].from.kind"), kind, FROM_KINDS));
        }
    } else {
        for (path, allowed) in [
            ("spec.strategy.dockerStrategy.from.kind", FROM_KINDS),
            ("spec.output.to.kind", OUTPUT_KINDS),
        ] {
            refs.push((path.into(), lookup(object, path).cloned(), allowed));
        }
        for (i, trigger) in list("spec.triggers").unwrap_or_default().iter().enumerate() {
            let kind = trigger.pointer("/imageChange/from/kind").cloned();
            refs.push((
                format!("spec.triggers[{i}].imageChange.from.kind"),
                kind,
                TRIGGER_FROM_KINDS,
            ));
        }
    }
    refs.into_iter()
        .filter_map(|(path, value, allowed)| {
            reference_kind(value.as_ref().and_then(Value::as_str), allowed)
                .err()
                .map(|m| (path, m))
        })
        .collect()
}

/// OpenShift's normalisation of trigger type names, its deprecated lower-case forms included.
pub fn normalise_trigger_type(ty: &str) -> Option<&'static str> {
    BuildTriggerType::parse(ty).map(BuildTriggerType::as_str)
}

fn lookup<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = object.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current)
}

/// Whether `api_version` is one of kiln's API groups (what converted documents carry).
pub fn is_kiln_api_version(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default();
    group == crate::api::BUILD_GROUP || group == crate::api::IMAGE_GROUP
}
