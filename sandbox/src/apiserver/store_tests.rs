//! Tests of the object store.
use super::*;
use serde_json::json;

fn object(name: &str) -> Value {
    json!({"metadata": {"name": name, "uid": format!("uid-{name}")}})
}

#[test]
fn resource_versions_increase_and_events_replay() {
    let mut store = Store::new(100);
    let key = ObjectKey::new("/configmaps", "ns", "a");
    let first = store.put(key.clone(), object("a"));
    let second = store.put(key.clone(), object("a"));
    let rv1 = meta::resource_version(&first);
    let rv2 = meta::resource_version(&second);
    assert!(rv2 > rv1);
    let removed = store.remove(&key).unwrap();
    assert!(meta::resource_version(&removed) > rv2);
    let events = store.events_since(rv1).unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, vec![EventType::Modified, EventType::Deleted]);
    assert!(store.key_of_uid("uid-a").is_none());
}

#[test]
fn owner_and_foreground_indexes_follow_every_change() {
    let mut store = Store::new(100);
    let owned = |name: &str, owner: &str| {
        json!({"metadata": {"name": name, "uid": format!("uid-{name}"),
            "ownerReferences": [{"uid": owner}]}})
    };
    let a = ObjectKey::new("/pods", "ns", "a");
    let b = ObjectKey::new("/pods", "ns", "b");
    store.put(a.clone(), owned("a", "o1"));
    store.put(b.clone(), owned("b", "o1"));
    let of = |store: &Store, owner: &str| -> Vec<String> {
        store
            .dependents_of(&HashSet::from([owner.to_string()]))
            .into_iter()
            .map(|(k, _)| k.name)
            .collect()
    };
    assert_eq!(of(&store, "o1"), ["a", "b"]);
    store.put(b.clone(), owned("b", "o2"));
    assert_eq!(
        of(&store, "o1"),
        ["a"],
        "a changed owner leaves the old entry"
    );
    assert_eq!(of(&store, "o2"), ["b"]);
    store.remove(&a);
    assert!(of(&store, "o1").is_empty());

    let deleting = json!({"metadata": {"name": "c", "uid": "uid-c",
        "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FOREGROUND_FINALIZER]}});
    let c = ObjectKey::new("/builds", "ns", "c");
    store.put(c.clone(), deleting);
    assert_eq!(store.foreground_deleting().len(), 1);
    store.put(c.clone(), object("c"));
    assert!(store.foreground_deleting().is_empty(), "finalizer released");
}

#[test]
fn compaction_expires_old_versions() {
    let mut store = Store::new(2);
    for name in ["a", "b", "c"] {
        store.put(ObjectKey::new("/configmaps", "ns", name), object(name));
    }
    assert!(store.events_since(1).is_none());
    let latest = store.resource_version();
    assert_eq!(store.events_since(latest).unwrap().len(), 0);
    store.compact();
    assert!(store.events_since(latest - 1).is_none());
}

#[test]
fn range_stays_within_resource_and_namespace() {
    let mut store = Store::new(100);
    for (ns, name) in [("a", "x"), ("b", "y"), ("b", "z")] {
        store.put(ObjectKey::new("/configmaps", ns, name), object(name));
    }
    store.put(ObjectKey::new("/secrets", "b", "s"), object("s"));
    let names: Vec<_> = store
        .range("/configmaps", Some("b"), None)
        .map(|(k, _)| k.name.clone())
        .collect();
    assert_eq!(names, vec!["y", "z"]);
    let all: Vec<_> = store
        .range("/configmaps", None, None)
        .map(|(k, _)| k.name.clone())
        .collect();
    assert_eq!(all, vec!["x", "y", "z"]);
    let after = ObjectKey::new("/configmaps", "b", "y");
    let rest: Vec<_> = store
        .range("/configmaps", None, Some(&after))
        .map(|(k, _)| k.name.clone())
        .collect();
    assert_eq!(rest, vec!["z"]);
}

#[test]
fn labelled_range_is_the_filtered_range_through_updates_and_deletes() {
    use crate::apiserver::selector::LabelSelector;
    let labelled = |name: &str, labels: Value| json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels}});
    let mut store = Store::new(100);
    for (resource, ns, name, labels) in [
        ("/pods", "a", "p1", json!({"app": "x", "tier": "web"})),
        ("/pods", "a", "p2", json!({"app": "y"})),
        ("/pods", "b", "p3", json!({"app": "x"})),
        ("/pods", "b", "p4", json!({"app": "x", "tier": "db"})),
        ("/pods", "b", "p5", json!({"app": 7})),
        ("/configmaps", "a", "c1", json!({"app": "x"})),
    ] {
        store.put(ObjectKey::new(resource, ns, name), labelled(name, labels));
    }
    // Relabelled (leaves app=x) and removed objects leave the index.
    store.put(
        ObjectKey::new("/pods", "b", "p3"),
        labelled("p3", json!({"app": "z"})),
    );
    store.remove(&ObjectKey::new("/pods", "b", "p4"));
    let selectors = [
        "",
        "app=x",
        "app==x",
        "app=z",
        "app=7",
        "app=none",
        "app=x,tier=web",
        "tier!=web,app=x",
        "app in (x,y)",
        "!tier",
    ];
    let afters = [
        None,
        Some(ObjectKey::new("/pods", "a", "p1")),
        Some(ObjectKey::new("/pods", "b", "p3")),
    ];
    for text in selectors {
        let selector = LabelSelector::parse(text).unwrap();
        for namespace in [None, Some("a"), Some("b")] {
            for after in &afters {
                let names = |it: Box<dyn Iterator<Item = (&ObjectKey, &Arc<Value>)> + '_>| {
                    it.filter(|(_, o)| selector.matches(o))
                        .map(|(k, _)| format!("{}/{}", k.namespace, k.name))
                        .collect::<Vec<_>>()
                };
                let scanned = names(Box::new(store.range("/pods", namespace, after.as_ref())));
                let indexed = names(store.range_labelled(
                    "/pods",
                    namespace,
                    after.as_ref(),
                    selector.required_label(),
                ));
                assert_eq!(
                    indexed, scanned,
                    "{text:?} in {namespace:?} after {after:?}"
                );
            }
        }
    }
    let x = LabelSelector::parse("app=x").unwrap();
    let all: Vec<_> = store
        .range_labelled("/pods", None, None, x.required_label())
        .map(|(k, _)| k.name.clone())
        .collect();
    assert_eq!(
        all,
        vec!["p1"],
        "relabelled and deleted objects are gone from the index"
    );
    assert!(store
        .labelled
        .keys()
        .all(|(r, _, v)| r != "/pods" || v != "7"));
}
