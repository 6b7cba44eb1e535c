//! The one writer of Builds: every status transition (compare-and-swap on the resourceVersion the
//! decision was made from), the revision recorded as a build finishes, and what follows a phase
//! change (the log line, the counters, the Event); and the Pod a cancellation deletes.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;

use super::context::{api_error, Context, Error};
use super::events::EventType;
use crate::api::common::SourceRevision;
use crate::api::{Build, BuildPhase, BuildStatus};
use crate::naming;

/// Writes `next` as the status of `build` and announces the phase change, if any.
///
/// The write carries the Build's resourceVersion: a write based on a stale view fails with 409
/// and the reconcile runs again, so a terminal phase is never overwritten.
pub(crate) async fn transition(
    ctx: &Context,
    build: &Build,
    next: BuildStatus,
) -> Result<(), Error> {
    let before = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let api: Api<Build> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    let mut updated = build.clone();
    updated.status = Some(next);
    let written = api
        .replace_status(&build.name_any(), &PostParams::default(), &updated)
        .await;
    note_replaced(ctx, build, &written);
    written.map_err(api_error(format!(
        "updating Build {} status",
        build.name_any()
    )))?;
    if let Some(next) = &updated.status {
        announce(ctx, build, before, next).await;
    }
    Ok(())
}

/// Records the built commit in `spec.revision` (allowed once by the CRD's rules), returning the
/// updated Build so the status write that follows carries its new resourceVersion.
pub(crate) async fn set_revision(
    ctx: &Context,
    build: &Build,
    revision: SourceRevision,
) -> Result<Build, Error> {
    let api: Api<Build> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    let mut updated = build.clone();
    updated.spec.common.revision = Some(revision);
    let written = api
        .replace(&build.name_any(), &PostParams::default(), &updated)
        .await;
    note_replaced(ctx, build, &written);
    written.map_err(api_error(format!(
        "recording the revision of Build {}",
        build.name_any()
    )))
}

/// Deletes the Pod of `build` (a missing Pod is fine).
pub(crate) async fn delete_pod(ctx: &Context, namespace: &str, build: &str) -> Result<(), Error> {
    let pod_name = naming::pod_name(build);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(&pod_name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(format!("deleting Pod {pod_name}"))(e)),
    }
}

/// Records that `build` is superseded after a write based on it succeeded or met a newer
/// version (409): either way the cache will show a newer version, and nothing should be decided
/// from this one meanwhile.
fn note_replaced<T>(ctx: &Context, build: &Build, written: &Result<T, kube::Error>) {
    let newer_exists = match written {
        Ok(_) => true,
        Err(kube::Error::Api(s)) => s.code == 409,
        Err(_) => false,
    };
    if newer_exists {
        ctx.superseded.record(build);
    }
}
/// Logs a phase change, counts finished builds and publishes the phase's event (BuildStarted,
/// BuildCompleted, BuildFailed, BuildCancelled); nothing when the phase did not change.
async fn announce(ctx: &Context, build: &Build, before: BuildPhase, next: &BuildStatus) {
    if before == next.phase {
        return;
    }
    let name = build.name_any();
    let reason = next.reason.map(|r| r.as_str()).unwrap_or_default();
    tracing::info!(build = %name, namespace = build.namespace().unwrap_or_default(), from = before.as_str(), to = next.phase.as_str(), reason, "build phase changed");
    let (event_type, event_reason, note) = match next.phase {
        BuildPhase::Running => (
            EventType::Normal,
            "BuildStarted",
            format!("Build {name} is now running"),
        ),
        BuildPhase::Complete => (
            EventType::Normal,
            "BuildCompleted",
            format!("Build {name} completed successfully"),
        ),
        BuildPhase::Failed | BuildPhase::Error => (
            EventType::Warning,
            "BuildFailed",
            format!(
                "Build {name} failed: {}",
                next.message.as_deref().unwrap_or_default()
            ),
        ),
        BuildPhase::Cancelled => (
            EventType::Normal,
            "BuildCancelled",
            format!("Build {name} was cancelled"),
        ),
        BuildPhase::New | BuildPhase::Pending => return,
    };
    if next.phase.is_terminal() {
        ctx.metrics.build_finished(next);
    }
    ctx.event(build, event_type, event_reason, note).await;
}
