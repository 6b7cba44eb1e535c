//! new_build refuses what must never become a Build.

use super::*;
use crate::api::common::{GitSourceRevision, SourceRevision};

fn config(uri: &str) -> BuildConfig {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app", "namespace": "ns", "uid": "u-1"},
        "spec": {"source": {"type": "Git", "git": {"uri": uri}}, "strategy": {"type": "Docker"}}
    }))
    .unwrap()
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
