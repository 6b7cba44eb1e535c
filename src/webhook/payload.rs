//! Payloads of each provider, parsed into the pushes they announce (pure).
//!
//! Only the fields kiln reads are declared; everything else in a payload is ignored, so provider
//! additions never break parsing. Formats: GitHub `push` and `ping`; GitLab `Push Hook` and
//! `Tag Push Hook`; Bitbucket Cloud `repo:push` and Server / Data Center `repo:refs_changed`
//! (and its `diagnostics:ping`); OpenShift's `GenericWebHookEvent` as JSON or YAML.

use k8s_openapi::api::core::v1::EnvVar;
use serde::Deserialize;

use super::provider::Provider;
use crate::api::common::{GitSourceRevision, SourceControlUser};

/// One ref a push moved.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Push {
    /// The full ref, `refs/heads/<branch>` or `refs/tags/<tag>`.
    pub(crate) ref_: String,
    /// The push deleted the ref.
    pub(crate) deleted: bool,
    /// The newest commit, with its author, committer and message when the payload has them.
    pub(crate) revision: Option<GitSourceRevision>,
    /// The repository's default branch, when the payload names it.
    pub(crate) default_branch: Option<String>,
}

/// What a request announces.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    /// A provider's connectivity check: answered 200, builds nothing.
    Ping,
    /// Refs moved (GitHub and GitLab send one per request, Bitbucket one or more).
    Pushes(Vec<Push>),
    /// A generic caller's request.
    Generic(Box<GenericWebHookEvent>),
}

/// Why a payload was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum ParseError {
    /// The event header is missing.
    #[error("missing header {0}")]
    MissingEvent(&'static str),
    /// The event is not one kiln builds from.
    #[error("event {0:?} is not supported (accepted: {1})")]
    UnsupportedEvent(String, &'static str),
    /// The body is not the provider's payload.
    #[error("malformed payload: {0}")]
    Malformed(String),
}

impl ParseError {
    /// A bounded label for metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::MissingEvent(_) => "missing_event",
            Self::UnsupportedEvent(..) => "unsupported_event",
            Self::Malformed(_) => "malformed_payload",
        }
    }
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// The body as text: JSON and YAML are UTF-8, and a parser skipping an unknown field would not
/// look at its bytes.
fn text(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body)
        .map_err(|e| ParseError::Malformed(format!("the body is not UTF-8: {e}")))
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ParseError> {
    serde_json::from_str(text(body)?).map_err(|e| ParseError::Malformed(e.to_string()))
}

fn person(name: Option<String>, email: Option<String>) -> Option<SourceControlUser> {
    (name.is_some() || email.is_some()).then_some(SourceControlUser { name, email })
}

/// Parses `body` as `provider`'s payload for `event` (the event header's value).
pub(crate) fn parse(
    provider: Provider,
    event: Option<&str>,
    body: &[u8],
) -> Result<Event, ParseError> {
    let header = provider.event_header();
    let event = match (event, header) {
        (Some(e), _) => e.trim(),
        (None, Some(h)) => return Err(ParseError::MissingEvent(h)),
        (None, None) => "",
    };
    match provider {
        Provider::GitHub => match event {
            "push" => Ok(Event::Pushes(vec![json::<GitHubPush>(body)?.into_push()])),
            "ping" => json::<serde_json::Value>(body).map(|_| Event::Ping),
            other => Err(ParseError::UnsupportedEvent(other.into(), "push, ping")),
        },
        Provider::GitLab => match event {
            "Push Hook" | "Tag Push Hook" => {
                Ok(Event::Pushes(vec![json::<GitLabPush>(body)?.into_push()]))
            }
            other => Err(ParseError::UnsupportedEvent(
                other.into(),
                "Push Hook, Tag Push Hook",
            )),
        },
        Provider::Bitbucket => match event {
            "repo:push" => Ok(Event::Pushes(
                json::<BitbucketCloudPush>(body)?.into_pushes(),
            )),
            "repo:refs_changed" => Ok(Event::Pushes(
                json::<BitbucketServerPush>(body)?.into_pushes(),
            )),
            "diagnostics:ping" => Ok(Event::Ping),
            other => Err(ParseError::UnsupportedEvent(
                other.into(),
                "repo:push, repo:refs_changed, diagnostics:ping",
            )),
        },
        Provider::Generic => Err(ParseError::UnsupportedEvent(
            event.into(),
            "a GenericWebHookEvent; use parse_generic",
        )),
    }
}

// --- GitHub -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    ref_: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    head_commit: Option<GitHubCommit>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct GitHubCommit {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<GitHubPerson>,
    #[serde(default)]
    committer: Option<GitHubPerson>,
}

#[derive(Deserialize)]
struct GitHubPerson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    default_branch: Option<String>,
}

impl GitHubPerson {
    fn user(self) -> Option<SourceControlUser> {
        person(self.name, self.email)
    }
}

impl GitHubPush {
    fn into_push(self) -> Push {
        let deleted = self.deleted || self.after.as_deref().is_some_and(is_zero);
        let revision = match self.head_commit {
            Some(c) if !deleted => Some(GitSourceRevision {
                commit: Some(c.id),
                author: c.author.and_then(GitHubPerson::user),
                committer: c.committer.and_then(GitHubPerson::user),
                message: c.message,
            }),
            _ => self
                .after
                .filter(|a| !is_zero(a))
                .map(|a| GitSourceRevision {
                    commit: Some(a),
                    ..GitSourceRevision::default()
                }),
        };
        Push {
            ref_: self.ref_,
            deleted,
            revision: if deleted { None } else { revision },
            default_branch: self.repository.and_then(|r| r.default_branch),
        }
    }
}

