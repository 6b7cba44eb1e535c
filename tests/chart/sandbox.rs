//! The chart in the sandbox over TCP: `kubectl apply` of the rendered manifests, `helm install`,
//! `helm upgrade` and `helm uninstall`.

use super::*;

/// `kiln-sandbox`'s API server over TCP on 127.0.0.1, served by a runtime of its own.
pub(super) struct TcpSandbox {
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
    pub(super) kubeconfig: PathBuf,
}

impl TcpSandbox {
    pub(super) fn start() -> TcpSandbox {
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
    pub(super) fn kubectl(&self, args: &[&str]) -> Output {
        require_on_path("kubectl");
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        run_bounded(cmd, LIMIT)
    }

    pub(super) fn ok(&self, args: &[&str]) -> String {
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
    // The in-cluster registry with its defaults (the full values set every one of its values).
    let registry = render(
        "kiln-registry",
        "team-a",
        &[
            "--set",
            "registry.deploy.enabled=true,registry.tokenSecret=kiln-registry-token",
        ],
    );
    assert!(registry
        .iter()
        .any(|d| kind_of(d) == "PersistentVolumeClaim"));
    let mut applied = 0;
    for (docs, name) in [
        (&full, "full.yaml"),
        (&default, "default.yaml"),
        (&staging, "staging.yaml"),
        (&registry, "registry.yaml"),
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
    for docs in [&full, &default, &staging, &registry] {
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
    pub(super) fn helm(&self, home: &Path, args: &[&str]) -> Output {
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
    // The default build profile: namespaces at `baseline`, the seccomp profile on every node.
    assert!(
        notes.contains("pod-security.kubernetes.io/enforce=baseline"),
        "{notes}"
    );
    assert!(
        notes.contains("rollout status daemonset/kiln-seccomp"),
        "{notes}"
    );
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
        "daemonset/kiln-seccomp",
        "configmap/kiln-seccomp",
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
    // Upgrading to the full values, the in-cluster registry among them.
    let notes = helm_ok(&[
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
    for line in [
        "rollout status deployment/kiln-kiln-ci-registry",
        "to registry.platform.example.org:5443/<namespace>/<stream>:<tag>",
        "tokens from https://builds.example.org/registry/token",
    ] {
        assert!(notes.contains(line), "{line} not in {notes}");
    }
    sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "poddisruptionbudget/kiln-kiln-ci",
        "ingress/kiln-kiln-ci-webhooks",
        "servicemonitor/kiln-kiln-ci",
        "deployment/kiln-kiln-ci-registry",
        "service/kiln-kiln-ci-registry",
        "configmap/kiln-kiln-ci-registry",
        "persistentvolumeclaim/kiln-kiln-ci-registry",
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
    // Uninstalling removes the release's objects and its record, and keeps the CRDs.
    let out = sandbox.helm(home.path(), &["uninstall", "kiln-b", "-n", "team-b"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let roles = sandbox.ok(&["get", "clusterroles", "-o", "name"]);
    assert!(!roles.contains("kiln-b-"), "{roles}");
    assert!(roles.contains("/kiln-kiln-ci-controller\n"), "{roles}");
    let releases = sandbox.ok(&["-n", "team-b", "get", "secrets", "-o", "name"]);
    assert!(!releases.contains("sh.helm.release"), "{releases}");
    assert!(sandbox
        .ok(&["get", "crd", "-o", "name"])
        .contains("builds.build.kiln.dev"));
}
