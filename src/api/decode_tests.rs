use super::*;
use crate::api::{Build, BuildConfig, ImageStream};
use kube::ResourceExt;
use serde_json::json;

fn dynamic(spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "x", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
        "spec": spec
    }))
    .unwrap()
}

#[test]
fn each_object_decodes_on_its_own() {
    let good = json!({"strategy": {"type": "Docker"}});
    let cases: Vec<(Value, Option<&str>)> = vec![
        (good.clone(), None),
        (
            json!({"strategy": {"type": "Docker"}, "completionDeadlineSeconds": 1e300}),
            // A flattened struct (the common spec) is named by its parent.
            Some("spec: invalid type: floating point `1e+300`, expected i64"),
        ),
        (
            json!({"strategy": {"type": "Docker"}, "runPolicy": 7}),
            Some("spec.runPolicy: invalid type: integer `7`"),
        ),
        (
            json!({"strategy": "Docker"}),
            Some("spec: invalid type: string \"Docker\", expected struct BuildStrategy"),
        ),
        (
            json!({"strategy": {"type": "Docker"}, "triggers": [{"type": "ImageChange", "imageChange": "latest"}]}),
            Some("spec.triggers[0].imageChange"),
        ),
    ];
    for (spec, want) in cases {
        let got = decode::<BuildConfig>(dynamic(spec.clone()));
        match (got, want) {
            (Ok(bc), None) => assert_eq!(bc.metadata.name.as_deref(), Some("x")),
            (Err(bad), Some(want)) => {
                assert!(bad.error.starts_with(want), "{spec}: {}", bad.error);
                assert_eq!(bad.object.kind.as_deref(), Some("BuildConfig"));
                assert_eq!(bad.object.namespace.as_deref(), Some("ns"));
                assert_eq!(bad.object.name.as_deref(), Some("x"));
                assert_eq!(bad.object.uid.as_deref(), Some("u1"));
                assert_eq!(bad.subject(), "BuildConfig ns/x");
            }
            (got, want) => panic!("{spec}: {got:?}, want {want:?}"),
        }
    }
    // The kind comes from the watch, whatever the object says (list items may omit it).
    let bare: DynamicObject =
        serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": {}})).unwrap();
    assert!(decode::<ImageStream>(bare).is_ok());
    let not_an_object = DynamicObject {
        types: None,
        metadata: Default::default(),
        data: json!([1]),
    };
    let bad = decode::<Build>(not_an_object).unwrap_err();
    assert_eq!(bad.error, "the object is a JSON array");
}

/// A watched object as the watch reads it: from its JSON text.
fn lenient(spec: Value) -> Lenient<BuildConfig> {
    let text = serde_json::to_string(&dynamic(spec)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn events_skip_bad_objects_and_delete_what_the_cache_knows() {
    use watcher::Event;
    let bad = || lenient(json!({"strategy": 1}));
    let good = || lenient(json!({"strategy": {"type": "Docker"}}));
    let known: BuildConfig = decode(dynamic(json!({"strategy": {"type": "Docker"}}))).unwrap();
    let none = |_: &ObjectRef<BuildConfig>| None;
    let cached = |key: &ObjectRef<BuildConfig>| {
        assert_eq!(
            (key.name.as_str(), key.namespace.as_deref()),
            ("x", Some("ns"))
        );
        Some(known.clone())
    };
    let name = |e: &Option<Event<BuildConfig>>| match e {
        Some(Event::Apply(o) | Event::InitApply(o) | Event::Delete(o)) => o.metadata.name.clone(),
        _ => None,
    };
    let (e, f) = decode_event(Event::Apply(good()), none);
    assert!(matches!(e, Some(Event::Apply(_))) && f.is_none());
    let (e, f) = decode_event(Event::InitApply(good()), none);
    assert!(matches!(e, Some(Event::InitApply(_))) && f.is_none());
    let (e, f) = decode_event(Event::Apply(bad()), cached);
    assert!(e.is_none() && f.is_some());
    let (e, f) = decode_event(Event::InitApply(bad()), cached);
    assert!(e.is_none() && f.is_some());
    let (e, f) = decode_event(Event::Delete(bad()), cached);
    assert!(matches!(e, Some(Event::Delete(_))) && f.is_some());
    assert_eq!(name(&e).as_deref(), Some("x"));
    let (e, f) = decode_event(Event::Delete(bad()), none);
    assert!(e.is_none() && f.is_some());
    assert!(matches!(
        decode_event::<BuildConfig>(Event::Init, none),
        (Some(Event::Init), None)
    ));
    assert!(matches!(
        decode_event::<BuildConfig>(Event::InitDone, none),
        (Some(Event::InitDone), None)
    ));
}

#[test]
fn lists_and_watch_events_read_each_object_on_its_own() {
    use kube::core::{ObjectList, WatchEvent};
    let good = serde_json::to_value(dynamic(json!({"strategy": {"type": "Docker"}}))).unwrap();
    let mut bad = serde_json::to_value(dynamic(json!({"strategy": 1}))).unwrap();
    bad["metadata"]["name"] = json!("y");
    bad["metadata"]["resourceVersion"] = json!("8");
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "9"},
        "items": [good, bad, [1]]});
    // As the client reads a list: from its text.
    let list: ObjectList<Lenient<BuildConfig>> = serde_json::from_str(&list.to_string()).unwrap();
    let read: Vec<(Option<String>, Option<String>, Option<String>)> = list
        .items
        .iter()
        .map(|o| match o {
            Lenient::Decoded(bc) => (bc.metadata.name.clone(), None, bc.resource_version()),
            Lenient::Undecodable(meta, bad) => (
                meta.name.clone(),
                Some(bad.error.clone()),
                o.resource_version(),
            ),
        })
        .collect();
    assert_eq!(
        read,
        [
            (Some("x".into()), None, Some("7".into())),
            (
                Some("y".into()),
                Some("spec: invalid type: integer `1`, expected struct BuildStrategy".into()),
                Some("8".into())
            ),
            (None, Some("the object is a JSON array".into()), None),
        ]
    );
    let line = format!(r#"{{"type":"MODIFIED","object":{bad}}}"#);
    match serde_json::from_str::<WatchEvent<Lenient<BuildConfig>>>(&line).unwrap() {
        WatchEvent::Modified(Lenient::Undecodable(meta, bad)) => {
            assert_eq!(meta.name.as_deref(), Some("y"));
            assert_eq!(bad.subject(), "BuildConfig ns/y");
        }
        other => panic!("{other:?}"),
    }
    // A list item without apiVersion and kind (as lists of built-in kinds send them) decodes
    // as the watched kind.
    let bare = r#"{"metadata": {"name": "b"}, "spec": {}}"#;
    assert!(matches!(
        serde_json::from_str::<Lenient<ImageStream>>(bare).unwrap(),
        Lenient::Decoded(_)
    ));
}
