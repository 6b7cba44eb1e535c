//! Starting builds: the run policy's decision applied, and a started Build's images resolved, its
//! Pod created and its status decided and written once.

use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use super::access::{cross_namespace_checks, service_account};
use super::current_reference;
use super::policy::{decide, BuildView};
use super::refused::{after_refusal, refusal_reason};
use crate::api::validate::OUTPUT_KINDS;
use crate::api::{
    build_number, find_image, Build, BuildPhase, ImageRef, RunPolicy, StatusReason, TagRef,
    IMAGE_GROUP,
};
use crate::controller::build::phase::{
    cancel_requested, ended_before_start, started, waiting, CANCELLED_MESSAGE,
};
use crate::controller::build::pod::{build_pod, owned_by, Error as PodError};
use crate::controller::build::storage;
use crate::controller::context::{api_error, Context, Error};
use crate::controller::status::{delete_pod, transition};
use crate::naming;

/// What the run policy reads of a Build.
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

/// Applies the run policy to the builds of one BuildConfig: finishes interrupted starts, cancels
/// what the policy cancels and starts what it starts.
pub(super) async fn apply_run_policy(ctx: &Context, builds: &[Arc<Build>]) -> Result<(), Error> {
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
            CANCELLED_MESSAGE
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
        transition(ctx, &build, status).await?;
    }
    for name in &decision.start {
        if let Some(build) = by_name(name) {
            start_build(ctx, &build).await?;
        }
    }
    Ok(())
}

/// Starts a New build: checks its access to other namespaces' images, resolves its images,
/// creates its Pod, and writes the one status that follows (Pending; still New with the reason it
/// waits; Failed when another namespace refuses it; or Error when a foreign Pod holds the name).
async fn start_build(ctx: &Context, build: &Build) -> Result<(), Error> {
    let now = Timestamp::now();
    // A reference kind OpenShift refuses (the CRD does too) can never resolve: the build ends.
    let unsupported = unsupported_kind(build);
    // A URL carrying credentials never reaches a Pod (its env would hold the Build).
    let credentials = crate::api::validate::source_url_credentials(&build.spec.common)
        .map(|message| (StatusReason::FetchSourceFailed, message));
    // Another namespace's images are checked before anything of theirs is read.
    let refused = match unsupported.or(credentials) {
        Some(refusal) => Some(refusal),
        None => refused_access(ctx, build).await?,
    };
    let resolved = match refused {
        Some((reason, message)) => Err(ended_before_start(
            build,
            BuildPhase::Failed,
            reason,
            &message,
            now,
        )),
        None => {
            resolve(ctx, build).map_err(|(reason, message)| waiting(build, reason, message, now))
        }
    };
    let status = match resolved {
        Err(status) => status,
        Ok(resolved) => match create_pod(ctx, build, &resolved).await? {
            Created::Ours => {
                let output = resolved
                    .status
                    .as_ref()
                    .and_then(|s| s.output_docker_image_reference.clone());
                started(build, output, now)
            }
            Created::Invalid(message) => ended_before_start(
                build,
                BuildPhase::Error,
                StatusReason::CannotCreateBuildPodSpec,
                &message,
                now,
            ),
            Created::Refused(reason, error) => {
                let message = match &error {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                };
                let status = after_refusal(
                    build,
                    reason,
                    &message,
                    now,
                    ctx.settings.pod_create_retry_window,
                );
                let still_new = status.phase == BuildPhase::New;
                if build.status.as_ref() != Some(&status) {
                    transition(ctx, build, status).await?;
                }
                // While it waits, the refusal is retried, logged and published as an Event.
                return if still_new {
                    Err(api_error(format!("creating Pod for {}", build.name_any()))(
                        error,
                    ))
                } else {
                    Ok(())
                };
            }
            Created::Foreign(pod_name) => ended_before_start(
                build,
                BuildPhase::Error,
                StatusReason::BuildPodExists,
                &format!(
                    "A pod named {pod_name} already exists and does not belong to this build."
                ),
                now,
            ),
        },
    };
    if build.status.as_ref() == Some(&status) {
        return Ok(());
    }
    transition(ctx, build, status).await
}

/// The first cross-namespace access the build's ServiceAccount is refused, as the Build's reason
/// and message; each is asked of the API server with a SubjectAccessReview.
async fn refused_access(
    ctx: &Context,
    build: &Build,
) -> Result<Option<(StatusReason, String)>, Error> {
    let namespace = build.namespace().unwrap_or_default();
    let account = service_account(build);
    for check in cross_namespace_checks(build, ctx.settings.registry.as_deref()) {
        if !layers_allowed(
            ctx,
            &namespace,
            &account,
            check.access.verb(),
            &check.namespace,
            &check.stream,
        )
        .await?
        {
            return Ok(Some(check.refusal(&namespace, &account)));
        }
    }
    Ok(None)
}

