//! Confirming a pushed image with the OCI distribution API (oci-client): the registry's manifest
//! digest for the pushed tag must equal the digest buildah wrote.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Why a digest could not be confirmed.
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
    /// The registry did not answer with a digest.
    #[error("registry did not confirm {reference}: {detail}")]
    Registry {
        /// The reference.
        reference: String,
        /// The client's message.
        detail: String,
    },
    /// A tokio runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
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
    reference
        .parse::<Reference>()
        .map(drop)
        .map_err(|e: oci_client::ParseError| e.to_string())
}

/// Asks the registry for the manifest digest of `reference` (`host/repo:tag`).
pub(crate) fn manifest_digest(
    reference: &str,
    insecure: bool,
    credentials: Option<(String, String)>,
) -> Result<String, Error> {
    install_crypto_provider();
    let parsed: Reference =
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| Error::Reference {
                reference: reference.to_string(),
                detail: e.to_string(),
            })?;
    let protocol = if insecure {
        ClientProtocol::HttpsExcept(vec![parsed.registry().to_string()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let auth = credentials.map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    rt.block_on(client.fetch_manifest_digest(&parsed, &auth))
        .map_err(|e| Error::Registry {
            reference: reference.to_string(),
            detail: e.to_string(),
        })
}

/// The digest buildah wrote with `--digestfile`, validated as `sha256:<64 hex>`.
pub(crate) fn parse_digest(text: &str) -> Option<String> {
    let d = text.trim();
    let hex = d.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_helpers() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse_digest(&format!("{d}\n")), Some(d.clone()));
        assert_eq!(parse_digest("sha256:abc"), None);
        assert_eq!(parse_digest(""), None);
    }
}
