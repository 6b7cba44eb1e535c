//! `BuildConfig`: how to build an image and when (OpenShift's `build.openshift.io/v1` BuildConfig).
// Every item here is API (re-exported or reached through `pub mod`); the lint only sees the
// copies KubeSchema's `x_kube` validations make of some structs in a private module.
#![allow(unreachable_pub)]

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::CommonSpec;

/// The desired state of a BuildConfig.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "build.kiln.dev",
    version = "v1alpha1",
    kind = "BuildConfig",
    plural = "buildconfigs",
    shortname = "bc",
    namespaced,
    status = "BuildConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A BuildConfig says how to build an image (source, Dockerfile strategy, output) and which triggers start a new numbered Build.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.strategy.type"}"#,
    printcolumn = r#"{"name":"From","type":"string","jsonPath":".spec.source.type"}"#,
    printcolumn = r#"{"name":"Latest","type":"integer","jsonPath":".status.lastVersion"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigSpec {
    /// What starts a new build: webhooks, image changes, or the BuildConfig's creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<BuildTriggerPolicy>,
    /// How builds of this BuildConfig may run at the same time (default Serial).
    #[serde(default)]
    pub run_policy: RunPolicy,
    /// What each build does.
    #[serde(flatten)]
    pub common: CommonSpec,
    /// How many Complete builds to keep (default 5).
    #[serde(
        default = "default_history_limit",
        deserialize_with = "clamped_count",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = i32::MAX))]
    pub successful_builds_history_limit: Option<i32>,
    /// How many Failed, Error or Cancelled builds to keep (default 5).
    #[serde(
        default = "default_history_limit",
        deserialize_with = "clamped_count",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = i32::MAX))]
    pub failed_builds_history_limit: Option<i32>,
}

/// Decodes a count as any JSON number clamped into `0..=i32::MAX`. The CRD bounds the field, but
/// an object stored before the bound (or past an API server that skips it) must not fail to
/// decode: in a list, one such object would stop the watch of every BuildConfig.
fn clamped_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let wide = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i,
        (None, Some(_), _) => i64::MAX,
        (None, None, Some(f)) => f as i64, // saturating
        (None, None, None) => 0,
    };
    Ok(Some(i32::try_from(wide.max(0)).unwrap_or(i32::MAX)))
}

fn default_history_limit() -> Option<i32> {
    Some(5)
}

/// How builds of one BuildConfig may run at the same time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RunPolicy {
    /// One at a time, in build-number order.
    #[default]
    Serial,
    /// One at a time; queued builds older than the newest are cancelled.
    SerialLatestOnly,
    /// All at once (but never beside a running Serial build).
    Parallel,
}

impl RunPolicy {
    /// The policy's name as it appears in the API and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serial => "Serial",
            Self::SerialLatestOnly => "SerialLatestOnly",
            Self::Parallel => "Parallel",
        }
    }

    /// Parses a policy name as written in a label; a missing or unknown value means Serial.
    pub fn from_label(value: Option<&str>) -> Self {
        match value {
            Some("Parallel") => Self::Parallel,
            Some("SerialLatestOnly") => Self::SerialLatestOnly,
            _ => Self::Serial,
        }
    }
}

/// The kinds of build trigger.
///
/// OpenShift still accepts the deprecated spellings `github`, `generic` and `imageChange`
/// (openshift/api `…BuildTriggerTypeDeprecated`); they decode to the canonical value, so the
/// controller only ever sees canonical types, and the CRD accepts them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuildTriggerType {
    /// A GitHub push webhook.
    #[serde(rename = "GitHub", alias = "github")]
    GitHub,
    /// A generic webhook.
    #[serde(rename = "Generic", alias = "generic")]
    Generic,
    /// A GitLab push webhook.
    #[serde(rename = "GitLab")]
    GitLab,
    /// A Bitbucket push webhook.
    #[serde(rename = "Bitbucket")]
    Bitbucket,
    /// A change of an ImageStreamTag's current image.
    #[serde(rename = "ImageChange", alias = "imageChange")]
    ImageChange,
    /// The BuildConfig's creation.
    #[serde(rename = "ConfigChange")]
    ConfigChange,
}

/// Every spelling of a trigger type that OpenShift accepts, with its canonical value.
pub const TRIGGER_TYPE_SPELLINGS: &[(&str, BuildTriggerType)] = &[
    ("GitHub", BuildTriggerType::GitHub),
    ("Generic", BuildTriggerType::Generic),
    ("GitLab", BuildTriggerType::GitLab),
    ("Bitbucket", BuildTriggerType::Bitbucket),
    ("ImageChange", BuildTriggerType::ImageChange),
    ("ConfigChange", BuildTriggerType::ConfigChange),
    ("github", BuildTriggerType::GitHub),
    ("generic", BuildTriggerType::Generic),
    ("imageChange", BuildTriggerType::ImageChange),
];

impl BuildTriggerType {
    /// The canonical name, as kiln and OpenShift write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "GitHub",
            Self::Generic => "Generic",
            Self::GitLab => "GitLab",
            Self::Bitbucket => "Bitbucket",
            Self::ImageChange => "ImageChange",
            Self::ConfigChange => "ConfigChange",
        }
    }

    /// Parses any spelling OpenShift accepts (canonical or deprecated lower-case).
    pub fn parse(spelling: &str) -> Option<Self> {
        TRIGGER_TYPE_SPELLINGS
            .iter()
            .find(|(s, _)| *s == spelling)
            .map(|(_, t)| *t)
    }
}

impl JsonSchema for BuildTriggerType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BuildTriggerType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::lenient::string_enum(TRIGGER_TYPE_SPELLINGS.iter().map(|(s, _)| *s))
    }
}