/// Whether ServiceAccount `namespace/account` may `verb` `imagestreams/layers` of `stream` in
/// `target_namespace`, asked of the API server with a SubjectAccessReview.
pub(crate) async fn layers_allowed(
    ctx: &Context,
    namespace: &str,
    account: &str,
    verb: &str,
    target_namespace: &str,
    stream: &str,
) -> Result<bool, Error> {
    let reviews: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{namespace}:{account}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(target_namespace.into()),
                verb: Some(verb.into()),
                group: Some(IMAGE_GROUP.into()),
                resource: Some("imagestreams".into()),
                subresource: Some("layers".into()),
                name: Some(stream.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .map_err(api_error(format!(
        "asking whether {namespace}/{account} may {verb} imagestreams/layers in {target_namespace}"
    )))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Whose Pod holds the build Pod's name after [`create_pod`].
enum Created {
    /// The build's own (just created, or created by an earlier run).
    Ours,
    /// Another object's Pod of this name.
    Foreign(String),
    /// No Pod: the Build asks for one that must not exist (the message says why).
    Invalid(String),
    /// No Pod: the API server refused it, with this reason for the Build.
    Refused(StatusReason, kube::Error),
}

/// Creates the build Pod of `resolved` (an existing Pod owned by the build counts as created).
async fn create_pod(ctx: &Context, build: &Build, resolved: &Build) -> Result<Created, Error> {
    let pod = match build_pod(resolved, &ctx.settings.pod) {
        Ok(pod) => pod,
        Err(PodError::InvalidVolumes(message)) => return Ok(Created::Invalid(message)),
        Err(e) => return Err(e.into()),
    };
    // The BuildConfig's build storage claim, when its Pod mounts one, exists before the Pod.
    storage::ensure(ctx, resolved).await?;
    let pods: Api<Pod> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            ctx.metrics.pod_created();
            Ok(Created::Ours)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let existing = pods
                .get(&pod_name)
                .await
                .map_err(api_error(format!("reading Pod {pod_name}")))?;
            Ok(if owned_by(&existing, build) {
                Created::Ours
            } else {
                Created::Foreign(pod_name)
            })
        }
        Err(kube::Error::Api(s)) if refusal_reason(s.code, &s.message).is_some() => {
            let reason = refusal_reason(s.code, &s.message);
            Ok(Created::Refused(
                reason.unwrap_or(StatusReason::CannotCreateBuildPod),
                kube::Error::Api(s),
            ))
        }
        Err(e) => Err(api_error(format!("creating Pod for {}", build.name_any()))(
            e,
        )),
    }
}

/// The first image reference of `build` whose kind OpenShift does not accept there, as the
/// Build's reason and message (pure). The CRD's rules refuse these; a Build that reached the
/// controller without them (an API server that skips rules) ends instead of waiting forever.
pub(crate) fn unsupported_kind(build: &Build) -> Option<(StatusReason, String)> {
    use crate::api::validate::{reference_kind, FROM_KINDS, OUTPUT_KINDS};
    let common = &build.spec.common;
    let from = common
        .strategy
        .docker_strategy
        .as_ref()
        .and_then(|d| d.from.as_ref());
    let to = common.output.as_ref().and_then(|o| o.to.as_ref());
    [
        (
            "spec.strategy.dockerStrategy.from",
            from,
            FROM_KINDS,
            StatusReason::InvalidImageReference,
        ),
        (
            "spec.output.to",
            to,
            OUTPUT_KINDS,
            StatusReason::InvalidOutputReference,
        ),
    ]
    .into_iter()
    .find_map(|(path, reference, allowed, reason)| {
        let kind = reference.and_then(|r| r.kind.as_deref());
        reference_kind(kind, allowed)
            .err()
            .map(|m| (reason, format!("{path}: {m}")))
    })
}

