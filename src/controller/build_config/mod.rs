//! The BuildConfig reconciler: triggers (ConfigChange, ImageChange), the run policy (which New
//! builds start, in `start`), `lastVersion` repair and history pruning, all decided from the
//! watch caches.
//!
//! `policy`, `triggers` and `history` are the pure decisions.

pub(crate) mod access;
pub(crate) mod history;
pub(crate) mod policy;
pub(crate) mod refused;
pub(crate) mod start;
pub(crate) mod triggers;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use self::history::{builds_to_prune, FinishedBuild};
use self::start::apply_run_policy;
use self::triggers::{config_change_due, due_image_changes, watched_tags};
use super::context::{api_error, Context, Error};
use super::reconcile::{await_own_writes, preamble};
use crate::api::build::{BuildTriggerCause, ImageChangeCause};
use crate::api::{build_number, current_image, Build, BuildConfig, ImageRef, TagRef};
use crate::instantiate::trigger_images::with_pending_records;
use crate::instantiate::{instantiate, BuildRequest};
use crate::naming;

/// The request id of the ConfigChange trigger's build.
pub(crate) const CONFIG_CHANGE_REQUEST: &str = "config-change";

/// Reconciles one BuildConfig.
#[tracing::instrument(skip_all, fields(namespace = bc.metadata.namespace.as_deref().unwrap_or_default(), name = bc.metadata.name.as_deref().unwrap_or_default()))]
pub(crate) async fn reconcile(bc: Arc<BuildConfig>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile("buildconfig");
    if let Some(action) = preamble(&*bc, &ctx) {
        return Ok(action);
    }
    let namespace = bc.namespace().unwrap_or_default();
    let name = bc.name_any();
    let mut tags = watched_tags(&bc);
    tags.extend(strategy_tag(&bc));
    ctx.triggers.set(&ObjectRef::from_obj(&*bc), &tags);
    let builds = ctx.builds.builds_of(&namespace, &name);
    if let Some(action) = await_own_writes(&ctx, builds.iter().map(|b| &**b)) {
        // The watch event of the newer version runs this reconcile again.
        return Ok(action);
    }

    let recheck = match repair_last_version(&ctx, &bc, &builds).await? {
        Repair::Written => return Ok(Action::await_change()),
        Repair::Later(after) => Some(after),
        Repair::NotNeeded => None,
    };
    if fire_triggers(&ctx, &bc, &builds).await? {
        return Ok(Action::await_change());
    }
    apply_run_policy(&ctx, &builds).await?;
    prune(&ctx, &bc, &builds).await?;
    Ok(Action::requeue(recheck.unwrap_or(Duration::from_secs(300))))
}

pub(crate) fn request_id(build: &Build) -> Option<&String> {
    build.annotations().get(naming::REQUEST_ANNOTATION)
}

/// How long a Build numbered above `lastVersion` is left to the instantiate that created it
/// before the reconciler repairs `lastVersion` itself (repairing at once races every instantiate
/// and turns each new build into a burst of conflicting writes).
const REPAIR_GRACE: Duration = Duration::from_secs(10);

/// Raises `lastVersion` to the highest build number seen, once that build is older than
/// [`REPAIR_GRACE`] (a build whose requester leaves `lastVersion` to the controller, or a crash
/// between creating a Build and recording its number), and records the ImageChange trigger
/// images those builds recorded. Returns whether it wrote, or how long to wait before looking
/// again.
async fn repair_last_version(
    ctx: &Context,
    bc: &BuildConfig,
    builds: &[Arc<Build>],
) -> Result<Repair, Error> {
    let last = bc.status.as_ref().map_or(0, |s| s.last_version);
    let ahead: Vec<&Arc<Build>> = builds
        .iter()
        .filter(|b| build_number(b).is_some_and(|n| n > last))
        .collect();
    let Some(highest) = ahead.iter().filter_map(|b| build_number(b)).max() else {
        return Ok(Repair::NotNeeded);
    };
    let now = Timestamp::now();
    let youngest_age = ahead
        .iter()
        .map(|b| {
            b.metadata
                .creation_timestamp
                .as_ref()
                .map_or(Duration::ZERO, |t| age(t.0, now))
        })
        .min()
        .unwrap_or(Duration::ZERO);
    if youngest_age < REPAIR_GRACE {
        return Ok(Repair::Later(REPAIR_GRACE - youngest_age));
    }
    let mut status = with_pending_records(bc, builds.iter().map(|b| &b.metadata), now);
    status.last_version = highest;
    write_config_status(ctx, bc, status).await?;
    Ok(Repair::Written)
}

