//! The Helm chart, rendered and linted by the real `helm` (scripts/install-deps.sh puts it on
//! PATH) for the default values and for a full set (`tests/fixtures/chart/values-full.yaml`):
//! object names come from the release, every object carries the standard labels, values reach the
//! manifests, a mistyped value fails with the schema's error, the CRDs are the repository's, the
//! rendered manifests are accepted by the sandbox through the real `kubectl`, `helm install` and
//! `helm upgrade` work against the sandbox, and the controller's ClusterRole grants exactly the
//! requests the controller makes.

mod controller_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{repo_root, run_bounded};

/// Upper bound for one helm or kubectl run.
const LIMIT: Duration = Duration::from_secs(60);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/kiln")
}

fn full_values() -> PathBuf {
    repo_root().join("tests/fixtures/chart/values-full.yaml")
}

/// Runs `program` from PATH (bounded), failing the test with a clear message when it is missing.
fn tool(program: &str, args: &[&str]) -> Output {
    require_on_path(program);
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    run_bounded(cmd, LIMIT)
}

/// Fails the test unless `program` is an executable file in a PATH directory.
fn require_on_path(program: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
    assert!(
        found,
        "{program} is not on PATH: run scripts/install-deps.sh (make deps), which installs it"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `helm template RELEASE charts/kiln -n NAMESPACE [args]`: the rendered documents, or stderr.
fn template(release: &str, namespace: &str, args: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir().display().to_string();
    let mut all = vec!["template", release, &chart, "--namespace", namespace];
    all.extend_from_slice(args);
    let out = tool("helm", &all);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    Ok(kiln::yaml::read_documents(&text(&out.stdout)).expect("helm renders YAML"))
}

fn render(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    template(release, namespace, args).unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

fn render_full(release: &str, namespace: &str) -> Vec<Value> {
    let values = full_values().display().to_string();
    render(release, namespace, &["-f", &values])
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn kind_of(doc: &Value) -> &str {
    str_at(doc, "/kind")
}

fn name_of(doc: &Value) -> &str {
    str_at(doc, "/metadata/name")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind_of(d) == kind && name_of(d) == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

/// The objects' identities as the API server sees them: (apiVersion, kind, namespace, name).
fn identities(docs: &[Value]) -> Vec<(String, String, String, String)> {
    docs.iter()
        .map(|d| {
            (
                str_at(d, "/apiVersion").to_string(),
                kind_of(d).to_string(),
                str_at(d, "/metadata/namespace").to_string(),
                name_of(d).to_string(),
            )
        })
        .collect()
}

fn env_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .expect("the controller container has env")
        .iter()
        .map(|e| (str_at(e, "/name").to_string(), e.clone()))
        .collect()
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    env_of(deployment)
        .get(name)
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

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
        ("ClusterRole", "kiln-edit"),
        ("ClusterRole", "kiln-view"),
        ("ClusterRole", "kiln-image-pusher"),
        ("ClusterRole", "kiln-image-puller"),
        ("Service", "kiln"),
        ("Deployment", "kiln"),
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
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
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
        env_value(deployment, "KILN_REGISTRY").as_deref(),
        values["registry"]["host"].as_str()
    );
    assert_eq!(
        env_value(deployment, "KILN_INSECURE_REGISTRY_INTERNAL").as_deref(),
        Some("true")
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
            &["--set", "controller.replicas=2"],
            "controller.replicas: Must be less than or equal to 1",
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

/// Every API request `kiln controller` makes, as (API group, resource[/subresource], verb), and
/// where: the ClusterRole must grant exactly these.
const CONTROLLER_REQUESTS: &[(&str, &str, &str)] = &[
    // controller/run.rs: one watch per kind (kube's watcher lists, then watches).
    ("build.kiln.dev", "buildconfigs", "list"),
    ("build.kiln.dev", "buildconfigs", "watch"),
    ("build.kiln.dev", "builds", "list"),
    ("build.kiln.dev", "builds", "watch"),
    ("image.kiln.dev", "imagestreams", "list"),
    ("image.kiln.dev", "imagestreams", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    // instantiate.rs (ConfigChange and ImageChange triggers): read the BuildConfig, find a
    // request's Build by label (list), create the Build, read it after a 409, raise lastVersion.
    ("build.kiln.dev", "buildconfigs", "get"),
    ("build.kiln.dev", "builds", "create"),
    ("build.kiln.dev", "builds", "get"),
    ("build.kiln.dev", "buildconfigs/status", "update"),
    // controller/build.rs: record the built commit in spec.revision (git builds).
    ("build.kiln.dev", "builds", "update"),
    // controller/build.rs, build_config.rs: every Build status write (replace, with CAS).
    ("build.kiln.dev", "builds/status", "update"),
    // controller/build_config.rs: history pruning.
    ("build.kiln.dev", "builds", "delete"),
    // controller/build_config.rs: the build Pod; build.rs: read it when the cache lacks it,
    // delete it on cancel.
    ("", "pods", "create"),
    ("", "pods", "get"),
    ("", "pods", "delete"),
    // controller/build.rs: whether the push secret of a Pending build exists (metadata only).
    ("", "secrets", "get"),
    // controller/image_stream.rs: TagEvents; the ImageStream is created when missing.
    ("image.kiln.dev", "imagestreams", "get"),
    ("image.kiln.dev", "imagestreams", "create"),
    ("image.kiln.dev", "imagestreams/status", "update"),
    // controller/events.rs.
    ("events.k8s.io", "events", "create"),
];

/// (group, resource, verb) triples a role's rules grant.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap_or_else(|| panic!("rule without {key}: {rule}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    assert_ne!(verb, "*", "no wildcard verbs");
                    assert_ne!(resource, "*", "no wildcard resources");
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn controller_role() -> Value {
    find(
        &render("kiln", "kiln-system", &[]),
        "ClusterRole",
        "kiln-controller",
    )
    .clone()
}

#[test]
fn the_controller_cluster_role_grants_exactly_the_requests_the_controller_makes() {
    let granted = grants(&controller_role());
    let wanted: BTreeSet<(String, String, String)> = CONTROLLER_REQUESTS
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let missing: Vec<_> = wanted.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    // Git builds record their commit with an update of the Build itself.
    assert!(granted.contains(&("build.kiln.dev".into(), "builds".into(), "update".into())));
    // Secrets: a get by name only, never a list or watch of every Secret in the cluster.
    let secret_verbs: Vec<_> = granted.iter().filter(|(_, r, _)| r == "secrets").collect();
    assert_eq!(secret_verbs.len(), 1, "{secret_verbs:?}");
}

/// The agent the controller's requests carry in the scenario below.
const CONTROLLER_AGENT: &str = "kiln-controller";

/// Runs the real controller in-process against the sandbox through the lifecycle that reaches
/// its API requests (triggers, a git build recording its commit, a push secret check, a new
/// ImageStream, a cancel, pruning), and checks that each request it made is granted by the
/// rendered ClusterRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_controller_makes_is_granted_by_the_rendered_cluster_role() {
    use controller_support::{bc_yaml, digest, Harness, NS};
    use kiln::api::{Build, BuildPhase};
    use kube::api::{Api, Patch, PatchParams};

    let granted = grants(&controller_role());
    // The harness's own controller is replaced by one whose requests carry CONTROLLER_AGENT; the
    // harness's client (no agent) drives the scenario.
    let mut h = Harness::start().await;
    h.kill_controller();
    let controller = kiln::controller::run::run(
        h.server.client_as(CONTROLLER_AGENT),
        controller_support::settings(),
        std::future::pending(),
    )
    .await;

    // ConfigChange trigger → instantiate; a pushSecret (missing while Pending); keep one build.
    h.create_bc(&bc_yaml(
        "app",
        "Serial",
        "    pushSecret:\n      name: push-creds\n  successfulBuildsHistoryLimit: 1\n  triggers:\n  - type: ConfigChange\n",
    ))
    .await;
    h.wait_pod("app-1").await;
    h.complete("app-1", &digest(1)).await;
    h.start_build("app", "second").await;
    h.complete("app-2", &digest(2)).await;
    // Pruning deletes app-1.
    controller_support::eventually("app-1 pruned", || async {
        h.phase("app-1").await.is_none().then_some(())
    })
    .await;
    // A cancel deletes the running build's Pod.
    h.start_build("app", "third").await;
    h.wait_pod("app-3").await;
    h.run_pod("app-3").await;
    Api::<Build>::namespaced(h.client.clone(), NS)
        .patch(
            "app-3",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
        )
        .await
        .unwrap();
    h.wait_phase("app-3", BuildPhase::Cancelled).await;
    controller.abort();

    let done = h.builds().await;
    assert!(done.iter().any(|b| b
        .spec
        .common
        .revision
        .as_ref()
        .is_some_and(|r| r.git.is_some())));
    let made: BTreeSet<(String, String)> = h
        .server
        .request_counts()
        .into_iter()
        .filter(|c| c.agent == CONTROLLER_AGENT)
        .map(|c| (c.resource, c.verb))
        .collect();
    // The scenario reached the requests this test is about.
    for needed in [
        ("builds", "update"),
        ("builds", "delete"),
        ("builds/status", "update"),
        ("buildconfigs/status", "update"),
        ("pods", "create"),
        ("pods", "delete"),
        ("secrets", "get"),
        ("imagestreams", "create"),
        ("imagestreams/status", "update"),
        ("events", "create"),
    ] {
        assert!(
            made.contains(&(needed.0.to_string(), needed.1.to_string())),
            "the scenario made no {needed:?} request: {made:?}"
        );
    }
    // The request counter records resources without their group; kiln's resource names are
    // unambiguous among the groups the controller talks to.
    let ungranted: Vec<_> = made
        .iter()
        .filter(|(resource, verb)| !granted.iter().any(|(_, r, v)| r == resource && v == verb))
        .collect();
    assert!(
        ungranted.is_empty(),
        "the controller made requests its ClusterRole does not grant: {ungranted:?}"
    );
}

/// `kiln-sandbox`'s API server over TCP on 127.0.0.1, served by a runtime of its own.
struct TcpSandbox {
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl TcpSandbox {
    fn start() -> TcpSandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(kiln_sandbox::serve::bind("127.0.0.1:0"))
            .unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        runtime.spawn(kiln_sandbox::serve::run(
            kiln_sandbox::ApiServer::new(),
            listener,
        ));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        kiln_sandbox::serve::write_kubeconfig(&kubeconfig, addr).unwrap();
        TcpSandbox {
            runtime: Some(runtime),
            _dir: dir,
            kubeconfig,
        }
    }

    /// Runs kubectl against the sandbox.
    fn kubectl(&self, args: &[&str]) -> Output {
        require_on_path("kubectl");
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        run_bounded(cmd, LIMIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn apply(&self, docs: &[Value], dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, kiln::yaml::write_documents(docs).unwrap()).unwrap();
        self.ok(&["apply", "-f", &path.display().to_string()])
    }
}

impl Drop for TcpSandbox {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[test]
fn rendered_manifests_are_applied_to_the_sandbox_with_kubectl() {
    let sandbox = TcpSandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let namespaces = ["kiln-system", "team-a", "team-b", "platform-staging"];
    for ns in namespaces {
        sandbox.ok(&["create", "namespace", ns]);
    }
    // The chart's CRDs (as Helm installs them from crds/), and a stand-in for the Prometheus
    // Operator's ServiceMonitor CRD, which a cluster using serviceMonitor.enabled has.
    sandbox.ok(&[
        "apply",
        "-f",
        &chart_dir().join("crds").display().to_string(),
        "-f",
        &repo_root()
            .join("tests/fixtures/chart/servicemonitor-crd.yaml")
            .display()
            .to_string(),
    ]);
    sandbox.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd",
        "--all",
    ]);

    let full = render_full("ci", "kiln-system");
    let default = render("kiln", "kiln-system", &[]);
    let staging = render("kiln-staging", "platform-staging", &[]);
    let mut applied = 0;
    for (docs, name) in [
        (&full, "full.yaml"),
        (&default, "default.yaml"),
        (&staging, "staging.yaml"),
    ] {
        let out = sandbox.apply(docs, dir.path(), name);
        assert_eq!(
            out.lines().filter(|l| l.ends_with(" created")).count(),
            docs.len(),
            "every object of {name} is created:\n{out}"
        );
        applied += docs.len();
    }
    // Each object is there, under its own name, with what was rendered.
    for docs in [&full, &default, &staging] {
        for doc in docs.iter() {
            let (api_version, kind, namespace, name) = &identities(std::slice::from_ref(doc))[0];
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let resource = if group.is_empty() {
                kind.to_lowercase()
            } else {
                format!("{}.{group}", kind.to_lowercase())
            };
            let mut args = vec!["get", resource.as_str(), name.as_str(), "-o", "json"];
            if !namespace.is_empty() {
                args.extend(["-n", namespace.as_str()]);
            }
            let live: Value = serde_json::from_str(&sandbox.ok(&args)).unwrap();
            assert_eq!(live["metadata"]["labels"], doc["metadata"]["labels"]);
            if let Some(spec) = doc.get("spec") {
                assert_eq!(
                    live["spec"]["selector"], spec["selector"],
                    "{kind} {name} selector"
                );
            }
            if let Some(rules) = doc.get("rules") {
                assert_eq!(&live["rules"], rules, "{kind} {name} rules");
            }
        }
    }
    assert!(applied > 30, "{applied} objects applied");
    // A manifest the API server refuses makes the test fail: a misspelled field is rejected
    // (kubectl apply validates strictly).
    let mut broken = only(&default, "Deployment").clone();
    broken["metadata"]["name"] = Value::from("kiln-broken");
    broken["spec"]["replicaz"] = Value::from(1);
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, kiln::yaml::write_documents(&[broken]).unwrap()).unwrap();
    let out = sandbox.kubectl(&["apply", "-f", &path.display().to_string()]);
    assert!(!out.status.success(), "a misspelled field was accepted");
    assert!(
        text(&out.stderr).contains("replicaz"),
        "{}",
        text(&out.stderr)
    );
}

impl TcpSandbox {
    /// Runs helm against the sandbox, with its caches and settings in `home`.
    fn helm(&self, home: &Path, args: &[&str]) -> Output {
        require_on_path("helm");
        let mut cmd = Command::new("helm");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        run_bounded(cmd, LIMIT)
    }
}

#[test]
fn helm_installs_and_upgrades_releases_in_the_sandbox_and_refuses_a_mistyped_value() {
    let sandbox = TcpSandbox::start();
    let home = tempfile::tempdir().unwrap();
    for ns in ["kiln-system", "team-a", "team-b"] {
        sandbox.ok(&["create", "namespace", ns]);
    }
    sandbox.ok(&[
        "apply",
        "-f",
        &repo_root()
            .join("tests/fixtures/chart/servicemonitor-crd.yaml")
            .display()
            .to_string(),
    ]);
    let chart = chart_dir().display().to_string();
    let values = full_values().display().to_string();
    // The sandbox serves OpenAPI v3 only; helm validates against v2 unless told not to (the API
    // server still decodes every object strictly by its type).
    let helm_ok = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--disable-openapi-validation");
        let out = sandbox.helm(home.path(), &all);
        assert!(
            out.status.success(),
            "helm {args:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let notes = helm_ok(&["install", "kiln", &chart, "-n", "kiln-system"]);
    assert!(notes.contains("rollout status deployment/kiln"), "{notes}");
    // Helm installed the chart's CRDs, then the release.
    let crds = sandbox.ok(&["get", "crd", "-o", "name"]);
    for crd in [
        "buildconfigs.build.kiln.dev",
        "builds.build.kiln.dev",
        "imagestreams.image.kiln.dev",
    ] {
        assert!(crds.contains(crd), "{crds}");
    }
    sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment/kiln",
        "service/kiln",
    ]);
    // A second release in another namespace installs beside the first.
    helm_ok(&["install", "kiln-b", &chart, "-n", "team-b"]);
    let roles = sandbox.ok(&["get", "clusterroles", "-o", "name"]);
    for role in [
        "kiln-controller",
        "kiln-b-controller",
        "kiln-b-image-pusher",
    ] {
        assert!(
            roles.contains(&format!("clusterrole.rbac.authorization.k8s.io/{role}\n")),
            "{roles}"
        );
    }
    // Upgrading to the full values.
    helm_ok(&[
        "upgrade",
        "kiln",
        &chart,
        "-n",
        "kiln-system",
        "-f",
        &values,
    ]);
    let image = sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment/kiln-kiln-ci",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(image.contains("@sha256:1111"), "{image}");
    sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "poddisruptionbudget/kiln-kiln-ci",
        "ingress/kiln-kiln-ci-webhooks",
        "servicemonitor/kiln-kiln-ci",
    ]);
    // A mistyped value fails `helm install` before anything is created.
    let out = sandbox.helm(
        home.path(),
        &[
            "install",
            "bad",
            &chart,
            "-n",
            "team-a",
            "--set-string",
            "tagHistoryLimit=ten",
            "--disable-openapi-validation",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("tagHistoryLimit: Invalid type. Expected: integer, given: string"),
        "{}",
        text(&out.stderr)
    );
    let roles = sandbox.ok(&["get", "clusterroles", "-o", "name"]);
    assert!(!roles.contains("bad-"), "{roles}");
}

/// The fenced blocks of `lang` in a Markdown text, each as its lines (the Markdown's indentation
/// kept: the guide's YAML blocks start at column 0).
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match current.as_mut() {
            None if trimmed == format!("```{lang}") => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some(block) => block.push(line.to_string()),
        }
    }
    blocks
}

