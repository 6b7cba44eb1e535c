use super::*;
use serde_json::json;

fn pod(containers: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p1", "namespace": "ns1", "uid": "u-1",
                     "labels": {"app": "x", "tier": "b"}, "annotations": {"a/b": "c"}},
        "spec": {"nodeName": "n1", "serviceAccountName": "builder", "containers": containers,
                 "volumes": [
                     {"name": "v1", "secret": {"secretName": "vol-secret"}},
                     {"name": "v2", "configMap": {"name": "vol-cm"}},
                     {"name": "v3", "projected": {"sources": [
                         {"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}}]}}
                 ]}
    }))
    .unwrap()
}

fn objects() -> Objects {
    let data = |pairs: &[(&str, &str)]| -> ObjectData {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    Objects {
        secrets: [(
            "creds".to_string(),
            data(&[("token", "s3cret"), ("user", "bob")]),
        )]
        .into(),
        config_maps: [("cfg".to_string(), data(&[("mode", "fast")]))].into(),
        ..Objects::default()
    }
}

fn env_of(env: serde_json::Value) -> Result<Vec<(String, String)>> {
    let p = pod(json!([{"name": "c", "image": "busybox", "env": env}]));
    let c = &p.spec.as_ref().unwrap().containers[0];
    resolve_env(&p, c, &objects())
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn resolves_value_from() {
    let ok_cases = [
        (json!([{"name": "A", "value": "1"}]), pairs(&[("A", "1")])),
        (
            json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]),
            pairs(&[("T", "s3cret")]),
        ),
        (
            json!([{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}]),
            pairs(&[("M", "fast")]),
        ),
        (
            json!([{"name": "O", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}]),
            vec![],
        ),
        (
            json!([{"name": "O", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nokey", "optional": true}}}]),
            vec![],
        ),
        (
            json!([
                {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "U", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "AN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['a/b']"}}},
                {"name": "LS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
            ]),
            pairs(&[
                ("N", "p1"),
                ("NS", "ns1"),
                ("U", "u-1"),
                ("L", "x"),
                ("AN", "c"),
                ("LS", "app=\"x\"\ntier=\"b\""),
                ("NODE", "n1"),
            ]),
        ),
        (
            json!([{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(Z)-$$(A)"}, {"name": "A", "value": "y"}]),
            pairs(&[("A", "y"), ("B", "x-$(Z)-$(A)")]),
        ),
    ];
    for (env, want) in ok_cases {
        assert_eq!(env_of(env.clone()).unwrap(), want, "{env}");
    }
    let err_cases = [
        (
            json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]),
            "secret \"gone\" not found",
        ),
        (
            json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nokey"}}}]),
            "couldn't find key nokey in Secret ns1/creds",
        ),
        (
            json!([{"name": "T", "valueFrom": {"configMapKeyRef": {"name": "nocm", "key": "k"}}}]),
            "configmap \"nocm\" not found",
        ),
        (
            json!([{"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]),
            "fieldRef \"status.phase\" is not supported",
        ),
    ];
    for (env, want) in err_cases {
        let err = env_of(env.clone()).unwrap_err().to_string();
        assert!(err.contains(want), "{env}: {err}");
    }
}

#[test]
fn env_from_with_prefix_then_env_overrides() {
    let p = pod(json!([{"name": "c", "image": "busybox",
        "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "S_"},
                    {"configMapRef": {"name": "cfg"}},
                    {"configMapRef": {"name": "absent", "optional": true}}],
        "env": [{"name": "mode", "value": "slow"}]}]));
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        resolve_env(&p, c, &objects()).unwrap(),
        pairs(&[("S_token", "s3cret"), ("S_user", "bob"), ("mode", "slow")])
    );
    let p = pod(json!([{"name": "c", "image": "busybox",
        "envFrom": [{"secretRef": {"name": "absent"}}]}]));
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert!(resolve_env(&p, c, &objects()).is_err());
}

#[test]
fn expansion() {
    let env = pairs(&[("A", "1"), ("B", "two")]);
    let cases = [
        ("plain", "plain"),
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1ytwoz"),
        ("$(C)", "$(C)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$A", "$A"),
        ("$(A", "$(A"),
        ("end$", "end$"),
        ("$()", "$()"),
    ];
    for (text, want) in cases {
        assert_eq!(expand(text, &env), want, "{text}");
    }
}

#[test]
fn collects_references() {
    let p = pod(json!([{"name": "c", "image": "busybox",
        "envFrom": [{"secretRef": {"name": "s-from"}}, {"configMapRef": {"name": "cm-from"}}],
        "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
                {"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}]}]));
    let refs = references(&p);
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        refs.secrets,
        set(&["proj-secret", "s-env", "s-from", "vol-secret"])
    );
    assert_eq!(
        refs.config_maps,
        set(&["cm-env", "cm-from", "proj-cm", "vol-cm"])
    );
}
