//! instantiate: the one path from a BuildConfig to a new numbered Build, used by every trigger,
//! `kiln start-build` and the webhook receiver; its pure `new_build` also makes `kiln build`'s.
//! Whatever the cause, the build records the current image of every ImageChange trigger
//! (`trigger_images`), as OpenShift's build generator does.
//!
//! The Build `<bc>-<N>` is created first (its deterministic name makes concurrent requests
//! collide instead of duplicating), then `status.lastVersion` is raised to N with a
//! resourceVersion-guarded update. A crash between the two leaves a Build whose number is above
//! `lastVersion`; the next request meets it as AlreadyExists and adopts it when it carries the same
//! request id (a retry of the same request) or moves past it otherwise, and the BuildConfig
//! reconciler raises `lastVersion` to the highest number it sees. No build is lost or duplicated.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};

use crate::api::build::BuildTriggerCause;
use crate::api::build_config::BuildConfigStatus;
use crate::api::common::{BinaryBuildSource, BuildSourceType, CommonSpec, SourceRevision};
use crate::api::{build_number, Build, BuildConfig, BuildSpec, ImageStream, TagRef};
use crate::naming;

pub(crate) mod trigger_images;

/// Why a build could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BuildConfig is paused.
    #[error("BuildConfig {namespace}/{name} is paused (annotation {annotation}=\"true\"); remove the annotation to start builds")]
    Paused {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The pausing annotation.
        annotation: &'static str,
    },
    /// The request's lastVersion guard does not match.
    #[error("BuildConfig {name} is at version {actual}, not {expected}: another build was started first")]
    VersionMismatch {
        /// The BuildConfig.
        name: String,
        /// The version the request expected.
        expected: i64,
        /// The version found.
        actual: i64,
    },
    /// An image change whose image already started (or was recorded by) a build.
    #[error("BuildConfig {name}: image {image} of {tag} already started a build")]
    AlreadyTriggered {
        /// The BuildConfig.
        name: String,
        /// The ImageStreamTag, `<stream>:<tag>`.
        tag: String,
        /// The image pull spec.
        image: String,
    },
    /// The BuildConfig lacks metadata the Build needs.
    #[error("BuildConfig has no {0}")]
    MissingMetadata(&'static str),
    /// A namespace or BuildConfig name that is not an object name.
    #[error("{what} {name:?}: {reason}")]
    InvalidName {
        /// Which name.
        what: &'static str,
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The repository URL carries credentials.
    #[error("BuildConfig {0}: spec.source.git.uri: {msg}", msg = crate::api::validate::URL_CREDENTIALS_MESSAGE)]
    Credentials(String),
    /// The requested commit is not a hex object name.
    #[error("revision.git.commit {commit:?}: {reason}")]
    InvalidCommit {
        /// The commit given.
        commit: String,
        /// Why it is refused.
        reason: String,
    },
    /// The next build number does not fit in 64 bits.
    #[error(
        "BuildConfig {0} has used every build number (lastVersion {1}); create a new BuildConfig"
    )]
    NumbersExhausted(String, i64),
    /// Too many concurrent requests collided.
    #[error("could not start a build of {0} after {1} attempts: too many concurrent requests")]
    Contended(String, usize),
    /// The API server refused a request.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client error.
        source: kube::Error,
    },
}

/// What a request to start a build carries besides the BuildConfig.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildRequest {
    /// Identifies the request: a retry with the same id adopts the Build it already created.
    pub request_id: String,
    /// Why the build starts.
    pub cause: BuildTriggerCause,
    /// The exact revision to build, overriding the BuildConfig's.
    pub revision: Option<SourceRevision>,
    /// Strategy environment overrides (replacing entries of the same name).
    pub env: Vec<EnvVar>,
    /// Build arguments merged into the strategy's.
    pub build_args: Vec<EnvVar>,
    /// Override of the strategy's `noCache`.
    pub no_cache: Option<bool>,
    /// The image change that triggered the build: the tag and its new image pull spec.
    pub triggered_by_image: Option<(TagRef, String)>,
    /// The current image of other ImageChange triggers' tags: each is recorded as that
    /// trigger's `lastTriggeredImageID`, as OpenShift does on every instantiate, so a build
    /// started for one cause does not start another for an image it already used. [`instantiate`]
    /// looks up the image of every trigger tag missing here.
    pub trigger_images: Vec<(TagRef, String)>,
    /// Only start the build if the BuildConfig is at exactly this version.
    pub last_version: Option<i64>,
    /// The git ref to build instead of `source.git.ref` (a webhook's branch or tag glob match).
    pub git_ref: Option<String>,
    /// Leave `status.lastVersion` to the controller, which raises it to the highest build number
    /// it sees: the requester needs no write to the BuildConfig's status (`kiln start-build`).
    /// The number is then chosen above every existing Build of the BuildConfig.
    pub leave_last_version: bool,
    /// The build's source is uploaded (`kiln start-build --from-dir` and friends): it replaces the
    /// BuildConfig's source (git, if any) with this Binary one, as OpenShift's binary
    /// instantiate does; contextDir and an inline Dockerfile stay.
    pub binary: Option<BinaryBuildSource>,
    /// A rebuild of an earlier Build (`kiln start-build --from-build`, `kiln cancel-build
    /// --restart`): its spec (source, revision, strategy, output, resources…) replaces the
    /// BuildConfig's, as OpenShift's clone does; the fields above still apply on top of it.
    pub spec: Option<CommonSpec>,
}

