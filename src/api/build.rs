//! `Build`: one numbered run of a BuildConfig (OpenShift's `build.openshift.io/v1` Build).
// Every item here is API (re-exported or reached through `pub mod`); the lint only sees the
// copies KubeSchema's `x_kube` validations make of some structs in a private module.
#![allow(unreachable_pub)]

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonSpec, SourceRevision};
use super::reason::StatusReason;

/// The fields of a Build's spec that never change after creation (all but `revision` and `cancel`).
const BUILD_SPEC_IMMUTABILITY_RULE: &str = "[has(self.serviceAccount) == has(oldSelf.serviceAccount) && (!has(self.serviceAccount) || self.serviceAccount == oldSelf.serviceAccount), \
has(self.source) == has(oldSelf.source) && (!has(self.source) || self.source == oldSelf.source), \
self.strategy == oldSelf.strategy, \
has(self.output) == has(oldSelf.output) && (!has(self.output) || self.output == oldSelf.output), \
has(self.resources) == has(oldSelf.resources) && (!has(self.resources) || self.resources == oldSelf.resources), \
has(self.postCommit) == has(oldSelf.postCommit) && (!has(self.postCommit) || self.postCommit == oldSelf.postCommit), \
has(self.completionDeadlineSeconds) == has(oldSelf.completionDeadlineSeconds) && (!has(self.completionDeadlineSeconds) || self.completionDeadlineSeconds == oldSelf.completionDeadlineSeconds), \
has(self.nodeSelector) == has(oldSelf.nodeSelector) && (!has(self.nodeSelector) || self.nodeSelector == oldSelf.nodeSelector), \
has(self.triggeredBy) == has(oldSelf.triggeredBy) && (!has(self.triggeredBy) || self.triggeredBy == oldSelf.triggeredBy)].all(x, x)";

/// The desired state of a Build.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "build.kiln.dev",
    version = "v1alpha1",
    kind = "Build",
    plural = "builds",
    namespaced,
    status = "BuildStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Build is one numbered run of a BuildConfig: the source, strategy and output it was started with, and the phase, reason, digest and stages it reached.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.strategy.type"}"#,
    printcolumn = r#"{"name":"From","type":"string","jsonPath":".spec.source.type"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.reason","priority":1}"#,
    printcolumn = r#"{"name":"Started","type":"date","jsonPath":".status.startTimestamp"}"#,
    printcolumn = r#"{"name":"Completed","type":"date","jsonPath":".status.completionTimestamp","priority":1}"#
)]
#[x_kube(validation = Rule::new(BUILD_SPEC_IMMUTABILITY_RULE).message("a Build's spec is immutable once created (only revision may be set once, and cancel set to true)"))]
#[x_kube(validation = Rule::new("!has(oldSelf.revision) || (has(self.revision) && self.revision == oldSelf.revision)").message("spec.revision may be set once and never changed"))]
#[x_kube(validation = Rule::new("!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)").message("spec.cancel cannot be undone"))]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    /// What the build does, copied from its BuildConfig at creation.
    #[serde(flatten)]
    pub common: CommonSpec,
    /// What started the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggered_by: Vec<BuildTriggerCause>,
    /// kiln extension: request cancellation declaratively (no status write access needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
}

/// Why a build was started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildTriggerCause {
    /// A human-readable cause, e.g. "Manually triggered".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generic webhook that started the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_web_hook: Option<WebHookCause>,
    /// The GitHub webhook that started the build.
    #[serde(
        default,
        rename = "githubWebHook",
        skip_serializing_if = "Option::is_none"
    )]
    pub github_web_hook: Option<WebHookCause>,
    /// The GitLab webhook that started the build.
    #[serde(
        default,
        rename = "gitlabWebHook",
        skip_serializing_if = "Option::is_none"
    )]
    pub gitlab_web_hook: Option<WebHookCause>,
    /// The Bitbucket webhook that started the build.
    #[serde(
        default,
        rename = "bitbucketWebHook",
        skip_serializing_if = "Option::is_none"
    )]
    pub bitbucket_web_hook: Option<WebHookCause>,
    /// The image change that started the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change_build: Option<ImageChangeCause>,
}

/// The webhook call that started a build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookCause {
    /// The revision the webhook named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SourceRevision>,
    /// Always the redacted placeholder `<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The image change that started a build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeCause {
    /// The new image's pull spec.
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The ImageStreamTag that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ref: Option<ObjectReference>,
}

/// The lifecycle phase of a Build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BuildPhase {
    /// Created, waiting for its run policy to let it start.
    #[default]
    New,
    /// Its pod is created but has not started.
    Pending,
    /// Its pod is running.
    Running,
    /// It finished and pushed its output.
    Complete,
    /// It failed (the build itself went wrong).
    Failed,
    /// It could not run (the system went wrong).
    Error,
    /// It was cancelled.
    Cancelled,
}

impl BuildPhase {
    /// Whether the phase is final: Complete, Failed, Error or Cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Failed | Self::Error | Self::Cancelled
        )
    }

    /// The phase's name as it appears in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Complete => "Complete",
            Self::Failed => "Failed",
            Self::Error => "Error",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// The observed state of a Build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    /// The lifecycle phase.
    #[serde(default)]
    pub phase: BuildPhase,
    /// Set to true to cancel the build (as OpenShift's `oc cancel-build` does; kiln also honours
    /// `spec.cancel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<bool>,
    /// Why the build is in its phase, from OpenShift's reason set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// A human-readable explanation of the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the build pod started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    /// When the build reached a terminal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    /// How long the build ran, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// The resolved image reference the build pushes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_docker_image_reference: Option<String>,
    /// The BuildConfig the build was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ObjectReference>,
    /// What the build pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BuildStatusOutput>,
    /// The stages of the build, with their steps and durations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    /// The last lines of the failing container's output (Failed and Error builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_snippet: Option<String>,
    /// One condition per phase; the current phase's is True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<BuildCondition>,
}

/// What a build pushed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutput {
    /// The pushed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BuildStatusOutputTo>,
}

/// The pushed image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutputTo {
    /// The manifest digest the registry stored, `sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// The names of build stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StageName {
    /// Fetching the source.
    FetchInputs,
    /// Pulling base images.
    PullImages,
    /// Building the image.
    Build,
    /// Running the post-commit hook.
    PostCommit,
    /// Pushing the image.
    PushImage,
}

/// One stage of a build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageInfo {
    /// The stage.
    pub name: StageName,
    /// When the stage started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// How long the stage took, in milliseconds.
    #[serde(default)]
    pub duration_milliseconds: i64,
    /// The steps of the stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepInfo>,
}

/// One step of a build stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepInfo {
    /// The step's name, e.g. FetchGitSource, PullBaseImage, DockerBuild, PushDockerImage.
    pub name: String,
    /// When the step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// How long the step took, in milliseconds.
    #[serde(default)]
    pub duration_milliseconds: i64,
}

/// A condition of a Build: one per phase name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildCondition {
    /// The phase name this condition stands for.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the condition was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// A CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
