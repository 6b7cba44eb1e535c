//! The Build reconciler: follows each active build's Pod to a phase, cancels, and records pushed
//! images. Starting New builds is the BuildConfig reconciler's job (it owns the run policy).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use super::context::{api_error, Context, Error, Metrics};
use super::events::EventType;
use super::image_stream::record_push;
use super::phase::{cancel_requested, next_status, reported_revision, Observed};
use super::triggers::TagRef;
use crate::api::{Build, BuildPhase, BuildStatus};
use crate::naming;

/// Reconciles one Build.
pub async fn reconcile(build: Arc<Build>, ctx: Arc<Context>) -> Result<Action, Error> {
    Metrics::inc(&ctx.metrics.reconciles_build);
    if build.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.ready.load(std::sync::atomic::Ordering::Relaxed) {
        // A Pod missing from an unsynced cache must not fail a build.
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    if let Some(wait) = ctx.superseded.stale_for(&*build) {
        // The controller already replaced this version; its watch event will run us again.
        return Ok(Action::requeue(wait));
    }
    let namespace = build.namespace().unwrap_or_default();
    let name = build.name_any();
    let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase == BuildPhase::New && !cancel_requested(&build) {
        return Ok(Action::await_change());
    }
    let pod = if phase == BuildPhase::New {
        None
    } else {
        find_pod(&ctx, &namespace, &name).await?
    };
    let observed = Observed {
        now: Timestamp::now(),
        push_secret_missing: push_secret_missing(&ctx, &build, pod.as_ref()).await?,
    };
    let Some(next) = next_status(&build, pod.as_ref(), &observed) else {
        return Ok(Action::await_change());
    };
    if next.phase == BuildPhase::Cancelled && pod.is_some() {
        delete_pod(&ctx, &namespace, &name).await?;
    }
    if next.phase == BuildPhase::Complete && phase != BuildPhase::Complete {
        record_output(&ctx, &build, &next).await?;
    }
    // The revision is recorded as the build finishes (a finished Build's spec is never written:
    // the cache keeps a slimmed copy of it).
    let build = match pod
        .as_ref()
        .filter(|_| next.phase.is_terminal() && !phase.is_terminal())
        .and_then(|p| reported_revision(&build, p))
    {
        Some(revision) => Arc::new(set_revision(&ctx, &build, revision).await?),
        None => build,
    };
    write_status(&ctx, &build, next.clone()).await?;
    announce(&ctx, &build, phase, &next).await;
    Ok(Action::await_change())
}

/// The build's Pod from the cache, confirmed with the API server when the cache lacks it (a Pod
/// created moments ago may not have reached the cache yet; a missing Pod fails the build).
async fn find_pod(ctx: &Context, namespace: &str, build: &str) -> Result<Option<Pod>, Error> {
    let pod_name = naming::pod_name(build);
    if let Some(pod) = ctx.pods.get(&ObjectRef::new(&pod_name).within(namespace)) {
        return Ok(Some(pod.to_pod()));
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(&pod_name)
        .await
        .map_err(api_error(format!("reading Pod {pod_name}")))
}

async fn push_secret_missing(
    ctx: &Context,
    build: &Build,
    pod: Option<&Pod>,
) -> Result<bool, Error> {
    let pending = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.phase.as_deref())
        == Some("Pending");
    let Some(secret) = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.push_secret.as_ref())
    else {
        return Ok(false);
    };
    if !pending {
        return Ok(false);
    }
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    Ok(api
        .get_metadata_opt(&secret.name)
        .await
        .map_err(api_error(format!("reading Secret {}", secret.name)))?
        .is_none())
}

/// Deletes the Pod of `build` (a missing Pod is fine).
pub async fn delete_pod(ctx: &Context, namespace: &str, build: &str) -> Result<(), Error> {
    let pod_name = naming::pod_name(build);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(&pod_name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(format!("deleting Pod {pod_name}"))(e)),
    }
}

