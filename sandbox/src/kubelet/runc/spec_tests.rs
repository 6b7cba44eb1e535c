use super::*;
use crate::kubelet::plan::Mount;
use crate::kubelet::runc::seccomp::runtime_default;
use crate::kubelet::runc::security::{effective, DEFAULT_CAPS};
use serde_json::json;

fn pod(container: Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [container]},
    }))
    .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, c)
}

fn image() -> ImageConfig {
    ImageConfig {
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["default-arg".into()]),
        env: Some(vec!["PATH=/image/bin".into(), "GREETING=image".into()]),
        working_dir: Some("/image-wd".into()),
        user: Some("1000".into()),
    }
}

#[test]
fn command_args_env_and_working_dir_over_the_image() {
    let env = vec![
        ("GREETING".to_string(), "pod".to_string()),
        ("X".into(), "1".into()),
    ];
    // (container fields, argv, working dir)
    let cases = [
        (json!({}), vec!["/entry", "default-arg"], "/image-wd"),
        (
            json!({"args": ["a", "$(X)"]}),
            vec!["/entry", "a", "1"],
            "/image-wd",
        ),
        (json!({"command": ["/bin/c"]}), vec!["/bin/c"], "/image-wd"),
        (
            json!({"command": ["/bin/c", "$(X)"], "args": ["b"], "workingDir": "/w"}),
            vec!["/bin/c", "1", "b"],
            "/w",
        ),
    ];
    for (fields, argv, wd) in cases {
        let mut c = json!({"name": "c", "image": "i"});
        for (k, v) in fields.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (pod, container) = pod(c);
        let plan = plan(&pod, &container, env.clone(), &BTreeMap::new(), &image()).unwrap();
        assert_eq!(plan.argv, argv, "{fields}");
        assert_eq!(plan.working_dir, wd, "{fields}");
        let get = |k: &str| {
            plan.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("GREETING").as_deref(), Some("pod"));
        assert_eq!(get("PATH").as_deref(), Some("/image/bin"));
        assert_eq!(get("HOSTNAME").as_deref(), Some("p"));
        assert_eq!(get("X").as_deref(), Some("1"));
    }
    let (pod, container) = pod(json!({"name": "c", "image": "i"}));
    let bare = ImageConfig::default();
    let err = plan(&pod, &container, vec![], &BTreeMap::new(), &bare).unwrap_err();
    assert!(err.to_string().contains("no command specified"), "{err}");
    let with_args = ImageConfig {
        cmd: Some(vec!["/bin/sh".into()]),
        ..ImageConfig::default()
    };
    let p = plan(&pod, &container, vec![], &BTreeMap::new(), &with_args).unwrap();
    assert_eq!(p.argv, ["/bin/sh"]);
    assert_eq!(p.env[1], ("PATH".to_string(), DEFAULT_PATH.to_string()));
    assert_eq!(p.working_dir, "/");
}

#[test]
fn seccomp_choices() {
    let root = Path::new("/seccomp");
    let with = |profile: Value, privileged: bool| {
        let (pod, c) = pod(json!({"name": "c", "image": "i",
            "securityContext": {"seccompProfile": profile, "privileged": privileged}}));
        seccomp_choice(&effective(&pod, &c), root)
    };
    let cases = [
        (
            json!({"type": "RuntimeDefault"}),
            false,
            Some(SeccompChoice::RuntimeDefault),
        ),
        (
            json!({"type": "RuntimeDefault"}),
            true,
            Some(SeccompChoice::Unconfined),
        ),
        (
            json!({"type": "Unconfined"}),
            false,
            Some(SeccompChoice::Unconfined),
        ),
        (
            json!({"type": "Localhost", "localhostProfile": "a/b.json"}),
            false,
            Some(SeccompChoice::Localhost(PathBuf::from("/seccomp/a/b.json"))),
        ),
        (
            json!({"type": "Localhost", "localhostProfile": "../etc/x"}),
            false,
            None,
        ),
        (
            json!({"type": "Localhost", "localhostProfile": "/etc/x"}),
            false,
            None,
        ),
        (json!({"type": "Localhost"}), false, None),
        (json!({"type": "Other"}), false, None),
    ];
    for (profile, privileged, want) in cases {
        assert_eq!(with(profile.clone(), privileged).ok(), want, "{profile}");
    }
    let (pod, c) = pod(json!({"name": "c", "image": "i"}));
    assert_eq!(
        seccomp_choice(&effective(&pod, &c), root).unwrap(),
        SeccompChoice::Unconfined
    );
}

struct Case {
    security: Value,
    host_users: bool,
    seccomp: bool,
}

