//! End to end: the real `kiln controller` binary against `kiln-sandbox serve --kubelet` over TCP,
//! with a real `docker-registry`, `git daemon`, buildah and kubectl. Applying `examples/go-server/`
//! builds the seed's image; ImageStream `go-server:latest` records the registry's digest; a second
//! build started with `kiln start-build` prepends a second TagEvent; the image's server answers.
//! A Dockerfile-only BuildConfig builds too, its image carrying OpenShift's build env and labels.
//!
//! `kiln-sandbox` is another package's binary: the test runs `cargo build -p kiln-sandbox` into the
//! directory holding the `kiln` binary under test (a no-op when it is up to date).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::Storage;
use support::sandbox::sandbox_binary;
use support::seed::{
    assert_example_answer, patched_example, push_base_images, run_image, SeedSource,
};
use support::{free_port, git, http_get, kiln, run_bounded, Registry, Service};

/// The builder image the controller puts in build Pods; the kubelet maps it to the `kiln` binary.
const BUILDER_IMAGE: &str = "kiln-builder:e2e";
/// Upper bound for one build (clone, two-stage Go build, push).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
const NAMESPACE: &str = "demo";

/// Everything the test starts. Fields drop in order: controller, sandbox, git, registry, dirs.
struct Cluster {
    controller: Option<Service>,
    sandbox: Option<Service>,
    source: SeedSource,
    registry: Registry,
    storage: Storage,
    work: tempfile::TempDir,
}

impl Cluster {
    fn kubeconfig(&self) -> PathBuf {
        self.work.path().join("kubeconfig")
    }

    /// The controller's kubeconfig: the admin's, or (enforcing) its ServiceAccount's token.
    fn controller_kubeconfig(&self) -> PathBuf {
        if enforcing() {
            self.work.path().join("kubeconfig-controller")
        } else {
            self.kubeconfig()
        }
    }

    /// The tenant's kubeconfig: the admin's, or (enforcing) the tenant ServiceAccount's token.
    fn tenant_kubeconfig(&self) -> PathBuf {
        if enforcing() {
            self.work.path().join("kubeconfig-tenant")
        } else {
            self.kubeconfig()
        }
    }

    /// Runs kubectl as the tenant; returns (success, stdout, stderr).
    fn tenant_kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec![
            "--kubeconfig".to_string(),
            self.tenant_kubeconfig().display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.kubectl(&all)
    }

    /// kubectl as the tenant, which must succeed; returns stdout.
    fn tenant_kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.tenant_kubectl(args);
        assert!(ok, "kubectl (as the tenant) {args:?} failed:\n{out}{err}");
        out
    }

    fn log(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Runs kubectl against the sandbox; returns (success, stdout, stderr).
    fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig()).args(args);
        let out = run_bounded(cmd, Duration::from_secs(60));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// kubectl that must succeed; returns stdout.
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(ok, "kubectl {args:?} failed:\n{out}{err}");
        out
    }

    /// `kubectl -n demo get KIND NAME -o json` as the tenant, None when it is not there (yet).
    fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let (ok, out, _) = self.tenant_kubectl(&["-n", NAMESPACE, "get", kind, name, "-o", "json"]);
        ok.then(|| serde_json::from_str(&out).ok()).flatten()
    }

    /// Waits until Build `name` is in a terminal phase and returns it.
    fn wait_build(&self, name: &str) -> Value {
        let deadline = Instant::now() + BUILD_LIMIT;
        loop {
            if let Some(build) = self.get("build", name) {
                let phase = build["status"]["phase"].as_str().unwrap_or("");
                if ["Complete", "Failed", "Error", "Cancelled"].contains(&phase) {
                    return build;
                }
            }
            assert!(
                Instant::now() < deadline,
                "build {name} did not finish within {BUILD_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Prints what helps to understand a failure: logs, Builds, Pods and the build containers' logs.
    fn dump(&self) {
        if enforcing() {
            eprintln!("=== requests the sandbox refused ===");
            for line in refusals(self) {
                eprintln!("{line}");
            }
        }
        for name in ["controller.log", "sandbox.log"] {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(200)..].join("\n");
            eprintln!("===== {name} (last 200 lines)\n{tail}");
        }
        for kind in ["builds", "imagestreams", "pods", "buildconfigs"] {
            let (_, out, err) = self.kubectl(&["-n", NAMESPACE, "get", kind, "-o", "yaml"]);
            eprintln!("===== kubectl get {kind} -o yaml\n{out}{err}");
        }
        let (_, pods, _) = self.kubectl(&["-n", NAMESPACE, "get", "pods", "-o", "name"]);
        for pod in pods.lines() {
            for container in ["clone", "build"] {
                let (_, out, err) = self.kubectl(&["-n", NAMESPACE, "logs", pod, "-c", container]);
                eprintln!("===== {pod} {container}\n{out}{err}");
            }
        }
    }
}

/// On a failure, prints the diagnostics while every process still runs (fields drop after this).
impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
    }
}

