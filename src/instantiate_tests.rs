//! new_build refuses what must never become a Build.

use super::*;
use crate::api::common::{GitSourceRevision, SourceRevision};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn config(uri: &str) -> BuildConfig {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app", "namespace": "ns", "uid": "u-1"},
        "spec": {"source": {"type": "Git", "git": {"uri": uri}}, "strategy": {"type": "Docker"}}
    }))
    .unwrap()
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn with_commit(commit: &str) -> BuildRequest {
    BuildRequest {
        request_id: "r".into(),
        revision: Some(SourceRevision {
            type_: Some("Git".into()),
            git: Some(GitSourceRevision {
                commit: Some(commit.into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[test]
fn credentials_in_the_repository_url_are_refused_without_echoing_them() {
    for uri in [
        "https://user:s3cret-token@git.example/app.git",
        "https://s3cret-token@git.example/app.git",
        "ssh://git:s3cret-token@git.example/app.git",
    ] {
        let err = new_build(&config(uri), 1, &BuildRequest::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Credentials(_)), "{uri}: {text}");
        assert!(
            text.contains("source secret") && !text.contains("s3cret"),
            "{text}"
        );
    }
    for uri in [
        "https://git.example/app.git",
        "ssh://git@git.example/app.git",
        "git@git.example:app.git",
    ] {
        assert!(
            new_build(&config(uri), 1, &BuildRequest::default()).is_ok(),
            "{uri}"
        );
    }
}

#[test]
fn the_commit_must_be_a_hex_object_name() {
    let bc = config("https://git.example/app.git");
    for (commit, ok) in [
        ("0123abcd", true),
        ("0123456789abcdef0123456789abcdef01234567", true),
        ("main", false),
        ("HEAD~1", false),
        ("abc", false),
        ("abcd^{tree}", false),
    ] {
        let got = new_build(&bc, 1, &with_commit(commit));
        assert_eq!(got.is_ok(), ok, "{commit}: {got:?}");
        if let Err(e) = got {
            assert!(matches!(e, Error::InvalidCommit { .. }), "{e}");
        }
    }
}

fn tag(stream: &str, tag: &str) -> TagRef {
    TagRef {
        namespace: "ns".into(),
        stream: stream.into(),
        tag: tag.into(),
    }
}

/// A BuildConfig building from `base:1`.
fn from_base() -> BuildConfig {
    let mut bc = config("https://git.example/app.git");
    bc.spec.common.strategy.docker_strategy = Some(crate::api::common::DockerBuildStrategy {
        from: Some(ObjectReference {
            kind: Some("ImageStreamTag".into()),
            name: Some("base:1".into()),
            ..ObjectReference::default()
        }),
        ..Default::default()
    });
    bc
}

#[test]
fn every_recorded_trigger_image_is_written_and_the_strategy_image_pinned() {
    let bc = from_base();
    let now = Timestamp::UNIX_EPOCH;
    // (triggered_by_image, trigger_images) → (recorded (tag, image), the build's from)
    type Case<'a> = (
        Option<(TagRef, &'a str)>,
        Vec<(TagRef, &'a str)>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        // A ConfigChange build records the base's current image and builds from it.
        (
            None,
            vec![(tag("base", "1"), "reg/ns/base@sha256:1")],
            vec![("base:1", "reg/ns/base@sha256:1")],
            "reg/ns/base@sha256:1",
        ),
        // An image change of another tag records both and builds from the base's image.
        (
            Some((tag("tools", "latest"), "reg/ns/tools@sha256:7")),
            vec![(tag("base", "1"), "reg/ns/base@sha256:1")],
            vec![
                ("tools:latest", "reg/ns/tools@sha256:7"),
                ("base:1", "reg/ns/base@sha256:1"),
            ],
            "reg/ns/base@sha256:1",
        ),
        // Nothing recorded: the build keeps the tag (resolved when it starts).
        (None, vec![], vec![], "base:1"),
    ];
    for (by, others, want, from) in cases {
        let request = BuildRequest {
            request_id: "r".into(),
            triggered_by_image: by.map(|(t, i)| (t, i.to_string())),
            trigger_images: others
                .into_iter()
                .map(|(t, i)| (t, i.to_string()))
                .collect(),
            ..BuildRequest::default()
        };
        let status = status_after(&bc, 1, &request, now);
        let got: Vec<(&str, &str)> = status
            .image_change_triggers
            .iter()
            .map(|s| {
                (
                    s.from.as_ref().unwrap().name.as_str(),
                    s.last_triggered_image_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(status.last_version, 1);
        let build = new_build(&bc, 1, &request).unwrap();
        let docker = build.spec.common.strategy.docker_strategy.unwrap();
        assert_eq!(docker.from.unwrap().name.as_deref(), Some(from));
    }
}

#[test]
fn a_recorded_image_keeps_its_trigger_time_unless_it_is_the_cause() {
    let bc = from_base();
    let first = BuildRequest {
        trigger_images: vec![(tag("base", "1"), "img-1".into())],
        ..BuildRequest::default()
    };
    let mut later = bc.clone();
    later.status = Some(status_after(&bc, 1, &first, Timestamp::UNIX_EPOCH));
    let when = |s: &BuildConfigStatus| s.image_change_triggers[0].last_trigger_time.clone();
    let then = Timestamp::from_second(60).unwrap();
    // Recorded again by another build: unchanged.
    let again = status_after(&later, 2, &first, then);
    assert_eq!(when(&again), Some(Time(Timestamp::UNIX_EPOCH)));
    // The same image as a cause (a retried image change): the time moves.
    let caused = BuildRequest {
        triggered_by_image: Some((tag("base", "1"), "img-1".into())),
        ..BuildRequest::default()
    };
    assert_eq!(
        when(&status_after(&later, 2, &caused, then)),
        Some(Time(then))
    );
}

#[test]
fn an_upload_replaces_the_source_with_a_binary_one() {
    let mut bc = config("https://git.example/app.git");
    if let Some(source) = bc.spec.common.source.as_mut() {
        source.context_dir = Some("app".into());
    }
    let request = BuildRequest {
        binary: Some(BinaryBuildSource {
            as_file: Some("app.jar".into()),
        }),
        ..with_commit("0123abcd")
    };
    let build = new_build(&bc, 1, &request).unwrap();
    let source = build.spec.common.source.unwrap();
    assert_eq!(source.type_, Some(BuildSourceType::Binary));
    assert_eq!(source.git, None, "the git source is not cloned");
    assert_eq!(source.binary.unwrap().as_file.as_deref(), Some("app.jar"));
    assert_eq!(
        source.context_dir.as_deref(),
        Some("app"),
        "contextDir stays"
    );
    let revision = build.spec.common.revision.unwrap();
    assert_eq!(revision.git.unwrap().commit.as_deref(), Some("0123abcd"));
    // Without an upload the BuildConfig's source is built.
    let plain = new_build(&bc, 1, &BuildRequest::default()).unwrap();
    assert!(plain.spec.common.source.unwrap().git.is_some());
}

#[test]
fn a_rebuild_takes_the_earlier_builds_spec_and_the_overrides_on_top() {
    let bc = config("https://git.example/app.git");
    let earlier = new_build(
        &config("https://git.example/old.git"),
        4,
        &BuildRequest {
            env: vec![env("A", "1"), env("B", "2")],
            build_args: vec![env("V", "1")],
            no_cache: Some(true),
            ..with_commit("0123abcd")
        },
    )
    .unwrap();
    let request = BuildRequest {
        spec: Some(earlier.spec.common.clone()),
        env: vec![env("B", "3")],
        ..BuildRequest::default()
    };
    let build = new_build(&bc, 5, &request).unwrap();
    let common = &build.spec.common;
    assert_eq!(
        common
            .source
            .as_ref()
            .and_then(|s| s.git.as_ref())
            .map(|g| g.uri.as_str()),
        Some("https://git.example/old.git"),
        "the earlier build's source, not the BuildConfig's current one"
    );
    assert_eq!(
        common
            .revision
            .as_ref()
            .and_then(|r| r.git.as_ref())
            .and_then(|g| g.commit.as_deref()),
        Some("0123abcd")
    );
    let docker = common.strategy.docker_strategy.clone().unwrap_or_default();
    assert_eq!(docker.env, vec![env("A", "1"), env("B", "3")]);
    assert_eq!(docker.build_args, vec![env("V", "1")]);
    assert_eq!(docker.no_cache, Some(true));
    assert_eq!(build.metadata.name.as_deref(), Some("app-5"));
}
