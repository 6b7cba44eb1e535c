//! Tests of `delete`.
use super::*;

#[test]
fn delete_options_table() {
    let cases = [
        (json!(null), Ok(None)),
        (
            json!({"propagationPolicy": "Foreground"}),
            Ok(Some(Propagation::Foreground)),
        ),
        (
            json!({"orphanDependents": true}),
            Ok(Some(Propagation::Orphan)),
        ),
        (json!({"propagationPolicy": "Sideways"}), Err(())),
        (json!([1]), Err(())),
    ];
    for (body, expected) in cases {
        let got = DeleteOptions::from_body(&body)
            .map(|o| o.propagation)
            .map_err(|_| ());
        assert_eq!(got, expected, "{body}");
    }
}

#[test]
fn pod_grace_table() {
    let cases = [
        (json!({"spec": {}}), None, 0),
        (
            json!({"spec": {"nodeName": "n"}, "status": {"phase": "Running"}}),
            None,
            30,
        ),
        (
            json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 5}}),
            None,
            5,
        ),
        (
            json!({"spec": {"nodeName": "n"}, "status": {"phase": "Running"}}),
            Some(0),
            0,
        ),
        (
            json!({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}}),
            Some(10),
            0,
        ),
    ];
    for (pod, requested, expected) in cases {
        assert_eq!(pod_grace_seconds(&pod, requested), expected, "{pod}");
    }
}
