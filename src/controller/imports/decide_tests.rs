//! The import decisions, table-driven.

use super::*;
use crate::api::image_stream::TagImportPolicy;
use k8s_openapi::api::core::v1::ObjectReference;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn spec_tag(kind: Option<&str>, name: &str, reference: bool, policy: (bool, bool)) -> TagReference {
    TagReference {
        name: "latest".into(),
        from: Some(ObjectReference {
            kind: kind.map(Into::into),
            name: Some(name.into()),
            ..ObjectReference::default()
        }),
        reference: Some(reference),
        import_policy: Some(TagImportPolicy {
            insecure: Some(policy.0),
            scheduled: Some(policy.1),
            import_mode: None,
        }),
        ..TagReference::default()
    }
}

#[test]
fn sources_of_spec_tags() {
    let tag_ref = |ns: &str, stream: &str, tag: &str| TagRef {
        namespace: ns.into(),
        stream: stream.into(),
        tag: tag.into(),
    };
    let cases: Vec<(TagReference, Result<Option<Source>, &str>)> = vec![
        (TagReference::default(), Ok(None)),
        (
            spec_tag(
                Some("DockerImage"),
                "127.0.0.1:5000/up/base:1",
                false,
                (true, true),
            ),
            Ok(Some(Source::Import {
                image: "127.0.0.1:5000/up/base:1".into(),
                insecure: true,
                scheduled: true,
            })),
        ),
        // No kind is a DockerImage (OpenShift's default for a tag's from).
        (
            spec_tag(None, "quay.io/x/y", false, (false, false)),
            Ok(Some(Source::Import {
                image: "quay.io/x/y".into(),
                insecure: false,
                scheduled: false,
            })),
        ),
        (
            spec_tag(Some("DockerImage"), "quay.io/x/y:1", true, (false, true)),
            Ok(Some(Source::Reference("quay.io/x/y:1".into()))),
        ),
        (
            spec_tag(
                Some("DockerImage"),
                "Not A Reference",
                false,
                (false, false),
            ),
            Err("is not an image reference"),
        ),
        (
            spec_tag(Some("ImageStreamTag"), "other:1", false, (false, false)),
            Ok(Some(Source::Tag(tag_ref("ns", "other", "1")))),
        ),
        (
            spec_tag(Some("ImageStreamTag"), "is:latest", false, (false, false)),
            Err("refers to itself"),
        ),
        (
            spec_tag(Some("ImageStreamTag"), "is:other", false, (false, false)),
            Ok(Some(Source::Tag(tag_ref("ns", "is", "other")))),
        ),
        (
            spec_tag(
                Some("ImageStreamImage"),
                &format!("other@{D1}"),
                false,
                (false, false),
            ),
            Ok(Some(Source::Image(ImageRef {
                namespace: "ns".into(),
                stream: "other".into(),
                digest: D1.into(),
            }))),
        ),
        (
            spec_tag(Some("ImageStreamImage"), "other:1", false, (false, false)),
            Err("is not <stream>@<digest>"),
        ),
        (
            spec_tag(Some("Image"), "x", false, (false, false)),
            Err("from.kind \"Image\" is not supported"),
        ),
    ];
    for (tag, want) in cases {
        let got = source_of(&tag, "is", "ns");
        match (&got, &want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{tag:?}"),
            (Err(g), Err(w)) => assert!(g.contains(w), "{g} lacks {w}"),
            _ => panic!("{tag:?}: got {got:?}, want {want:?}"),
        }
    }
}

fn event(reference: &str, digest: &str) -> TagEvent {
    TagEvent {
        created: Time(Timestamp::UNIX_EPOCH),
        docker_image_reference: reference.into(),
        image: digest.into(),
        generation: 1,
    }
}

