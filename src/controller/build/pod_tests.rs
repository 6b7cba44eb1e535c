//! Table tests of the build Pod spec.

use serde_json::json;

use super::super::storage::StorageMode;
use super::*;

fn build(spec: serde_json::Value) -> Build {
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "app-3", "namespace": "ns", "uid": "u-1",
                     "labels": {"build.kiln.dev/build-config.name": "app"}},
        "spec": spec
    }))
    .unwrap()
}

fn settings(security: SecurityProfile) -> PodSettings {
    PodSettings {
        builder_image: "kiln-builder:1".into(),
        security,
        privileged_namespaces: vec!["trusted".into()],
        seccomp_profile: DEFAULT_SECCOMP_PROFILE.into(),
        insecure_registries: vec!["registry:5000".into()],
        binary_input_timeout: std::time::Duration::from_secs(90),
        clone_limits: crate::api::contract::CloneLimits::DEFAULT,
        layer_cache_registry: None,
        storage: crate::controller::StorageSettings::default(),
        registry_token: None,
    }
}

fn full() -> Build {
    build(json!({
        "serviceAccount": "robot",
        "source": {"type": "Git", "git": {"uri": "https://git/x.git"}, "sourceSecret": {"name": "git-creds"}},
        "strategy": {"type": "Docker", "dockerStrategy": {
            "pullSecret": {"name": "pull-creds"},
            "env": [{"name": "HTTP_PROXY", "value": "http://proxy"}, {"name": "GOFLAGS", "value": "-x"}],
            "volumes": [{"name": "netrc", "source": {"type": "Secret", "secret": {"secretName": "netrc"}}, "mounts": [{"destinationPath": "/root/.netrc.d"}]}]
        }},
        "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}, "pushSecret": {"name": "push-creds"}},
        "resources": {"limits": {"memory": "2Gi"}},
        "completionDeadlineSeconds": 600,
        "nodeSelector": {"kubernetes.io/arch": "amd64"}
    }))
}

fn mounts(c: &Container) -> Vec<(String, String)> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect()
}

fn env_names(c: &Container) -> Vec<String> {
    c.env.iter().flatten().map(|e| e.name.clone()).collect()
}

#[test]
fn pod_is_named_owned_and_carries_the_spec_limits() {
    let pod = build_pod(&full(), &settings(SecurityProfile::Privileged)).unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("app-3-build"));
    assert_eq!(
        pod.metadata.labels.as_ref().unwrap()[naming::BUILD_NAME_LABEL],
        "app-3"
    );
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("Build", "app-3", "u-1", Some(true))
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.service_account_name.as_deref(), Some("robot"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    assert_eq!(spec.node_selector.unwrap()["kubernetes.io/arch"], "amd64");
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        assert_eq!(
            c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0,
            "2Gi",
            "{}",
            c.name
        );
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(c.image.as_deref(), Some("kiln-builder:1"));
        let build_json = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "BUILD")
            .unwrap()
            .value
            .clone()
            .unwrap();
        assert_eq!(serde_json::from_str::<Build>(&build_json).unwrap(), full());
    }
}

#[test]
fn secrets_are_mounted_only_where_used() {
    let spec = build_pod(&full(), &settings(SecurityProfile::Privileged))
        .unwrap()
        .spec
        .unwrap();
    let clone = &spec.init_containers.as_ref().unwrap()[0];
    let main = &spec.containers[0];
    assert_eq!(
        (clone.name.as_str(), main.name.as_str()),
        ("clone", "build")
    );
    assert_eq!(clone.args.as_ref().unwrap(), &["builder", "clone"]);
    assert_eq!(main.args.as_ref().unwrap(), &["builder", "build"]);
    assert_eq!(
        mounts(clone),
        [
            ("workspace".into(), "/workspace".into()),
            ("source-secret".into(), contract::SOURCE_SECRET_DIR.into())
        ]
    );
    let main_mounts = mounts(main);
    assert!(main_mounts.contains(&("push-secret".into(), contract::PUSH_SECRET_DIR.into())));
    assert!(main_mounts.contains(&("pull-secret".into(), contract::PULL_SECRET_DIR.into())));
    assert!(main_mounts.contains(&("buildah-storage".into(), contract::STORAGE_DIR.into())));
    assert!(main_mounts.contains(&(
        "build-volume-0".into(),
        format!("{BUILD_VOLUMES_DIR}/netrc")
    )));
    assert!(!main_mounts.iter().any(|(n, _)| n == "source-secret"));
    // Whitelisted strategy env reaches the containers; the rest only the Dockerfile.
    assert!(env_names(main).contains(&"HTTP_PROXY".to_string()));
    assert!(!env_names(main).contains(&"GOFLAGS".to_string()));
    assert!(env_names(main).contains(&contract::INSECURE_REGISTRIES_ENV.to_string()));
}

