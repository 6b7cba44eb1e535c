//! `kiln import-image`'s decisions, table-driven.

use super::*;
use crate::api::image_stream::{NamedTagEventList, TagEventCondition};
use crate::api::{ImageStreamStatus, TagEvent};

fn stream(tags: serde_json::Value) -> ImageStream {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": "base", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"tags": tags}
    }))
    .unwrap()
}

/// (from kind, from name, scheduled, insecure) of tag `tag`.
fn tag_of(is: &ImageStream, tag: &str) -> (String, String, bool, bool) {
    let t = is.spec.tags.iter().find(|t| t.name == tag).unwrap();
    let from = t.from.clone().unwrap_or_default();
    let policy = t.import_policy.clone().unwrap_or_default();
    (
        from.kind.unwrap_or_default(),
        from.name.unwrap_or_default(),
        policy.scheduled == Some(true),
        policy.insecure == Some(true),
    )
}

#[test]
fn what_import_image_writes_or_refuses() {
    let imported = stream(serde_json::json!([
        {"name": "1", "from": {"kind": "DockerImage", "name": "reg/up/base:1"}},
        {"name": "built"},
        {"name": "ref", "from": {"kind": "DockerImage", "name": "reg/up/base:1"}, "reference": true}
    ]));
    let req = |tag: &'static str, from: Option<&'static str>, confirm: bool| Request {
        namespace: "ns",
        stream: "base",
        tag,
        from,
        confirm,
        scheduled: false,
        insecure: false,
    };
    // (existing, request) → Ok((tag, kind, from)) or Err(part of the message)
    type Want = Result<(&'static str, &'static str), &'static str>;
    let cases: Vec<(Option<&ImageStream>, Request, Want)> = vec![
        (
            None,
            req("1", Some("reg/up/base:1"), false),
            Err("pass --confirm to create it"),
        ),
        (
            None,
            req("1", Some("reg/up/base:1"), true),
            Ok(("1", "reg/up/base:1")),
        ),
        // A new stream without --from imports IS:TAG, as oc does.
        (None, req("7", None, true), Ok(("7", "base:7"))),
        // Re-importing an imported tag needs nothing else.
        (
            Some(&imported),
            req("1", None, false),
            Ok(("1", "reg/up/base:1")),
        ),
        (
            Some(&imported),
            req("1", Some("reg/up/base:1"), false),
            Ok(("1", "reg/up/base:1")),
        ),
        // Another source for it needs --confirm.
        (
            Some(&imported),
            req("1", Some("reg/up/base:2"), false),
            Err("pass --confirm to import reg/up/base:2 instead"),
        ),
        (
            Some(&imported),
            req("1", Some("reg/up/base:2"), true),
            Ok(("1", "reg/up/base:2")),
        ),
        // A tag builds push to imports nothing until given a source.
        (
            Some(&imported),
            req("built", None, true),
            Err("has no from"),
        ),
        (
            Some(&imported),
            req("built", Some("reg/x:1"), false),
            Err("pass --confirm to import reg/x:1"),
        ),
        (
            Some(&imported),
            req("built", Some("reg/x:1"), true),
            Ok(("built", "reg/x:1")),
        ),
        // A missing tag.
        (
            Some(&imported),
            req("2", None, true),
            Err("pass --from IMAGE"),
        ),
        (
            Some(&imported),
            req("2", Some("reg/up/base:2"), false),
            Err("pass --confirm to add it"),
        ),
        (
            Some(&imported),
            req("2", Some("reg/up/base:2"), true),
            Ok(("2", "reg/up/base:2")),
        ),
        // References are never imported.
        (
            Some(&imported),
            req("ref", None, true),
            Err("is a reference"),
        ),
    ];
    for (i, (existing, request, want)) in cases.into_iter().enumerate() {
        let got = desired(existing, &request, "tok");
        match (got, want) {
            (Ok(is), Ok((tag, from))) => {
                assert_eq!(tag_of(&is, tag).0, "DockerImage", "case {i}");
                assert_eq!(tag_of(&is, tag).1, from, "case {i}");
                assert_eq!(
                    is.metadata.annotations.unwrap()[IMPORT_REQUEST_ANNOTATION],
                    "tok",
                    "case {i}"
                );
                // Other tags stay as they were, and an existing stream keeps its version.
                if let Some(e) = existing {
                    assert_eq!(is.metadata.resource_version, e.metadata.resource_version);
                    for t in e.spec.tags.iter().filter(|t| t.name != tag) {
                        assert!(is.spec.tags.contains(t), "case {i}");
                    }
                }
            }
            (Err(got), Err(want)) => assert!(got.contains(want), "case {i}: {got}"),
            (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn scheduled_and_insecure_are_set_and_never_cleared() {
    let is = stream(serde_json::json!([
        {"name": "1", "from": {"kind": "DockerImage", "name": "reg/up/base:1"},
         "importPolicy": {"insecure": true}}
    ]));
    let mut request = Request {
        namespace: "ns",
        stream: "base",
        tag: "1",
        scheduled: true,
        ..Request::default()
    };
    let got = desired(Some(&is), &request, "t").unwrap();
    assert!(tag_of(&got, "1").2);
    assert!(tag_of(&got, "1").3);
    request.scheduled = false;
    request.insecure = true;
    let got = desired(Some(&got), &request, "t2").unwrap();
    assert_eq!((tag_of(&got, "1").2, tag_of(&got, "1").3), (true, true));
}

#[test]
fn outcomes_are_read_once_the_controller_has_seen_the_request() {
    let event = TagEvent {
        created: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ),
        docker_image_reference: "reg/up/base@sha256:1".into(),
        image: "sha256:1".into(),
        generation: 1,
    };
    let failed = TagEventCondition {
        type_: "ImportSuccess".into(),
        status: "False".into(),
        reason: Some("NotFound".into()),
        message: Some("reg/up/base:1: manifest unknown".into()),
        ..TagEventCondition::default()
    };
    let with = |observed: Option<&str>, items: Vec<TagEvent>, conditions| {
        let mut is = stream(serde_json::json!([]));
        is.status = Some(ImageStreamStatus {
            tags: vec![NamedTagEventList {
                tag: "1".into(),
                items,
                conditions,
            }],
            observed_import_request: observed.map(Into::into),
            ..ImageStreamStatus::default()
        });
        is
    };
    let cases = [
        (with(None, vec![event.clone()], vec![]), None),
        (with(Some("old"), vec![event.clone()], vec![]), None),
        (
            with(Some("tok"), vec![event.clone()], vec![]),
            Some(Ok(Some("reg/up/base@sha256:1".to_string()))),
        ),
        (
            with(Some("tok"), vec![event.clone()], vec![failed.clone()]),
            Some(Err("NotFound: reg/up/base:1: manifest unknown".to_string())),
        ),
        (with(Some("tok"), vec![], vec![]), Some(Ok(None))),
    ];
    for (i, (is, want)) in cases.into_iter().enumerate() {
        assert_eq!(outcome(&is, "1", "tok"), want, "case {i}");
    }
    assert_eq!(stream_and_tag("base"), Ok(("base".into(), "latest".into())));
    assert_eq!(
        stream_and_tag("base:1.22"),
        Ok(("base".into(), "1.22".into()))
    );
    assert!(stream_and_tag("base:").is_err());
    assert!(stream_and_tag("Base:1").is_err());
    assert!(stream_and_tag("base:a/b").is_err());
}
