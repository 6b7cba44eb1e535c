//! Tests of `ssa`.
use super::*;

const MAIN: Scope<'static> = Scope {
    subresource: None,
    has_status: true,
};

fn path(p: &str) -> FieldPath {
    p.split('.').map(String::from).collect()
}

#[test]
fn fields_round_trip() {
    let fields =
        json!({"f:spec": {"f:a": {}, "f:b": {"f:c": {}}}, "f:metadata": {"f:labels": {"f:x": {}}}});
    let paths = leaf_paths(&fields);
    assert_eq!(
        paths,
        [path("metadata.labels.x"), path("spec.a"), path("spec.b.c")]
            .into_iter()
            .collect()
    );
    assert_eq!(to_fields_v1(&paths), fields);
}

#[test]
fn changed_paths_table() {
    let old = json!({"metadata": {"name": "a", "resourceVersion": "1", "labels": {"x": "1"}}, "spec": {"a": 1, "b": {"c": 2}, "l": [1]}});
    let cases = [
        (
            json!({"metadata": {"name": "a", "resourceVersion": "2", "labels": {"x": "1"}}, "spec": {"a": 1, "b": {"c": 2}, "l": [1]}}),
            vec![],
        ),
        (
            json!({"metadata": {"labels": {"x": "2"}}, "spec": {"a": 2, "b": {"c": 2}, "l": [1, 2]}}),
            vec!["metadata.labels.x", "spec.a", "spec.l"],
        ),
        (
            json!({"spec": {"b": {"c": 2, "d": {"e": 1}}}}),
            vec!["spec.b.d.e"],
        ),
    ];
    for (new, expected) in cases {
        let got: Vec<String> = changed_paths(&old, &new)
            .into_iter()
            .map(|p| p.join("."))
            .collect();
        assert_eq!(got, expected, "{new}");
    }
}

fn apply(live: &Value, config: &Value, manager: &str, force: bool) -> Result<Value, Vec<Conflict>> {
    let base = prepare_apply(live, config, manager, MAIN, force)?;
    let mut merged = base.clone();
    json_patch::merge(&mut merged, config);
    record(
        &mut merged,
        live,
        manager,
        "Apply",
        "v1",
        MAIN,
        Some(config),
    );
    Ok(merged)
}

#[test]
fn apply_removes_fields_it_stopped_applying() {
    let first = apply(&json!({}), &json!({"spec": {"a": 1, "b": 2}}), "m", false).unwrap();
    let second = apply(&first, &json!({"spec": {"a": 1}}), "m", false).unwrap();
    assert_eq!(second["spec"], json!({"a": 1}));
    let fields = &second["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields, &json!({"f:spec": {"f:a": {}}}));
}

#[test]
fn apply_conflicts_with_other_owners_unless_forced() {
    let first = apply(&json!({}), &json!({"spec": {"a": 1, "b": 2}}), "one", false).unwrap();
    // Same value: shared ownership, no conflict.
    let shared = apply(&first, &json!({"spec": {"a": 1}}), "two", false).unwrap();
    assert_eq!(
        shared["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Different value: conflict naming the field and the owner.
    let conflicts = apply(&shared, &json!({"spec": {"b": 3}}), "two", false).unwrap_err();
    assert_eq!(
        conflicts,
        vec![Conflict {
            manager: "one".into(),
            field: ".spec.b".into()
        }]
    );
    // Forced: ownership moves.
    let forced = apply(&shared, &json!({"spec": {"b": 3}}), "two", true).unwrap();
    assert_eq!(forced["spec"], json!({"a": 1, "b": 3}));
    let owners: Vec<(String, Value)> = forced["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            ("one".to_string(), json!({"f:spec": {"f:a": {}}})),
            ("two".to_string(), json!({"f:spec": {"f:b": {}}})),
        ]
    );
    // A field another manager still owns is kept when this manager stops applying it.
    let dropped = apply(&forced, &json!({"spec": {}}), "one", false).unwrap();
    assert_eq!(dropped["spec"], json!({"b": 3}));
}

#[test]
fn updates_take_changed_fields() {
    let applied = apply(
        &json!({}),
        &json!({"spec": {"a": 1, "b": 2}}),
        "applier",
        false,
    )
    .unwrap();
    let mut updated = applied.clone();
    updated["spec"]["b"] = json!(5);
    record(&mut updated, &applied, "editor", "Update", "v1", MAIN, None);
    let owners: Vec<(String, Value)> = updated["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            ("applier".to_string(), json!({"f:spec": {"f:a": {}}})),
            ("editor".to_string(), json!({"f:spec": {"f:b": {}}})),
        ]
    );
    // Status is out of scope for main-resource writes.
    let conflicts = apply(&updated, &json!({"spec": {"b": 7}}), "applier", false).unwrap_err();
    assert_eq!(conflicts[0].manager, "editor");
}

#[test]
fn kubectl_takes_over_fields_from_client_side_apply() {
    let last = r#"{"spec":{"a":1}}"#;
    let mut live = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": last}},
                          "spec": {"a": 1}});
    record(
        &mut live,
        &json!({}),
        "kubectl-client-side-apply",
        "Update",
        "v1",
        MAIN,
        None,
    );
    let config = json!({"spec": {"a": 2}});
    assert!(prepare_apply(&live, &config, "other", MAIN, false).is_err());
    assert!(prepare_apply(&live, &config, "kubectl", MAIN, false).is_ok());
    // Once the live value differs from the annotation, the conflict is real again.
    live["spec"]["a"] = json!(5);
    assert!(prepare_apply(&live, &config, "kubectl", MAIN, false).is_err());
}
