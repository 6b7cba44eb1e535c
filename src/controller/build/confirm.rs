//! Confirming a build's reported digest in its output repository before any TagEvent is written.
//!
//! The build Pod reports its digest in its termination message; anyone who can write that Pod's
//! status (or run a Pod that looks like it) could report any digest. So before an ImageStream
//! records a push, the controller asks the output repository for the manifest of that exact
//! digest, with the build's push secret (or the namespace's pull secrets; for the internal
//! registry behind kiln's token server, a pull token it signs itself). A registry that does
//! not have it, or refuses the controller, fails the build; an unreachable one is retried. Where
//! the namespace does not let the controller read Secrets, it asks anonymously, and a refusal
//! says which grant is missing.

use std::time::Duration;

use kube::ResourceExt;

use crate::api::{Build, BuildPhase, BuildStatus, StatusReason};
use crate::controller::context::{read_secret, secrets_not_granted, Context, Error, SecretRead};
use crate::controller::imports::secrets::{docker_config, pull_config};
use crate::registry::auth;
use crate::registry::digest::{self, Access, FailureReason};

/// How long one confirmation may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the output repository says about the reported digest.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// The repository serves a manifest of that digest.
    Confirmed,
    /// It does not, or refused the controller: the message says which.
    Refused(String),
}

/// `repository@digest` for the pushed reference (`host/path[:tag][@digest]`) and the reported
/// digest (pure).
pub(crate) fn pinned(reference: &str, digest: &str) -> Option<String> {
    let repository = digest::repository(reference)?;
    Some(format!("{repository}@{digest}"))
}

/// The Build's status when its digest could not be confirmed: Failed with
/// `PushImageToRegistryFailed` (pure).
pub(crate) fn unconfirmed(mut next: BuildStatus, message: String) -> BuildStatus {
    next.phase = BuildPhase::Failed;
    next.reason = Some(StatusReason::PushImageToRegistryFailed);
    next.message = Some(message);
    if let Some(output) = next.output.as_mut().and_then(|o| o.to.as_mut()) {
        output.image_digest = None;
    }
    next
}

/// Asks the output repository for the manifest of `digest`.
pub(crate) async fn confirm(
    ctx: &Context,
    build: &Build,
    reference: &str,
    digest_text: &str,
) -> Result<Confirmation, Error> {
    let Some(pinned) = pinned(reference, digest_text) else {
        return Ok(Confirmation::Refused(format!(
            "the output reference {reference:?} does not name a repository"
        )));
    };
    let host = auth::registry_of(reference);
    let namespace = build.namespace().unwrap_or_default();
    let mut credentials = None;
    let mut not_granted = false;
    if let Some(secret) = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.push_secret.as_ref())
    {
        match read_secret(&ctx.client, &namespace, &secret.name).await? {
            SecretRead::Read(found) => {
                credentials = found
                    .as_ref()
                    .and_then(|s| docker_config(s))
                    .and_then(|config| auth::credentials_for(&config, &host));
            }
            SecretRead::Forbidden => not_granted = true,
        }
    }
    // The namespace's pull secrets are read only when the push secret has nothing for the host.
    if credentials.is_none() {
        let pull = pull_config(&ctx.client, &namespace).await?;
        credentials = auth::credentials_for(&pull, &host);
    }
    // The internal registry behind kiln's token server: a pull token of the controller's own.
    let bearer = match &ctx.settings.registry_tokens {
        Some(tokens) if ctx.settings.registry.as_deref() == Some(host.as_str()) => {
            let path = digest::repository(reference)
                .and_then(|r| r.strip_prefix(&format!("{host}/")).map(String::from));
            path.and_then(|p| tokens.pull_token(&p))
        }
        _ => None,
    };
    let access = Access {
        insecure: ctx.settings.pod.insecure_registries.contains(&host),
        credentials,
        bearer,
        timeout: Some(CONFIRM_TIMEOUT),
    };
    match digest::manifest_digest(&pinned, &access).await {
        Ok(served) if served == digest_text => Ok(Confirmation::Confirmed),
        Ok(served) => Ok(Confirmation::Refused(format!(
            "the registry serves {served} for {pinned}, not the reported digest"
        ))),
        Err(e) if e.reason() == FailureReason::InternalError => Err(Error::Registry(format!(
            "confirming the pushed digest {pinned}: {e}"
        ))),
        Err(e) => {
            let hint = if not_granted && e.reason() == FailureReason::Unauthorized {
                format!(" ({})", secrets_not_granted(&namespace))
            } else {
                String::new()
            };
            Ok(Confirmation::Refused(format!(
                "the build reported {digest_text}, which the registry does not confirm in {}: {e}{hint}",
                digest::repository(reference).unwrap_or_default()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pushed_reference_pinned_to_the_reported_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (reference, want) in [
            (
                "reg:5000/ns/app:latest",
                Some(format!("reg:5000/ns/app@{d}")),
            ),
            ("reg:5000/ns/app", Some(format!("reg:5000/ns/app@{d}"))),
            (
                &format!("reg:5000/ns/app@sha256:{}", "b".repeat(64)),
                Some(format!("reg:5000/ns/app@{d}")),
            ),
        ] {
            assert_eq!(pinned(reference, &d), want, "{reference}");
        }
    }

    #[test]
    fn an_unconfirmed_build_fails_without_a_digest() {
        let next: BuildStatus = serde_json::from_value(serde_json::json!({
            "phase": "Complete",
            "output": {"to": {"imageDigest": "sha256:forged"}}
        }))
        .unwrap();
        let failed = unconfirmed(next, "not there".into());
        assert_eq!(failed.phase, BuildPhase::Failed);
        assert_eq!(failed.reason, Some(StatusReason::PushImageToRegistryFailed));
        assert_eq!(failed.message.as_deref(), Some("not there"));
        assert_eq!(failed.output.unwrap().to.unwrap().image_digest, None);
    }
}
