//! The Build reconciler: follows each active build's Pod to a phase, cancels, and records pushed
//! images. Starting New builds is the BuildConfig reconciler's job (it owns the run policy).
//!
//! `phase` is the phase machine, `pod` the build Pod and `layer_cache` its cache repository, all
//! pure; `storage` the BuildConfig's build storage claim; `log_copy` keeps the log of a finishing
//! build.

pub(crate) mod confirm;
pub(crate) mod layer_cache;
pub(crate) mod log_copy;
pub(crate) mod phase;
pub(crate) mod pod;
pub(crate) mod stall;
pub(crate) mod storage;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use self::confirm::{confirm, unconfirmed, Confirmation};
use self::phase::{cancel_requested, next_status, reported_revision, Observed};
use self::pod::owned_by;
use super::context::{api_error, is_forbidden, Context, Error};
use super::events::EventType;
use super::image_stream::record_push;
use super::reconcile::{await_own_writes, preamble};
use super::status::{delete_pod, set_revision, transition};
use crate::api::{Build, BuildPhase, BuildStatus, TagRef};
use crate::naming;

/// Reconciles one Build.
#[tracing::instrument(skip_all, fields(namespace = build.metadata.namespace.as_deref().unwrap_or_default(), name = build.metadata.name.as_deref().unwrap_or_default()))]
pub(crate) async fn reconcile(build: Arc<Build>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile("build");
    if let Some(action) = preamble(&*build, &ctx).or_else(|| await_own_writes(&ctx, [&*build])) {
        return Ok(action);
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
        find_pod(&ctx, &build).await?
    };
    let observed = Observed {
        now: Timestamp::now(),
        push_secret_missing: push_secret_missing(&ctx, &build, pod.as_ref()).await?,
        pending_timeout: Some(ctx.settings.pod_pending_timeout),
    };
    // A Pending build is looked at again once its Pod may have been Pending too long.
    let wait = match phase {
        BuildPhase::Pending => Action::requeue(ctx.settings.pod_pending_timeout),
        _ => Action::await_change(),
    };
    let Some(next) = next_status(&build, pod.as_ref(), &observed) else {
        return Ok(wait);
    };
    let mut next = next;
    if next.phase == BuildPhase::Complete && phase != BuildPhase::Complete {
        if let Some(message) = unconfirmed_output(&ctx, &build, &next).await? {
            tracing::warn!(build = %name, namespace, %message, "pushed digest not confirmed");
            next = unconfirmed(next, message);
        } else {
            record_output(&ctx, &build, &next).await?;
        }
    }
    // The log is kept as the build finishes: after its image is recorded (the two log reads
    // would otherwise delay the ImageStream, which triggers wait on; a retry records the image
    // once), before its status is written and before a cancelled build's Pod is deleted.
    if next.phase.is_terminal() && !phase.is_terminal() && pod.is_some() {
        log_copy::keep(&ctx, &build).await?;
    }
    if next.phase == BuildPhase::Cancelled && pod.is_some() {
        delete_pod(&ctx, &namespace, &name).await?;
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
    let stalled = next.phase == BuildPhase::Pending
        && next.reason.is_none()
        && next.message.is_some()
        && build.status.as_ref().and_then(|s| s.message.as_ref()) != next.message.as_ref();
    let message = next.message.clone().unwrap_or_default();
    transition(&ctx, &build, next).await?;
    if stalled {
        tracing::warn!(build = %name, namespace, %message, "build Pod pending too long");
        ctx.event(&build, EventType::Warning, "BuildPodPending", message)
            .await;
    }
    Ok(Action::await_change())
}

/// The build's own Pod from the cache, confirmed with the API server when the cache lacks it (a
/// Pod created moments ago may not have reached the cache yet; a missing Pod fails the build). A
/// Pod of that name that the Build does not own counts as missing: its status and termination
/// message are never read.
async fn find_pod(ctx: &Context, build: &Build) -> Result<Option<Pod>, Error> {
    let namespace = build.namespace().unwrap_or_default();
    let pod_name = naming::pod_name(&build.name_any());
    let pod = match ctx.pods.get(&ObjectRef::new(&pod_name).within(&namespace)) {
        Some(pod) => Some(pod.to_pod()),
        None => Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&pod_name)
            .await
            .map_err(api_error(format!("reading Pod {pod_name}")))?,
    };
    Ok(pod.filter(|p| owned_by(p, build)))
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
    let namespace = build.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.get_metadata_opt(&secret.name).await {
        Ok(found) => Ok(found.is_none()),
        // Not granted here: the kubelet reports a missing Secret as the Pod's own mount failure,
        // which the Pending-too-long check turns into the Build's reason.
        Err(e) if is_forbidden(&e) => Ok(false),
        Err(e) => Err(api_error(format!("reading Secret {}", secret.name))(e)),
    }
}

/// Why the digest a build reports for its ImageStreamTag output cannot be recorded, when the
/// output repository does not confirm it (DockerImage outputs are not recorded, so not asked).
async fn unconfirmed_output(
    ctx: &Context,
    build: &Build,
    next: &BuildStatus,
) -> Result<Option<String>, Error> {
    let digest = next
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|t| t.image_digest.as_deref());
    let reference = next.output_docker_image_reference.as_deref();
    match (reference, digest) {
        (Some(reference), Some(digest))
            if ctx.settings.confirm_digests && to_kind_is_tag(build) =>
        {
            Ok(match confirm(ctx, build, reference, digest).await? {
                Confirmation::Confirmed => None,
                Confirmation::Refused(message) => Some(message),
            })
        }
        _ => Ok(None),
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
