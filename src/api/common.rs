//! Types shared by `BuildConfig` and `Build`: OpenShift's `CommonSpec` and its parts.
// Every item here is API (re-exported or reached through `pub mod`); the lint only sees the
// copies KubeSchema's `x_kube` validations make of some structs in a private module.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIVolumeSource, ConfigMapVolumeSource, EnvVar, LocalObjectReference, ObjectReference,
    ResourceRequirements, SecretVolumeSource,
};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a build does: source, strategy, output and limits (OpenShift's `CommonSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    /// The ServiceAccount the build pod runs as (default `builder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Where the source comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BuildSource>,
    /// The exact source revision to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SourceRevision>,
    /// How the image is built.
    #[serde(default)]
    pub strategy: BuildStrategy,
    /// Where the built image is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BuildOutput>,
    /// Compute resources applied to every container of the build pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A command run in the built image before it is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_commit: Option<BuildPostCommitSpec>,
    /// Seconds the build pod may run before it is killed (default 604800, one week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub completion_deadline_seconds: Option<i64>,
    /// Node labels the build pod must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Mount the cluster's trusted CA bundle into the build.
    #[serde(
        default,
        rename = "mountTrustedCA",
        skip_serializing_if = "Option::is_none"
    )]
    pub mount_trusted_ca: Option<bool>,
}

/// The kind of source a build starts from.
///
/// OpenShift does not validate `source.type`: it infers the type from which source is set, and
/// older manifests write it in lower case. kiln accepts both spellings and, while decoding a
/// [`BuildSource`], replaces the type with the one inferred from its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildSourceType {
    /// A git repository.
    #[default]
    #[serde(alias = "git")]
    Git,
    /// An inline Dockerfile only.
    #[serde(alias = "dockerfile")]
    Dockerfile,
    /// An archive or file streamed in when the build starts.
    #[serde(alias = "binary")]
    Binary,
    /// No source at all.
    #[serde(alias = "none")]
    None,
}

/// Every spelling of a source type that kiln accepts.
pub const SOURCE_TYPE_SPELLINGS: &[&str] = &[
    "Git",
    "Dockerfile",
    "Binary",
    "None",
    "git",
    "dockerfile",
    "binary",
    "none",
];

/// The schema of `source.type`: every accepted spelling (not nullable; absent means inferred).
fn source_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::lenient::string_enum(SOURCE_TYPE_SPELLINGS.iter().copied())
}

/// Where the source comes from (OpenShift's `BuildSource`).
///
/// Decoding normalises it as OpenShift does: `type` becomes the type inferred from which source
/// is set (git, then binary, then dockerfile, else None), and a `Binary` type without `binary`
/// gets an empty `binary` (OpenShift's default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildSource {
    /// The kind of source; inferred from which source is set when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "source_type_schema")]
    pub type_: Option<BuildSourceType>,
    /// A git repository to clone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitBuildSource>,
    /// The sub-directory of the source the build runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_dir: Option<String>,
    /// An inline Dockerfile; it replaces any Dockerfile in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The Secret used to clone the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_secret: Option<LocalObjectReference>,
    /// A binary (archive or file) source streamed in at build start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryBuildSource>,
}

impl BuildSource {
    /// The type OpenShift infers from which source is set.
    pub fn inferred_type(&self) -> BuildSourceType {
        if self.git.is_some() {
            BuildSourceType::Git
        } else if self.binary.is_some() {
            BuildSourceType::Binary
        } else if self.dockerfile.is_some() {
            BuildSourceType::Dockerfile
        } else {
            BuildSourceType::None
        }
    }

    /// The source as OpenShift reads it: a `Binary` type without `binary` gets an empty one, and
    /// `type` is the inferred type.
    pub fn normalised(mut self) -> Self {
        if self.type_ == Some(BuildSourceType::Binary)
            && self.binary.is_none()
            && self.git.is_none()
        {
            self.binary = Some(BinaryBuildSource::default());
        }
        self.type_ = Some(self.inferred_type());
        self
    }
}