#[test]
fn defaults_and_source_kinds_table() {
    let cases = [
        // A Dockerfile-only source gets the clone step too: it creates the source directory.
        (
            json!({"source": {"type": "Dockerfile", "dockerfile": "FROM x"}, "strategy": {"type": "Docker"}}),
            1,
            false,
        ),
        (
            json!({"source": {"dockerfile": "FROM x"}, "strategy": {"type": "Docker"}}),
            1,
            false,
        ),
        (json!({"strategy": {"type": "Docker"}}), 0, false),
        (
            json!({"source": {"type": "Git"}, "strategy": {"type": "Docker"}}),
            0,
            false,
        ),
        (
            json!({"source": {"type": "binary"}, "strategy": {"type": "Docker"}}),
            1,
            true,
        ),
        (
            json!({"source": {"git": {"uri": "https://x"}}, "strategy": {"type": "Docker"}}),
            1,
            false,
        ),
        (
            json!({"source": {"type": "Binary", "binary": {}}, "strategy": {"type": "Docker"}}),
            1,
            true,
        ),
    ];
    for (spec, init_count, stdin) in cases {
        let pod = build_pod(&build(spec.clone()), &settings(SecurityProfile::Privileged)).unwrap();
        let spec_out = pod.spec.unwrap();
        let inits = spec_out.init_containers.unwrap_or_default();
        assert_eq!(inits.len(), init_count, "{spec}");
        assert_eq!(
            inits.first().and_then(|c| c.stdin).unwrap_or(false),
            stdin,
            "{spec}"
        );
        // A binary clone reads stdin and gives up after the configured wait.
        let args = inits
            .first()
            .and_then(|c| c.args.clone())
            .unwrap_or_default();
        let waits = args.windows(2).any(|w| w == ["--input-timeout", "90"]);
        assert_eq!(waits, stdin, "{spec}: {args:?}");
        assert_eq!(
            spec_out.service_account_name.as_deref(),
            Some(DEFAULT_SERVICE_ACCOUNT)
        );
        assert_eq!(
            spec_out.active_deadline_seconds,
            Some(DEFAULT_COMPLETION_DEADLINE_SECONDS)
        );
    }
}