/// Writes a BuildConfig's status with its resourceVersion (409 when the view was stale).
async fn write_config_status(
    ctx: &Context,
    bc: &BuildConfig,
    status: crate::api::BuildConfigStatus,
) -> Result<(), Error> {
    let mut updated = bc.clone();
    updated.status = Some(status);
    let api: Api<BuildConfig> =
        Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    api.replace_status(&bc.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(api_error(format!(
            "updating BuildConfig {} status",
            bc.name_any()
        )))?;
    Ok(())
}

/// What [`repair_last_version`] did.
enum Repair {
    /// `lastVersion` is current.
    NotNeeded,
    /// `lastVersion` was raised.
    Written,
    /// A build above `lastVersion` is too young to repair; look again after this long.
    Later(Duration),
}

fn age(then: Timestamp, now: Timestamp) -> Duration {
    let nanos = now
        .as_nanosecond()
        .saturating_sub(then.as_nanosecond())
        .max(0);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Fires the ConfigChange trigger and due ImageChange triggers. Returns whether it started a build.
async fn fire_triggers(
    ctx: &Context,
    bc: &BuildConfig,
    builds: &[Arc<Build>],
) -> Result<bool, Error> {
    let namespace = bc.namespace().unwrap_or_default();
    let name = bc.name_any();
    let mut started_any = false;
    // The images recorded by builds whose record the controller has not written yet (started by
    // `kiln start-build`, which leaves the status to the controller) count as recorded.
    let mut view = bc.clone();
    view.status = Some(with_pending_records(
        bc,
        builds.iter().map(|b| &b.metadata),
        Timestamp::now(),
    ));
    // Every build records the current image of each ImageChange trigger (OpenShift's
    // lastTriggeredImageID), so a ConfigChange build on a base that already has an image is the
    // one build for both causes.
    let watched = watched_tags(bc);
    let current: Vec<(TagRef, String)> = watched
        .iter()
        .filter_map(|tag| {
            let image = current_reference(ctx, tag)?;
            Some((tag.clone(), image))
        })
        .collect();
    // The ConfigChange build waits until every ImageChange trigger's tag has an image (a base
    // stream still importing, say), then records them all: one build, not one per cause.
    if config_change_due(bc)
        && current.len() == watched.len()
        && !builds
            .iter()
            .any(|b| request_id(b).is_some_and(|r| r == CONFIG_CHANGE_REQUEST))
    {
        let request = BuildRequest {
            request_id: CONFIG_CHANGE_REQUEST.into(),
            cause: BuildTriggerCause {
                message: Some("Build configuration change".into()),
                ..BuildTriggerCause::default()
            },
            last_version: Some(0),
            trigger_images: current.clone(),
            ..BuildRequest::default()
        };
        if request_build(ctx, &namespace, &name, &request).await? {
            // The image triggers are evaluated again once the recorded images are in the cache.
            return Ok(true);
        }
    }
    let due = due_image_changes(&view, |tag| {
        current
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, image)| image.clone())
    });
    for (tag, image) in due {
        let others = current.iter().filter(|(t, _)| t != &tag).cloned().collect();
        let request = BuildRequest {
            request_id: format!("image-change:{}/{}@{}", tag.namespace, tag.name(), image),
            cause: BuildTriggerCause {
                message: Some("Image change".into()),
                image_change_build: Some(ImageChangeCause {
                    image_id: Some(image.clone()),
                    from_ref: Some(ObjectReference {
                        kind: Some("ImageStreamTag".into()),
                        namespace: Some(tag.namespace.clone()),
                        name: Some(tag.name()),
                        ..ObjectReference::default()
                    }),
                }),
                ..BuildTriggerCause::default()
            },
            triggered_by_image: Some((tag, image)),
            trigger_images: others,
            ..BuildRequest::default()
        };
        // A retry after a crash finds its own build by request id and only records the trigger.
        let existing = builds
            .iter()
            .find(|b| request_id(b) == Some(&request.request_id))
            .and_then(|b| build_number(b));
        match existing {
            Some(number) => record_trigger(ctx, bc, number, &request).await?,
            None => started_any |= request_build(ctx, &namespace, &name, &request).await?,
        }
    }
    Ok(started_any)
}

