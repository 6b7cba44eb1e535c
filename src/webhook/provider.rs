//! The four webhook providers: their URL segment, trigger type, headers and build cause.

use axum::http::HeaderMap;

use crate::api::build::{BuildTriggerCause, WebHookCause};
use crate::api::build_config::{BuildConfig, BuildTriggerPolicy, BuildTriggerType, WebHookTrigger};
use crate::api::common::SourceRevision;

/// The placeholder a Build's cause shows instead of the webhook secret.
pub(crate) const REDACTED_SECRET: &str = "<secret>";

/// Who calls a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// GitHub (and Gogs/Gitea, which send the same push payload).
    GitHub,
    /// GitLab.
    GitLab,
    /// Bitbucket Cloud and Bitbucket Server / Data Center.
    Bitbucket,
    /// Any caller sending OpenShift's `GenericWebHookEvent`.
    Generic,
}

impl Provider {
    /// Every provider, in metrics order.
    pub const ALL: [Provider; 4] = [Self::GitHub, Self::GitLab, Self::Bitbucket, Self::Generic];

    /// The provider a URL's last segment names (`github`, `gitlab`, `bitbucket`, `generic`).
    pub fn from_segment(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.segment() == segment)
    }

    /// The URL segment and metrics label of the provider.
    pub fn segment(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Bitbucket => "bitbucket",
            Self::Generic => "generic",
        }
    }

    /// The trigger type that configures this provider.
    pub fn trigger_type(self) -> BuildTriggerType {
        match self {
            Self::GitHub => BuildTriggerType::GitHub,
            Self::GitLab => BuildTriggerType::GitLab,
            Self::Bitbucket => BuildTriggerType::Bitbucket,
            Self::Generic => BuildTriggerType::Generic,
        }
    }

    /// The provider's settings in `policy`, when the policy is of this provider's type.
    pub fn trigger(self, policy: &BuildTriggerPolicy) -> Option<&WebHookTrigger> {
        if policy.type_ != self.trigger_type() {
            return None;
        }
        match self {
            Self::GitHub => policy.github.as_ref(),
            Self::GitLab => policy.gitlab.as_ref(),
            Self::Bitbucket => policy.bitbucket.as_ref(),
            Self::Generic => policy.generic.as_ref(),
        }
    }

    /// Every trigger of this provider's type in `bc`, in order.
    pub fn triggers(self, bc: &BuildConfig) -> Vec<&WebHookTrigger> {
        bc.spec
            .triggers
            .iter()
            .filter_map(|p| self.trigger(p))
            .collect()
    }

    /// The header naming the event, when the provider sends one.
    pub(crate) fn event_header(self) -> Option<&'static str> {
        match self {
            Self::GitHub => Some("x-github-event"),
            Self::GitLab => Some("x-gitlab-event"),
            Self::Bitbucket => Some("x-event-key"),
            Self::Generic => None,
        }
    }

    /// The event named by the request's headers (GitHub also accepts Gogs' and Gitea's header).
    pub(crate) fn event(self, headers: &HeaderMap) -> Option<&str> {
        let names: &[&str] = match self {
            Self::GitHub => &["x-github-event", "x-gitea-event", "x-gogs-event"],
            Self::GitLab => &["x-gitlab-event"],
            Self::Bitbucket => &["x-event-key"],
            Self::Generic => &[],
        };
        names
            .iter()
            .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
    }

    /// The headers identifying a delivery, in order of preference (a redelivery repeats them).
    pub(crate) fn delivery_headers(self) -> &'static [&'static str] {
        match self {
            Self::GitHub => &["x-github-delivery", "x-gitea-delivery", "x-gogs-delivery"],
            Self::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
            Self::Bitbucket => &["x-request-uuid", "x-request-id"],
            Self::Generic => &["idempotency-key", "x-request-id"],
        }
    }

    /// The cause recorded on the Build (OpenShift's wording; the secret always redacted).
    pub(crate) fn cause(self, revision: Option<SourceRevision>) -> BuildTriggerCause {
        let hook = Some(WebHookCause {
            revision,
            secret: Some(REDACTED_SECRET.into()),
        });
        let mut cause = BuildTriggerCause {
            message: Some(
                match self {
                    Self::GitHub => "GitHub WebHook",
                    Self::GitLab => "GitLab WebHook",
                    Self::Bitbucket => "Bitbucket WebHook",
                    Self::Generic => "Generic WebHook",
                }
                .into(),
            ),
            ..BuildTriggerCause::default()
        };
        match self {
            Self::GitHub => cause.github_web_hook = hook,
            Self::GitLab => cause.gitlab_web_hook = hook,
            Self::Bitbucket => cause.bitbucket_web_hook = hook,
            Self::Generic => cause.generic_web_hook = hook,
        }
        cause
    }
}