#[test]
fn when_imports_are_due() {
    let now = Instant::now();
    let interval = Duration::from_secs(900);
    let import = |image: &str, scheduled: bool| Source::Import {
        image: image.into(),
        insecure: false,
        scheduled,
    };
    let attempt = |source: &Source, ago: u64| Attempt {
        key: source.key(),
        at: now - Duration::from_secs(ago),
        outcome: Outcome::Pending,
    };
    let plain = import("reg:5000/up/base:1", false);
    let scheduled = import("reg:5000/up/base:1", true);
    let imported = event(&format!("reg:5000/up/base@{D1}"), D1);
    let elsewhere = event(&format!("reg:5000/other/base@{D1}"), D1);
    let reference = Source::Reference("reg:5000/up/base:1".into());
    // (source, last attempt, current TagEvent, requested) → due
    type Case<'a> = (&'a Source, Option<Attempt>, Option<&'a TagEvent>, bool, Due);
    let cases: Vec<Case> = vec![
        // Never imported, nothing in the status: now.
        (&plain, None, None, false, Due::Now),
        // A restarted controller: the status has this repository's image; not scheduled, so
        // not again (OpenShift imports such a tag once).
        (&plain, None, Some(&imported), false, Due::Never),
        // ... unless the source moved to another repository, or an import is requested.
        (&plain, None, Some(&elsewhere), false, Due::Now),
        (&plain, None, Some(&imported), true, Due::Now),
        // Scheduled: a restarted controller imports once at once.
        (&scheduled, None, Some(&imported), false, Due::Now),
        // Imported by this controller: a plain tag is done, whatever happened.
        (&plain, Some(attempt(&plain, 5000)), None, false, Due::Never),
        // Scheduled: again once the interval has passed, else at that time.
        (
            &scheduled,
            Some(attempt(&scheduled, 900)),
            None,
            false,
            Due::Now,
        ),
        (
            &scheduled,
            Some(attempt(&scheduled, 100)),
            None,
            false,
            Due::At(now + Duration::from_secs(800)),
        ),
        // Scheduling a tag imported a second ago: at the next interval.
        (
            &scheduled,
            Some(attempt(&plain, 1)),
            None,
            false,
            Due::At(now + Duration::from_secs(899)),
        ),
        // Another source or insecure setting: now.
        (
            &plain,
            Some(attempt(
                &Source::Import {
                    image: "reg:5000/up/base:1".into(),
                    insecure: true,
                    scheduled: false,
                },
                1,
            )),
            Some(&imported),
            false,
            Due::Now,
        ),
        (
            &plain,
            Some(attempt(&import("reg:5000/up/base:2", false), 1)),
            Some(&imported),
            false,
            Due::Now,
        ),
        // References and other streams' tags are never imported.
        (&reference, None, None, true, Due::Never),
    ];
    for (i, (source, last, current, requested, want)) in cases.into_iter().enumerate() {
        let got = import_due(source, last.as_ref(), current, requested, now, interval);
        assert_eq!(got, want, "case {i}: {source:?}");
    }
}

#[test]
fn outcomes_applied_to_the_status() {
    let now = Timestamp::from_second(100).unwrap();
    let image = |d: &str| Outcome::Image {
        reference: format!("reg/up/base@{d}"),
        digest: d.into(),
    };
    let failed = |m: &str| Outcome::Failed {
        reason: "NotFound".into(),
        message: m.into(),
    };
    let mut status = ImageStreamStatus::default();
    // (outcome, changed?, images newest first, condition message)
    let steps: Vec<(Outcome, bool, Vec<&str>, Option<&str>)> = vec![
        (Outcome::Pending, false, vec![], None),
        (
            failed("manifest unknown"),
            true,
            vec![],
            Some("manifest unknown"),
        ),
        (
            failed("manifest unknown"),
            false,
            vec![],
            Some("manifest unknown"),
        ),
        (image(D1), true, vec![D1], None),
        (image(D1), false, vec![D1], None),
        (failed("unauthorized"), true, vec![D1], Some("unauthorized")),
        (image(D2), true, vec![D2, D1], None),
        (image(D1), true, vec![D1, D2, D1], None),
        (image(D2), true, vec![D2, D1, D2], None),
    ];
    for (i, (outcome, changed, images, message)) in steps.into_iter().enumerate() {
        assert_eq!(
            apply(&mut status, "latest", &outcome, 3, now, 3),
            changed,
            "step {i}"
        );
        let list = status.tags.iter().find(|t| t.tag == "latest");
        let got: Vec<&str> = list
            .map(|l| l.items.iter().map(|e| e.image.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(got, images, "step {i}");
        let condition = list.and_then(|l| l.conditions.iter().find(|c| c.type_ == IMPORT_SUCCESS));
        assert_eq!(
            condition.and_then(|c| c.message.as_deref()),
            message,
            "step {i}"
        );
        if let Some(c) = condition {
            assert_eq!(c.status, "False");
            assert_eq!(c.reason.as_deref(), Some("NotFound"));
            assert_eq!(c.generation, 3);
        }
    }
    assert!(status.tags.iter().all(|t| t.tag == "latest"));
    // A reference tag's event keeps the pull spec as written and no digest.
    let mut status = ImageStreamStatus::default();
    let reference = Outcome::Image {
        reference: "quay.io/x/y:1".into(),
        digest: String::new(),
    };
    assert!(apply(&mut status, "ref", &reference, 1, now, 10));
    assert_eq!(
        status.tags[0].items[0].docker_image_reference,
        "quay.io/x/y:1"
    );
    assert!(!apply(&mut status, "ref", &reference, 1, now, 10));
}

#[test]
fn imported_references_use_the_source_repository() {
    assert_eq!(
        imported_reference("127.0.0.1:5000/up/base:1", D1).as_deref(),
        Some(format!("127.0.0.1:5000/up/base@{D1}").as_str())
    );
    assert_eq!(
        imported_reference("golang:1.22", D1).as_deref(),
        Some(format!("docker.io/library/golang@{D1}").as_str())
    );
    assert_eq!(imported_reference("Bad Ref", D1), None);
}
