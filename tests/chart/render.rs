//! `helm lint` and `helm template`: names, labels, values, the schema, the CRDs.

use super::*;

#[test]
fn helm_lint_passes_for_default_and_full_values() {
    let chart = chart_dir().display().to_string();
    let values = full_values().display().to_string();
    for args in [
        vec!["lint", "--strict", &chart],
        vec![
            "lint",
            "--strict",
            &chart,
            "-f",
            &values,
            "--namespace",
            "kiln-system",
        ],
    ] {
        let out = tool("helm", &args);
        assert!(
            out.status.success(),
            "helm {args:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn default_values_render_a_hardened_controller_with_the_standard_labels() {
    let docs = render("kiln", "kiln-system", &[]);
    let kinds: BTreeSet<(String, String)> = docs
        .iter()
        .map(|d| (kind_of(d).to_string(), name_of(d).to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("ServiceAccount", "kiln"),
        ("ClusterRole", "kiln-controller"),
        ("ClusterRoleBinding", "kiln-controller"),
        ("Role", "kiln-leader-election"),
        ("RoleBinding", "kiln-leader-election"),
        ("ClusterRole", "kiln-edit"),
        ("ClusterRole", "kiln-view"),
        ("ClusterRole", "kiln-image-pusher"),
        ("ClusterRole", "kiln-image-puller"),
        ("ClusterRole", "kiln-secret-reader"),
        ("Service", "kiln"),
        ("Deployment", "kiln"),
        ("ConfigMap", "kiln-seccomp"),
        ("DaemonSet", "kiln-seccomp"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds, expected);

    for doc in &docs {
        let labels = doc.pointer("/metadata/labels").expect("labels");
        for (key, want) in [
            ("app.kubernetes.io/name", "kiln"),
            ("app.kubernetes.io/instance", "kiln"),
            ("app.kubernetes.io/managed-by", "Helm"),
            ("app.kubernetes.io/part-of", "kiln"),
        ] {
            assert_eq!(
                labels[key],
                want,
                "{key} of {} {}",
                kind_of(doc),
                name_of(doc)
            );
        }
        assert!(labels["app.kubernetes.io/version"].is_string());
        assert!(str_at(doc, "/metadata/labels/helm.sh~1chart").starts_with("kiln-"));
        if !kind_of(doc).starts_with("Cluster") {
            assert_eq!(str_at(doc, "/metadata/namespace"), "kiln-system");
        }
    }

    let deployment = only(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    // Leader election (on by default) lets an upgrade overlap the old and the new Pod.
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    assert_eq!(
        env_value(deployment, "KILN_LEADER_ELECTION").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(deployment, "KILN_LEASE_NAME").as_deref(),
        Some("kiln-controller")
    );
    assert_eq!(
        env_of(deployment)["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "kiln");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["image"], "ghcr.io/kiln-dev/kiln:0.1.0");
    assert_eq!(
        env_value(deployment, "KILN_BUILDER_IMAGE").as_deref(),
        Some("ghcr.io/kiln-dev/kiln-builder:0.1.0")
    );
    assert_eq!(env_value(deployment, "KILN_REGISTRY"), None);
    assert_eq!(
        env_value(deployment, "KILN_SECURITY_PROFILE").as_deref(),
        Some("unprivileged")
    );
    assert_eq!(
        env_value(deployment, "KILN_SECCOMP_PROFILE").as_deref(),
        Some("kiln/builder.json")
    );
    assert_eq!(env_value(deployment, "KILN_PRIVILEGED_NAMESPACES"), None);
    assert_eq!(
        env_value(deployment, "KILN_LAYER_CACHE").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(deployment, "KILN_BUILD_STORAGE").as_deref(),
        Some("ephemeral")
    );
    assert_eq!(env_value(deployment, "KILN_BUILD_STORAGE_CLASS"), None);
    // The selector matches the Pod template's labels.
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    for (key, value) in selector {
        assert_eq!(
            &deployment["spec"]["template"]["metadata"]["labels"][key],
            value
        );
    }
    let binding = find(&docs, "ClusterRoleBinding", "kiln-controller");
    assert_eq!(binding["subjects"][0]["name"], "kiln");
    assert_eq!(binding["subjects"][0]["namespace"], "kiln-system");
}

#[test]
fn full_values_reach_the_manifests() {
    let values = kiln::yaml::read_documents(&std::fs::read_to_string(full_values()).unwrap())
        .unwrap()
        .remove(0);
    let docs = render_full("ci", "kiln-system");
    // nameOverride "kiln-ci" does not contain the release name: `<release>-<name>`.
    let full = "ci-kiln-ci";
    let deployment = find(&docs, "Deployment", full);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let c = &values["controller"];

    assert_eq!(
        container["image"],
        format!(
            "{}@{}",
            str_at(&values, "/image/repository"),
            str_at(&values, "/image/digest")
        )
    );
    assert_eq!(container["imagePullPolicy"], values["image"]["pullPolicy"]);
    assert_eq!(pod["imagePullSecrets"], values["imagePullSecrets"]);
    assert_eq!(
        env_value(deployment, "KILN_BUILDER_IMAGE").unwrap(),
        format!(
            "{}@{}",
            str_at(&values, "/builder/image/repository"),
            str_at(&values, "/builder/image/digest")
        )
    );
    assert_eq!(
        env_value(deployment, "KILN_SECURITY_PROFILE").as_deref(),
        Some("user-namespace")
    );
    assert_eq!(
        env_value(deployment, "KILN_PRIVILEGED_NAMESPACES").as_deref(),
        Some("platform-builds")
    );
    assert_eq!(
        env_value(deployment, "KILN_REGISTRY").as_deref(),
        values["registry"]["host"].as_str()
    );
    assert_eq!(
        env_value(deployment, "KILN_INSECURE_REGISTRY_INTERNAL").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(deployment, "KILN_LAYER_CACHE").as_deref(),
        Some("false")
    );
    // kiln as the registry's token server: the Secret's key and certificate, and the settings.
    for (name, want) in [
        (
            "KILN_REGISTRY_TOKEN_KEY",
            "/var/run/secrets/kiln.dev/registry-token/tls.key",
        ),
        (
            "KILN_REGISTRY_TOKEN_CERTIFICATE",
            "/var/run/secrets/kiln.dev/registry-token/tls.crt",
        ),
        ("KILN_REGISTRY_TOKEN_SERVICE", "registry.kiln-system"),
        ("KILN_REGISTRY_TOKEN_ISSUER", "kiln-system"),
        ("KILN_REGISTRY_TOKEN_LIFETIME", "120"),
    ] {
        assert_eq!(env_value(deployment, name).as_deref(), Some(want), "{name}");
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "kiln-registry-token"
    );
    assert_eq!(
        env_value(deployment, "KILN_INSECURE_REGISTRIES").as_deref(),
        Some("mirror.example.org,cache.example.org:5000")
    );
    assert_eq!(
        env_value(deployment, "KILN_TAG_HISTORY_LIMIT").as_deref(),
        Some("25")
    );
    assert_eq!(
        env_value(deployment, "KILN_IMAGE_IMPORT_INTERVAL").as_deref(),
        Some("60")
    );
    assert_eq!(
        env_value(deployment, "KILN_BINARY_INPUT_TIMEOUT").as_deref(),
        Some("300")
    );
    for (name, want) in [
        ("KILN_BUILD_STORAGE", "volume"),
        ("KILN_BUILD_STORAGE_SIZE", "50Gi"),
        ("KILN_BUILD_STORAGE_CLASS", "fast-local"),
    ] {
        assert_eq!(env_value(deployment, name).as_deref(), Some(want), "{name}");
    }
    assert_eq!(
        env_value(deployment, "RUST_LOG").as_deref(),
        c["logLevel"].as_str()
    );
    let env = env_of(deployment);
    for extra in c["extraEnv"].as_array().unwrap() {
        assert_eq!(&env[str_at(extra, "/name")], extra);
    }
    assert_eq!(container["resources"], c["resources"]);
    assert_eq!(container["securityContext"], c["securityContext"]);
    assert_eq!(pod["securityContext"], c["podSecurityContext"]);
    assert_eq!(pod["nodeSelector"], c["nodeSelector"]);
    assert_eq!(pod["tolerations"], c["tolerations"]);
    assert_eq!(pod["affinity"], c["affinity"]);
    assert_eq!(pod["priorityClassName"], c["priorityClassName"]);
    assert_eq!(pod["serviceAccountName"], values["serviceAccount"]["name"]);
    let template_meta = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template_meta["annotations"], c["podAnnotations"]);
    assert_eq!(
        template_meta["labels"]["example.org/cost-center"],
        c["podLabels"]["example.org/cost-center"]
    );

    let account = find(&docs, "ServiceAccount", "kiln-operator");
    assert_eq!(
        account["metadata"]["annotations"],
        values["serviceAccount"]["annotations"]
    );
    let binding = find(&docs, "ClusterRoleBinding", &format!("{full}-controller"));
    assert_eq!(binding["subjects"][0]["name"], "kiln-operator");
    let builders: BTreeSet<&str> = docs
        .iter()
        .filter(|d| kind_of(d) == "ServiceAccount" && name_of(d) == "builder")
        .map(|d| str_at(d, "/metadata/namespace"))
        .collect();
    assert_eq!(builders, BTreeSet::from(["team-a", "team-b"]));
    for d in docs.iter().filter(|d| name_of(d) == "builder") {
        assert_eq!(d["automountServiceAccountToken"], false);
    }

    let service = find(&docs, "Service", full);
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
    assert_eq!(
        service["metadata"]["annotations"],
        values["service"]["annotations"]
    );
    let pdb = find(&docs, "PodDisruptionBudget", full);
    assert_eq!(pdb["spec"]["minAvailable"], 0);
    assert!(pdb["spec"].get("maxUnavailable").is_none());
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let monitor = find(&docs, "ServiceMonitor", full);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "http");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "15s");
    assert_eq!(endpoint["scrapeTimeout"], "5s");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );

    let ingress = find(&docs, "Ingress", &format!("{full}-webhooks"));
    let w = &values["webhooks"]["ingress"];
    assert_eq!(ingress["spec"]["ingressClassName"], w["className"]);
    assert_eq!(ingress["spec"]["tls"], w["tls"]);
    assert_eq!(ingress["metadata"]["annotations"], w["annotations"]);
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], w["host"]);
    let paths: Vec<&str> = rule["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["backend"]["service"]["name"], full);
            str_at(p, "/path")
        })
        .collect();
    // Only the webhook paths: /metrics and the health endpoints stay inside the cluster.
    assert_eq!(paths, ["/webhooks/", "/apis/build.kiln.dev/"]);
}