/// Registry with the base images, git server with the example, sandbox with its kubelet, CRDs.
fn start_cluster() -> Cluster {
    let registry = Registry::start(None);
    let storage = Storage::new();
    push_base_images(&registry, &storage);
    let work = tempfile::tempdir().unwrap();
    let source = SeedSource::start(work.path());

    let mut cluster = Cluster {
        controller: None,
        sandbox: None,
        source,
        registry,
        storage,
        work,
    };
    let port = free_port();
    let mut serve = Command::new(sandbox_binary());
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        // As a real apiserver: build Pods need the example's `builder` ServiceAccount.
        .arg("--service-account-admission")
        .arg("--kubelet")
        .arg("--kubelet-root")
        .arg(cluster.work.path().join("kubelet"))
        .arg("--image-map")
        .arg(format!("{BUILDER_IMAGE}={}", env!("CARGO_BIN_EXE_kiln")))
        .env("RUST_LOG", "info");
    if enforcing() {
        serve.args(["--authorization", "rbac", "--pod-security"]);
    }
    cluster.sandbox = Some(Service::spawn_logged(
        serve,
        port,
        "kiln-sandbox serve",
        &cluster.log("sandbox.log"),
    ));
    let crds = support::repo_root().join("crds");
    cluster.kubectl_ok(&["apply", "-f", &crds.display().to_string()]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd",
        "--all",
    ]);
    if enforcing() {
        install_controller_identity(&cluster);
    }
    cluster
}

/// The sandbox enforces RBAC (and authenticates every request) unless `KILN_E2E_ENFORCE=off`:
/// the controller authenticates as the chart's ServiceAccount with the chart's ClusterRole
/// (rendered by `helm template`), and the tenant applies its manifests and starts builds with its
/// own token, bound only to the aggregated `edit` role in its namespace; namespace `demo`
/// enforces Pod Security `baseline`, which the default build profile (`unprivileged`) passes.
/// Every request the sandbox refuses is logged as a `forbidden:` line of sandbox.log; the test
/// fails on any.
fn enforcing() -> bool {
    std::env::var("KILN_E2E_ENFORCE").map_or(true, |v| v != "off")
}

/// The tenant's ServiceAccount in namespace `demo` (bound to `edit` there, nothing else).
const TENANT: &str = "developer";

const CONTROLLER_NAMESPACE: &str = "kiln-system";