/// What each profile puts in the Pod: (hostUsers, Pod seccomp, build container's privileged,
/// runAsUser, allowPrivilegeEscalation, capabilities added, dropped, Pod Security level).
#[test]
fn security_profiles_table() {
    type Row = (
        SecurityProfile,
        Option<bool>,
        Option<(&'static str, Option<&'static str>)>,
        Option<bool>,
        Option<bool>,
        Vec<&'static str>,
        Vec<&'static str>,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (
            SecurityProfile::Unprivileged,
            Some(false),
            Some(("Localhost", Some("kiln/builder.json"))),
            Some(false),
            Some(false),
            vec![],
            vec!["KILL", "MKNOD"],
            "baseline",
        ),
        (
            SecurityProfile::UserNamespace,
            Some(false),
            Some(("Unconfined", None)),
            Some(false),
            Some(true),
            vec!["SETFCAP", "SYS_CHROOT"],
            vec!["KILL", "MKNOD"],
            "privileged",
        ),
        (
            SecurityProfile::Privileged,
            None,
            None,
            Some(true),
            None,
            vec![],
            vec![],
            "privileged",
        ),
    ];
    for (profile, host_users, seccomp, privileged, escalation, add, drop, level) in rows {
        let spec = build_pod(&full(), &settings(profile))
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(spec.host_users, host_users, "{profile:?}");
        let pod_seccomp = spec
            .security_context
            .and_then(|c| c.seccomp_profile)
            .map(|p| (p.type_, p.localhost_profile));
        let want = seccomp.map(|(t, l)| (t.to_string(), l.map(String::from)));
        assert_eq!(pod_seccomp, want, "{profile:?}");
        let sc = spec.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.privileged, privileged, "{profile:?}");
        assert_eq!(sc.run_as_user, Some(0), "{profile:?}");
        assert_eq!(sc.allow_privilege_escalation, escalation, "{profile:?}");
        let caps = sc.capabilities.unwrap_or_default();
        assert_eq!(caps.add.unwrap_or_default(), add, "{profile:?}");
        assert_eq!(caps.drop.unwrap_or_default(), drop, "{profile:?}");
        assert_eq!(profile.pod_security_level(), level);
        // The clone step never needs privileges, whatever the build's profile.
        let clone_sc = spec.init_containers.unwrap()[0]
            .security_context
            .clone()
            .unwrap();
        assert_eq!(clone_sc.allow_privilege_escalation, Some(false));
        assert_eq!(clone_sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
        assert_eq!(clone_sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    }
}

#[test]
fn default_profile_is_unprivileged_and_privileged_only_in_listed_namespaces() {
    assert_eq!(SecurityProfile::default(), SecurityProfile::Unprivileged);
    let s = settings(SecurityProfile::Unprivileged);
    for (namespace, want) in [
        ("ns", SecurityProfile::Unprivileged),
        ("trusted", SecurityProfile::Privileged),
        ("trusted-not", SecurityProfile::Unprivileged),
        ("", SecurityProfile::Unprivileged),
    ] {
        assert_eq!(s.profile_for(namespace), want, "{namespace:?}");
    }
    let mut trusted = full();
    trusted.metadata.namespace = Some("trusted".into());
    let spec = build_pod(&trusted, &s).unwrap().spec.unwrap();
    assert_eq!(
        spec.containers[0]
            .security_context
            .as_ref()
            .unwrap()
            .privileged,
        Some(true)
    );
    assert_eq!(spec.host_users, None);
}

#[test]
fn a_build_without_uid_cannot_own_a_pod() {
    let mut b = full();
    b.metadata.uid = None;
    assert_eq!(
        build_pod(&b, &settings(SecurityProfile::Privileged)),
        Err(Error::MissingMetadata("uid"))
    );
}

#[test]
fn only_a_pod_carrying_the_builds_uid_is_its_own() {
    let b = full();
    let own = build_pod(&b, &settings(SecurityProfile::Privileged)).unwrap();
    assert!(owned_by(&own, &b));
    let owner = |uid: &str| {
        let mut pod = own.clone();
        if let Some(refs) = pod.metadata.owner_references.as_mut() {
            refs[0].uid = uid.into();
        }
        pod
    };
    let mut no_owner = own.clone();
    no_owner.metadata.owner_references = None;
    let mut no_uid = b.clone();
    no_uid.metadata.uid = None;
    for (what, pod, build, want) in [
        ("the build's own Pod", own.clone(), &b, true),
        ("another object's uid", owner("u-2"), &b, false),
        ("an empty uid", owner(""), &b, false),
        ("no owner references", no_owner, &b, false),
        (
            "a Build without uid owns nothing",
            own.clone(),
            &no_uid,
            false,
        ),
    ] {
        assert_eq!(owned_by(&pod, build), want, "{what}");
    }
}

