//! The BuildConfig reconciler: triggers (ConfigChange, ImageChange), the run policy (which New
//! builds start), `lastVersion` repair and history pruning, all decided from the watch caches.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use super::build::{announce, delete_pod, write_status};
use super::context::{api_error, Context, Error, Metrics};
use super::history::{builds_to_prune, current_image, FinishedBuild};
use super::phase::{cancel_requested, ended_before_start, started, waiting};
use super::pod::build_pod;
use super::policy::{decide, BuildView};
use super::triggers::{config_change_due, due_image_changes, watched_tags, TagRef};
use crate::api::build::{BuildTriggerCause, ImageChangeCause};
use crate::api::{Build, BuildConfig, BuildPhase, RunPolicy, StatusReason};
use crate::instantiate::{build_number, instantiate, BuildRequest};
use crate::naming;

/// The request id of the ConfigChange trigger's build.
pub const CONFIG_CHANGE_REQUEST: &str = "config-change";

/// Reconciles one BuildConfig.
pub async fn reconcile(bc: Arc<BuildConfig>, ctx: Arc<Context>) -> Result<Action, Error> {
    Metrics::inc(&ctx.metrics.reconciles_build_config);
    if bc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.ready.load(std::sync::atomic::Ordering::Relaxed) {
        // Decisions need complete caches (a restarted controller must see every Build and Pod).
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let namespace = bc.namespace().unwrap_or_default();
    let name = bc.name_any();
    let mut tags = watched_tags(&bc);
    tags.extend(strategy_tag(&bc));
    ctx.triggers.set(&ObjectRef::from_obj(&*bc), &tags);
    let builds = ctx.builds.builds_of(&namespace, &name);
    if let Some(wait) = builds.iter().find_map(|b| ctx.superseded.stale_for(&**b)) {
        // Decide only from a cache that shows the controller's own writes; the watch event of
        // the newer version runs this reconcile again.
        return Ok(Action::requeue(wait));
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

fn request_id(build: &Build) -> Option<&String> {
    build.annotations().get(naming::REQUEST_ANNOTATION)
}

/// How long a Build numbered above `lastVersion` is left to the instantiate that created it
/// before the reconciler repairs `lastVersion` itself (repairing at once races every instantiate
/// and turns each new build into a burst of conflicting writes).
const REPAIR_GRACE: Duration = Duration::from_secs(10);

/// Raises `lastVersion` to the highest build number seen, once that build is older than
/// [`REPAIR_GRACE`] (a crash between creating a Build and recording its number). Returns whether
/// it wrote, or how long to wait before looking again.
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
    let mut status = bc.status.clone().unwrap_or_default();
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
    if config_change_due(bc)
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
            ..BuildRequest::default()
        };
        started_any |= start(ctx, &namespace, &name, &request).await?;
    }
    let due = due_image_changes(bc, |tag| current_reference(ctx, tag));
    for (tag, image) in due {
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
            ..BuildRequest::default()
        };
        // A retry after a crash finds its own build by request id and only records the trigger.
        let existing = builds
            .iter()
            .find(|b| request_id(b) == Some(&request.request_id))
            .and_then(|b| build_number(b));
        match existing {
            Some(number) => record_trigger(ctx, bc, number, &request).await?,
            None => started_any |= start(ctx, &namespace, &name, &request).await?,
        }
    }
    Ok(started_any)
}