impl<'de> Deserialize<'de> for BuildSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The fields as written; [`BuildSource::normalised`] makes them canonical.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Written {
            #[serde(default, rename = "type")]
            type_: Option<BuildSourceType>,
            #[serde(default)]
            git: Option<GitBuildSource>,
            #[serde(default)]
            context_dir: Option<String>,
            #[serde(default)]
            dockerfile: Option<String>,
            #[serde(default)]
            source_secret: Option<LocalObjectReference>,
            #[serde(default)]
            binary: Option<BinaryBuildSource>,
        }
        let w = Written::deserialize(deserializer)?;
        Ok(BuildSource {
            type_: w.type_,
            git: w.git,
            context_dir: w.context_dir,
            dockerfile: w.dockerfile,
            source_secret: w.source_secret,
            binary: w.binary,
        }
        .normalised())
    }
}

/// A git repository to build from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitBuildSource {
    /// The repository URL, without credentials (they belong in the source secret).
    #[x_kube(validation = Rule::new(super::validate::URL_PASSWORD_RULE).message(super::validate::URL_CREDENTIALS_MESSAGE))]
    #[x_kube(validation = Rule::new(super::validate::URL_HTTP_USER_RULE).message(super::validate::URL_CREDENTIALS_MESSAGE))]
    pub uri: String,
    /// The branch or tag to build (default: the remote's default branch).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// The proxy used for `http` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// The proxy used for `https` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    /// Hosts that bypass the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
}

/// A binary source streamed in when the build starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BinaryBuildSource {
    /// Keep the stream as a single file with this name instead of extracting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_file: Option<String>,
}

/// An exact source revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// The kind of revision (`Git`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// A git revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSourceRevision>,
}

/// A git commit and its metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceRevision {
    /// The commit hash (4 to 64 hexadecimal digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(super::validate::COMMIT_PATTERN))]
    pub commit: Option<String>,
    /// The commit's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<SourceControlUser>,
    /// The commit's committer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<SourceControlUser>,
    /// The commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A person in the source history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceControlUser {
    /// The person's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The person's e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The build strategy kiln supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildStrategyType {
    /// Build a Dockerfile (with buildah); `docker` is accepted as OpenShift's lower-case spelling.
    #[default]
    #[serde(alias = "docker")]
    Docker,
}

impl JsonSchema for BuildStrategyType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BuildStrategyType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::lenient::string_enum(["Docker", "docker"])
    }
}

/// How the image is built (OpenShift's `BuildStrategy`; kiln carries the Docker strategy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStrategy {
    /// The strategy (`Docker`).
    #[serde(default, rename = "type")]
    pub type_: BuildStrategyType,
    /// Options of the Docker strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_strategy: Option<DockerBuildStrategy>,
}

/// How layers are kept in the built image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImageOptimizationPolicy {
    /// Keep layers and use the layer cache.
    #[default]
    None,
    /// Squash new layers into one.
    SkipLayers,
    /// Squash new layers and warn that this is deprecated behaviour.
    SkipLayersAndWarn,
}

