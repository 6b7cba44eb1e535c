//! Manifest digests over the OCI distribution API (oci-client): the digest a registry serves for
//! a reference, with the reason OpenShift would give when it cannot.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Why a registry did not give a digest.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The image reference does not parse.
    #[error("invalid image reference {reference:?}: {detail}")]
    Reference {
        /// The reference.
        reference: String,
        /// The parser's message.
        detail: String,
    },
    /// The registry refused or failed the request.
    #[error("{reference}: {detail}")]
    Registry {
        /// The reference.
        reference: String,
        /// What kind of failure, as a Kubernetes status reason.
        reason: FailureReason,
        /// The registry's (or the client's) message.
        detail: String,
    },
}

/// The Kubernetes status reason of a failed registry request (what OpenShift's import reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureReason {
    /// No such repository or tag.
    NotFound,
    /// Credentials missing or refused.
    Unauthorized,
    /// Anything else: unreachable, TLS, a server error.
    InternalError,
}

impl FailureReason {
    /// The reason as written in a condition.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::Unauthorized => "Unauthorized",
            Self::InternalError => "InternalError",
        }
    }
}

impl Error {
    /// The status reason of the failure (`InternalError` for a reference that does not parse:
    /// the CRD accepted it).
    pub(crate) fn reason(&self) -> FailureReason {
        match self {
            Self::Registry { reason, .. } => *reason,
            Self::Reference { .. } => FailureReason::InternalError,
        }
    }
}

/// Installs rustls' ring crypto provider once (reqwest is built without a default provider).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why `reference` is not an image reference (`[host[:port]/]repo[:tag][@digest]`), if it is not.
pub(crate) fn check_reference(reference: &str) -> Result<(), String> {
    if reference.is_empty() {
        return Err("is empty".into());
    }
    if reference.starts_with('-')
        || reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must not start with '-' or contain spaces or control characters".into());
    }
    super::reference::parse(reference)
        .map(drop)
        .map_err(str::to_string)
}

/// The parsed reference's registry and repository, `host[:port]/path` (Docker Hub's canonical
/// names expanded, as the client resolves them).
pub(crate) fn repository(reference: &str) -> Option<String> {
    super::reference::parse(reference).ok().map(|r| r.name())
}

/// How to reach a registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Access {
    /// Plain HTTP (and HTTPS without certificate checks) allowed for the reference's registry.
    pub(crate) insecure: bool,
    /// Basic credentials (user, password).
    pub(crate) credentials: Option<(String, String)>,
    /// A registry token used as is (the controller's own, from kiln's token server); preferred
    /// to `credentials`.
    pub(crate) bearer: Option<String>,
    /// The connect and read timeout.
    pub(crate) timeout: Option<Duration>,
}

/// Asks the registry for the manifest digest of `reference` (`host/repo:tag` or `…@digest`).
/// A new client per call: tokens are never shared between callers with different credentials.
pub(crate) async fn manifest_digest(reference: &str, access: &Access) -> Result<String, Error> {
    install_crypto_provider();
    let parsed: Reference = super::reference::parse(reference)
        .map_err(|detail| Error::Reference {
            reference: reference.to_string(),
            detail: detail.to_string(),
        })?
        .to_oci();
    let protocol = if access.insecure {
        ClientProtocol::HttpsExcept(vec![parsed.registry().to_string()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        accept_invalid_certificates: access.insecure,
        read_timeout: access.timeout,
        connect_timeout: access.timeout,
        ..Default::default()
    });
    let auth = match (&access.bearer, &access.credentials) {
        (Some(token), _) => RegistryAuth::Bearer(token.clone()),
        (None, Some((u, p))) => RegistryAuth::Basic(u.clone(), p.clone()),
        (None, None) => RegistryAuth::Anonymous,
    };
    client
        .fetch_manifest_digest(&parsed, &auth)
        .await
        .map_err(|e| Error::Registry {
            reference: reference.to_string(),
            reason: classify(&e),
            detail: describe(&e),
        })
}

/// The status reason of a client error.
fn classify(error: &OciDistributionError) -> FailureReason {
    use oci_client::errors::OciErrorCode as Code;
    match error {
        OciDistributionError::ImageManifestNotFoundError(_) => FailureReason::NotFound,
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => FailureReason::Unauthorized,
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&Code> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    Code::ManifestUnknown | Code::NameUnknown | Code::NotFound
                )
            }) {
                FailureReason::NotFound
            } else if codes
                .iter()
                .any(|c| matches!(c, Code::Unauthorized | Code::Denied))
            {
                FailureReason::Unauthorized
            } else {
                FailureReason::InternalError
            }
        }
        OciDistributionError::ServerError { code, .. } => match code {
            401 | 403 => FailureReason::Unauthorized,
            404 => FailureReason::NotFound,
            _ => FailureReason::InternalError,
        },
        _ => FailureReason::InternalError,
    }
}

/// The client error's message with its sources (reqwest keeps the cause, e.g. "connection
/// refused", in its source chain).
fn describe(error: &OciDistributionError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_references() {
        for (reference, want) in [
            ("127.0.0.1:5000/a/b:c", Some("127.0.0.1:5000/a/b")),
            ("127.0.0.1:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Some("127.0.0.1:5000/a/b")),
            ("quay.io/x/y", Some("quay.io/x/y")),
            ("golang:1.22", Some("docker.io/library/golang")),
            ("", None),
            ("x@sha256:short", None),
        ] {
            assert_eq!(repository(reference).as_deref(), want, "{reference}");
        }
    }

    #[test]
    fn references_are_checked() {
        assert!(check_reference("quay.io/x/y:1").is_ok());
        for bad in ["", "-x", "a b", "x@sha256:short"] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }
}
