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

mod bitbucket;
mod generic;
mod github;
mod gitlab;

use bitbucket::{BitbucketCloudPush, BitbucketServerPush};
pub(crate) use generic::{parse_generic, GenericEncoding, GenericWebHookEvent};
use github::GitHubPush;
use gitlab::GitLabPush;

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

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
