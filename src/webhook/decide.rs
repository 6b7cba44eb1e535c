//! From a request and its BuildConfig to a build request or an answer (pure), and every answer's
//! HTTP status and metrics label.

use axum::http::{header, HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::EnvVar;

use super::payload::{self, Event, GenericEncoding, Push};
use super::provider::{self, Provider};
use super::refs::{self, RefFilter, RefMatch};
use super::verify::{self, AuthFailure, Credentials};
use crate::api::build_config::{BuildConfig, WebHookTrigger};
use crate::api::common::{GitSourceRevision, SourceRevision};
use crate::instantiate::BuildRequest;

/// Why a request built nothing although it was authentic and well-formed (answered 200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// A ping (GitHub `ping`, Bitbucket Server `diagnostics:ping`).
    Ping,
    /// The pushed ref is not one the trigger builds.
    RefMismatch,
    /// The push deleted the ref.
    DeletedRef,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a POST (405).
    MethodNotAllowed,
    /// The subpath is not `<secret>/<type>` (400).
    BadPath,
    /// The type segment names no provider (404).
    UnknownType,
    /// The body exceeds the limit (413).
    TooLarge,
    /// Not authenticated; one body for every cause (401).
    Unauthorized(AuthFailure),
    /// The Content-Type is not one the provider sends (415).
    ContentType(String),
    /// A missing or unsupported event, or a malformed payload or header (400).
    BadRequest(&'static str, String),
    /// The BuildConfig is paused (400, as OpenShift's instantiate answers).
    Paused,
    /// The server's caches are not synced yet (503).
    NotReady,
    /// instantiate failed (500).
    InstantiateFailed,
}

/// The answer to a webhook request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A Build was started (or adopted, for a redelivery).
    Accepted {
        /// Its name.
        build: String,
    },
    /// Nothing to build.
    Ignored(Ignored),
    /// The request was refused.
    Refused(Refused),
}

/// The body of every 401, whatever the cause (OpenShift's wording).
pub(crate) fn unauthorized_message(provider: &str, name: &str) -> String {
    format!("the webhook {provider:?} for {name:?} did not accept your secret")
}

impl Outcome {
    /// The HTTP status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Accepted { .. } | Self::Ignored(_) => StatusCode::OK,
            Self::Refused(r) => match r {
                Refused::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
                Refused::BadPath | Refused::BadRequest(..) | Refused::Paused => {
                    StatusCode::BAD_REQUEST
                }
                Refused::UnknownType => StatusCode::NOT_FOUND,
                Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Refused::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                Refused::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Refused::NotReady => StatusCode::SERVICE_UNAVAILABLE,
                Refused::InstantiateFailed => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// `accepted`, `ignored` or `refused`: the metrics outcome label.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Ignored(_) => "ignored",
            Self::Refused(_) => "refused",
        }
    }

    /// A bounded reason label for metrics (the provider and outcome are separate labels).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "build",
            Self::Ignored(Ignored::Ping) => "ping",
            Self::Ignored(Ignored::RefMismatch) => "ref_mismatch",
            Self::Ignored(Ignored::DeletedRef) => "deleted_ref",
            Self::Refused(r) => match r {
                Refused::MethodNotAllowed => "method_not_allowed",
                Refused::BadPath => "bad_path",
                Refused::UnknownType => "unknown_type",
                Refused::TooLarge => "too_large",
                Refused::Unauthorized(f) => f.label(),
                Refused::ContentType(_) => "content_type",
                Refused::BadRequest(label, _) => label,
                Refused::Paused => "paused",
                Refused::NotReady => "not_ready",
                Refused::InstantiateFailed => "instantiate_failed",
            },
        }
    }

    /// Every reason label, for tests of the bounded label set.
    #[cfg(test)]
    pub(crate) const REASONS: [&'static str; 22] = [
        "build",
        "ping",
        "ref_mismatch",
        "deleted_ref",
        "method_not_allowed",
        "bad_path",
        "unknown_type",
        "too_large",
        "unknown_buildconfig",
        "no_trigger",
        "no_secret",
        "wrong_secret",
        "missing_signature",
        "bad_signature",
        "content_type",
        "missing_event",
        "unsupported_event",
        "malformed_payload",
        "bad_delivery_id",
        "paused",
        "not_ready",
        "instantiate_failed",
    ];
}

/// A webhook request as the pure decision sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Incoming<'a> {
    /// Which provider's URL was called.
    pub(crate) provider: Provider,
    /// The secret segment of the OpenShift-shaped URL.
    pub(crate) url_secret: Option<&'a str>,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The raw body.
    pub(crate) body: &'a [u8],
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Start a build. `request.request_id` is derived from the delivery id when the request has
    /// one, else empty (the caller makes a unique one).
    Build(Box<BuildRequest>),
    /// Answer without building.
    Answer(Outcome),
}

fn refuse(r: Refused) -> Decision {
    Decision::Answer(Outcome::Refused(r))
}

/// The media type of a Content-Type header, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// What the body's Content-Type allows, or the refusal.
fn check_content_type(provider: Provider, headers: &HeaderMap) -> Result<GenericEncoding, Refused> {
    let media = media_type(headers);
    let encoding = match media.as_deref() {
        Some("application/json") => Some(GenericEncoding::Json),
        Some("application/yaml" | "application/x-yaml" | "text/yaml")
            if provider == Provider::Generic =>
        {
            Some(GenericEncoding::Yaml)
        }
        None if provider == Provider::Generic => Some(GenericEncoding::Unspecified),
        _ => None,
    };
    encoding.ok_or_else(|| {
        let accepted = if provider == Provider::Generic {
            "application/json, application/yaml or none"
        } else {
            "application/json (choose it in the webhook's settings)"
        };
        Refused::ContentType(format!(
            "Content-Type {} is not accepted: send {accepted}",
            media.as_deref().unwrap_or("(none)")
        ))
    })
}