/// The longest delivery id kept (longer ones are refused, never truncated into collisions).
pub(crate) const MAX_DELIVERY_ID: usize = 200;

/// The request's delivery id: `Ok(None)` when it has none, `Err` when it is not a short
/// printable ASCII string.
pub(crate) fn delivery_id(
    provider: Provider,
    headers: &HeaderMap,
) -> Result<Option<String>, String> {
    let Some((name, value)) = provider
        .delivery_headers()
        .iter()
        .find_map(|n| headers.get(*n).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let bad = || format!("header {name} must be 1 to {MAX_DELIVERY_ID} printable ASCII characters");
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty()
        || text.len() > MAX_DELIVERY_ID
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// The idempotency key of a delivery: a redelivery of the same event maps to the same key, so
/// instantiate adopts the Build the first delivery created.
pub(crate) fn request_id(provider: Provider, delivery: &str) -> String {
    format!("webhook:{}:{delivery}", provider.segment())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn segments_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_segment(p.segment()), Some(p));
        }
        assert_eq!(Provider::from_segment("GitHub"), None);
        assert_eq!(Provider::from_segment("gogs"), None);
    }

    #[test]
    fn causes_name_the_provider_and_redact_the_secret() {
        let cases = [
            (Provider::GitHub, "GitHub WebHook"),
            (Provider::GitLab, "GitLab WebHook"),
            (Provider::Bitbucket, "Bitbucket WebHook"),
            (Provider::Generic, "Generic WebHook"),
        ];
        for (p, message) in cases {
            let cause = p.cause(None);
            assert_eq!(cause.message.as_deref(), Some(message));
            let hooks = [
                &cause.github_web_hook,
                &cause.gitlab_web_hook,
                &cause.bitbucket_web_hook,
                &cause.generic_web_hook,
            ];
            let set: Vec<_> = hooks.iter().filter_map(|h| h.as_ref()).collect();
            assert_eq!(set.len(), 1, "{p:?}");
            assert_eq!(set[0].secret.as_deref(), Some(REDACTED_SECRET));
        }
    }

    #[test]
    fn delivery_ids_table() {
        let with = |name: &'static str, value: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_bytes(value).unwrap());
            h
        };
        let long = "a".repeat(MAX_DELIVERY_ID + 1);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(Provider, HeaderMap, Result<Option<&str>, ()>)> = vec![
            (Provider::GitHub, HeaderMap::new(), Ok(None)),
            (
                Provider::GitHub,
                with("x-github-delivery", b"72d3162e-cc78"),
                Ok(Some("72d3162e-cc78")),
            ),
            (
                Provider::GitLab,
                with("x-gitlab-event-uuid", b"u-1"),
                Ok(Some("u-1")),
            ),
            (
                Provider::GitLab,
                with("idempotency-key", b"k-1"),
                Ok(Some("k-1")),
            ),
            (
                Provider::Bitbucket,
                with("x-request-uuid", b"{b-1}"),
                Ok(Some("{b-1}")),
            ),
            (
                Provider::Bitbucket,
                with("x-request-id", b"s-1"),
                Ok(Some("s-1")),
            ),
            (
                Provider::Generic,
                with("x-request-id", b"g-1"),
                Ok(Some("g-1")),
            ),
            // Another provider's header is not this provider's delivery id.
            (Provider::Generic, with("x-github-delivery", b"x"), Ok(None)),
            (Provider::GitHub, with("x-github-delivery", b"a b"), Err(())),
            (
                Provider::GitHub,
                with("x-github-delivery", long.as_bytes()),
                Err(()),
            ),
            (
                Provider::GitHub,
                with("x-github-delivery", b"\xff"),
                Err(()),
            ),
        ];
        for (p, headers, want) in cases {
            let got = delivery_id(p, &headers);
            assert_eq!(
                got.as_ref().map(|o| o.as_deref()).map_err(|_| ()),
                want,
                "{p:?} {headers:?}"
            );
        }
        assert_ne!(
            request_id(Provider::GitHub, "1"),
            request_id(Provider::GitLab, "1")
        );
    }
}
