//! Who may trigger a build: the URL secret, GitHub's and Bitbucket's HMAC-SHA256 signatures and
//! GitLab's token, all compared in constant time (pure).
//!
//! Comparisons use `ring`, already linked for TLS. Two secrets are compared by their HMACs under
//! a fixed key with `ring::hmac::verify`, whose final check is constant-time: the inputs become
//! equal-length tags first, so neither the position of the first differing byte nor the secret's
//! length shows in the timing. (ring's `constant_time` module is deprecated and makes no
//! side-channel promise; `hmac::verify` does.)

use axum::http::HeaderMap;
use ring::hmac;

use super::provider::Provider;

/// Why a request was not authenticated. All of these answer the same 401 body; the distinction
/// is kept for metrics and logs only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No such BuildConfig.
    UnknownBuildConfig,
    /// The BuildConfig has no trigger of this type.
    NoTrigger,
    /// Its triggers of this type have no usable secret (none set, or the Secret is missing).
    NoSecret,
    /// The URL secret matches no trigger.
    WrongSecret,
    /// The signature or token header is absent.
    MissingSignature,
    /// The signature or token does not match.
    BadSignature,
}

impl AuthFailure {
    /// A bounded label for metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::UnknownBuildConfig => "unknown_buildconfig",
            Self::NoTrigger => "no_trigger",
            Self::NoSecret => "no_secret",
            Self::WrongSecret => "wrong_secret",
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
        }
    }
}

const COMPARE_KEY: &[u8] = b"kiln webhook secret comparison";

/// Whether `a` and `b` are equal, in time independent of where they differ and of their lengths.
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, COMPARE_KEY);
    let tag = hmac::sign(&key, a);
    hmac::verify(&key, b, tag.as_ref()).is_ok()
}

/// Decodes lowercase or uppercase hex; `None` for anything else.
fn hex_decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// The state of an HMAC-SHA256 signature header (`sha256=<hex>`) for one secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signature {
    /// The header is absent.
    Missing,
    /// The header is present but wrong (or not `sha256=<64 hex digits>`).
    Bad,
    /// The body was signed with the secret.
    Valid,
}

/// Checks `header` (`sha256=<hex>`) against HMAC-SHA256 of `body` under `secret`.
pub(crate) fn check_signature(header: Option<&[u8]>, secret: &[u8], body: &[u8]) -> Signature {
    let Some(value) = header else {
        return Signature::Missing;
    };
    let tag = value
        .strip_prefix(b"sha256=")
        .filter(|hex| hex.len() == 64)
        .and_then(hex_decode);
    match tag {
        Some(tag)
            if hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body, &tag).is_ok() =>
        {
            Signature::Valid
        }
        _ => Signature::Bad,
    }
}

/// `sha256=<hex>` of `body` under `secret`, as GitHub and Bitbucket send it (tests and docs).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What the request carries to prove it knows a secret.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Credentials<'a> {
    /// The secret segment of the OpenShift-shaped URL.
    pub(crate) url_secret: Option<&'a [u8]>,
    /// `X-Hub-Signature-256` (GitHub, and generic callers on the secret-less path).
    pub(crate) hub_signature_256: Option<&'a [u8]>,
    /// `X-Hub-Signature` (Bitbucket Cloud and Server send `sha256=` there).
    pub(crate) hub_signature: Option<&'a [u8]>,
    /// `X-Gitlab-Token`.
    pub(crate) gitlab_token: Option<&'a [u8]>,
}

impl<'a> Credentials<'a> {
    /// The credentials in `headers`, plus the URL secret.
    pub(crate) fn from_headers(headers: &'a HeaderMap, url_secret: Option<&'a str>) -> Self {
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
        Credentials {
            url_secret: url_secret.map(str::as_bytes),
            hub_signature_256: get("x-hub-signature-256"),
            hub_signature: get("x-hub-signature"),
            gitlab_token: get("x-gitlab-token"),
        }
    }
}

/// Checks the provider's own proof against one trigger secret.
fn provider_check(
    provider: Provider,
    creds: &Credentials<'_>,
    secret: &[u8],
    body: &[u8],
) -> Signature {
    match provider {
        Provider::GitHub => check_signature(creds.hub_signature_256, secret, body),
        Provider::GitLab => match creds.gitlab_token {
            None => Signature::Missing,
            Some(token) if secrets_equal(token, secret) => Signature::Valid,
            Some(_) => Signature::Bad,
        },
        // Bitbucket signs only when a secret is configured at Bitbucket; with the URL secret
        // matched, an absent signature is accepted (see `authenticate`).
        Provider::Bitbucket => check_signature(creds.hub_signature, secret, body),
        // Generic callers prove themselves with the URL secret, or on the secret-less path with
        // a GitHub-style signature (a kiln extension).
        Provider::Generic => check_signature(creds.hub_signature_256, secret, body),
    }
}

/// Which of the trigger `secrets` (None: the trigger has no usable secret) the request proves
/// it knows; the index of the first that passes.
///
/// With a URL secret: the trigger whose secret equals it, and then the provider's proof with
/// that secret (GitHub's signature and GitLab's token are required, Bitbucket's signature is
/// checked when present, and so is a generic caller's optional signature). Without one: the provider's proof
/// alone, required for every provider.
pub(crate) fn authenticate(
    provider: Provider,
    creds: &Credentials<'_>,
    secrets: &[Option<&[u8]>],
    body: &[u8],
) -> Result<usize, AuthFailure> {
    if secrets.is_empty() {
        return Err(AuthFailure::NoTrigger);
    }
    if secrets.iter().all(|s| s.is_none_or(<[u8]>::is_empty)) {
        return Err(AuthFailure::NoSecret);
    }
    let usable = secrets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| !s.is_empty()).map(|s| (i, s)));
    match creds.url_secret {
        Some(url_secret) => {
            // Compare with every trigger, so the timing does not tell how many there are
            // before the match.
            let matched = usable
                .filter(|(_, s)| secrets_equal(s, url_secret))
                .fold(None, |first, found| first.or(Some(found)));
            let (index, secret) = matched.ok_or(AuthFailure::WrongSecret)?;
            match (provider, provider_check(provider, creds, secret, body)) {
                (_, Signature::Valid) => Ok(index),
                (Provider::Bitbucket | Provider::Generic, Signature::Missing) => Ok(index),
                (_, Signature::Missing) => Err(AuthFailure::MissingSignature),
                (_, Signature::Bad) => Err(AuthFailure::BadSignature),
            }
        }
        None => {
            let mut failure = AuthFailure::MissingSignature;
            for (index, secret) in usable {
                match provider_check(provider, creds, secret, body) {
                    Signature::Valid => return Ok(index),
                    Signature::Bad => failure = AuthFailure::BadSignature,
                    Signature::Missing => {}
                }
            }
            Err(failure)
        }
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