#[test]
fn two_releases_in_two_namespaces_do_not_collide() {
    for (a, b) in [
        (("kiln-a", "team-a"), ("kiln-b", "team-b")),
        // Release names containing the chart name are used alone (`kiln-a`, not `kiln-a-kiln`);
        // one that does not contain it gets the chart name appended.
        (("kiln", "platform"), ("builds", "platform-staging")),
    ] {
        let first = render(a.0, a.1, &[]);
        let second = render(b.0, b.1, &[]);
        let ids_a: BTreeSet<_> = identities(&first).into_iter().collect();
        let ids_b: BTreeSet<_> = identities(&second).into_iter().collect();
        assert_eq!(ids_a.len(), first.len(), "names unique within {a:?}");
        let shared: Vec<_> = ids_a.intersection(&ids_b).collect();
        assert!(shared.is_empty(), "{a:?} and {b:?} both create {shared:?}");
        for (docs, (release, namespace)) in [(&first, a), (&second, b)] {
            for doc in docs.iter() {
                assert!(
                    name_of(doc).starts_with(release),
                    "{} {} is not named from release {release}",
                    kind_of(doc),
                    name_of(doc)
                );
                assert_eq!(
                    str_at(doc, "/metadata/labels/app.kubernetes.io~1instance"),
                    release
                );
            }
            // Each release's binding names its own ServiceAccount in its own namespace.
            let binding = only(docs, "ClusterRoleBinding");
            let account = only(docs, "ServiceAccount");
            assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
            assert_eq!(binding["subjects"][0]["namespace"], namespace);
            assert_eq!(
                binding["roleRef"]["name"],
                find(docs, "ClusterRole", name_of(binding))["metadata"]["name"]
            );
        }
    }
}