/// The shell commands of the install guide, `\`-continued lines joined.
fn guide_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for block in fenced_blocks(markdown, "sh") {
        let mut pending = String::new();
        for line in block {
            let line = line.trim();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head.trim_end());
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let command = std::mem::take(&mut pending);
            let command = command.split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() {
                commands.push(command.to_string());
            }
        }
    }
    commands
}

#[test]
fn the_install_guide_commands_run_against_the_sandbox() {
    let guide = std::fs::read_to_string(repo_root().join("docs/install.md")).unwrap();
    let sandbox = TcpSandbox::start();
    let home = tempfile::tempdir().unwrap();
    // What the guide takes as given: tenant namespaces, and the Prometheus Operator's CRD (its
    // values enable the ServiceMonitor).
    for ns in ["team-a", "team-b"] {
        sandbox.ok(&["create", "namespace", ns]);
    }
    sandbox.ok(&[
        "apply",
        "-f",
        &repo_root()
            .join("tests/fixtures/chart/servicemonitor-crd.yaml")
            .display()
            .to_string(),
    ]);
    // The guide's values file, its placeholder digests filled in.
    let yaml = fenced_blocks(&guide, "yaml")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("image:")))
        .expect("the guide shows a values file")
        .join("\n");
    let values = home.path().join("my-values.yaml");
    std::fs::write(
        &values,
        yaml.replace("sha256:…", &format!("sha256:{}", "0".repeat(64))),
    )
    .unwrap();

    let mut ran = Vec::new();
    for command in guide_commands(&guide) {
        // Not here: image builds (no registry), and waiting for a rollout (the sandbox runs no
        // Deployment controller).
        if command.starts_with("buildah ") || command.contains(" rollout status ") {
            continue;
        }
        let mut line = command.replace("my-values.yaml", &values.display().to_string());
        if line.starts_with("helm ") {
            // The sandbox serves OpenAPI v3 only; helm validates against v2 unless told not to.
            line.push_str(" --disable-openapi-validation");
        }
        require_on_path("helm");
        require_on_path("kubectl");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &line])
            .current_dir(repo_root())
            .env("KUBECONFIG", &sandbox.kubeconfig)
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        let out = run_bounded(cmd, LIMIT);
        assert!(
            out.status.success(),
            "install guide command `{command}` failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        ran.push(command);
    }
    for expected in [
        "helm install kiln",
        "kubectl label namespace team-a",
        "--clusterrole=kiln-image-puller",
        "kubectl apply --server-side",
        "helm upgrade kiln",
    ] {
        assert!(
            ran.iter().any(|c| c.contains(expected)),
            "the guide no longer runs `{expected}`: {ran:?}"
        );
    }
    // The result is what the guide says it is.
    let history = sandbox.helm(home.path(), &["history", "kiln", "-n", "kiln-system"]);
    assert!(
        text(&history.stdout).contains("Upgrade complete"),
        "{}",
        text(&history.stdout)
    );
    let labels = sandbox.ok(&[
        "get",
        "namespace",
        "team-a",
        "-o",
        "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
    ]);
    assert_eq!(labels, "privileged");
    sandbox.ok(&[
        "-n",
        "team-a",
        "get",
        "serviceaccount/builder",
        "rolebinding/alice-edit",
    ]);
    sandbox.ok(&["-n", "team-b", "get", "rolebinding/team-a-pulls"]);
    let image = sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment/kiln",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image,
        format!(
            "registry.example.org/platform/kiln@sha256:{}",
            "0".repeat(64)
        )
    );
}

