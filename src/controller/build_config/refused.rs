//! A build Pod the API server refuses (pure): which OpenShift reason the refusal gives the Build,
//! and whether the Build keeps waiting with it or has waited long enough and ends `Error`.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::{Build, BuildPhase, BuildStatus, StatusReason};
use crate::controller::build::phase::{ended_before_start, waiting};

/// The reason a refused Pod create gives its Build, or `None` when the error is not a refusal
/// (conflicts, throttling and server errors are retried without a reason). The ServiceAccount
/// admission plugin's refusal names the missing account (an RBAC refusal names the controller's
/// own `system:serviceaccount:` user, which is not a missing account).
pub(crate) fn refusal_reason(code: u16, message: &str) -> Option<StatusReason> {
    let missing_account = message.contains("error looking up service account")
        || (message.contains("serviceaccount \"") && message.contains("not found"));
    match code {
        409 | 429 => None,
        400..=499 if missing_account => Some(StatusReason::CannotRetrieveServiceAccount),
        400..=499 => Some(StatusReason::CannotCreateBuildPod),
        _ => None,
    }
}

/// The Build's status after its Pod was refused with `reason` and the API's `message`: New with
/// the refusal as its reason, or `Error` once the same refusal has lasted `window` (counted from
/// when the New condition first carried that reason and message).
pub(crate) fn after_refusal(
    build: &Build,
    reason: StatusReason,
    message: &str,
    now: Timestamp,
    window: Duration,
) -> BuildStatus {
    let since = build.status.as_ref().and_then(|s| {
        (s.reason == Some(reason) && s.message.as_deref() == Some(message))
            .then(|| s.conditions.iter().find(|c| c.type_ == "New"))
            .flatten()
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| t.0)
    });
    let waited = since
        .and_then(|since| now.duration_since(since).try_into().ok())
        .unwrap_or(Duration::ZERO);
    if waited >= window {
        return ended_before_start(
            build,
            BuildPhase::Error,
            reason,
            &format!(
                "{message} (the build Pod was refused for {}s; giving up)",
                window.as_secs()
            ),
            now,
        );
    }
    waiting(build, reason, message.to_string(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_4xx_other_than_conflicts_and_throttling() {
        let sa = "pods \"x-1-build\" is forbidden: error looking up service account a/builder: serviceaccount \"builder\" not found";
        let cases = [
            (403, sa, Some(StatusReason::CannotRetrieveServiceAccount)),
            (
                403,
                "pods is forbidden: violates PodSecurity \"baseline:latest\"",
                Some(StatusReason::CannotCreateBuildPod),
            ),
            (
                403,
                "pods is forbidden: User \"system:serviceaccount:kiln-system:kiln\" cannot create resource \"pods\" in API group \"\" in the namespace \"a\"",
                Some(StatusReason::CannotCreateBuildPod),
            ),
            (
                422,
                "Pod \"x\" is invalid: spec.volumes[0].name",
                Some(StatusReason::CannotCreateBuildPod),
            ),
            (
                404,
                "namespaces \"gone\" not found",
                Some(StatusReason::CannotCreateBuildPod),
            ),
            (409, "already exists", None),
            (429, "too many requests", None),
            (500, "etcd timed out", None),
            (503, "unavailable", None),
        ];
        for (code, message, want) in cases {
            assert_eq!(refusal_reason(code, message), want, "{code} {message}");
        }
    }

    #[test]
    fn a_refusal_waits_then_ends_in_error_after_the_window() {
        let build: Build = serde_json::from_value(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "x-1", "namespace": "a"},
            "spec": {"strategy": {"type": "Docker"}},
            "status": {"phase": "New"}
        }))
        .unwrap();
        let window = Duration::from_secs(300);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + k8s_openapi::jiff::SignedDuration::from_secs(s);
        let reason = StatusReason::CannotCreateBuildPod;

        let first = after_refusal(&build, reason, "refused", at(0), window);
        assert_eq!((first.phase, first.reason), (BuildPhase::New, Some(reason)));
        let mut later = build.clone();
        later.status = Some(first.clone());
        // Within the window the status does not change (no write).
        assert_eq!(
            after_refusal(&later, reason, "refused", at(299), window),
            first
        );
        // A different refusal restarts the window.
        let other = after_refusal(&later, reason, "refused otherwise", at(299), window);
        assert_eq!(other.phase, BuildPhase::New);
        let mut changed = build.clone();
        changed.status = Some(other);
        assert_eq!(
            after_refusal(&changed, reason, "refused otherwise", at(500), window).phase,
            BuildPhase::New
        );
        // The same refusal for the whole window ends the build.
        let ended = after_refusal(&later, reason, "refused", at(300), window);
        assert_eq!(
            (ended.phase, ended.reason),
            (BuildPhase::Error, Some(reason))
        );
        assert!(ended
            .message
            .unwrap()
            .starts_with("refused (the build Pod was refused for 300s"));
    }
}
