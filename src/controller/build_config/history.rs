//! History (pure): which finished builds to prune, and ImageStream tag history.

use k8s_openapi::jiff::Timestamp;

use crate::api::image_stream::{ImageStreamStatus, NamedTagEventList};
use crate::api::{BuildPhase, TagEvent};

/// How many TagEvents a tag keeps unless configured otherwise.
pub(crate) const DEFAULT_TAG_HISTORY_LIMIT: usize = 10;

/// What pruning needs to know of one build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FinishedBuild {
    /// The Build's name.
    pub(crate) name: String,
    /// Its number within the BuildConfig (breaks creation-time ties).
    pub(crate) number: i64,
    /// Its phase.
    pub(crate) phase: BuildPhase,
    /// When it was created.
    pub(crate) created: Option<Timestamp>,
}

type PhaseFilter = fn(BuildPhase) -> bool;

/// The builds to delete so that at most `successful` Complete and `failed` Failed/Error/Cancelled
/// builds remain, newest kept (OpenShift's `HandleBuildPruning`). `None` keeps everything.
pub(crate) fn builds_to_prune(
    builds: &[FinishedBuild],
    successful: Option<i32>,
    failed: Option<i32>,
) -> Vec<String> {
    let mut prune = Vec::new();
    let groups: [(PhaseFilter, Option<i32>); 2] = [
        (|p| p == BuildPhase::Complete, successful),
        (
            |p| {
                matches!(
                    p,
                    BuildPhase::Failed | BuildPhase::Error | BuildPhase::Cancelled
                )
            },
            failed,
        ),
    ];
    for (in_group, limit) in groups {
        let Some(limit) = limit else { continue };
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        let mut group: Vec<&FinishedBuild> = builds.iter().filter(|b| in_group(b.phase)).collect();
        group.sort_by_key(|b| std::cmp::Reverse((b.created, b.number)));
        prune.extend(group.into_iter().skip(keep).map(|b| b.name.clone()));
    }
    prune
}

/// Prepends `event` to `tag`'s history, keeping at most `limit` events. Returns false (and
/// changes nothing) when the tag already points at the same image: one image, one TagEvent.
pub(crate) fn record_tag_event(
    status: &mut ImageStreamStatus,
    tag: &str,
    event: TagEvent,
    limit: usize,
) -> bool {
    let position = status.tags.iter().position(|t| t.tag == tag);
    let list = match position {
        Some(i) => &mut status.tags[i],
        None => {
            status.tags.push(NamedTagEventList {
                tag: tag.to_string(),
                ..NamedTagEventList::default()
            });
            let last = status.tags.len() - 1;
            &mut status.tags[last]
        }
    };
    if list
        .items
        .first()
        .is_some_and(|current| current.image == event.image)
    {
        return false;
    }
    list.items.insert(0, event);
    list.items.truncate(limit.max(1));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::current_image;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use BuildPhase::*;

    fn fb(number: i64, phase: BuildPhase) -> FinishedBuild {
        FinishedBuild {
            name: format!("bc-{number}"),
            number,
            phase,
            created: Some(Timestamp::from_second(1_700_000_000 + number).unwrap()),
        }
    }

    #[test]
    fn pruning_table() {
        let builds: Vec<_> = (1..=6)
            .map(|n| fb(n, Complete))
            .chain([
                fb(7, Failed),
                fb(8, Error),
                fb(9, Cancelled),
                fb(10, Running),
                fb(11, New),
            ])
            .collect();
        let cases: Vec<(Option<i32>, Option<i32>, Vec<&str>)> = vec![
            (Some(5), Some(5), vec!["bc-1"]),
            (
                Some(2),
                Some(1),
                vec!["bc-4", "bc-3", "bc-2", "bc-1", "bc-8", "bc-7"],
            ),
            (
                Some(0),
                None,
                vec!["bc-6", "bc-5", "bc-4", "bc-3", "bc-2", "bc-1"],
            ),
            (None, None, vec![]),
            (Some(10), Some(0), vec!["bc-9", "bc-8", "bc-7"]),
        ];
        for (ok, failed, want) in cases {
            assert_eq!(
                builds_to_prune(&builds, ok, failed),
                want,
                "limits {ok:?}/{failed:?}"
            );
        }
    }

    fn event(image: &str, second: i64) -> TagEvent {
        TagEvent {
            created: Time(Timestamp::from_second(second).unwrap()),
            docker_image_reference: format!("registry/ns/is@{image}"),
            image: image.into(),
            generation: 1,
        }
    }

    #[test]
    fn tag_history_prepends_caps_and_ignores_repeats() {
        let mut status = ImageStreamStatus::default();
        assert!(record_tag_event(
            &mut status,
            "latest",
            event("sha256:a", 1),
            3
        ));
        assert!(
            !record_tag_event(&mut status, "latest", event("sha256:a", 2), 3),
            "the same image twice is one event"
        );
        for (i, img) in ["sha256:b", "sha256:c", "sha256:d"].iter().enumerate() {
            assert!(record_tag_event(
                &mut status,
                "latest",
                event(img, 3 + i as i64),
                3
            ));
        }
        let images: Vec<_> = status.tags[0]
            .items
            .iter()
            .map(|e| e.image.as_str())
            .collect();
        assert_eq!(images, ["sha256:d", "sha256:c", "sha256:b"]);
        assert!(record_tag_event(
            &mut status,
            "stable",
            event("sha256:a", 9),
            3
        ));
        assert_eq!(current_image(&status, "stable").unwrap().image, "sha256:a");
        assert_eq!(current_image(&status, "latest").unwrap().image, "sha256:d");
        assert!(current_image(&status, "missing").is_none());
    }
}
