//! `ImageStream`: a named set of tags and their image history (OpenShift's `image.openshift.io/v1`).
// Every item here is API (re-exported or reached through `pub mod`); the lint only sees the
// copies KubeSchema's `x_kube` validations make of some structs in a private module.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The desired state of an ImageStream.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "image.kiln.dev",
    version = "v1alpha1",
    kind = "ImageStream",
    plural = "imagestreams",
    shortname = "is",
    namespaced,
    status = "ImageStreamStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "An ImageStream tracks images by tag: each tag's history of pushed digests, newest first.",
    printcolumn = r#"{"name":"Image Repository","type":"string","jsonPath":".status.dockerImageRepository"}"#,
    printcolumn = r#"{"name":"Tags","type":"string","jsonPath":".status.tags[*].tag"}"#,
    printcolumn = r#"{"name":"Updated","type":"date","jsonPath":".status.tags[0].items[0].created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    /// Whether pods of the namespace may use the stream's short name as an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_policy: Option<ImageLookupPolicy>,
    /// Deprecated: an external repository the stream mirrors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_repository: Option<String>,
    /// The tags the stream should have, and where they point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagReference>,
}

/// Whether short names resolve to the stream inside the namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLookupPolicy {
    /// Resolve the stream's short name in the namespace's pods.
    #[serde(default)]
    pub local: bool,
}

/// A desired tag of an ImageStream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(crate::api::validate::FROM_KIND_RULE).message(crate::api::validate::FROM_KIND_MESSAGE))]
pub struct TagReference {
    /// The tag's name.
    pub name: String,
    /// Annotations of the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Where the tag's image comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    /// Point at `from` without importing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<bool>,
    /// The spec generation the tag was last changed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// How the tag's image is imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_policy: Option<TagImportPolicy>,
    /// How consumers pull the tag's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_policy: Option<TagReferencePolicy>,
}

/// How a tag's image is imported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagImportPolicy {
    /// Allow importing from an insecure registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Re-import periodically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<bool>,
    /// `Legacy` or `PreserveOriginal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<String>,
}

/// How consumers pull a tag's image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TagReferencePolicy {
    /// `Source` (pull from where it came from) or `Local` (through the internal registry).
    #[serde(rename = "type")]
    pub type_: String,
}

/// The observed state of an ImageStream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    /// Where the stream's images live in the internal registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_repository: Option<String>,
    /// The same repository as reachable from outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_docker_image_repository: Option<String>,
    /// Each tag's image history, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
    /// The last value of the `image.kiln.dev/import-requested` annotation whose imports the
    /// controller has made (kiln's own: `kiln import-image` waits for it; OpenShift imports
    /// synchronously through an ImageStreamImport instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_import_request: Option<String>,
}

/// Set (to a new value each time) to import every imported tag of the stream again now:
/// `kiln import-image` does, and waits until `status.observedImportRequest` equals it.
pub const IMPORT_REQUEST_ANNOTATION: &str = "image.kiln.dev/import-requested";

/// A tag's image history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamedTagEventList {
    /// The tag.
    pub tag: String,
    /// The images the tag pointed at, newest (current) first.
    #[serde(default)]
    pub items: Vec<TagEvent>,
    /// Conditions of the tag, e.g. a failed import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

/// One image a tag pointed at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    /// When the tag started pointing at the image.
    pub created: Time,
    /// The image's pull spec, `<repository>@<digest>`.
    pub docker_image_reference: String,
    /// The image's digest, `sha256:…`.
    pub image: String,
    /// The stream generation when the image was tagged.
    pub generation: i64,
}

/// A condition of a tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TagEventCondition {
    /// The condition's type, e.g. `ImportSuccess`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// A CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation the condition applies to.
    #[serde(default)]
    pub generation: i64,
}

impl TagEvent {
    /// The TagEvent of an image pushed to `repository` (`<registry>/<namespace>/<stream>`) with
    /// manifest `digest`, recorded at `now` for ImageStream generation `generation`.
    pub fn pushed(
        repository: &str,
        digest: &str,
        generation: i64,
        now: k8s_openapi::jiff::Timestamp,
    ) -> Self {
        Self {
            created: Time(now),
            docker_image_reference: format!("{repository}@{digest}"),
            image: digest.to_string(),
            generation,
        }
    }
}