async fn start(
    ctx: &Context,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
) -> Result<bool, Error> {
    match instantiate(&ctx.client, namespace, name, request).await {
        Ok(_) => {
            Metrics::inc(&ctx.metrics.builds_created);
            Ok(true)
        }
        // Triggers of a paused BuildConfig, or a ConfigChange that lost a race, start nothing.
        Err(
            crate::instantiate::Error::Paused { .. }
            | crate::instantiate::Error::VersionMismatch { .. },
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

/// The tag named by the strategy's `from`, watched so a waiting build starts once it has an image.
fn strategy_tag(bc: &BuildConfig) -> Option<TagRef> {
    let from = bc
        .spec
        .common
        .strategy
        .docker_strategy
        .as_ref()?
        .from
        .as_ref()?;
    TagRef::from_object_reference(from, &bc.namespace().unwrap_or_default())
}

/// The current image pull spec of an ImageStreamTag, from the cache.
fn current_reference(ctx: &Context, tag: &TagRef) -> Option<String> {
    let stream = ctx
        .image_streams
        .get(&ObjectRef::new(&tag.stream).within(&tag.namespace))?;
    current_image(stream.status.as_ref()?, &tag.tag).map(|e| e.docker_image_reference.clone())
}

fn view(build: &Build) -> Option<BuildView> {
    Some(BuildView {
        name: build.name_any(),
        number: build_number(build)?,
        phase: build.status.as_ref().map(|s| s.phase).unwrap_or_default(),
        policy: RunPolicy::from_label(
            build
                .labels()
                .get(naming::START_POLICY_LABEL)
                .map(String::as_str),
        ),
        cancel_requested: cancel_requested(build),
    })
}

async fn apply_run_policy(ctx: &Context, builds: &[Arc<Build>]) -> Result<(), Error> {
    let mut views: Vec<BuildView> = builds.iter().filter_map(|b| view(b)).collect();
    let by_name = |n: &str| builds.iter().find(|b| b.name_any() == n).cloned();
    // A New build whose Pod exists was started by a run that died before marking it Pending:
    // finish that start first, and count it as active.
    for v in views
        .iter_mut()
        .filter(|v| v.phase == BuildPhase::New && !v.cancel_requested)
    {
        let Some(build) = by_name(&v.name) else {
            continue;
        };
        let pod = ObjectRef::new(&naming::pod_name(&v.name))
            .within(&build.namespace().unwrap_or_default());
        if ctx.pods.get(&pod).is_some() {
            start_build(ctx, &build).await?;
            v.phase = BuildPhase::Pending;
        }
    }
    let decision = decide(&views);
    for name in &decision.cancel {
        let Some(build) = by_name(name) else { continue };
        delete_pod(ctx, &build.namespace().unwrap_or_default(), name).await?;
        let message = if cancel_requested(&build) {
            super::phase::CANCELLED_MESSAGE
        } else {
            "The build was cancelled because a newer build was queued (SerialLatestOnly)."
        };
        let status = ended_before_start(
            &build,
            BuildPhase::Cancelled,
            StatusReason::CancelledBuild,
            message,
            Timestamp::now(),
        );
        let before = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
        write_status(ctx, &build, status.clone()).await?;
        announce(ctx, &build, before, &status).await;
    }
    for name in &decision.start {
        if let Some(build) = by_name(name) {
            start_build(ctx, &build).await?;
        }
    }
    Ok(())
}

/// Resolves the build's images, creates its Pod and marks it Pending.
async fn start_build(ctx: &Context, build: &Build) -> Result<(), Error> {
    let namespace = build.namespace().unwrap_or_default();
    let now = Timestamp::now();
    let resolved = match resolve(ctx, build) {
        Ok(resolved) => resolved,
        Err((reason, message)) => {
            let status = waiting(build, reason, message, now);
            if build.status.as_ref() != Some(&status) {
                write_status(ctx, build, status).await?;
            }
            return Ok(());
        }
    };
    let pod = build_pod(&resolved, &ctx.settings.pod)?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => Metrics::inc(&ctx.metrics.pods_created),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let existing = pods
                .get(&pod_name)
                .await
                .map_err(api_error(format!("reading Pod {pod_name}")))?;
            let ours = existing
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == build.metadata.uid.as_ref());
            if !ours {
                let message = format!(
                    "A pod named {pod_name} already exists and does not belong to this build."
                );
                let status = ended_before_start(
                    build,
                    BuildPhase::Error,
                    StatusReason::BuildPodExists,
                    &message,
                    now,
                );
                return write_status(ctx, build, status).await;
            }
        }
        Err(e) => {
            return Err(api_error(format!("creating Pod for {}", build.name_any()))(
                e,
            ))
        }
    }
    let output = resolved
        .status
        .as_ref()
        .and_then(|s| s.output_docker_image_reference.clone());
    write_status(ctx, build, started(build, output, now)).await
}

/// The Build as the Pod should see it: the strategy's ImageStreamTag `from` resolved to a pull
/// spec and the output resolved to `status.outputDockerImageReference`.
fn resolve(ctx: &Context, build: &Build) -> Result<Build, (StatusReason, String)> {
    let namespace = build.namespace().unwrap_or_default();
    let mut resolved = build.clone();
    let output = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref());
    let output_ref = match output {
        None => None,
        Some(to) if to.kind.as_deref() == Some("DockerImage") => to.name.clone(),
        Some(to) => {
            let tag = TagRef::from_object_reference(to, &namespace).ok_or((
                StatusReason::InvalidOutputReference,
                format!("output.to kind {:?} is not supported", to.kind),
            ))?;
            let registry = ctx.settings.registry.clone().ok_or((
                StatusReason::InvalidOutputReference,
                "the controller has no internal registry configured (--registry), so ImageStreamTag outputs cannot be pushed".to_string(),
            ))?;
            Some(format!(
                "{}:{}",
                super::image_stream::repository(&registry, &tag.namespace, &tag.stream),
                tag.tag
            ))
        }
    };
    if let Some(docker) = resolved.spec.common.strategy.docker_strategy.as_mut() {
        if let Some(tag) = docker
            .from
            .as_ref()
            .and_then(|f| TagRef::from_object_reference(f, &namespace))
        {
            let image = current_reference(ctx, &tag).ok_or((
                StatusReason::InvalidImageReference,
                format!(
                    "waiting for ImageStreamTag {}/{} to have an image",
                    tag.namespace,
                    tag.name()
                ),
            ))?;
            docker.from = Some(ObjectReference {
                kind: Some("DockerImage".into()),
                name: Some(image),
                ..ObjectReference::default()
            });
        }
    }
    resolved
        .status
        .get_or_insert_with(Default::default)
        .output_docker_image_reference = output_ref;
    Ok(resolved)
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

/// Retries failed reconciles with a short backoff (conflicts sooner).
pub fn error_policy(_bc: Arc<BuildConfig>, error: &Error, ctx: Arc<Context>) -> Action {
    Metrics::inc(&ctx.metrics.reconcile_failures);
    tracing::debug!(category = error.category(), %error, "buildconfig reconcile failed");
    match error {
        Error::Conflict(_) => {
            Action::requeue(Duration::from_millis(50).min(ctx.settings.retry_after))
        }
        _ => Action::requeue(ctx.settings.retry_after),
    }
}