/// Records the pushed digest in the output ImageStreamTag (DockerImage outputs skip this).
async fn record_output(ctx: &Context, build: &Build, next: &BuildStatus) -> Result<(), Error> {
    let digest = next
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|t| t.image_digest.clone());
    let namespace = build.namespace().unwrap_or_default();
    let tag = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|to| TagRef::from_object_reference(to, &namespace));
    match (tag, digest) {
        (Some(tag), Some(digest)) if to_kind_is_tag(build) => record_push(ctx, &tag, &digest).await,
        _ => Ok(()),
    }
}

fn to_kind_is_tag(build: &Build) -> bool {
    build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|t| t.kind.as_deref())
        .is_none_or(|k| k == "ImageStreamTag")
}

/// Records the built commit in `spec.revision` (allowed once by the CRD's rules), returning the
/// updated Build so the status write that follows carries its new resourceVersion.
async fn set_revision(
    ctx: &Context,
    build: &Build,
    revision: crate::api::common::SourceRevision,
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

/// Writes the status with the Build's resourceVersion: a write based on a stale view fails with
/// 409 and the reconcile runs again, so a terminal phase is never overwritten.
pub async fn write_status(ctx: &Context, build: &Build, status: BuildStatus) -> Result<(), Error> {
    let api: Api<Build> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    let mut updated = build.clone();
    updated.status = Some(status);
    let written = api
        .replace_status(&build.name_any(), &PostParams::default(), &updated)
        .await;
    note_replaced(ctx, build, &written);
    written.map_err(api_error(format!(
        "updating Build {} status",
        build.name_any()
    )))?;
    Ok(())
}

/// Logs a phase change, counts finished builds and publishes the phase's event (BuildStarted,
/// BuildCompleted, BuildFailed, BuildCancelled); nothing when the phase did not change.
pub async fn announce(ctx: &Context, build: &Build, before: BuildPhase, next: &BuildStatus) {
    if before == next.phase {
        return;
    }
    let name = build.name_any();
    let reason = next.reason.map(|r| r.as_str()).unwrap_or_default();
    tracing::info!(build = %name, namespace = build.namespace().unwrap_or_default(), from = before.as_str(), to = next.phase.as_str(), reason, "build phase changed");
    let metrics = &ctx.metrics;
    let (counter, event_type, event_reason, note) = match next.phase {
        BuildPhase::Running => (
            None,
            EventType::Normal,
            "BuildStarted",
            format!("Build {name} is now running"),
        ),
        BuildPhase::Complete => (
            Some(&metrics.builds_complete),
            EventType::Normal,
            "BuildCompleted",
            format!("Build {name} completed successfully"),
        ),
        BuildPhase::Failed | BuildPhase::Error => (
            Some(&metrics.builds_failed),
            EventType::Warning,
            "BuildFailed",
            format!(
                "Build {name} failed: {}",
                next.message.as_deref().unwrap_or_default()
            ),
        ),
        BuildPhase::Cancelled => (
            Some(&metrics.builds_cancelled),
            EventType::Normal,
            "BuildCancelled",
            format!("Build {name} was cancelled"),
        ),
        BuildPhase::New | BuildPhase::Pending => return,
    };
    if let Some(counter) = counter {
        Metrics::inc(counter);
    }
    ctx.event(build, event_type, event_reason, note).await;
}

/// Retries failed reconciles with a short backoff (conflicts sooner).
pub fn error_policy(_build: Arc<Build>, error: &Error, ctx: Arc<Context>) -> Action {
    Metrics::inc(&ctx.metrics.reconcile_failures);
    tracing::debug!(category = error.category(), %error, "build reconcile failed");
    match error {
        Error::Conflict(_) => {
            Action::requeue(Duration::from_millis(50).min(ctx.settings.retry_after))
        }
        _ => Action::requeue(ctx.settings.retry_after),
    }
}
