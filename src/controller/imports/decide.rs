//! ImageStream imports (pure): what each spec tag points at, whether its import is due, and the
//! status an import's outcome gives the tag.

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::image_stream::{
    ImageStreamStatus, NamedTagEventList, TagEventCondition, TagReference,
};
use crate::api::{ImageRef, TagEvent, TagRef};
use crate::registry::digest::{check_reference, repository};

/// The condition type of a tag's import (OpenShift's).
pub(crate) const IMPORT_SUCCESS: &str = "ImportSuccess";

/// Where a spec tag's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// An external image, imported: its digest asked of its registry.
    Import {
        /// The pull spec, `host/repo:tag` (or `…@digest`).
        image: String,
        /// `importPolicy.insecure`: plain HTTP or unchecked TLS allowed.
        insecure: bool,
        /// `importPolicy.scheduled`: imported again every interval.
        scheduled: bool,
    },
    /// `reference: true`: the tag points at the pull spec as written; nothing is imported.
    Reference(String),
    /// Another ImageStreamTag: this tag follows its current image.
    Tag(TagRef),
    /// One image of another ImageStream, by digest.
    Image(ImageRef),
}

impl Source {
    /// What identifies an import: a changed source or policy imports again.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Import {
                image, insecure, ..
            } => format!("import {image} insecure={insecure}"),
            Self::Reference(image) => format!("reference {image}"),
            Self::Tag(t) => format!("tag {}/{}", t.namespace, t.name()),
            Self::Image(i) => format!("image {}/{}", i.namespace, i.name()),
        }
    }
}

/// What a spec tag of a stream in `namespace` names: `Ok(None)` without `from`, `Err` (the
/// condition's message) for a `from` kiln cannot follow.
pub(crate) fn source_of(
    tag: &TagReference,
    stream: &str,
    namespace: &str,
) -> Result<Option<Source>, String> {
    let Some(from) = tag.from.as_ref() else {
        return Ok(None);
    };
    let name = from.name.clone().unwrap_or_default();
    match from.kind.as_deref().unwrap_or("DockerImage") {
        "DockerImage" => {
            check_reference(&name)
                .map_err(|e| format!("from.name {name:?} is not an image reference: {e}"))?;
            if tag.reference == Some(true) {
                return Ok(Some(Source::Reference(name)));
            }
            let policy = tag.import_policy.clone().unwrap_or_default();
            Ok(Some(Source::Import {
                image: name,
                insecure: policy.insecure == Some(true),
                scheduled: policy.scheduled == Some(true),
            }))
        }
        "ImageStreamTag" => {
            let r = TagRef::from_object_reference(from, namespace)
                .ok_or_else(|| format!("from.name {name:?} is not <stream>:<tag>"))?;
            if r.namespace == namespace && r.stream == stream && r.tag == tag.name {
                return Err(format!("tag {} refers to itself", tag.name));
            }
            Ok(Some(Source::Tag(r)))
        }
        "ImageStreamImage" => ImageRef::from_object_reference(from, namespace)
            .map(|i| Some(Source::Image(i)))
            .ok_or_else(|| format!("from.name {name:?} is not <stream>@<digest>")),
        other => Err(format!(
            "from.kind {other:?} is not supported (DockerImage, ImageStreamTag or ImageStreamImage)"
        )),
    }
}

/// The last import of one tag, as this controller remembers it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Attempt {
    /// [`Source::key`] of what was imported.
    pub(crate) key: String,
    /// When.
    pub(crate) at: Instant,
    /// What came of it.
    pub(crate) outcome: Outcome,
}

/// What an import (or a reference resolved from the cache) gives a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The tag points at this image.
    Image {
        /// The pull spec, `<repository>@<digest>` (or the reference as written).
        reference: String,
        /// The digest (empty for a `reference: true` tag, which is never asked of a registry).
        digest: String,
    },
    /// The import failed.
    Failed {
        /// A status reason (`NotFound`, `Unauthorized`, `InternalError`, `InvalidImageReference`).
        reason: String,
        /// The registry's message, or what is wrong with the tag.
        message: String,
    },
    /// The source has no image yet (a tag of another stream without one).
    Pending,
}