#[test]
fn a_value_of_the_wrong_type_fails_helm_template_with_the_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let old_layout = dir.path().join("old-layout.yaml");
    std::fs::write(&old_layout, "registry: registry.example.org:5000\n").unwrap();
    let old_layout = old_layout.display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set-string", "tagHistoryLimit=ten"],
            "tagHistoryLimit: Invalid type. Expected: integer, given: string",
        ),
        (
            &["--set", "controller.replicas=true"],
            "controller.replicas: Invalid type. Expected: integer, given: boolean",
        ),
        (
            &["--set", "registry.insecure=maybe"],
            "registry.insecure: Invalid type. Expected: boolean, given: string",
        ),
        (
            &["-f", &old_layout],
            "registry: Invalid type. Expected: object, given: string",
        ),
        (
            &[
                "--set",
                "controller.replicas=2",
                "--set",
                "controller.leaderElection.enabled=false",
            ],
            "controller.replicas: Must be less than or equal to 1",
        ),
        (
            &["--set", "controller.leaderElection.leaseDurationSeconds=1"],
            "controller.leaderElection.leaseDurationSeconds: Must be greater than or equal to 2",
        ),
        (
            &["--set", "builder.securityProfile=root"],
            "builder.securityProfile: builder.securityProfile must be one of the following",
        ),
        (
            &["--set", "image.digest=sha256:abc"],
            "image.digest: Does not match pattern",
        ),
        (
            &["--set", "controler.replicas=1"],
            "Additional property controler is not allowed",
        ),
    ];
    for (args, message) in cases {
        match template("kiln", "kiln-system", args) {
            Ok(_) => panic!("helm template {args:?} succeeded"),
            Err(stderr) => {
                assert!(
                    stderr.contains("values don't meet the specifications of the schema"),
                    "{args:?}: {stderr}"
                );
                assert!(
                    stderr.contains(message),
                    "{args:?}: wanted {message:?} in {stderr}"
                );
            }
        }
    }
    // And the right type of the same values renders.
    render(
        "kiln",
        "kiln-system",
        &[
            "--set",
            "tagHistoryLimit=12",
            "--set",
            "controller.replicas=0",
        ],
    );
    // Two or more replicas with leader election; without it, one and Recreate, and no Lease role.
    let docs = render("kiln", "kiln-system", &["--set", "controller.replicas=3"]);
    assert_eq!(only(&docs, "Deployment")["spec"]["replicas"], 3);
    let docs = render(
        "kiln",
        "kiln-system",
        &["--set", "controller.leaderElection.enabled=false"],
    );
    let deployment = only(&docs, "Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        env_value(deployment, "KILN_LEADER_ELECTION").as_deref(),
        Some("false")
    );
    assert!(!docs.iter().any(|d| kind_of(d) == "Role"));
}

