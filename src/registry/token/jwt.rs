//! Signing registry tokens: a JWS (compact form) signed ES256 with the key whose certificate the
//! registry trusts (`auth.token.rootcertbundle`), the certificate itself in the `x5c` header.
//!
//! distribution (2.8 and 3.x) looks for the signing key in the header in this order: `x5c` (the
//! chain is verified against the bundle), `jwk`, then `kid` (a key fingerprint whose format
//! changed between versions). `x5c` works in both, so kiln sends only that. The claims follow
//! distribution's `ClaimSet`: `iss` must equal `auth.token.issuer`, `aud` the registry's
//! `auth.token.service` (a single string: 2.8 reads no list), `nbf`/`exp` are checked with 60 s of
//! leeway, and `access` lists what the token grants.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;

use super::scope::Access;

/// Why the signing key or certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// Not PEM with the expected block.
    #[error("{what}: no PEM block {label:?}")]
    NoPem {
        /// Which input.
        what: String,
        /// The block expected.
        label: &'static str,
    },
    /// The key is not a PKCS#8 ECDSA P-256 key (or carries no public key).
    #[error("{0}: not a PKCS#8 ECDSA P-256 private key (make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)")]
    Key(String),
    /// The certificate does not hold the key's public key.
    #[error("the certificate {cert} is not for the key {key}")]
    Mismatch {
        /// The certificate's file.
        cert: String,
        /// The key's file.
        key: String,
    },
}

/// The claims of a registry token.
#[derive(Debug, Serialize)]
pub(crate) struct Claims {
    /// The issuer (`auth.token.issuer`).
    pub(crate) iss: String,
    /// Who asked (the Kubernetes user name).
    pub(crate) sub: String,
    /// The registry (`auth.token.service`).
    pub(crate) aud: String,
    /// Expiry, seconds since the epoch.
    pub(crate) exp: i64,
    /// Not before.
    pub(crate) nbf: i64,
    /// Issued at.
    pub(crate) iat: i64,
    /// A unique id.
    pub(crate) jti: String,
    /// What the token grants.
    pub(crate) access: Vec<Access>,
}

/// The signing key and its certificate.
pub(crate) struct Signer {
    key: EcdsaKeyPair,
    certificate: String,
    random: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

/// The DER bytes of the first PEM block labelled `label` (pure).
pub(crate) fn pem_block(text: &str, label: &'static str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    /// A signer from a PKCS#8 PEM key and the PEM certificate of its public key (`key_name` and
    /// `cert_name` name them in errors).
    pub(crate) fn from_pem(
        key_pem: &str,
        key_name: &str,
        cert_pem: &str,
        cert_name: &str,
    ) -> Result<Signer, KeyError> {
        let pkcs8 = pem_block(key_pem, "PRIVATE KEY").ok_or_else(|| KeyError::NoPem {
            what: key_name.to_string(),
            label: "PRIVATE KEY",
        })?;
        let certificate = pem_block(cert_pem, "CERTIFICATE").ok_or_else(|| KeyError::NoPem {
            what: cert_name.to_string(),
            label: "CERTIFICATE",
        })?;
        let random = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &random)
            .map_err(|_| KeyError::Key(key_name.to_string()))?;
        let public = key.public_key().as_ref();
        if !certificate.windows(public.len()).any(|w| w == public) {
            return Err(KeyError::Mismatch {
                cert: cert_name.to_string(),
                key: key_name.to_string(),
            });
        }
        Ok(Signer {
            key,
            certificate: base64::engine::general_purpose::STANDARD.encode(&certificate),
            random,
        })
    }

    /// A random token id (128 bits, hex).
    pub(crate) fn token_id(&self) -> String {
        let mut bytes = [0u8; 16];
        // The system's random source does not fail once the key pair was made from it; a
        // zero id would still be a valid (if not unique) `jti`.
        let _ = self.random.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The signed token.
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, ring::error::Unspecified> {
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [self.certificate],
        });
        let claims = serde_json::to_vec(claims).map_err(|_| ring::error::Unspecified)?;
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&claims)
        );
        let signature = self.key.sign(&self.random, input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(signature.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_block(text, "CERTIFICATE"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_block(text, "PRIVATE KEY"), None);
        assert_eq!(
            pem_block(
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
                "CERTIFICATE"
            ),
            None
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let err = Signer::from_pem("nothing", "key.pem", "", "cert.pem").unwrap_err();
        assert_eq!(err.to_string(), "key.pem: no PEM block \"PRIVATE KEY\"");
        let key = "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----";
        let cert = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----";
        let err = Signer::from_pem(key, "key.pem", cert, "cert.pem").unwrap_err();
        assert!(
            err.to_string().starts_with("key.pem: not a PKCS#8"),
            "{err}"
        );
    }

    #[test]
    fn tokens_verify_with_the_certificate_key() {
        let random = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .unwrap();
        let pem = |label: &str, der: &[u8]| {
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        };
        // Stands in for a certificate: the check only looks for the public key in it.
        let mut cert = vec![0x30, 0x82];
        cert.extend_from_slice(pair.public_key().as_ref());
        let signer = Signer::from_pem(
            &pem("PRIVATE KEY", pkcs8.as_ref()),
            "key.pem",
            &pem("CERTIFICATE", &cert),
            "cert.pem",
        )
        .unwrap();
        let claims = Claims {
            iss: "kiln".into(),
            sub: "system:serviceaccount:a:builder".into(),
            aud: "registry".into(),
            exp: 200,
            nbf: 100,
            iat: 100,
            jti: signer.token_id(),
            access: vec![Access {
                kind: "repository".into(),
                name: "a/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
        };
        let token = signer.sign(&claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(
            header["x5c"][0],
            base64::engine::general_purpose::STANDARD.encode(&cert)
        );
        let body: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(body["aud"], "registry");
        assert_eq!(
            body["access"],
            serde_json::json!([{"type": "repository", "name": "a/app", "actions": ["pull", "push"]}])
        );
        let signature = decode(parts[2]);
        assert_eq!(signature.len(), 64, "ES256 signatures are r || s");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref(),
        );
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        let other = Signer::from_pem(
            &pem("PRIVATE KEY", pkcs8.as_ref()),
            "key.pem",
            &pem("CERTIFICATE", &[0x30, 0x82, 1, 2, 3]),
            "other.pem",
        )
        .unwrap_err();
        assert_eq!(
            other.to_string(),
            "the certificate other.pem is not for the key key.pem"
        );
    }
}