/// Where a build pushes: `output.to` as a pull spec, an ImageStreamTag resolved against
/// `registry` (pure; shared with `kiln build`).
pub(crate) fn output_reference(
    build: &Build,
    registry: Option<&str>,
) -> Result<Option<String>, (StatusReason, String)> {
    let namespace = build.namespace().unwrap_or_default();
    let output = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref());
    match output {
        None => Ok(None),
        Some(to) if to.kind.as_deref() == Some("DockerImage") => Ok(to.name.clone()),
        Some(to) => {
            let invalid = |why: String| {
                (
                    StatusReason::InvalidOutputReference,
                    format!("spec.output.to: {why}"),
                )
            };
            let tag = TagRef::parse(to, &namespace)
                .map_err(invalid)?
                .ok_or_else(|| {
                    let kind = to.kind.as_deref();
                    invalid(
                        crate::api::validate::reference_kind(kind, OUTPUT_KINDS)
                            .err()
                            .unwrap_or_else(|| "no name".into()),
                    )
                })?;
            let registry = registry.ok_or((
                StatusReason::InvalidOutputReference,
                "the controller has no internal registry configured (--registry), so ImageStreamTag outputs cannot be pushed".to_string(),
            ))?;
            Ok(Some(tag.pull_spec(registry)))
        }
    }
}

/// The Build as the Pod should see it: the strategy's ImageStreamTag `from` resolved to a pull
/// spec and the output resolved to `status.outputDockerImageReference`.
fn resolve(ctx: &Context, build: &Build) -> Result<Build, (StatusReason, String)> {
    let namespace = build.namespace().unwrap_or_default();
    let mut resolved = build.clone();
    let output_ref = output_reference(build, ctx.settings.registry.as_deref())?;
    if let Some(docker) = resolved.spec.common.strategy.docker_strategy.as_mut() {
        let image = match docker.from.as_ref() {
            Some(from) => strategy_image(ctx, from, &namespace)?,
            None => None,
        };
        if let Some(image) = image {
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

/// The pull spec an ImageStreamTag or ImageStreamImage `from` names, from the ImageStream cache;
/// `None` for a DockerImage. A reference without an image yet keeps the build waiting.
fn strategy_image(
    ctx: &Context,
    from: &ObjectReference,
    namespace: &str,
) -> Result<Option<String>, (StatusReason, String)> {
    let invalid = |why: String| {
        (
            StatusReason::InvalidImageReference,
            format!("spec.strategy.dockerStrategy.from: {why}"),
        )
    };
    if let Some(image) = ImageRef::parse(from, namespace).map_err(invalid)? {
        let found = ctx
            .image_streams
            .get(&ObjectRef::new(&image.stream).within(&image.namespace))
            .and_then(|s| {
                find_image(s.status.as_ref()?, &image.digest)
                    .map(|e| e.docker_image_reference.clone())
            });
        return found.map(Some).ok_or((
            StatusReason::InvalidImageReference,
            format!(
                "waiting for ImageStreamImage {}/{} to exist",
                image.namespace,
                image.name()
            ),
        ));
    }
    let Some(tag) = TagRef::parse(from, namespace).map_err(invalid)? else {
        return Ok(None);
    };
    current_reference(ctx, &tag).map(Some).ok_or((
        StatusReason::InvalidImageReference,
        format!(
            "waiting for ImageStreamTag {}/{} to have an image",
            tag.namespace,
            tag.name()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_kinds_openshift_refuses_end_the_build() {
        let build = |from: serde_json::Value, to: serde_json::Value| -> Build {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "build.kiln.dev/v1", "kind": "Build",
                "metadata": {"name": "app-1", "namespace": "ns"},
                "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"from": from}},
                         "output": {"to": to}},
            }))
            .unwrap()
        };
        let tag = serde_json::json!({"kind": "ImageStreamTag", "name": "app:latest"});
        for (from, to, want) in [
            (
                serde_json::json!({"kind": "DockerImage", "name": "r/base:1"}),
                tag.clone(),
                None,
            ),
            (
                serde_json::json!({"kind": "ImageStreamImage", "name": "base@sha256:ab"}),
                serde_json::json!({"name": "app:latest"}),
                None,
            ),
            (
                serde_json::json!({"kind": "ImageStream", "name": "base"}),
                tag.clone(),
                Some((
                    StatusReason::InvalidImageReference,
                    "spec.strategy.dockerStrategy.from: kind \"ImageStream\"",
                )),
            ),
            (
                serde_json::json!({"name": "r/base:1"}),
                serde_json::json!({"kind": "ImageStream", "name": "app"}),
                Some((
                    StatusReason::InvalidOutputReference,
                    "spec.output.to: kind \"ImageStream\"",
                )),
            ),
        ] {
            let got = unsupported_kind(&build(from.clone(), to.clone()));
            match (got, want) {
                (None, None) => {}
                (Some((reason, message)), Some((want_reason, want_start))) => {
                    assert_eq!(reason, want_reason, "{from} {to}");
                    assert!(message.starts_with(want_start), "{message}");
                    assert!(message.contains("<stream>:<tag>"), "{message}");
                }
                (got, want) => panic!("{from} {to}: got {got:?}, want {want:?}"),
            }
        }
    }
}