async fn request_build(
    ctx: &Context,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
) -> Result<bool, Error> {
    match instantiate(&ctx.client, namespace, name, request).await {
        Ok(_) => {
            ctx.metrics.build_created();
            Ok(true)
        }
        // Triggers of a paused BuildConfig, a ConfigChange that lost a race, or an image change
        // an earlier build already recorded (seen from a stale cache) start nothing.
        Err(
            crate::instantiate::Error::Paused { .. }
            | crate::instantiate::Error::VersionMismatch { .. }
            | crate::instantiate::Error::AlreadyTriggered { .. },
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn record_trigger(
    ctx: &Context,
    bc: &BuildConfig,
    number: i64,
    request: &BuildRequest,
) -> Result<(), Error> {
    let status = crate::instantiate::status_after(bc, number, request, Timestamp::now());
    write_config_status(ctx, bc, status).await
}

/// The tag (or, for an ImageStreamImage, the stream) named by the strategy's `from`, watched so a
/// waiting build starts once it has an image. Only the stream of a watched tag is indexed.
fn strategy_tag(bc: &BuildConfig) -> Option<TagRef> {
    let from = bc
        .spec
        .common
        .strategy
        .docker_strategy
        .as_ref()?
        .from
        .as_ref()?;
    let namespace = bc.namespace().unwrap_or_default();
    TagRef::from_object_reference(from, &namespace).or_else(|| {
        let image = ImageRef::from_object_reference(from, &namespace)?;
        Some(TagRef {
            namespace: image.namespace,
            stream: image.stream,
            tag: image.digest,
        })
    })
}

/// The current image pull spec of an ImageStreamTag, from the cache.
pub(crate) fn current_reference(ctx: &Context, tag: &TagRef) -> Option<String> {
    let stream = ctx
        .image_streams
        .get(&ObjectRef::new(&tag.stream).within(&tag.namespace))?;
    current_image(stream.status.as_ref()?, &tag.tag).map(|e| e.docker_image_reference.clone())
}

async fn prune(ctx: &Context, bc: &BuildConfig, builds: &[Arc<Build>]) -> Result<(), Error> {
    let finished: Vec<FinishedBuild> = builds
        .iter()
        .filter_map(|b| {
            let phase = b.status.as_ref().map(|s| s.phase).unwrap_or_default();
            phase.is_terminal().then(|| FinishedBuild {
                name: b.name_any(),
                number: build_number(b).unwrap_or_default(),
                phase,
                created: b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            })
        })
        .collect();
    let doomed = builds_to_prune(
        &finished,
        bc.spec.successful_builds_history_limit,
        bc.spec.failed_builds_history_limit,
    );
    let api: Api<Build> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    for name in doomed {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_error(format!("pruning Build {name}"))(e)),
        }
    }
    Ok(())
}
