//! Which trigger images a build records, how its Build keeps them, and how the controller reads
//! them back.

use kube::ResourceExt;

use super::*;
use crate::api::common::CommonSpec;
use crate::instantiate::new_build;

const BC: &str = r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: app, namespace: ns, uid: u-1}
spec:
  strategy:
    type: Docker
    dockerStrategy:
      from: {kind: ImageStreamTag, name: "base:1"}
  triggers:
  - type: ImageChange
    imageChange: {}
  - type: ImageChange
    imageChange:
      from: {kind: ImageStreamTag, name: tools, namespace: shared}
  - type: ImageChange
    imageChange:
      paused: true
      from: {kind: ImageStreamTag, name: "paused:x"}
  - type: ConfigChange
"#;

fn bc() -> BuildConfig {
    let doc = crate::yaml::read_documents(BC).unwrap().remove(0);
    serde_json::from_value(doc).unwrap()
}

fn tag(namespace: &str, name: &str) -> TagRef {
    let (stream, tag) = name.split_once(':').unwrap();
    TagRef {
        namespace: namespace.into(),
        stream: stream.into(),
        tag: tag.into(),
    }
}

fn names(tags: &[TagRef]) -> Vec<String> {
    tags.iter()
        .map(|t| format!("{}/{}", t.namespace, t.name()))
        .collect()
}

#[test]
fn every_image_change_trigger_is_recorded_paused_ones_too() {
    let config = bc();
    assert_eq!(
        names(&image_change_tags(&config, false)),
        ["ns/base:1", "shared/tools:latest"]
    );
    assert_eq!(
        names(&image_change_tags(&config, true)),
        ["ns/base:1", "ns/paused:x", "shared/tools:latest"]
    );
}

#[test]
fn only_the_trigger_images_a_request_lacks_are_looked_up() {
    let config = bc();
    // (request, tags still to look up)
    let cases: Vec<(BuildRequest, Vec<&str>)> = vec![
        // A manual or webhook build carries none: every trigger's image is looked up.
        (
            BuildRequest::default(),
            vec!["ns/base:1", "ns/paused:x", "shared/tools:latest"],
        ),
        // An image change carries its own image and the others the controller knew.
        (
            BuildRequest {
                triggered_by_image: Some((tag("ns", "base:1"), "img-b".into())),
                trigger_images: vec![(tag("shared", "tools:latest"), "img-t".into())],
                ..BuildRequest::default()
            },
            vec!["ns/paused:x"],
        ),
        // A rebuild of an earlier Build records nothing, as OpenShift's clone.
        (
            BuildRequest {
                spec: Some(CommonSpec::default()),
                ..BuildRequest::default()
            },
            vec![],
        ),
    ];
    for (request, want) in cases {
        assert_eq!(names(&unresolved_tags(&config, &request)), want);
    }
}

fn request(cause: Option<(&str, &str, &str)>, others: &[(&str, &str, &str)]) -> BuildRequest {
    let pair = |(ns, name, image): &(&str, &str, &str)| (tag(ns, name), image.to_string());
    BuildRequest {
        request_id: "r".into(),
        triggered_by_image: cause.as_ref().map(pair),
        trigger_images: others.iter().map(pair).collect(),
        ..BuildRequest::default()
    }
}

#[test]
fn the_build_keeps_the_images_it_recorded() {
    let config = bc();
    // (request, recorded (tag, image, cause) read back from its Build)
    let cases = [
        (request(None, &[]), vec![]),
        (
            request(None, &[("ns", "base:1", "img-b")]),
            vec![("ns/base:1", "img-b", false)],
        ),
        (
            request(
                Some(("shared", "tools:latest", "img-t")),
                &[("ns", "base:1", "img-b")],
            ),
            vec![
                ("shared/tools:latest", "img-t", true),
                ("ns/base:1", "img-b", false),
            ],
        ),
    ];
    for (request, want) in cases {
        let build = new_build(&config, 1, &request).unwrap();
        assert_eq!(
            build
                .annotations()
                .contains_key(naming::TRIGGER_IMAGES_ANNOTATION),
            !want.is_empty()
        );
        let got: Vec<(String, String, bool)> = recorded_by(&build.metadata)
            .into_iter()
            .map(|(t, i, c)| (format!("{}/{}", t.namespace, t.name()), i, c))
            .collect();
        let want: Vec<(String, String, bool)> = want
            .into_iter()
            .map(|(t, i, c)| (t.to_string(), i.to_string(), c))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn an_unreadable_record_records_nothing() {
    let mut build = new_build(&bc(), 1, &request(None, &[("ns", "base:1", "i")])).unwrap();
    for text in ["", "{", "[{\"image\": \"i\"}]", "\"base:1\""] {
        build.annotations_mut().insert(
            naming::TRIGGER_IMAGES_ANNOTATION.to_string(),
            text.to_string(),
        );
        assert!(recorded_by(&build.metadata).is_empty(), "{text:?}");
    }
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

#[test]
fn builds_above_last_version_count_as_recorded_oldest_first() {
    let mut config = bc();
    config.status = Some(BuildConfigStatus {
        last_version: 2,
        image_change_triggers: vec![ImageChangeTriggerStatus {
            last_triggered_image_id: Some("img-b1".into()),
            from: Some(tag("ns", "base:1").status_reference("ns")),
            last_trigger_time: Some(Time(at(10))),
        }],
    });
    let build = |number: i64, created: i64, req: BuildRequest| {
        let mut b = new_build(&config, number, &req).unwrap();
        b.metadata.creation_timestamp = Some(Time(at(created)));
        b
    };
    let builds = [
        // Recorded already (number ≤ lastVersion): ignored.
        build(2, 20, request(None, &[("ns", "base:1", "img-old")])),
        // Pending, listed out of order: 4 is applied after 3.
        build(
            4,
            40,
            request(None, &[("shared", "tools:latest", "img-t4")]),
        ),
        build(
            3,
            30,
            request(
                None,
                &[
                    ("ns", "base:1", "img-b1"),
                    ("shared", "tools:latest", "img-t3"),
                ],
            ),
        ),
    ];
    let status = with_pending_records(&config, builds.iter().map(|b| &b.metadata), at(99));
    assert_eq!(
        status.last_version, 2,
        "lastVersion is the caller's to raise"
    );
    let got: Vec<(String, Option<String>, Option<Timestamp>)> = status
        .image_change_triggers
        .iter()
        .map(|s| {
            (
                s.from.as_ref().unwrap().name.clone(),
                s.last_triggered_image_id.clone(),
                s.last_trigger_time.as_ref().map(|t| t.0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // The same image again keeps the time it was first recorded at.
            (
                "base:1".to_string(),
                Some("img-b1".to_string()),
                Some(at(10))
            ),
            (
                "tools:latest".to_string(),
                Some("img-t4".to_string()),
                Some(at(40))
            ),
        ]
    );
    // Nothing pending: the status as it is.
    assert_eq!(
        with_pending_records(&config, [&builds[0].metadata], at(99)),
        config.status.clone().unwrap()
    );
}
