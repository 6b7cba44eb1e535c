//! The `--registry-token-*` arguments of `kiln controller`: kiln as the token server of the
//! internal registry's token authentication (see `registry::token`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Error;
use crate::registry::token::{TokenServer, TokenServerConfig};

/// How long a registry token lives unless configured (seconds).
const DEFAULT_LIFETIME: u64 = 300;

/// The token server's arguments; it runs when `--registry-token-key` is given.
#[derive(Debug, Args)]
pub(crate) struct RegistryTokenArgs {
    /// The PKCS#8 PEM ECDSA P-256 key registry tokens are signed with; serves the token endpoint
    /// (`/registry/token`, the registry's `auth.token.realm`) and gives build Pods credentials.
    #[arg(
        long,
        env = "KILN_REGISTRY_TOKEN_KEY",
        requires = "registry_token_certificate"
    )]
    pub(crate) registry_token_key: Option<PathBuf>,
    /// The PEM certificate of that key: the registry's `auth.token.rootcertbundle`.
    #[arg(
        long,
        env = "KILN_REGISTRY_TOKEN_CERTIFICATE",
        requires = "registry_token_key"
    )]
    pub(crate) registry_token_certificate: Option<PathBuf>,
    /// The tokens' issuer: the registry's `auth.token.issuer`.
    #[arg(long, env = "KILN_REGISTRY_TOKEN_ISSUER", default_value = "kiln")]
    pub(crate) registry_token_issuer: String,
    /// The registry's `auth.token.service`; also the audience of the ServiceAccount tokens kiln
    /// accepts as passwords (build Pods get one projected for it).
    #[arg(
        long,
        env = "KILN_REGISTRY_TOKEN_SERVICE",
        default_value = "kiln-registry"
    )]
    pub(crate) registry_token_service: String,
    /// Seconds a registry token lives (the registry adds 60 s of leeway).
    #[arg(long, env = "KILN_REGISTRY_TOKEN_LIFETIME", default_value_t = DEFAULT_LIFETIME, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) registry_token_lifetime: u64,
}

impl RegistryTokenArgs {
    /// The ServiceAccount-token audience build Pods need, when the token server runs.
    pub(crate) fn audience(&self) -> Option<String> {
        self.registry_token_key
            .as_ref()
            .map(|_| self.registry_token_service.clone())
    }

    /// The token server, when configured; an unreadable or unusable key is an error.
    pub(crate) fn server(&self, client: kube::Client) -> Result<Option<Arc<TokenServer>>, Error> {
        let (Some(key), Some(certificate)) =
            (&self.registry_token_key, &self.registry_token_certificate)
        else {
            return Ok(None);
        };
        let config = TokenServerConfig {
            key: key.clone(),
            certificate: certificate.clone(),
            issuer: self.registry_token_issuer.clone(),
            service: self.registry_token_service.clone(),
            audience: self.registry_token_service.clone(),
            lifetime: Duration::from_secs(self.registry_token_lifetime),
        };
        let server = TokenServer::load(config, client)
            .map_err(|e| Error::Usage(format!("--registry-token-key: {e}")))?;
        Ok(Some(Arc::new(server)))
    }
}