#[test]
fn value_from_env_reaches_only_the_build_container_as_a_reference() {
    let b = build(json!({
        "source": {"type": "Git", "git": {"uri": "https://git/x.git"}},
        "strategy": {"type": "Docker", "dockerStrategy": {"env": [
            {"name": "PLAIN", "value": "1"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}
        ]}}
    }));
    let pod = build_pod(&b, &settings(SecurityProfile::Privileged)).unwrap();
    let spec = pod.spec.unwrap();
    let main = &spec.containers[0];
    let refs: Vec<(String, serde_json::Value)> = main
        .env
        .iter()
        .flatten()
        .filter(|e| e.name.starts_with(contract::VALUE_FROM_ENV_PREFIX))
        .map(|e| {
            assert_eq!(e.value, None);
            (e.name.clone(), serde_json::to_value(&e.value_from).unwrap())
        })
        .collect();
    assert_eq!(
        refs,
        vec![
            (
                "KILN_VALUE_FROM_1".to_string(),
                json!({"secretKeyRef": {"name": "creds", "key": "token"}})
            ),
            (
                "KILN_VALUE_FROM_2".to_string(),
                json!({"configMapKeyRef": {"name": "settings", "key": "level"}})
            ),
            (
                "KILN_VALUE_FROM_3".to_string(),
                json!({"fieldRef": {"fieldPath": "metadata.name"}})
            ),
            (
                "KILN_VALUE_FROM_4".to_string(),
                json!({"resourceFieldRef": {"resource": "limits.memory"}})
            ),
        ]
    );
    // The clone step gets none of them.
    let clone = &spec.init_containers.unwrap()[0];
    assert!(!env_names(clone)
        .iter()
        .any(|n| n.starts_with(contract::VALUE_FROM_ENV_PREFIX)));
}

#[test]
fn the_layer_cache_is_the_controllers_choice_in_the_builds_own_namespace() {
    let in_namespace = |namespace: &str, no_cache: bool, user_env: &str| -> Build {
        serde_json::from_value(json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "app-3", "namespace": namespace, "uid": "u-1",
                         "annotations": {naming::BUILD_CONFIG_ANNOTATION: "app"}},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "https://git/x.git"}},
                "strategy": {"type": "Docker", "dockerStrategy": {"noCache": no_cache, "env": [
                    {"name": contract::LAYER_CACHE_ENV, "value": user_env}
                ]}},
                "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}
            },
            "status": {"phase": "New",
                       "outputDockerImageReference": format!("registry:5000/{namespace}/app:latest")}
        }))
        .unwrap()
    };
    let cache_env = |b: &Build, registry: Option<&str>| -> (Vec<String>, Vec<String>) {
        let mut s = settings(SecurityProfile::Privileged);
        s.layer_cache_registry = registry.map(String::from);
        let spec = build_pod(b, &s).unwrap().spec.unwrap();
        let values = |c: &Container| -> Vec<String> {
            c.env
                .iter()
                .flatten()
                .filter(|e| e.name == contract::LAYER_CACHE_ENV)
                .map(|e| e.value.clone().unwrap_or_default())
                .collect()
        };
        (
            values(&spec.init_containers.unwrap()[0]),
            values(&spec.containers[0]),
        )
    };
    let cases = [
        (
            "team-a",
            false,
            Some("registry:5000"),
            vec!["registry:5000/team-a/app-cache"],
        ),
        (
            "team-b",
            false,
            Some("registry:5000"),
            vec!["registry:5000/team-b/app-cache"],
        ),
        ("team-b", true, Some("registry:5000"), vec![]),
        ("team-a", false, None, vec![]),
    ];
    for (namespace, no_cache, registry, want) in cases {
        // The Build's own env naming the variable never reaches the container: only the
        // controller sets it.
        let b = in_namespace(namespace, no_cache, "registry:5000/team-a/app-cache");
        let (clone, main) = cache_env(&b, registry);
        assert_eq!(clone, Vec::<String>::new(), "{namespace}");
        assert_eq!(main, want, "{namespace} noCache={no_cache} {registry:?}");
    }
    // With the BuildConfig's build storage claim mounted, the kept storage is the cache: the
    // registry cache (which pushes every step) is not used as well.
    let mut owned = in_namespace("team-a", false, "");
    owned.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "build.kiln.dev/v1alpha1".into(),
            kind: "BuildConfig".into(),
            name: "app".into(),
            uid: "bc-uid".into(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    for (mode, want) in [
        (
            StorageMode::Ephemeral,
            vec!["registry:5000/team-a/app-cache"],
        ),
        (StorageMode::Volume, vec![]),
    ] {
        let mut s = settings(SecurityProfile::Privileged);
        s.layer_cache_registry = Some("registry:5000".into());
        s.storage.mode = mode;
        let spec = build_pod(&owned, &s).unwrap().spec.unwrap();
        let main: Vec<String> = spec.containers[0]
            .env
            .iter()
            .flatten()
            .filter(|e| e.name == contract::LAYER_CACHE_ENV)
            .map(|e| e.value.clone().unwrap_or_default())
            .collect();
        assert_eq!(main, want, "{mode:?}");
    }
}