/// When an import is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Import now.
    Now,
    /// Not now; look again at this instant (a scheduled re-import).
    At(Instant),
    /// Not until the tag or a request changes.
    Never,
}

/// Whether importing `source` is due: never imported by this controller (unless the status
/// already shows an image from the same repository for a tag that is not scheduled, which a
/// restarted controller must not import again), imported from another source, requested
/// (`kiln import-image`), or scheduled and `interval` old.
pub(crate) fn import_due(
    source: &Source,
    last: Option<&Attempt>,
    current: Option<&TagEvent>,
    requested: bool,
    now: Instant,
    interval: Duration,
) -> Due {
    let Source::Import {
        image, scheduled, ..
    } = source
    else {
        return Due::Never;
    };
    if requested {
        return Due::Now;
    }
    match last {
        Some(a) if a.key == source.key() => {
            if !scheduled {
                return Due::Never;
            }
            let next = a.at + interval;
            if now >= next {
                Due::Now
            } else {
                Due::At(next)
            }
        }
        Some(_) => Due::Now,
        None => {
            let same_repository = current.is_some_and(|event| {
                repository(&event.docker_image_reference).is_some()
                    && repository(&event.docker_image_reference) == repository(image)
            });
            if same_repository && !scheduled {
                Due::Never
            } else {
                Due::Now
            }
        }
    }
}

/// The TagEvent pull spec of an imported image: `<repository>@<digest>` of the source
/// (`referencePolicy: Source`; kiln has no registry to pull through).
pub(crate) fn imported_reference(image: &str, digest: &str) -> Option<String> {
    Some(format!("{}@{digest}", repository(image)?))
}

/// Applies `outcome` to `tag` of `status`, for stream generation `generation` at `now`, keeping
/// at most `limit` TagEvents: an image becomes the current TagEvent unless it already is (and
/// clears the import condition); a failure sets `ImportSuccess=False` with its reason and message
/// (keeping the history); `Pending` changes nothing. Returns whether anything changed.
pub(crate) fn apply(
    status: &mut ImageStreamStatus,
    tag: &str,
    outcome: &Outcome,
    generation: i64,
    now: Timestamp,
    limit: usize,
) -> bool {
    if *outcome == Outcome::Pending {
        return false;
    }
    let index = match status.tags.iter().position(|t| t.tag == tag) {
        Some(i) => i,
        None => {
            status.tags.push(NamedTagEventList {
                tag: tag.to_string(),
                ..NamedTagEventList::default()
            });
            status.tags.len() - 1
        }
    };
    let list = &mut status.tags[index];
    let before = list.clone();
    match outcome {
        Outcome::Image { reference, digest } => {
            list.conditions.retain(|c| c.type_ != IMPORT_SUCCESS);
            let current = list
                .items
                .first()
                .is_some_and(|e| e.image == *digest && e.docker_image_reference == *reference);
            if !current {
                list.items.insert(
                    0,
                    TagEvent {
                        created: Time(now),
                        docker_image_reference: reference.clone(),
                        image: digest.clone(),
                        generation,
                    },
                );
                list.items.truncate(limit.max(1));
            }
        }
        Outcome::Failed { reason, message } => {
            let existing = list
                .conditions
                .iter()
                .position(|c| c.type_ == IMPORT_SUCCESS);
            let unchanged = existing.is_some_and(|i| {
                let c = &list.conditions[i];
                c.status == "False"
                    && c.reason.as_ref() == Some(reason)
                    && c.message.as_ref() == Some(message)
            });
            if !unchanged {
                let condition = TagEventCondition {
                    type_: IMPORT_SUCCESS.into(),
                    status: "False".into(),
                    last_transition_time: Some(Time(now)),
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                    generation,
                };
                match existing {
                    Some(i) => list.conditions[i] = condition,
                    None => list.conditions.push(condition),
                }
            }
        }
        Outcome::Pending => {}
    }
    let changed = *list != before;
    if !changed && before.items.is_empty() && before.conditions.is_empty() {
        // A list added only to be left empty is not kept.
        status.tags.remove(index);
    }
    changed
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
