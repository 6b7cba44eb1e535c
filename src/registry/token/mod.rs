//! kiln as the token server of the registry's token authentication (the Docker Registry v2
//! token protocol CNCF distribution implements as `auth.token`): a client the registry refused
//! asks `GET <realm>?service=<service>&scope=repository:<name>:<actions>` with basic auth, kiln
//! checks the password (a Kubernetes ServiceAccount token for kiln's audience) with a
//! TokenReview, decides each scope ([`scope`]: the caller's own namespace, and RBAC on
//! `imagestreams/layers` elsewhere, by SubjectAccessReview) and answers a short-lived token signed
//! with the key the registry trusts ([`jwt`]).

pub(crate) mod jwt;
pub(crate) mod scope;
mod server;

pub use server::RegistryTokens;
pub(crate) use server::{TokenServer, TokenServerConfig};