impl BuildRequest {
    /// The images the request records: the triggering one first, then the other triggers'.
    fn images(&self) -> impl Iterator<Item = &(TagRef, String)> {
        self.triggered_by_image
            .iter()
            .chain(self.trigger_images.iter())
    }
}

/// The Build number `number` of `bc` for `request` (pure).
pub(crate) fn new_build(
    bc: &BuildConfig,
    number: i64,
    request: &BuildRequest,
) -> Result<Build, Error> {
    let bc_name = bc
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let namespace = bc
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let owner = bc
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("uid"))?;
    let base = request.spec.as_ref().unwrap_or(&bc.spec.common);
    let source = base.source.as_ref();
    if source
        .and_then(|s| s.git.as_ref())
        .is_some_and(|g| crate::api::validate::url_credentials(&g.uri).is_some())
    {
        return Err(Error::Credentials(bc_name));
    }
    let commits = [&request.revision, &base.revision];
    for c in commits
        .into_iter()
        .flatten()
        .filter_map(|r| r.git.as_ref()?.commit.as_ref())
    {
        crate::api::validate::commit(c).map_err(|reason| Error::InvalidCommit {
            commit: c.clone(),
            reason,
        })?;
    }
    let mut labels: BTreeMap<String, String> = bc.labels().clone();
    labels.insert(
        naming::BUILD_CONFIG_LABEL.into(),
        naming::label_value(&bc_name),
    );
    labels.insert(
        naming::START_POLICY_LABEL.into(),
        bc.spec.run_policy.as_str().into(),
    );
    labels.insert(
        naming::REQUEST_LABEL.into(),
        naming::request_label(&request.request_id),
    );
    let mut annotations = BTreeMap::from([
        (
            naming::BUILD_NUMBER_ANNOTATION.to_string(),
            number.to_string(),
        ),
        (naming::BUILD_CONFIG_ANNOTATION.to_string(), bc_name.clone()),
        (
            naming::REQUEST_ANNOTATION.to_string(),
            request.request_id.clone(),
        ),
    ]);
    if let Some(images) = trigger_images::annotation(request) {
        annotations.insert(naming::TRIGGER_IMAGES_ANNOTATION.to_string(), images);
    }
    let mut common = base.clone();
    if request.revision.is_some() {
        common.revision = request.revision.clone();
    }
    if let Some(binary) = &request.binary {
        let source = common.source.get_or_insert_with(Default::default);
        source.type_ = Some(BuildSourceType::Binary);
        source.git = None;
        source.binary = Some(binary.clone());
    }
    if let Some(git) = request
        .git_ref
        .as_ref()
        .and_then(|_| common.source.as_mut()?.git.as_mut())
    {
        git.ref_ = request.git_ref.clone();
    }
    let docker = common
        .strategy
        .docker_strategy
        .get_or_insert_with(Default::default);
    for var in &request.env {
        match docker.env.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var.clone(),
            None => docker.env.push(var.clone()),
        }
    }
    for arg in &request.build_args {
        match docker.build_args.iter_mut().find(|e| e.name == arg.name) {
            Some(existing) => *existing = arg.clone(),
            None => docker.build_args.push(arg.clone()),
        }
    }
    if request.no_cache.is_some() {
        docker.no_cache = request.no_cache;
    }
    let strategy_tag = docker
        .from
        .as_ref()
        .and_then(|f| TagRef::from_object_reference(f, &namespace));
    if let Some((_, image)) = request
        .images()
        .find(|(tag, _)| strategy_tag.as_ref() == Some(tag))
    {
        docker.from = Some(ObjectReference {
            kind: Some("DockerImage".into()),
            name: Some(image.clone()),
            ..ObjectReference::default()
        });
    }
    if docker == &Default::default() {
        common.strategy.docker_strategy = None;
    }
    Ok(Build {
        metadata: ObjectMeta {
            name: Some(naming::build_name(&bc_name, number)),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: BuildSpec {
            common,
            triggered_by: vec![request.cause.clone()],
            cancel: None,
        },
        status: None,
    })
}