#[test]
fn the_chart_installs_the_repository_crds() {
    let repo = std::fs::read_to_string(repo_root().join("crds/kiln.yaml")).unwrap();
    let chart_file = std::fs::read_to_string(chart_dir().join("crds/kiln.yaml")).unwrap();
    assert!(
        repo == chart_file,
        "charts/kiln/crds/kiln.yaml differs from crds/kiln.yaml: run `make crds`"
    );
    // What helm itself takes from the chart as its CRDs.
    let out = tool(
        "helm",
        &["show", "crds", &chart_dir().display().to_string()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = kiln::yaml::read_documents(&text(&out.stdout)).unwrap();
    let expected = kiln::yaml::read_documents(&repo).unwrap();
    assert_eq!(shown.len(), 3);
    assert_eq!(shown, expected);
    // `helm template` renders no CRD unless asked (Helm installs crds/ itself, first install only).
    assert!(render("kiln", "kiln-system", &[])
        .iter()
        .all(|d| kind_of(d) != "CustomResourceDefinition"));
}

#[test]
fn a_separate_webhook_receiver_runs_kiln_webhooks_and_gets_the_ingress() {
    let docs = render(
        "kiln",
        "kiln-system",
        &[
            "--set",
            "webhooks.separate.enabled=true,webhooks.separate.port=9443,webhooks.ingress.enabled=true",
        ],
    );
    let deployment = find(&docs, "Deployment", "kiln-webhooks");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], serde_json::json!(["webhooks"]));
    assert_eq!(str_at(container, "/env/0/name"), "KILN_WEBHOOKS_LISTEN");
    assert_eq!(str_at(container, "/env/0/value"), "0.0.0.0:9443");
    let service = find(&docs, "Service", "kiln-webhooks");
    assert_eq!(service["spec"]["ports"][0]["port"], 9443);
    let selector = &service["spec"]["selector"];
    assert_eq!(*selector, deployment["spec"]["selector"]["matchLabels"]);
    // The controller's Service does not select the receiver's Pods, nor the other way round.
    assert_ne!(
        *selector,
        find(&docs, "Service", "kiln")["spec"]["selector"]
    );
    let ingress = find(&docs, "Ingress", "kiln-webhooks");
    for path in ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
    {
        assert_eq!(path["backend"]["service"]["name"], "kiln-webhooks");
    }
    let default = render("kiln", "kiln-system", &[]);
    assert!(!default
        .iter()
        .any(|d| kind_of(d) == "Deployment" && name_of(d) == "kiln-webhooks"));
}