/// Options of the Docker strategy (OpenShift's `DockerBuildStrategy` plus `target`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(crate::api::validate::FROM_KIND_RULE).message(crate::api::validate::FROM_KIND_MESSAGE))]
pub struct DockerBuildStrategy {
    /// An image that replaces the last `FROM` of the Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    /// The Secret used to pull base images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    /// Build without the layer cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    /// Environment added after every `FROM` of the Dockerfile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Always pull base images, even when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull: Option<bool>,
    /// The Dockerfile's path relative to the context directory (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_path: Option<String>,
    /// Build arguments (`--build-arg`); only name and value are used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_args: Vec<EnvVar>,
    /// How layers are kept in the built image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_optimization_policy: Option<ImageOptimizationPolicy>,
    /// Secrets and ConfigMaps mounted into `RUN` steps, never into a layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = super::validate::MAX_BUILD_VOLUMES))]
    pub volumes: Vec<BuildVolume>,
    /// kiln extension: the stage to stop at in a multistage Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A volume mounted into the build's `RUN` steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildVolume {
    /// The volume's name, unique in the build: a DNS-1123 label.
    #[schemars(length(min = 1, max = super::validate::DNS_LABEL_MAX), pattern(super::validate::DNS_LABEL_PATTERN))]
    pub name: String,
    /// What the volume holds.
    pub source: BuildVolumeSource,
    /// Where the volume is mounted in `RUN` steps.
    #[schemars(length(min = 1, max = super::validate::MAX_VOLUME_MOUNTS))]
    pub mounts: Vec<BuildVolumeMount>,
}

/// The kind of a build volume's source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BuildVolumeSourceType {
    /// A Secret.
    #[default]
    Secret,
    /// A ConfigMap.
    ConfigMap,
    /// A CSI volume.
    #[serde(rename = "CSI")]
    Csi,
}

/// The source of a build volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildVolumeSource {
    /// The kind of source.
    #[serde(rename = "type")]
    pub type_: BuildVolumeSourceType,
    /// The Secret, for type `Secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    /// The ConfigMap, for type `ConfigMap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    /// The CSI volume, for type `CSI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<CSIVolumeSource>,
}

/// Where a build volume is mounted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildVolumeMount {
    /// The absolute path in the `RUN` environment (not `/`, no `..`, not under `/dev`, `/proc`, `/sys`).
    #[schemars(length(min = 1, max = super::validate::MOUNT_PATH_MAX))]
    #[x_kube(validation = Rule::new(super::validate::MOUNT_PATH_SHAPE_RULE).message("destinationPath must be an absolute path of non-empty segments, not / and without a trailing /"))]
    #[x_kube(validation = Rule::new(super::validate::MOUNT_PATH_DOTS_RULE).message("destinationPath must not contain . or .. segments"))]
    #[x_kube(validation = Rule::new(super::validate::MOUNT_PATH_COLON_RULE).message("destinationPath must not contain ':'"))]
    #[x_kube(validation = Rule::new(super::validate::MOUNT_PATH_RESERVED_RULE).message("destinationPath must not be on or below /dev, /proc, /sys, /etc/hosts, /etc/hostname, /etc/resolv.conf or /run/.containerenv"))]
    pub destination_path: String,
}

/// Where the built image goes (OpenShift's `BuildOutput`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.to) || !has(self.to.kind) || self.to.kind in ['ImageStreamTag', 'DockerImage']").message("output.to.kind must be ImageStreamTag or DockerImage"))]
#[x_kube(validation = Rule::new("!has(self.to) || !has(self.to.kind) || self.to.kind != 'ImageStreamTag' || self.to.name.matches('^[^:@/]+:[^:@/]+$')").message("an ImageStreamTag name must be <stream>:<tag>"))]
pub struct BuildOutput {
    /// The image to push: an ImageStreamTag (`<stream>:<tag>`) or a DockerImage pull spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ObjectReference>,
    /// The Secret used to push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<LocalObjectReference>,
    /// Labels added to the image; they override kiln's automatic labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_labels: Vec<ImageLabel>,
}

/// A label added to the built image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageLabel {
    /// The label's name.
    pub name: String,
    /// The label's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A command run in the built image before it is pushed; a failure fails the build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.script) || !has(self.command) || size(self.command) == 0").message("postCommit: script and command may not both be set"))]
pub struct BuildPostCommitSpec {
    /// The command to run (replaces the image's entrypoint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the command, the script, or the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// A shell script run with `/bin/sh -ic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

impl GitSourceRevision {
    /// Whether the revision names no commit at all.
    pub fn is_empty(&self) -> bool {
        self.commit.as_deref().is_none_or(str::is_empty)
    }
}