// --- GitLab -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    ref_: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    commits: Vec<GitLabCommit>,
    #[serde(default)]
    project: Option<Repository>,
}

#[derive(Deserialize)]
struct GitLabCommit {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<GitHubPerson>,
}

impl GitLabPush {
    fn into_push(self) -> Push {
        // The newest commit is `checkout_sha`; in `commits[]` it is the last entry (OpenShift
        // takes the first, the oldest).
        let head = self
            .checkout_sha
            .filter(|s| !s.is_empty() && !is_zero(s))
            .or_else(|| self.after.filter(|a| !a.is_empty() && !is_zero(a)));
        let deleted = head.is_none();
        let revision = head.map(|sha| {
            let commit = self.commits.into_iter().rev().find(|c| c.id == sha);
            match commit {
                Some(c) => GitSourceRevision {
                    commit: Some(sha),
                    author: c.author.and_then(GitHubPerson::user),
                    committer: None,
                    message: c.message,
                },
                None => GitSourceRevision {
                    commit: Some(sha),
                    ..GitSourceRevision::default()
                },
            }
        });
        Push {
            ref_: self.ref_,
            deleted,
            revision,
            default_branch: self.project.and_then(|p| p.default_branch),
        }
    }
}

// --- Bitbucket Cloud ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct BitbucketCloudPush {
    push: BitbucketChanges,
    #[serde(default)]
    repository: Option<BitbucketRepository>,
}

#[derive(Deserialize)]
struct BitbucketRepository {
    #[serde(default)]
    mainbranch: Option<BitbucketBranch>,
}

#[derive(Deserialize)]
struct BitbucketBranch {
    name: String,
}

#[derive(Deserialize)]
struct BitbucketChanges {
    #[serde(default)]
    changes: Vec<BitbucketChange>,
}

#[derive(Deserialize)]
struct BitbucketChange {
    #[serde(default)]
    new: Option<BitbucketRef>,
    #[serde(default)]
    old: Option<BitbucketRef>,
}

#[derive(Deserialize)]
struct BitbucketRef {
    #[serde(rename = "type")]
    type_: String,
    name: String,
    #[serde(default)]
    target: Option<BitbucketTarget>,
}

#[derive(Deserialize)]
struct BitbucketTarget {
    hash: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<BitbucketAuthor>,
}

#[derive(Deserialize)]
struct BitbucketAuthor {
    #[serde(default)]
    raw: Option<String>,
}

/// `Name <email>` as Bitbucket and git write authors.
fn parse_raw_person(raw: &str) -> Option<SourceControlUser> {
    match raw.rsplit_once('<') {
        Some((name, rest)) if rest.ends_with('>') => person(
            Some(name.trim().to_string()).filter(|n| !n.is_empty()),
            Some(rest.trim_end_matches('>').trim().to_string()).filter(|e| !e.is_empty()),
        ),
        _ => person(Some(raw.trim().to_string()).filter(|n| !n.is_empty()), None),
    }
}

fn full_ref(kind: &str, name: &str) -> String {
    match kind {
        "tag" | "TAG" => format!("refs/tags/{name}"),
        _ => format!("refs/heads/{name}"),
    }
}

impl BitbucketCloudPush {
    fn into_pushes(self) -> Vec<Push> {
        let default_branch = self.repository.and_then(|r| r.mainbranch).map(|b| b.name);
        self.push
            .changes
            .into_iter()
            .filter_map(|change| {
                let (r, deleted) = match (change.new, change.old) {
                    (Some(new), _) => (new, false),
                    (None, Some(old)) => (old, true),
                    (None, None) => return None,
                };
                let revision = r.target.filter(|_| !deleted).map(|t| GitSourceRevision {
                    commit: Some(t.hash),
                    author: t
                        .author
                        .and_then(|a| a.raw)
                        .and_then(|raw| parse_raw_person(&raw)),
                    committer: None,
                    message: t.message,
                });
                Some(Push {
                    ref_: full_ref(&r.type_, &r.name),
                    deleted,
                    revision,
                    default_branch: default_branch.clone(),
                })
            })
            .collect()
    }
}

// --- Bitbucket Server / Data Center -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BitbucketServerPush {
    #[serde(default)]
    actor: Option<BitbucketServerActor>,
    #[serde(default)]
    changes: Vec<BitbucketServerChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BitbucketServerActor {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BitbucketServerChange {
    #[serde(default)]
    ref_id: Option<String>,
    #[serde(default, rename = "ref")]
    ref_: Option<BitbucketServerRef>,
    #[serde(default)]
    to_hash: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

#[derive(Deserialize)]
struct BitbucketServerRef {
    id: String,
}

impl BitbucketServerPush {
    fn into_pushes(self) -> Vec<Push> {
        let author = self
            .actor
            .and_then(|a| person(a.display_name.or(a.name), a.email_address));
        self.changes
            .into_iter()
            .filter_map(|c| {
                let ref_ = c.ref_.map(|r| r.id).or(c.ref_id)?;
                let deleted = c.type_.as_deref() == Some("DELETE")
                    || c.to_hash.as_deref().is_some_and(is_zero);
                let revision = c.to_hash.filter(|_| !deleted).map(|h| GitSourceRevision {
                    commit: Some(h),
                    author: author.clone(),
                    committer: None,
                    message: None,
                });
                Some(Push {
                    ref_,
                    deleted,
                    revision,
                    default_branch: None,
                })
            })
            .collect()
    }
}

// --- Generic ----------------------------------------------------------------------------------

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

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