#[test]
fn a_registry_token_is_projected_into_the_build_container_only() {
    let mut with_token = settings(SecurityProfile::Privileged);
    with_token.registry_token = Some(RegistryToken {
        registry: "registry:5000".into(),
        audience: "kiln-registry".into(),
    });
    let pod = build_pod(&full(), &with_token).unwrap();
    let spec = pod.spec.unwrap();
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "registry-token")
        .expect("the token volume");
    let projection = volume.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
        .service_account_token
        .clone()
        .unwrap();
    assert_eq!(projection.audience.as_deref(), Some("kiln-registry"));
    assert_eq!(projection.expiration_seconds, Some(3600));
    assert_eq!(projection.path, contract::REGISTRY_TOKEN_FILE);
    // Still no API credential: the projected token is for kiln's audience only.
    assert_eq!(spec.automount_service_account_token, Some(false));
    let main = &spec.containers[0];
    assert!(mounts(main).contains(&(
        "registry-token".to_string(),
        contract::REGISTRY_TOKEN_DIR.to_string()
    )));
    let registry = main
        .env
        .iter()
        .flatten()
        .find(|e| e.name == contract::REGISTRY_TOKEN_REGISTRY_ENV)
        .and_then(|e| e.value.clone());
    assert_eq!(registry.as_deref(), Some("registry:5000"));
    for init in spec.init_containers.iter().flatten() {
        assert!(!mounts(init).iter().any(|(n, _)| n == "registry-token"));
    }
    // Without the token server, nothing.
    let pod = build_pod(&full(), &settings(SecurityProfile::Privileged)).unwrap();
    let spec = pod.spec.unwrap();
    assert!(!spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == "registry-token"));
    assert!(!env_names(&spec.containers[0])
        .contains(&contract::REGISTRY_TOKEN_REGISTRY_ENV.to_string()));
}

#[test]
fn the_controllers_clone_limits_reach_the_clone_step_only() {
    let mut s = settings(SecurityProfile::Unprivileged);
    s.clone_limits = crate::api::contract::CloneLimits {
        connect_timeout: std::time::Duration::from_secs(7),
        idle_timeout: std::time::Duration::from_secs(11),
        max_bytes: 1 << 20,
    };
    let pod = build_pod(&full(), &s).unwrap();
    let spec = pod.spec.unwrap();
    let value = |c: &Container, name: &str| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    let clone = &spec.init_containers.unwrap()[0];
    for (name, want) in [
        (contract::CLONE_CONNECT_TIMEOUT_ENV, "7"),
        (contract::CLONE_IDLE_TIMEOUT_ENV, "11"),
        (contract::CLONE_MAX_BYTES_ENV, "1048576"),
    ] {
        assert_eq!(value(clone, name).as_deref(), Some(want), "{name}");
        assert_eq!(value(&spec.containers[0], name), None, "{name} in build");
    }
}
