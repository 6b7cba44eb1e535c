use serde_json::{json, Value};

use super::*;

fn namespace(level: Option<&str>) -> Value {
    match level {
        Some(level) => json!({"metadata": {"name": "ns", "labels": {ENFORCE_LABEL: level}}}),
        None => json!({"metadata": {"name": "ns"}}),
    }
}

/// A Pod that meets `restricted`, with `change` merged into its `build` container or spec.
fn pod(spec: Value, build: Value) -> Value {
    let mut container = json!({
        "name": "build",
        "image": "x",
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    });
    merge(&mut container, build);
    let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [container]}});
    merge(&mut pod["spec"], spec);
    pod
}

fn merge(target: &mut Value, patch: Value) {
    json_patch::merge(target, &patch);
}

#[test]
fn levels_from_labels() {
    let cases = [
        (None, Level::Privileged),
        (Some("privileged"), Level::Privileged),
        (Some("baseline"), Level::Baseline),
        (Some("restricted"), Level::Restricted),
        // An invalid level fails closed, as upstream.
        (Some("bogus"), Level::Restricted),
    ];
    for (label, level) in cases {
        assert_eq!(Level::of_namespace(&namespace(label)), level, "{label:?}");
    }
}

#[test]
fn checks_table() {
    let fine = pod(json!({}), json!({}));
    let cases: Vec<(&str, Value, Vec<&str>, Vec<&str>)> = vec![
        // (what, pod, baseline violations, restricted violations): "reason (detail)".
        ("compliant", fine.clone(), vec![], vec![]),
        (
            "privileged",
            pod(json!({}), json!({"securityContext": {"privileged": true}})),
            vec![r#"privileged (container "build" must not set securityContext.privileged=true)"#],
            vec![r#"privileged (container "build" must not set securityContext.privileged=true)"#],
        ),
        (
            "host namespaces",
            pod(json!({"hostNetwork": true, "hostPID": true}), json!({})),
            vec!["host namespaces (hostNetwork, hostPID)"],
            vec!["host namespaces (hostNetwork, hostPID)"],
        ),
        (
            "host ports",
            pod(
                json!({}),
                json!({"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 443}]}),
            ),
            vec![r#"hostPort (container "build" uses hostPorts 443, 8080)"#],
            vec![r#"hostPort (container "build" uses hostPorts 443, 8080)"#],
        ),
        (
            "capabilities",
            pod(
                json!({}),
                json!({"securityContext": {"capabilities": {"add": ["SYS_ADMIN", "SETUID", "NET_RAW"], "drop": ["ALL"]}}}),
            ),
            vec![
                r#"non-default capabilities (container "build" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)"#,
            ],
            vec![
                r#"unrestricted capabilities (container "build" must not include "NET_RAW", "SETUID", "SYS_ADMIN" in securityContext.capabilities.add)"#,
            ],
        ),
        (
            "hostPath",
            pod(
                json!({"volumes": [{"name": "dev", "hostPath": {"path": "/dev"}}, {"name": "work", "emptyDir": {}}]}),
                json!({}),
            ),
            vec![r#"hostPath volumes (volume "dev")"#],
            vec![
                r#"restricted volume types (volume "dev" uses restricted volume type "hostPath")"#,
            ],
        ),
        (
            "seccomp unconfined",
            pod(
                json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
                json!({"securityContext": {"seccompProfile": null}}),
            ),
            vec![
                r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
            ],
            vec![
                r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
            ],
        ),
        (
            "procMount",
            pod(
                json!({}),
                json!({"securityContext": {"procMount": "Unmasked"}}),
            ),
            vec![
                r#"procMount (container "build" must not set securityContext.procMount to "Unmasked")"#,
            ],
            vec![
                r#"procMount (container "build" must not set securityContext.procMount to "Unmasked")"#,
            ],
        ),
        (
            "sysctls",
            pod(
                json!({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}}),
                json!({}),
            ),
            vec!["forbidden sysctls (kernel.msgmax)"],
            vec!["forbidden sysctls (kernel.msgmax)"],
        ),
        (
            "root",
            pod(
                json!({"securityContext": {"runAsUser": 0}}),
                json!({"securityContext": {"runAsNonRoot": false}}),
            ),
            vec![],
            vec![
                r#"runAsNonRoot != true (container "build" must not set securityContext.runAsNonRoot=false)"#,
                "runAsUser=0 (pod must not set runAsUser=0)",
            ],
        ),
        (
            "a plain container, as kiln's builder defaults may be",
            json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "clone", "image": "x"}], "containers": [{"name": "build", "image": "x"}]}}),
            vec![],
            vec![
                r#"allowPrivilegeEscalation != false (containers "clone", "build" must set securityContext.allowPrivilegeEscalation=false)"#,
                r#"unrestricted capabilities (containers "clone", "build" must set securityContext.capabilities.drop=["ALL"])"#,
                r#"runAsNonRoot != true (pod or containers "clone", "build" must set securityContext.runAsNonRoot=true)"#,
                r#"seccompProfile (pod or containers "clone", "build" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
            ],
        ),
    ];
    let render = |v: &Violation| format!("{} ({})", v.reason, v.detail);
    for (what, pod, baseline, restricted) in cases {
        assert!(evaluate(Level::Privileged, &pod).is_empty(), "{what}");
        let got: Vec<String> = evaluate(Level::Baseline, &pod).iter().map(render).collect();
        assert_eq!(got, baseline, "baseline: {what}");
        let got: Vec<String> = evaluate(Level::Restricted, &pod)
            .iter()
            .map(render)
            .collect();
        assert_eq!(got, restricted, "restricted: {what}");
    }
}

#[test]
fn denial_message() {
    let pod = pod(
        json!({"hostNetwork": true}),
        json!({"securityContext": {"privileged": true}}),
    );
    assert_eq!(denial(&namespace(None), &pod), None);
    assert_eq!(
        denial(&namespace(Some("baseline")), &pod).as_deref(),
        Some(
            r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork), privileged (container "build" must not set securityContext.privileged=true)"#
        )
    );
    let mut versioned = namespace(Some("baseline"));
    versioned["metadata"]["labels"][ENFORCE_VERSION_LABEL] = json!("v1.30");
    assert!(denial(&versioned, &pod)
        .unwrap()
        .starts_with(r#"violates PodSecurity "baseline:v1.30": "#));
}
