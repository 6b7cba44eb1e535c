//! Confirming a pushed image: the registry's manifest digest for the pushed tag (through the
//! shared [`crate::registry::digest`]) must equal the digest buildah wrote.

pub(crate) use crate::registry::digest::check_reference;
use crate::registry::digest::{self, Access};

/// Why a digest could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The registry did not answer with a digest.
    #[error("registry did not confirm {0}")]
    Registry(#[from] digest::Error),
    /// A tokio runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Asks the registry for the manifest digest of `reference` (`host/repo:tag`).
pub(crate) fn manifest_digest(
    reference: &str,
    insecure: bool,
    credentials: Option<(String, String)>,
) -> Result<String, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let access = Access {
        insecure,
        credentials,
        bearer: None,
        timeout: None,
    };
    Ok(rt.block_on(digest::manifest_digest(reference, &access))?)
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