/// The BuildConfig status after starting build `number` for `request` (pure): `lastVersion` and
/// the `lastTriggeredImageID` of each trigger whose image the request records.
pub(crate) fn status_after(
    bc: &BuildConfig,
    number: i64,
    request: &BuildRequest,
    now: Timestamp,
) -> BuildConfigStatus {
    let mut status = bc.status.clone().unwrap_or_default();
    status.last_version = status.last_version.max(number);
    let namespace = bc.metadata.namespace.clone().unwrap_or_default();
    let mut seen = Vec::new();
    for (tag, image) in request.images() {
        if seen.contains(&tag) {
            continue;
        }
        seen.push(tag);
        let causing = request.triggered_by_image.as_ref().map(|(t, _)| t) == Some(tag);
        trigger_images::record(&mut status, &namespace, tag, image, causing, now);
    }
    status
}

const MAX_ATTEMPTS: usize = 20;

/// Starts a build of BuildConfig `namespace/name` for `request` and returns the Build.
pub async fn instantiate(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
) -> Result<Build, Error> {
    for (what, value) in [("namespace", namespace), ("BuildConfig", name)] {
        crate::api::validate::object_name(value).map_err(|reason| Error::InvalidName {
            what,
            name: value.to_string(),
            reason,
        })?;
    }
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), namespace);
    let builds: Api<Build> = Api::namespaced(client.clone(), namespace);
    let api_err = |action: String| move |source| Error::Api { action, source };
    let mut skip_past = 0_i64;
    for _ in 0..MAX_ATTEMPTS {
        let bc = configs
            .get(name)
            .await
            .map_err(api_err(format!("reading BuildConfig {namespace}/{name}")))?;
        // A retry of a request that already created its Build (whatever number it got) adopts it.
        // Looked up after reading the BuildConfig: a Build of this request created after the
        // lookup gets a number above that `lastVersion`, where this attempt collides with it
        // (409, same request id) instead of creating a second one.
        if let Some(existing) = find_request(&builds, name, &request.request_id).await? {
            let number = build_number(&existing).unwrap_or_default();
            if !request.leave_last_version {
                let mut adopted = request.clone();
                adopted.trigger_images.extend(
                    trigger_images::recorded_by(&existing.metadata)
                        .into_iter()
                        .map(|(tag, image, _)| (tag, image)),
                );
                raise_last_version(&configs, bc, number, &adopted).await?;
            }
            return Ok(existing);
        }
        // An image change whose image an earlier build already recorded (the ConfigChange build
        // of a new BuildConfig, say, read from a cache that had not seen that record yet), in the
        // status or on a Build whose record the controller has not written yet.
        if let Some((tag, image)) = &request.triggered_by_image {
            let mut recorded = bc.clone();
            if bc.last_triggered_image(tag).as_ref() != Some(image) {
                let metas = builds_metadata(&builds, name).await?;
                recorded.status = Some(trigger_images::with_pending_records(
                    &bc,
                    &metas,
                    Timestamp::now(),
                ));
            }
            if recorded.last_triggered_image(tag).as_ref() == Some(image) {
                return Err(Error::AlreadyTriggered {
                    name: name.into(),
                    tag: tag.name(),
                    image: image.clone(),
                });
            }
        }
        if let Some(annotation) = bc.paused_by() {
            return Err(Error::Paused {
                namespace: namespace.into(),
                name: name.into(),
                annotation,
            });
        }
        let last = bc.status.as_ref().map_or(0, |s| s.last_version);
        if let Some(expected) = request.last_version.filter(|v| *v != last) {
            return Err(Error::VersionMismatch {
                name: name.into(),
                expected,
                actual: last,
            });
        }
        if request.leave_last_version && skip_past == 0 {
            skip_past = highest_build_number(&builds, name).await?;
        }
        let number = naming::next_build_number(last.max(skip_past))
            .ok_or_else(|| Error::NumbersExhausted(name.into(), last))?;
        let request = &with_trigger_images(client, &bc, request).await;
        let wanted = new_build(&bc, number, request)?;
        let build_name = wanted.name_any();
        let build = match builds.create(&PostParams::default(), &wanted).await {
            Ok(created) => created,
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = builds
                    .get(&build_name)
                    .await
                    .map_err(api_err(format!("reading Build {build_name}")))?;
                if existing.annotations().get(naming::REQUEST_ANNOTATION)
                    != Some(&request.request_id)
                {
                    // A build this number exists for another request (lastVersion lagged behind).
                    skip_past = number;
                    continue;
                }
                existing
            }
            Err(source) => {
                return Err(Error::Api {
                    action: format!("creating Build {build_name}"),
                    source,
                })
            }
        };
        if !request.leave_last_version {
            raise_last_version(&configs, bc, number, request).await?;
        }
        return Ok(build);
    }
    Err(Error::Contended(name.into(), MAX_ATTEMPTS))
}