/// Applies the chart's ClusterRoles, ClusterRoleBindings and controller ServiceAccount as
/// rendered by `helm template`, and writes a kubeconfig carrying that ServiceAccount's token.
fn install_controller_identity(cluster: &Cluster) {
    cluster.kubectl_ok(&["create", "namespace", CONTROLLER_NAMESPACE]);
    let chart = support::repo_root().join("charts/kiln");
    let mut helm = Command::new("helm");
    helm.args(["template", "kiln"])
        .arg(&chart)
        .args(["--namespace", CONTROLLER_NAMESPACE])
        .env("HELM_CACHE_HOME", cluster.work.path().join("helm/cache"))
        .env("HELM_CONFIG_HOME", cluster.work.path().join("helm/config"))
        .env("HELM_DATA_HOME", cluster.work.path().join("helm/data"));
    let out = run_bounded(helm, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let documents = kiln::yaml::read_documents(&String::from_utf8_lossy(&out.stdout))
        .expect("helm renders YAML");
    let wanted: Vec<Value> = documents
        .into_iter()
        .filter(|d| {
            let kind = d["kind"].as_str().unwrap_or_default();
            matches!(kind, "ClusterRole" | "ClusterRoleBinding")
                || (kind == "ServiceAccount" && d["metadata"]["namespace"] == CONTROLLER_NAMESPACE)
        })
        .collect();
    let account = wanted
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .and_then(|b| b["subjects"][0]["name"].as_str())
        .expect("the chart binds its ClusterRole to a ServiceAccount")
        .to_string();
    let rendered = cluster.work.path().join("chart-rbac");
    std::fs::create_dir_all(&rendered).unwrap();
    for (i, document) in wanted.iter().enumerate() {
        std::fs::write(rendered.join(format!("{i:02}.json")), document.to_string()).unwrap();
    }
    cluster.kubectl_ok(&["apply", "-f", &rendered.display().to_string()]);
    write_token_kubeconfig(
        cluster,
        &account,
        CONTROLLER_NAMESPACE,
        &cluster.controller_kubeconfig(),
    );
    // The controller's kubeconfig is the ServiceAccount's, and it holds only the chart's rights.
    let as_controller = |args: &[&str]| {
        let mut all = vec![
            "--kubeconfig".to_string(),
            cluster.controller_kubeconfig().display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        cluster.kubectl(&all)
    };
    let (_, who, _) = as_controller(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        who,
        format!("system:serviceaccount:{CONTROLLER_NAMESPACE}:{account}")
    );
    let (allowed, _, _) = as_controller(&["auth", "can-i", "delete", "namespaces"]);
    assert!(!allowed, "the chart's role does not delete namespaces");
}

/// Writes a kubeconfig carrying a token of ServiceAccount `account` in `namespace`.
fn write_token_kubeconfig(cluster: &Cluster, account: &str, namespace: &str, path: &Path) {
    let token = cluster.kubectl_ok(&[
        "create",
        "token",
        account,
        "-n",
        namespace,
        "--duration=24h",
    ]);
    let admin = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    assert!(admin.contains("token: sandbox"), "{admin}");
    let scoped = admin.replace("token: sandbox", &format!("token: {}", token.trim()));
    std::fs::write(path, scoped).unwrap();
}

/// The tenant: ServiceAccount `developer` in `demo`, bound to the aggregated `edit` role there
/// and to nothing else, with its own kubeconfig; the namespace enforces Pod Security `baseline`.
fn admit_tenant(cluster: &Cluster) {
    cluster.kubectl_ok(&["-n", NAMESPACE, "create", "serviceaccount", TENANT]);
    cluster.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "create",
        "rolebinding",
        "developer-edit",
        "--clusterrole=edit",
        &format!("--serviceaccount={NAMESPACE}:{TENANT}"),
    ]);
    write_token_kubeconfig(cluster, TENANT, NAMESPACE, &cluster.tenant_kubeconfig());
    let (may_create_roles, _, _) = cluster.tenant_kubectl(&["auth", "can-i", "create", "roles"]);
    assert!(!may_create_roles, "the tenant holds only edit");
    cluster.kubectl_ok(&[
        "label",
        "--overwrite",
        "namespace",
        NAMESPACE,
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
}

/// The `forbidden:` lines of sandbox.log (requests the sandbox refused).
fn refusals(cluster: &Cluster) -> Vec<String> {
    std::fs::read_to_string(cluster.log("sandbox.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("forbidden:"))
        .map(String::from)
        .collect()
}

/// Starts `kiln controller` and waits for /readyz.
fn start_controller(cluster: &mut Cluster) {
    let port = free_port();
    let mut cmd = kiln();
    cmd.args(["controller", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--registry", &cluster.registry.addr()])
        .arg("--insecure-registry-internal")
        .args(["--builder-image", BUILDER_IMAGE])
        // Scheduled imports every 2 s, so a new upstream image is seen within the test.
        .args(["--image-import-interval", "2"])
        // The same registry under another name stands for an external one (upstream images).
        .args(["--insecure-registry", &upstream_host(&cluster.registry)])
        .env("KUBECONFIG", cluster.controller_kubeconfig())
        .env("RUST_LOG", "info,kiln=debug");
    cluster.controller = Some(Service::spawn_logged(
        cmd,
        port,
        "kiln controller",
        &cluster.log("controller.log"),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(port, "/readyz").map(|(code, _)| code) != Some(200) {
        assert!(Instant::now() < deadline, "the controller never got ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The TagEvents of ImageStream go-server's tag `latest`, newest first, once there are `count`
/// of them (the controller records the image before it marks the Build Complete; the wait only
/// guards against reordering, at most 30 s).
fn latest_events(cluster: &Cluster, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = cluster
            .get("imagestream", "go-server")
            .expect("ImageStream go-server exists");
        assert_eq!(
            stream["status"]["dockerImageRepository"],
            format!("{}/{NAMESPACE}/go-server", cluster.registry.addr())
        );
        let events = stream["status"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tag"] == "latest")
            .and_then(|t| t["items"].as_array().cloned())
            .unwrap_or_default();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_complete(build: &Value) {
    assert_eq!(
        build["status"]["phase"], "Complete",
        "build status: {:#}",
        build["status"]
    );
}

#[test]
fn go_server_example_builds_through_the_controller_and_records_image_history() {
    let started = Instant::now();
    let mut cluster = start_cluster();
    start_controller(&mut cluster);
    let cluster = &cluster;

    let manifests = cluster.work.path().join("manifests");
    patched_example(&cluster.source.url, &cluster.registry.addr(), &manifests);
    // The platform team makes the namespace and its `builder` ServiceAccount; the tenant, with its
    // own token, declares the ImageStream and the BuildConfig and starts builds.
    let namespace_manifest = manifests.join("00-namespace.yaml");
    cluster.kubectl_ok(&["apply", "-f", &namespace_manifest.display().to_string()]);
    if enforcing() {
        support::cluster::grant_secret_reader(&|args| cluster.kubectl_ok(args), NAMESPACE);
        admit_tenant(cluster);
    }
    for name in ["imagestream.yaml", "buildconfig.yaml"] {
        let manifest = manifests.join(name);
        cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    }

    // The ConfigChange trigger starts build 1.
    let first = cluster.wait_build("go-server-1");
    assert_complete(&first);
    let registry = &cluster.registry;
    let repo = format!("{NAMESPACE}/go-server");
    let digest1 = registry
        .manifest_digest(&repo, "latest", None)
        .expect("the registry has demo/go-server:latest");
    assert_eq!(
        first["status"]["output"]["to"]["imageDigest"], digest1,
        "the Build records the pushed digest"
    );
    let events = latest_events(cluster, 1);
    assert_eq!(events.len(), 1, "one TagEvent after one build: {events:#?}");
    assert_eq!(events[0]["image"], digest1);
    assert_eq!(
        events[0]["dockerImageReference"],
        format!("{}/{repo}@{digest1}", registry.addr())
    );

    // A new commit on main, then a second build, started through instantiate by
    // `kiln start-build`.
    let src = &cluster.source.src;
    let server_go = src.join("examples/go-server/server.go");
    let mut text = std::fs::read_to_string(&server_go).unwrap();
    text.push_str("\n// Second version.\n");
    std::fs::write(&server_go, text).unwrap();
    git(src, &["commit", "-q", "-am", "Second version"]);
    git(src, &["push", "-q", "../go-server.git", "main"]);
    let commit2 = git(src, &["rev-parse", "HEAD"]);
    let mut start = kiln();
    start
        .args(["start-build", "go-server", "-n", NAMESPACE])
        .env("KUBECONFIG", cluster.tenant_kubeconfig());
    let out = run_bounded(start, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kiln start-build: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "build.build.kiln.dev/go-server-2 started");
    let second = cluster.wait_build("go-server-2");
    assert_complete(&second);
    let digest2 = registry
        .manifest_digest(&repo, "latest", None)
        .expect("the registry has demo/go-server:latest");
    assert_ne!(digest1, digest2, "build 2 pushed a new manifest");
    let events = latest_events(cluster, 2);
    let images: Vec<&str> = events.iter().filter_map(|e| e["image"].as_str()).collect();
    assert_eq!(
        images,
        [digest2.as_str(), digest1.as_str()],
        "build 2's TagEvent is prepended"
    );
    // start-build leaves lastVersion to the controller's repair (after its grace period).
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.get("buildconfig", "go-server").unwrap()["status"]["lastVersion"] != 2 {
        assert!(Instant::now() < deadline, "lastVersion never reached 2");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The image the ImageStream points at serves the example's page.
    let (body, commit) = run_image(
        &cluster.storage,
        &format!("{}/{repo}@{digest2}", registry.addr()),
        &cluster.log("server.log"),
    );
    assert_eq!(commit, commit2, "build 2 built the tip of main");
    assert_example_answer(&body);

    // A Dockerfile-only source (what `oc new-build --dockerfile` makes) builds in the cluster, and
    // the image carries OpenShift's build env and labels beside kiln's. (They are set at the end of
    // the Dockerfile, as kiln's own: RUN steps do not see them, so the layer cache survives.)
    let dockerfile_only = serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "inline", "namespace": NAMESPACE},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": format!(
                "FROM {}/library/busybox:latest\nRUN echo inline > /built-by\n",
                registry.addr()
            )},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": "inline:latest"}},
            "triggers": [{"type": "ConfigChange"}]
        }
    });
    let dockerfile_only = serde_norway::to_string(&dockerfile_only).unwrap();
    let manifest = cluster.work.path().join("inline.yaml");
    std::fs::write(&manifest, dockerfile_only).unwrap();
    cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    let inline = cluster.wait_build("inline-1");
    assert_complete(&inline);
    let digest = registry
        .manifest_digest(&format!("{NAMESPACE}/inline"), "latest", None)
        .expect("the registry has demo/inline:latest");
    let storage = &cluster.storage;
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{}/{NAMESPACE}/inline@{digest}", registry.addr()),
    ]);
    let label = |name: &str| {
        storage.buildah(&[
            "inspect",
            "--format",
            &format!("{{{{index .OCIv1.Config.Labels \"{name}\"}}}}"),
            &ctr,
        ])
    };
    assert_eq!(label("io.openshift.build.name"), "inline-1");
    assert_eq!(label("io.openshift.build.namespace"), NAMESPACE);
    assert_eq!(label("io.kiln.build.name"), "inline-1");
    let env = storage.buildah(&["inspect", "--format", "{{.OCIv1.Config.Env}}", &ctr]);
    assert!(env.contains("OPENSHIFT_BUILD_NAME=inline-1"), "{env}");
    assert!(
        env.contains(&format!("OPENSHIFT_BUILD_NAMESPACE={NAMESPACE}")),
        "{env}"
    );
    let mount = PathBuf::from(storage.buildah(&["mount", &ctr]));
    let built_by = std::fs::read_to_string(mount.join("built-by")).unwrap();
    assert_eq!(
        built_by.trim(),
        "inline",
        "the inline Dockerfile's RUN step ran"
    );
    storage.buildah(&["rm", &ctr]);

    new_build_shape_builds_once_per_base_digest(cluster);
    eprintln!("e2e_controller: six builds in {:?}", started.elapsed());
    if enforcing() {
        let refused = refusals(cluster);
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
}

/// The test registry under a name other than the internal registry's (`localhost` for
/// `127.0.0.1`), so its images are external ones: an image under `<registry>/<namespace>/` of the
/// internal registry is that namespace's ImageStream, and pulling it is authorized as such.
fn upstream_host(registry: &Registry) -> String {
    format!("localhost:{}", registry.service.port)
}

/// What `oc new-build` makes — an output stream, a base stream importing an external image
/// (scheduled) and a BuildConfig with ConfigChange and ImageChange triggers — applied by the
/// tenant: one build on creation, from the imported digest, whose RUN step sees a Secret through
/// env `valueFrom`; a new upstream image is imported and builds exactly once more.
fn new_build_shape_builds_once_per_base_digest(cluster: &Cluster) {
    let registry = &cluster.registry;
    let host = upstream_host(registry);
    let upstream = format!("{host}/library/busybox:latest");
    let manifests = serde_json::json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-token", "namespace": NAMESPACE},
         "data": {"token": "dDBrZW4tZnJvbS1hLXNlY3JldA=="}},
        {"apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
         "metadata": {"name": "newapp", "namespace": NAMESPACE}},
        {"apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
         "metadata": {"name": "busybox", "namespace": NAMESPACE},
         "spec": {"tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": upstream},
                            "importPolicy": {"insecure": true, "scheduled": true},
                            "referencePolicy": {"type": "Source"}}]}},
        {"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
         "metadata": {"name": "newapp", "namespace": NAMESPACE},
         "spec": {
            "source": {"type": "Dockerfile", "dockerfile":
                "FROM busybox\nRUN echo \"$TOKEN\" > /token-seen\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {
                "from": {"kind": "ImageStreamTag", "name": "busybox:latest"},
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-token", "key": "token"}}}]}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "newapp:latest"}},
            "triggers": [{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}]
         }}
    ]);
    let documents: Vec<String> = manifests
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect();
    let manifest = cluster.work.path().join("new-build.yaml");
    std::fs::write(&manifest, documents.join("---\n")).unwrap();
    cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);

    // The digests the import recorded, newest first.
    let imported = || -> Vec<String> {
        let stream = cluster.get("imagestream", "busybox").unwrap_or_default();
        stream["status"]["tags"][0]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e["image"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = cluster.wait_build("newapp-1");
    let base1 = imported()
        .first()
        .cloned()
        .expect("busybox:latest was imported");
    assert_complete(&first);
    let from = &first["spec"]["strategy"]["dockerStrategy"]["from"];
    assert_eq!(
        from["name"],
        format!("{host}/library/busybox@{base1}"),
        "built from the imported digest: {first:#}"
    );
    let text = first.to_string();
    assert!(!text.contains("t0ken-from-a-secret"), "{text}");
    let digest = registry
        .manifest_digest(&format!("{NAMESPACE}/newapp"), "latest", None)
        .expect("the registry has demo/newapp:latest");
    let storage = &cluster.storage;
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{}/{NAMESPACE}/newapp@{digest}", registry.addr()),
    ]);
    let mount = PathBuf::from(storage.buildah(&["mount", &ctr]));
    let seen = std::fs::read_to_string(mount.join("token-seen")).unwrap();
    assert_eq!(
        seen.trim(),
        "t0ken-from-a-secret",
        "the RUN step saw the Secret"
    );
    storage.buildah(&["rm", &ctr]);
    // Several scheduled imports of the same digest: still one build.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        cluster.get("build", "newapp-2").is_none(),
        "one build on creation"
    );

    // A new upstream image: imported on schedule, built once.
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{upstream}"),
    ]);
    storage.buildah(&["config", "--label", "upstream=2", &ctr]);
    storage.buildah(&["commit", "--quiet", &ctr, "busybox-upstream-2"]);
    storage.buildah(&["rm", &ctr]);
    storage.buildah(&[
        "push",
        "--quiet",
        "--tls-verify=false",
        "busybox-upstream-2",
        &format!("docker://{upstream}"),
    ]);
    let second = cluster.wait_build("newapp-2");
    let base2 = imported().first().cloned().unwrap();
    assert_ne!(base1, base2, "the new upstream image was imported");
    assert_complete(&second);
    assert_eq!(
        second["spec"]["strategy"]["dockerStrategy"]["from"]["name"],
        format!("{host}/library/busybox@{base2}")
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        cluster.get("build", "newapp-3").is_none(),
        "exactly one build per new base digest"
    );
    assert_eq!(imported(), [base2, base1], "both digests, newest first");
}