/// Decides what `incoming` does to `bc` (None: no such BuildConfig). `secrets[i]` is the secret
/// of the i-th trigger of the provider's type in `bc` (None when it has none or its Secret is
/// missing).
pub(crate) fn decide(
    incoming: &Incoming<'_>,
    bc: Option<&BuildConfig>,
    secrets: &[Option<&[u8]>],
) -> Decision {
    let Some(bc) = bc else {
        return refuse(Refused::Unauthorized(AuthFailure::UnknownBuildConfig));
    };
    let provider = incoming.provider;
    let triggers = provider.triggers(bc);
    let creds = Credentials::from_headers(incoming.headers, incoming.url_secret);
    let secrets = &secrets[..secrets.len().min(triggers.len())];
    let index = match verify::authenticate(provider, &creds, secrets, incoming.body) {
        Ok(index) => index,
        Err(failure) => return refuse(Refused::Unauthorized(failure)),
    };
    let trigger = triggers[index];
    let encoding = match check_content_type(provider, incoming.headers) {
        Ok(encoding) => encoding,
        Err(refused) => return refuse(refused),
    };
    let delivery = match provider::delivery_id(provider, incoming.headers) {
        Ok(delivery) => delivery,
        Err(message) => return refuse(Refused::BadRequest("bad_delivery_id", message)),
    };
    let event = if provider == Provider::Generic {
        payload::parse_generic(encoding, incoming.body).map(|e| Event::Generic(Box::new(e)))
    } else {
        payload::parse(provider, provider.event(incoming.headers), incoming.body)
    };
    let event = match event {
        Ok(event) => event,
        Err(err) => return refuse(Refused::BadRequest(err.label(), err.to_string())),
    };
    let config_ref = bc
        .spec
        .common
        .source
        .as_ref()
        .and_then(|s| s.git.as_ref())
        .and_then(|g| g.ref_.as_deref());
    let filter = RefFilter {
        config_ref,
        branches: &trigger.branches,
        tags: &trigger.tags,
    };
    let mut request = match event {
        Event::Ping => return Decision::Answer(Outcome::Ignored(Ignored::Ping)),
        Event::Pushes(pushes) => match choose_push(&pushes, &filter) {
            Ok((push, how)) => BuildRequest {
                cause: provider.cause(revision(push.revision.clone())),
                revision: revision(push.revision.clone()),
                git_ref: (how == RefMatch::Glob).then(|| push.ref_.clone()),
                ..BuildRequest::default()
            },
            Err(ignored) => return Decision::Answer(Outcome::Ignored(ignored)),
        },
        Event::Generic(event) => match generic_request(&event, trigger, &filter) {
            Ok(request) => request,
            Err(ignored) => return Decision::Answer(Outcome::Ignored(ignored)),
        },
    };
    if let Some(delivery) = delivery {
        request.request_id = provider::request_id(provider, &delivery);
    }
    Decision::Build(Box::new(request))
}

fn revision(git: Option<GitSourceRevision>) -> Option<SourceRevision> {
    git.map(|git| SourceRevision {
        type_: Some("Git".into()),
        git: Some(git),
    })
}

/// The first push that builds; else why none does (a matching deleted ref, or no match).
fn choose_push<'p>(
    pushes: &'p [Push],
    filter: &RefFilter<'_>,
) -> Result<(&'p Push, RefMatch), Ignored> {
    let mut deleted = false;
    for push in pushes {
        if let Some(how) = refs::matches(&push.ref_, push.default_branch.as_deref(), filter) {
            if push.deleted {
                deleted = true;
            } else {
                return Ok((push, how));
            }
        }
    }
    Err(if deleted {
        Ignored::DeletedRef
    } else {
        Ignored::RefMismatch
    })
}

/// The build request of a generic event (OpenShift's rules: without git information the
/// BuildConfig's ref builds; with `refs[]` the first matching entry; else `git.ref` must match).
fn generic_request(
    event: &payload::GenericWebHookEvent,
    trigger: &WebHookTrigger,
    filter: &RefFilter<'_>,
) -> Result<BuildRequest, Ignored> {
    let mut git_ref = None;
    let git = match &event.git {
        None => None,
        Some(git) if !git.refs.is_empty() => {
            let (entry, how) = git
                .refs
                .iter()
                .find_map(|r| {
                    let pushed = r.ref_.as_deref().filter(|r| !r.is_empty())?;
                    refs::matches(pushed, None, filter).map(|how| (r, how))
                })
                .ok_or(Ignored::RefMismatch)?;
            if how == RefMatch::Glob {
                git_ref = entry.ref_.clone();
            }
            entry.revision()
        }
        Some(git) => {
            if let Some(pushed) = git.ref_.as_deref().filter(|r| !r.is_empty()) {
                let how = refs::matches(pushed, None, filter).ok_or(Ignored::RefMismatch)?;
                if how == RefMatch::Glob {
                    git_ref = git.ref_.clone();
                }
            }
            git.revision()
        }
    };
    let env: Vec<EnvVar> = if trigger.allow_env == Some(true) {
        event.env.clone()
    } else {
        Vec::new()
    };
    let options = event.docker_strategy_options.clone().unwrap_or_default();
    Ok(BuildRequest {
        cause: Provider::Generic.cause(revision(git.clone())),
        revision: revision(git),
        env,
        build_args: options.build_args,
        no_cache: options.no_cache,
        git_ref,
        ..BuildRequest::default()
    })
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
