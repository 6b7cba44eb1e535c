//! The images of a BuildConfig's ImageChange triggers that a new build records (pure).
//!
//! OpenShift's build generator records the current image of every ImageChange trigger
//! (`lastTriggeredImageID`) whenever it instantiates a BuildConfig, whatever the cause, so a later
//! image change does not start a second build for an image a build already used. kiln does the
//! same for every cause. The images are also kept on the Build (an annotation): a requester that
//! does not write the BuildConfig's status (`kiln start-build`) leaves the record to the
//! controller, which reads it from the Builds numbered above `status.lastVersion`.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::BuildRequest;
use crate::api::build_config::{BuildConfigStatus, BuildTriggerType, ImageChangeTriggerStatus};
use crate::api::{BuildConfig, TagRef};
use crate::naming;

/// The ImageStreamTag of every ImageChange trigger of `bc` (a trigger without `from` watches the
/// strategy's `from`), sorted and without duplicates; paused triggers only with `include_paused`.
pub(crate) fn image_change_tags(bc: &BuildConfig, include_paused: bool) -> Vec<TagRef> {
    let namespace = bc.metadata.namespace.clone().unwrap_or_default();
    let strategy_from = bc
        .spec
        .common
        .strategy
        .docker_strategy
        .as_ref()
        .and_then(|d| d.from.as_ref());
    let mut tags: Vec<TagRef> = bc
        .spec
        .triggers
        .iter()
        .filter(|t| t.type_ == BuildTriggerType::ImageChange)
        .filter_map(|t| {
            let ict = t.image_change.clone().unwrap_or_default();
            if ict.paused == Some(true) && !include_paused {
                return None;
            }
            let from = ict.from.as_ref().or(strategy_from)?;
            TagRef::from_object_reference(from, &namespace)
        })
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The trigger tags whose current image a build for `request` still has to look up: every
/// ImageChange trigger's (paused ones too, as OpenShift records them) that the request does not
/// carry. None for a rebuild of an earlier Build, which records nothing (OpenShift's clone).
pub(crate) fn unresolved_tags(bc: &BuildConfig, request: &BuildRequest) -> Vec<TagRef> {
    if request.spec.is_some() {
        return Vec::new();
    }
    image_change_tags(bc, true)
        .into_iter()
        .filter(|tag| !request.images().any(|(t, _)| t == tag))
        .collect()
}

/// One image a Build recorded, as its annotation keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Recorded {
    /// The ImageStream's namespace.
    namespace: String,
    /// `<stream>:<tag>`.
    name: String,
    /// The image pull spec.
    image: String,
    /// Whether this image change started the build.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    cause: bool,
}

/// The value of the Build annotation that keeps the images `request` records; `None` when it
/// records none.
pub(crate) fn annotation(request: &BuildRequest) -> Option<String> {
    let cause = request.triggered_by_image.as_ref().map(|(t, _)| t);
    let recorded: Vec<Recorded> = request
        .images()
        .map(|(tag, image)| Recorded {
            namespace: tag.namespace.clone(),
            name: tag.name(),
            image: image.clone(),
            cause: cause == Some(tag),
        })
        .collect();
    if recorded.is_empty() {
        return None;
    }
    serde_json::to_string(&recorded).ok()
}

/// The images the Build of `meta` recorded, each with whether it caused the build (none when its
/// annotation is absent or unreadable: a Build is not trusted to carry a well-formed one).
pub(crate) fn recorded_by(meta: &ObjectMeta) -> Vec<(TagRef, String, bool)> {
    let Some(text) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(naming::TRIGGER_IMAGES_ANNOTATION))
    else {
        return Vec::new();
    };
    let recorded: Vec<Recorded> = serde_json::from_str(text).unwrap_or_default();
    recorded
        .into_iter()
        .filter_map(|r| {
            let reference = ObjectReference {
                kind: Some("ImageStreamTag".into()),
                namespace: Some(r.namespace),
                name: Some(r.name),
                ..ObjectReference::default()
            };
            let tag = TagRef::from_object_reference(&reference, "")?;
            Some((tag, r.image, r.cause))
        })
        .collect()
}

/// Records `image` as the `lastTriggeredImageID` of `tag`'s trigger status, at `now`. An image
/// already recorded keeps its time unless it is the build's cause (`causing`).
pub(crate) fn record(
    status: &mut BuildConfigStatus,
    bc_namespace: &str,
    tag: &TagRef,
    image: &str,
    causing: bool,
    now: Timestamp,
) {
    let reference = tag.status_reference(bc_namespace);
    let entry = ImageChangeTriggerStatus {
        last_triggered_image_id: Some(image.to_string()),
        from: Some(reference.clone()),
        last_trigger_time: Some(Time(now)),
    };
    match status
        .image_change_triggers
        .iter_mut()
        .find(|s| s.from.as_ref() == Some(&reference))
    {
        Some(existing)
            if !causing && existing.last_triggered_image_id.as_deref() == Some(image) => {}
        Some(existing) => *existing = entry,
        None => status.image_change_triggers.push(entry),
    }
}

/// `bc`'s status with the images recorded by those of its Builds (given by their metadata)
/// numbered above its `lastVersion` (started by a requester that left the status to the
/// controller), oldest first, each at its Build's creation time (`now` when it has none).
/// `lastVersion` is left as it is.
pub(crate) fn with_pending_records<'b>(
    bc: &BuildConfig,
    builds: impl IntoIterator<Item = &'b ObjectMeta>,
    now: Timestamp,
) -> BuildConfigStatus {
    let mut status = bc.status.clone().unwrap_or_default();
    let namespace = bc.metadata.namespace.clone().unwrap_or_default();
    let mut pending: Vec<(i64, &ObjectMeta)> = builds
        .into_iter()
        .filter_map(|meta| {
            let number = meta
                .annotations
                .as_ref()?
                .get(naming::BUILD_NUMBER_ANNOTATION)?
                .parse::<i64>()
                .ok()?;
            Some((number, meta))
        })
        .filter(|(n, _)| *n > status.last_version)
        .collect();
    pending.sort_by_key(|(n, _)| *n);
    for (_, meta) in pending {
        let when = meta.creation_timestamp.as_ref().map_or(now, |t| t.0);
        for (tag, image, cause) in recorded_by(meta) {
            record(&mut status, &namespace, &tag, &image, cause, when);
        }
    }
    status
}

#[cfg(test)]
#[path = "trigger_images_tests.rs"]
mod tests;
