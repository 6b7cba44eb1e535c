//! Webhooks: rebuild on push from GitHub, GitLab, Bitbucket and generic callers.
//!
//! Two URL shapes reach the same code: OpenShift's
//! `POST /apis/build.kiln.dev/v1alpha1/namespaces/{ns}/buildconfigs/{name}/webhooks/{secret}/{type}`
//! and `POST /webhooks/{ns}/{name}/{type}`, which carries no secret and relies on the provider's
//! signature or token alone. `kiln controller` serves them beside `/healthz`; `kiln webhooks`
//! serves only them (plus health and metrics), so a cluster can expose just that on an Ingress.
//!
//! A request goes: method (405) → path (400, unknown type 404) → body ≤ 25 MiB (413) →
//! BuildConfig from a watch cache and trigger secrets from [`secrets`] → [`decide`], which is
//! pure: authentication in [`verify`] (one 401 body for an unknown BuildConfig, a missing
//! trigger, a wrong secret or a bad signature), Content-Type (415), the event and payload in
//! [`payload`] (400), and the ref filter in [`refs`] (200 without a build on a mismatch or a
//! deleted ref) → `instantiate`, which answers 200 with the Build's name.
//!
//! Replay protection: the provider's delivery id becomes the request id
//! (`webhook:<provider>:<delivery>`), so a redelivery, concurrent or after a restart, adopts
//! the Build the first delivery created (instantiate finds it by its request label). Nothing
//! is kept in memory for this. A Build already pruned by the history limit is not found, so a
//! redelivery older than the kept history builds again.
//!
//! The secret never leaves this module: Builds carry `<secret>`, logs and metrics name the
//! provider, namespace and BuildConfig only, and answers never echo the URL.

pub(crate) mod decide;
pub mod metrics;
pub(crate) mod payload;
pub mod provider;
pub(crate) mod refs;
pub mod secrets;
pub mod server;
pub mod urls;
pub mod verify;

pub use provider::Provider;
pub use server::Webhooks;

/// Verifies and parses one request exactly as the receiver does, without I/O, and says whether
/// it would start a build of `bc` (`secrets[i]`: the secret of the i-th trigger of the
/// provider's type). For benchmarks and fuzzing.
pub fn would_build(
    provider: Provider,
    url_secret: Option<&str>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    bc: &crate::api::BuildConfig,
    secrets: &[Option<&[u8]>],
) -> bool {
    let incoming = decide::Incoming {
        provider,
        url_secret,
        headers,
        body,
    };
    matches!(
        decide::decide(&incoming, Some(bc), secrets),
        decide::Decision::Build(_)
    )
}

#[cfg(test)]
mod fuzz_tests;
