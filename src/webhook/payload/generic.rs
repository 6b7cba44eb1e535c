//! OpenShift's `GenericWebHookEvent`, as JSON or YAML (pure).

use serde::Deserialize;

use super::*;

/// OpenShift's `GenericWebHookEvent`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenericWebHookEvent {
    /// The source type (`Git`); informational.
    #[serde(default, rename = "type")]
    pub(crate) type_: Option<String>,
    /// The pushed revision.
    #[serde(default)]
    pub(crate) git: Option<GenericGitInfo>,
    /// Environment for the build (honoured only with the trigger's `allowEnv`).
    #[serde(default)]
    pub(crate) env: Vec<EnvVar>,
    /// Docker strategy overrides.
    #[serde(default)]
    pub(crate) docker_strategy_options: Option<DockerStrategyOptions>,
}

/// The git part of a generic event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenericGitInfo {
    /// The repository URL (informational).
    #[serde(default)]
    pub(crate) uri: Option<String>,
    /// The pushed ref.
    #[serde(default, rename = "ref")]
    pub(crate) ref_: Option<String>,
    /// The pushed commit.
    #[serde(default)]
    pub(crate) commit: Option<String>,
    /// Its author.
    #[serde(default)]
    pub(crate) author: Option<SourceControlUser>,
    /// Its committer.
    #[serde(default)]
    pub(crate) committer: Option<SourceControlUser>,
    /// Its message.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// Several refs at once; the first that matches the trigger builds.
    #[serde(default)]
    pub(crate) refs: Vec<GenericGitInfo>,
}

impl GenericGitInfo {
    /// The revision this entry names.
    pub(crate) fn revision(&self) -> Option<GitSourceRevision> {
        self.commit
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| GitSourceRevision {
                commit: Some(c.clone()),
                author: self.author.clone(),
                committer: self.committer.clone(),
                message: self.message.clone(),
            })
    }
}

/// Docker strategy overrides of a generic event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DockerStrategyOptions {
    /// Build arguments merged into the strategy's.
    #[serde(default)]
    pub(crate) build_args: Vec<EnvVar>,
    /// Override of `noCache`.
    #[serde(default)]
    pub(crate) no_cache: Option<bool>,
}

/// How a generic body is encoded, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GenericEncoding {
    /// `application/json`.
    Json,
    /// `application/yaml`, `application/x-yaml`, `text/yaml`.
    Yaml,
    /// No Content-Type: JSON, else YAML.
    Unspecified,
}

/// Parses a generic body; an empty body is an event without git information.
pub(crate) fn parse_generic(
    encoding: GenericEncoding,
    body: &[u8],
) -> Result<GenericWebHookEvent, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(GenericWebHookEvent::default());
    }
    let yaml = |body: &[u8]| {
        serde_norway::from_str::<GenericWebHookEvent>(text(body)?)
            .map_err(|e| ParseError::Malformed(e.to_string()))
    };
    match encoding {
        GenericEncoding::Json => json(body),
        GenericEncoding::Yaml => yaml(body),
        GenericEncoding::Unspecified => json(body).or_else(|_| yaml(body)),
    }
}