/// The `unprivileged` profile's seccomp profile: the runtime's default (the sandbox kubelet's copy
/// of containerd's) plus exactly one rule allowing what buildah needs without `CAP_SYS_ADMIN`,
/// shipped in a ConfigMap and written by a DaemonSet into the kubelet's seccomp root; other
/// profiles render no installer.
#[test]
fn the_default_profile_ships_its_seccomp_profile_and_an_installer() {
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("files/seccomp/builder.json")).unwrap(),
    )
    .unwrap();
    let runtime_default: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("sandbox/src/kubelet/runc/runtime_default_seccomp.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut rules = shipped["syscalls"].as_array().unwrap().clone();
    let added = rules.pop().unwrap();
    assert_eq!(shipped["defaultAction"], runtime_default["defaultAction"]);
    assert_eq!(
        Value::from(rules),
        runtime_default["syscalls"],
        "all but the last rule are the runtime default's"
    );
    assert_eq!(
        added["names"],
        serde_json::json!(["clone", "mount", "umount2", "unshare"])
    );
    assert_eq!(added["action"], "SCMP_ACT_ALLOW");
    assert!(added.get("args").is_none() && added.get("includes").is_none());

    let docs = render("kiln", "kiln-system", &[]);
    let config_map = find(&docs, "ConfigMap", "kiln-seccomp");
    let in_chart: Value =
        serde_json::from_str(config_map["data"]["builder.json"].as_str().unwrap()).unwrap();
    assert_eq!(in_chart, shipped);
    let daemon_set = find(&docs, "DaemonSet", "kiln-seccomp");
    let pod = &daemon_set["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][1]["hostPath"]["path"],
        "/var/lib/kubelet/seccomp"
    );
    let install = &pod["initContainers"][0];
    assert_eq!(install["env"][0]["value"], "kiln/builder.json");
    assert_eq!(
        install["image"], "ghcr.io/kiln-dev/kiln-builder:0.1.0",
        "the installer runs the builder image the nodes pull anyway"
    );
    assert_eq!(
        install["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    let moved = render(
        "kiln",
        "kiln-system",
        &[
            "--set",
            "builder.seccompProfile.kubeletRoot=/var/lib/k0s/kubelet/",
            "--set",
            "builder.seccompProfile.localhostProfile=platform/kiln.json",
        ],
    );
    let pod = &find(&moved, "DaemonSet", "kiln-seccomp")["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][1]["hostPath"]["path"],
        "/var/lib/k0s/kubelet/seccomp"
    );
    assert_eq!(
        env_value(only(&moved, "Deployment"), "KILN_SECCOMP_PROFILE").as_deref(),
        Some("platform/kiln.json")
    );

    for args in [
        &["--set", "builder.securityProfile=privileged"][..],
        &["--set", "builder.seccompProfile.install=false"][..],
    ] {
        let docs = render("kiln", "kiln-system", args);
        assert!(
            !docs.iter().any(|d| kind_of(d) == "DaemonSet"),
            "{args:?} renders no installer"
        );
    }
    let refused = template(
        "kiln",
        "kiln-system",
        &[
            "--set",
            "builder.seccompProfile.localhostProfile=../../etc/x.json",
        ],
    );
    assert!(refused.is_err(), "a profile path leaving the seccomp root");
}