/// One trigger of a BuildConfig.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildTriggerPolicy {
    /// The kind of trigger.
    #[serde(rename = "type")]
    pub type_: BuildTriggerType,
    /// Settings of a GitHub webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<WebHookTrigger>,
    /// Settings of a generic webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<WebHookTrigger>,
    /// Settings of a GitLab webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<WebHookTrigger>,
    /// Settings of a Bitbucket webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket: Option<WebHookTrigger>,
    /// Settings of an image change trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change: Option<ImageChangeTrigger>,
}

/// A webhook trigger and the secret callers must present.
///
/// Both `secret` and `secretReference` may be set, as OpenShift allows: a call presenting either
/// the inline secret or the referenced Secret's `WebHookSecretKey` is accepted (OpenShift's
/// `CheckSecret` tries the inline secret first, then the Secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebHookTrigger {
    /// Deprecated: the secret inline; use `secretReference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A Secret whose key `WebHookSecretKey` holds the webhook secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_reference: Option<SecretLocalReference>,
    /// Generic webhooks only: accept environment variables from the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_env: Option<bool>,
    /// kiln extension: branch globs that build (`*` within a path segment, `**` across
    /// segments, `?` one character), replacing the exact match on `source.git.ref`; a Build of
    /// another branch clones that branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    /// kiln extension: tag globs whose pushes build (tags build only when listed here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A reference to a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretLocalReference {
    /// The Secret's name.
    pub name: String,
}

/// Start a build when an ImageStreamTag's current image changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(crate::api::validate::TRIGGER_FROM_KIND_RULE).message(crate::api::validate::TRIGGER_FROM_KIND_MESSAGE))]
pub struct ImageChangeTrigger {
    /// The ImageStreamTag to watch; unset means the strategy's `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    /// Do not start builds while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Deprecated: the image that last started a build; see status.imageChangeTriggers.
    #[serde(
        default,
        rename = "lastTriggeredImageID",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_triggered_image_id: Option<String>,
}

/// The observed state of a BuildConfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigStatus {
    /// The number of the last build started from this BuildConfig.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub last_version: i64,
    /// The image each image change trigger last started a build for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_change_triggers: Vec<ImageChangeTriggerStatus>,
}

/// The image an image change trigger last started a build for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeTriggerStatus {
    /// The image pull spec that last started a build.
    #[serde(
        default,
        rename = "lastTriggeredImageID",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_triggered_image_id: Option<String>,
    /// The ImageStreamTag the trigger watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ImageStreamTagReference>,
    /// When the trigger last started a build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger_time: Option<Time>,
}

/// A reference to an ImageStreamTag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageStreamTagReference {
    /// The namespace; empty means the BuildConfig's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The ImageStreamTag's name, `<stream>:<tag>`.
    pub name: String,
}

/// The annotation that pauses a BuildConfig: instantiate refuses while it is `"true"`.
pub const PAUSED_ANNOTATION: &str = "build.kiln.dev/build-config.paused";

/// OpenShift's pause annotation; it pauses a kiln BuildConfig exactly like [`PAUSED_ANNOTATION`].
pub const OPENSHIFT_PAUSED_ANNOTATION: &str = "openshift.io/build-config.paused";

impl BuildConfig {
    /// Whether the BuildConfig is paused by kiln's or OpenShift's annotation.
    pub fn is_paused(&self) -> bool {
        self.paused_by().is_some()
    }

    /// The pause annotation set to `"true"` on the BuildConfig, if any.
    pub fn paused_by(&self) -> Option<&'static str> {
        let annotations = self.metadata.annotations.as_ref()?;
        [PAUSED_ANNOTATION, OPENSHIFT_PAUSED_ANNOTATION]
            .into_iter()
            .find(|k| annotations.get(*k).is_some_and(|v| v == "true"))
    }

    /// The pull spec that last started a build for `tag`, from `status.imageChangeTriggers`
    /// (OpenShift's `lastTriggeredImageID`).
    pub fn last_triggered_image(&self, tag: &super::TagRef) -> Option<String> {
        let namespace = self.metadata.namespace.clone().unwrap_or_default();
        self.status
            .as_ref()?
            .image_change_triggers
            .iter()
            .find_map(|s| {
                let from = s.from.as_ref()?;
                let ns = from
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&namespace);
                (ns == tag.namespace && from.name == tag.name())
                    .then(|| s.last_triggered_image_id.clone())
                    .flatten()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(limit: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"strategy": {"type": "Docker"}, "successfulBuildsHistoryLimit": limit}
        })
    }

    #[test]
    fn out_of_range_counts_decode_clamped_and_never_fail_a_list() {
        for (raw, want) in [
            (serde_json::json!(7), Some(7)),
            (serde_json::json!(3_000_000_000u64), Some(i32::MAX)),
            (
                serde_json::json!(18_446_744_073_709_551_615u64),
                Some(i32::MAX),
            ),
            (serde_json::json!(-5), Some(0)),
            (serde_json::json!(1e30), Some(i32::MAX)),
            (serde_json::Value::Null, None),
        ] {
            let bc: BuildConfig = serde_json::from_value(config(raw.clone())).unwrap();
            assert_eq!(bc.spec.successful_builds_history_limit, want, "{raw}");
        }
        assert!(serde_json::from_value::<BuildConfig>(config(serde_json::json!("five"))).is_err());
        // What a watch's initial list decodes: one poisoned object among good ones.
        let list = serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfigList", "metadata": {},
            "items": [config(serde_json::json!(3_000_000_000u64)), config(serde_json::json!(2))]
        });
        let list: kube::core::ObjectList<BuildConfig> = serde_json::from_value(list).unwrap();
        assert_eq!(list.items.len(), 2);
    }
}