fn spec_for(case: &Case) -> Value {
    let mut spec =
        json!({"containers": [{"name": "c", "image": "i", "securityContext": case.security}]});
    if !case.host_users {
        spec["hostUsers"] = json!(false);
    }
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec}))
            .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let settings = effective(&pod, &c);
    let plan = ContainerPlan {
        name: "c".into(),
        image: "i".into(),
        argv: vec!["/bin/sh".into()],
        env: vec![("A".into(), "b".into())],
        working_dir: "/w".into(),
        mounts: vec![Mount {
            source: "/host/vol".into(),
            target: "/data".into(),
            read_only: true,
        }],
        termination_path: "/dev/termination-log".into(),
        fallback_to_logs: false,
    };
    let user = User {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![5],
    };
    let profile = runtime_default();
    let etc = vec![(PathBuf::from("/k/hosts"), "/etc/hosts".to_string())];
    let all: Vec<String> = crate::kubelet::runc::security::ALL_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    oci_spec(&SpecInput {
        plan: &plan,
        settings: &settings,
        user: &user,
        rootfs: Path::new("/k/rootfs"),
        hostname: "p",
        termination_file: Path::new("/k/term"),
        etc_files: &etc,
        started_file: Path::new("/k/started"),
        id_range: (!case.host_users).then_some(IdRange {
            host: 65536,
            size: 65536,
        }),
        seccomp: case.seccomp.then_some(&profile),
        arch: "x86_64",
        cgroups_path: "/kiln-sandbox/x".into(),
        current_caps: &all,
        resources: json!({"memory": {"limit": 1024}})
            .as_object()
            .unwrap()
            .clone(),
    })
}

fn mount_at<'a>(spec: &'a Value, dest: &str) -> Vec<&'a Value> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == dest)
        .collect()
}

#[test]
fn security_context_in_the_runtime_spec() {
    let plain = spec_for(&Case {
        security: json!({}),
        host_users: true,
        seccomp: false,
    });
    assert_eq!(plain["process"]["args"], json!(["/bin/sh"]));
    assert_eq!(plain["process"]["env"], json!(["A=b"]));
    assert_eq!(plain["process"]["cwd"], "/w");
    assert_eq!(
        plain["process"]["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5]})
    );
    assert_eq!(
        plain["process"]["capabilities"]["bounding"],
        json!(DEFAULT_CAPS)
    );
    assert_eq!(
        plain["process"]["capabilities"]["effective"],
        json!(DEFAULT_CAPS)
    );
    assert_eq!(plain["process"]["noNewPrivileges"], false);
    assert_eq!(
        plain["root"],
        json!({"path": "/k/rootfs", "readonly": false})
    );
    assert_eq!(plain["hostname"], "p");
    assert!(plain["linux"].get("seccomp").is_none());
    assert!(plain["linux"].get("uidMappings").is_none());
    assert_eq!(plain["linux"]["maskedPaths"], json!(MASKED_PATHS));
    assert_eq!(
        plain["linux"]["resources"]["memory"],
        json!({"limit": 1024})
    );
    assert_eq!(
        plain["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    let types: Vec<&str> = plain["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["pid", "ipc", "uts", "mount"]);
    assert_eq!(
        mount_at(&plain, "/data")[0]["options"],
        json!(["rbind", "rprivate", "ro"])
    );
    assert_eq!(mount_at(&plain, "/data")[0]["source"], "/host/vol");
    assert_eq!(
        mount_at(&plain, "/dev/termination-log")[0]["source"],
        "/k/term"
    );
    assert_eq!(mount_at(&plain, "/etc/hosts")[0]["source"], "/k/hosts");
    assert_eq!(mount_at(&plain, "/sys")[0]["type"], "sysfs");
    assert!(mount_at(&plain, "/sys")[0]["options"]
        .as_array()
        .unwrap()
        .contains(&json!("ro")));
    assert!(plain["hooks"]["poststart"][0]["args"][2]
        .as_str()
        .unwrap()
        .contains("/k/started"));

    let locked = spec_for(&Case {
        security: json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}),
        host_users: true,
        seccomp: true,
    });
    assert_eq!(locked["process"]["noNewPrivileges"], true);
    assert_eq!(locked["root"]["readonly"], true);
    assert_eq!(
        locked["process"]["capabilities"]["permitted"],
        json!(["CAP_NET_BIND_SERVICE"])
    );
    let seccomp = &locked["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
    let unshare_allowed = seccomp["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["names"].as_array().unwrap().contains(&json!("unshare")));
    assert!(!unshare_allowed);

    let userns = spec_for(&Case {
        security: json!({}),
        host_users: false,
        seccomp: false,
    });
    let map = json!([{"containerID": 0, "hostID": 65536, "size": 65536}]);
    assert_eq!(userns["linux"]["uidMappings"], map);
    assert_eq!(userns["linux"]["gidMappings"], map);
    assert!(userns["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!({"type": "user"})));
    assert_eq!(mount_at(&userns, "/sys")[0]["type"], "bind");
    assert!(mount_at(&userns, "/sys/fs/cgroup").is_empty());

    let privileged = spec_for(&Case {
        security: json!({"privileged": true}),
        host_users: true,
        seccomp: false,
    });
    assert_eq!(
        privileged["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        41
    );
    assert!(privileged["linux"].get("maskedPaths").is_none());
    assert_eq!(
        privileged["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    assert!(mount_at(&privileged, "/sys")[0]["options"]
        .as_array()
        .unwrap()
        .contains(&json!("rw")));

    let unmasked = spec_for(&Case {
        security: json!({"procMount": "Unmasked"}),
        host_users: true,
        seccomp: false,
    });
    assert!(unmasked["linux"].get("readonlyPaths").is_none());
}