/// Creates every rendered object in the sandbox as its admin (what `helm install` would do).
fn create_rendered(server: &kiln_sandbox::ApiServer, docs: &[Value], namespace: &str) {
    for doc in docs {
        let api_version = str_at(doc, "/apiVersion");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = server
            .plural_of(group, version, kind_of(doc))
            .unwrap_or_else(|| panic!("the sandbox serves no {api_version} {}", kind_of(doc)));
        server
            .create_object(group, version, &plural, namespace, doc.clone())
            .unwrap_or_else(|e| panic!("creating {} {}: {e:?}", kind_of(doc), name_of(doc)));
    }
}

/// With the sandbox enforcing RBAC: the controller, authenticated as the chart's ServiceAccount
/// with nothing but the rendered ClusterRole, takes a git build started by a tenant through to
/// Complete (Pod, status, recorded commit, TagEvent) and cancels another; a tenant holding
/// the built-in `edit` role (which the chart's roles aggregate into) creates a BuildConfig,
/// starts and cancels builds; one holding `view` can read them and nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_rbac_the_controller_needs_only_its_role_and_tenants_use_the_aggregated_roles() {
    use controller_support::{bc_yaml, commit_of, digest, eventually, terminated, NS};
    use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kiln::api::{Build, BuildConfig, BuildPhase, ImageStream};
    use kiln::instantiate::{instantiate, BuildRequest};
    use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

    let server = kiln_sandbox::ApiServer::with_config(kiln_sandbox::ServerConfig {
        authorization: kiln_sandbox::Authorization::Rbac,
        ..kiln_sandbox::ServerConfig::default()
    });
    let admin = server.client();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(admin.clone());
    let text = std::fs::read_to_string(repo_root().join("crds/kiln.yaml")).unwrap();
    for doc in kiln::yaml::read_documents(&text).unwrap() {
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(doc).unwrap(),
        )
        .await
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "kiln-system"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    create_rendered(&server, &render("kiln", "kiln-system", &[]), "kiln-system");

    // Tenants: ServiceAccounts bound to the built-in edit and view roles in the build namespace.
    let mut tokens = BTreeMap::new();
    for (who, role) in [("alice", "edit"), ("bob", "view")] {
        Api::<ServiceAccount>::namespaced(admin.clone(), NS)
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": who}})).unwrap(),
            )
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{who}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": who, "namespace": NS}]}))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), NS)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        tokens.insert(who, server.create_token(NS, who).unwrap());
    }
    let alice = server.client_with_token(&tokens["alice"]);
    let bob = server.client_with_token(&tokens["bob"]);

    let controller_token = server.create_token("kiln-system", "kiln").unwrap();
    let controller = kiln::controller::run::run(
        server.client_with_token(&controller_token),
        controller_support::settings(),
        std::future::pending(),
    )
    .await;

    // alice (edit) creates a BuildConfig and starts a build the way `kiln start-build` does.
    let bc: BuildConfig = serde_json::from_value(
        kiln::yaml::read_documents(&bc_yaml("app", "Parallel", ""))
            .unwrap()
            .remove(0),
    )
    .unwrap();
    Api::<BuildConfig>::namespaced(alice.clone(), NS)
        .create(&PostParams::default(), &bc)
        .await
        .unwrap();
    let request = |id: &str| BuildRequest {
        request_id: id.into(),
        ..BuildRequest::default()
    };
    let first = instantiate(&alice, NS, "app", &request("first"))
        .await
        .expect("edit may start a build");
    let builds: Api<Build> = Api::namespaced(alice.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let pod_name = format!("{}-build", first.metadata.name.as_deref().unwrap());
    eventually("the build Pod", || async {
        pods.get_opt(&pod_name).await.unwrap()
    })
    .await;
    // The kubelet's part, as the admin.
    let report =
        serde_json::json!({"imageDigest": digest(7), "source": {"commit": commit_of(&digest(7))}})
            .to_string();
    pods.patch_status(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"phase": "Succeeded",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [terminated("build", 0, &report)]}})),
    )
    .await
    .unwrap();
    let done = eventually("app-1 Complete", || async {
        let b = builds.get("app-1").await.unwrap();
        (b.status.as_ref().map(|s| s.phase) == Some(BuildPhase::Complete)).then_some(b)
    })
    .await;
    assert!(
        done.spec.common.revision.is_some(),
        "the commit is recorded"
    );
    let stream = Api::<ImageStream>::namespaced(alice.clone(), NS)
        .get("app")
        .await
        .unwrap();
    assert_eq!(stream.status.unwrap().tags[0].items[0].image, digest(7));

    // alice starts a second build and cancels it.
    instantiate(&alice, NS, "app", &request("second"))
        .await
        .unwrap();
    eventually("app-2's Pod", || async {
        pods.get_opt("app-2-build").await.unwrap()
    })
    .await;
    builds
        .patch(
            "app-2",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
        )
        .await
        .expect("edit may cancel");
    eventually("app-2 Cancelled", || async {
        let b = builds.get("app-2").await.unwrap();
        (b.status.as_ref().map(|s| s.phase) == Some(BuildPhase::Cancelled)).then_some(())
    })
    .await;

    // bob (view) reads, and is refused every write.
    let bob_builds: Api<Build> = Api::namespaced(bob.clone(), NS);
    assert_eq!(
        bob_builds
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    Api::<BuildConfig>::namespaced(bob.clone(), NS)
        .get("app")
        .await
        .unwrap();
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403);
    let mut other = bc.clone();
    other.metadata.name = Some("bobs".into());
    assert!(forbidden(
        Api::<BuildConfig>::namespaced(bob.clone(), NS)
            .create(&PostParams::default(), &other)
            .await
            .map(drop)
    ));
    assert!(forbidden(
        bob_builds
            .patch(
                "app-1",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
            )
            .await
            .map(drop)
    ));
    assert!(
        instantiate(&bob, NS, "app", &request("bob")).await.is_err(),
        "view may not start builds"
    );
    assert_eq!(
        bob_builds
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    controller.abort();
}