/// `request` with the current image of every ImageChange trigger tag it does not carry, read
/// from the ImageStreams. A tag without an image, or whose stream cannot be read, records nothing
/// (a trigger that names another namespace's stream the requester may not read, say).
async fn with_trigger_images(
    client: &kube::Client,
    bc: &BuildConfig,
    request: &BuildRequest,
) -> BuildRequest {
    let mut request = request.clone();
    for tag in trigger_images::unresolved_tags(bc, &request) {
        let streams: Api<ImageStream> = Api::namespaced(client.clone(), &tag.namespace);
        match streams.get_opt(&tag.stream).await {
            Ok(stream) => {
                let image = stream.and_then(|s| {
                    let status = s.status?;
                    crate::api::current_image(&status, &tag.tag)
                        .map(|e| e.docker_image_reference.clone())
                });
                if let Some(image) = image {
                    request.trigger_images.push((tag, image));
                }
            }
            Err(e) => tracing::warn!(
                "not recording the image of ImageChange trigger {}/{}: {e}",
                tag.namespace,
                tag.name()
            ),
        }
    }
    request
}

/// The metadata of the BuildConfig's Builds, found by its label.
async fn builds_metadata(builds: &Api<Build>, config: &str) -> Result<Vec<ObjectMeta>, Error> {
    let selector = format!(
        "{}={}",
        naming::BUILD_CONFIG_LABEL,
        naming::label_value(config)
    );
    let list = builds
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Api {
            action: format!("listing the Builds of {config}"),
            source,
        })?;
    Ok(list.items.into_iter().map(|b| b.metadata).collect())
}

/// The highest number among the BuildConfig's Builds (0 when it has none).
async fn highest_build_number(builds: &Api<Build>, config: &str) -> Result<i64, Error> {
    Ok(builds_metadata(builds, config)
        .await?
        .iter()
        .filter_map(|meta| {
            meta.annotations
                .as_ref()?
                .get(naming::BUILD_NUMBER_ANNOTATION)?
                .parse::<i64>()
                .ok()
        })
        .max()
        .unwrap_or(0))
}

/// The Build a request already created, found by its request label and confirmed by annotation.
async fn find_request(
    builds: &Api<Build>,
    config: &str,
    request_id: &str,
) -> Result<Option<Build>, Error> {
    let selector = format!(
        "{}={},{}={}",
        naming::BUILD_CONFIG_LABEL,
        naming::label_value(config),
        naming::REQUEST_LABEL,
        naming::request_label(request_id)
    );
    let list = builds
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Api {
            action: format!("listing Builds of {config}"),
            source,
        })?;
    Ok(list.items.into_iter().find(|b| {
        b.annotations()
            .get(naming::REQUEST_ANNOTATION)
            .map(String::as_str)
            == Some(request_id)
    }))
}

/// Raises `status.lastVersion` to `number` (never lowers it), retrying on conflicts.
async fn raise_last_version(
    configs: &Api<BuildConfig>,
    mut bc: BuildConfig,
    number: i64,
    request: &BuildRequest,
) -> Result<(), Error> {
    let name = bc.name_any();
    for _ in 0..MAX_ATTEMPTS {
        let status = status_after(&bc, number, request, Timestamp::now());
        if bc.status.as_ref() == Some(&status) {
            return Ok(());
        }
        bc.status = Some(status);
        match configs
            .replace_status(&name, &PostParams::default(), &bc)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                bc = configs.get(&name).await.map_err(|source| Error::Api {
                    action: format!("reading BuildConfig {name}"),
                    source,
                })?;
            }
            Err(source) => {
                return Err(Error::Api {
                    action: format!("updating BuildConfig {name} status"),
                    source,
                })
            }
        }
    }
    Err(Error::Contended(name, MAX_ATTEMPTS))
}

#[cfg(test)]
#[path = "instantiate_tests.rs"]
mod tests;
