use super::*;
use crate::kubelet::config::parse_image_mapping;
use serde_json::json;

fn images() -> ImageMap {
    let mut map = ImageMap::with_defaults();
    map.prepend(parse_image_mapping("example.com/kiln-builder=/opt/bin/kiln").unwrap());
    map
}

fn container(value: serde_json::Value) -> Container {
    serde_json::from_value(value).unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn command_lines() {
    let env = vec![("WHO".to_string(), "world".to_string())];
    let cases = [
        (
            json!({"name": "c", "image": "debian", "command": ["sh", "-c"], "args": ["echo $(WHO)"]}),
            strings(&["sh", "-c", "echo world"]),
        ),
        (
            json!({"name": "c", "image": "example.com/kiln-builder:v1", "args": ["builder", "clone"]}),
            strings(&["/opt/bin/kiln", "builder", "clone"]),
        ),
        (
            json!({"name": "c", "image": "example.com/kiln-builder:v1", "command": ["/usr/bin/kiln", "builder"]}),
            strings(&["/opt/bin/kiln", "builder"]),
        ),
        (
            json!({"name": "c", "image": "example.com/kiln-builder:v1", "command": ["sh", "-c", "true"]}),
            strings(&["sh", "-c", "true"]),
        ),
        (
            json!({"name": "c", "image": "busybox:1.36", "command": []}),
            strings(&["/bin/busybox"]),
        ),
    ];
    for (c, want) in cases {
        assert_eq!(
            argv(&container(c.clone()), &env, &images()).unwrap(),
            want,
            "{c}"
        );
    }
    let err_cases = [
        (json!({"name": "c", "image": "debian"}), "no command"),
        (
            json!({"name": "c", "image": "debian", "command": ["A=B"]}),
            "containing '='",
        ),
    ];
    for (c, want) in err_cases {
        let err = argv(&container(c.clone()), &env, &images())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{c}: {err}");
    }
}

#[test]
fn runtime_env_adds_path_hostname_and_home() {
    let cases = [
        (vec![], strings(&["PATH", "HOSTNAME", "HOME"])),
        (
            vec![("A", "1")],
            strings(&["PATH", "HOSTNAME", "HOME", "A"]),
        ),
        (
            vec![("PATH", "/x"), ("A", "1")],
            strings(&["HOSTNAME", "HOME", "PATH", "A"]),
        ),
        (
            vec![("HOSTNAME", "h"), ("HOME", "/w")],
            strings(&["PATH", "HOSTNAME", "HOME"]),
        ),
    ];
    for (env, want) in cases {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got = runtime_env(env.clone(), "p");
        let names: Vec<String> = got.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(names, want, "{env:?}");
        for (k, v) in &env {
            assert!(got.contains(&(k.clone(), v.clone())), "{k} kept");
        }
        let defaults = [("PATH", DEFAULT_PATH), ("HOSTNAME", "p"), ("HOME", "/root")];
        for (k, v) in defaults {
            if !env.iter().any(|(name, _)| name == k) {
                assert!(got.contains(&(k.to_string(), v.to_string())), "{k} default");
            }
        }
    }
}

#[test]
fn plans_mounts_and_termination() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": []}
    }))
    .unwrap();
    let volumes: BTreeMap<String, HostVolume> = [
        (
            "work".to_string(),
            HostVolume {
                path: "/k/work".into(),
                forced_read_only: false,
                persistent: false,
            },
        ),
        (
            "sec".to_string(),
            HostVolume {
                path: "/k/sec".into(),
                forced_read_only: true,
                persistent: false,
            },
        ),
    ]
    .into();
    let c = container(json!({"name": "c", "image": "busybox", "command": ["true"],
        "workingDir": "/work/src",
        "terminationMessagePath": "/tmp/msg", "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [{"name": "SUB", "value": "sub"}],
        "volumeMounts": [
            {"name": "work", "mountPath": "/work/src/deep", "subPathExpr": "$(SUB)"},
            {"name": "sec", "mountPath": "/etc/creds"},
            {"name": "work", "mountPath": "/work", "readOnly": true}]}));
    let env = vec![("SUB".to_string(), "sub".to_string())];
    let plan = container_plan(&pod, &c, env, &volumes, &images()).unwrap();
    let mounts: Vec<(String, String, bool)> = plan
        .mounts
        .iter()
        .map(|m| {
            (
                m.source.display().to_string(),
                m.target.clone(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        mounts,
        vec![
            ("/k/work".into(), "/work".into(), true),
            ("/k/sec".into(), "/etc/creds".into(), true),
            ("/k/work/sub".into(), "/work/src/deep".into(), false),
        ]
    );
    assert_eq!(plan.working_dir, "/work/src");
    assert_eq!(plan.termination_path, "/tmp/msg");
    assert!(plan.fallback_to_logs);

    let defaults = container(json!({"name": "c", "image": "busybox", "command": ["true"]}));
    let plan = container_plan(&pod, &defaults, vec![], &volumes, &images()).unwrap();
    assert_eq!(plan.termination_path, DEFAULT_TERMINATION_PATH);
    assert_eq!(plan.working_dir, "/");
    assert!(!plan.fallback_to_logs);

    let bad = [
        json!({"name": "c", "image": "busybox", "command": ["true"],
               "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}),
        json!({"name": "c", "image": "busybox", "command": ["true"],
               "volumeMounts": [{"name": "work", "mountPath": "relative"}]}),
        json!({"name": "c", "image": "busybox", "command": ["true"],
               "volumeMounts": [{"name": "work", "mountPath": "/x", "subPath": "../up"}]}),
    ];
    for c in bad {
        assert!(
            container_plan(&pod, &container(c.clone()), vec![], &volumes, &images()).is_err(),
            "{c}"
        );
    }
}
