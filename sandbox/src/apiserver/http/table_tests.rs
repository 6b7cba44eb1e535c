//! Tests of `table`.
use super::*;
use crate::apiserver::resources::Registry;

#[test]
fn human_durations() {
    let cases = [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 120, "3h2m"),
        (47 * 3600, "47h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400, "3y"),
    ];
    for (seconds, expected) in cases {
        assert_eq!(human_duration(seconds), expected, "{seconds}");
    }
}

#[test]
fn json_paths() {
    let o = json!({"status": {"tags": [{"tag": "a", "items": [{"created": "x"}]}, {"tag": "b"}]}, "spec": {"n": 3}});
    let cases = [
        (".spec.n", vec![json!(3)]),
        (".status.tags[*].tag", vec![json!("a"), json!("b")]),
        (".status.tags[0].items[0].created", vec![json!("x")]),
        (".status.tags[5].tag", vec![]),
        (".missing.field", vec![]),
    ];
    for (path, expected) in cases {
        assert_eq!(json_path(&o, path), expected, "{path}");
    }
}

#[test]
fn tables_for_pods_and_custom_resources() {
    let registry = Registry::new();
    let pods = registry.get("", "v1", "pods").unwrap();
    let pod = json!({"metadata": {"name": "p", "creationTimestamp": meta_now()},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"ready": true, "restartCount": 1, "state": {"running": {}}},
            {"ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}});
    let t = table(pods, &[pod], json!({}), IncludeObject::Metadata);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["p", "1/2", "ExitCode:2", "1", "0s"])
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let mut custom = pods.clone();
    custom.custom = true;
    custom.printer_columns = vec![
        json!({"name": "Status", "type": "string", "jsonPath": ".status.phase"}),
        json!({"name": "Tags", "type": "string", "jsonPath": ".status.tags[*].tag"}),
    ];
    let object = json!({"metadata": {"name": "b"}, "status": {"phase": "Complete", "tags": [{"tag": "x"}, {"tag": "y"}]}});
    let t = table(&custom, &[object], json!({}), IncludeObject::None);
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Name", "Status", "Tags"]);
    assert_eq!(t["rows"][0]["cells"], json!(["b", "Complete", "x,y"]));
    assert!(t["rows"][0].get("object").is_none());
}

fn meta_now() -> String {
    crate::apiserver::meta::now()
}

#[test]
fn event_rows() {
    let registry = Registry::new();
    for (group, event) in [
        (
            "",
            json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Built", "message": "done",
                    "involvedObject": {"kind": "Build", "name": "b-1"}, "lastTimestamp": crate::apiserver::meta::now()}),
        ),
        (
            "events.k8s.io",
            json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Built", "note": "done",
                    "regarding": {"kind": "Build", "name": "b-1"}, "eventTime": crate::apiserver::meta::now()}),
        ),
    ] {
        let info = registry.get(group, "v1", "events").unwrap();
        let t = table(info, &[event], json!({}), IncludeObject::None);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["0s", "Normal", "Built", "build/b-1", "done", "e"]),
            "{group}"
        );
        assert_eq!(t["columnDefinitions"][0]["name"], "Last Seen");
    }
}
