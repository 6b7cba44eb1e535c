//! A cluster for end-to-end tests: `kiln-sandbox serve --kubelet` over TCP enforcing RBAC (the
//! controller on the chart's rendered ClusterRole and ServiceAccount, a tenant ServiceAccount bound
//! to `edit` in one namespace), the CRDs, the real `kiln controller`, and optionally a
//! `docker-registry`. `KILN_E2E_ENFORCE=off` runs it permissive. On a panic the logs, objects and
//! build containers' logs are printed while everything still runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use super::sandbox::sandbox_binary;
use super::{free_port, http_get, kiln, run_bounded, Registry, Service};

/// The builder image the controller puts in build Pods; the kubelet maps it to the `kiln` binary.
pub const BUILDER_IMAGE: &str = "kiln-builder:e2e";
/// The tenant's ServiceAccount (bound to `edit` in the test namespace, nothing else).
pub const TENANT: &str = "developer";
/// The controller's namespace (the chart's release namespace, where its Lease lives).
pub const CONTROLLER_NAMESPACE: &str = "kiln-system";

/// Whether the sandbox enforces RBAC (unless `KILN_E2E_ENFORCE=off`).
pub fn enforcing() -> bool {
    std::env::var("KILN_E2E_ENFORCE").map_or(true, |v| v != "off")
}

/// A buildah storage in a temp dir; on Drop its containers are removed, which also unmounts it.
pub struct Storage {
    dir: tempfile::TempDir,
}

impl Storage {
    /// A new empty storage.
    pub fn new() -> Storage {
        Storage {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `--runroot`.
    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Runs buildah on this storage; its trimmed stdout, or a panic naming the command.
    pub fn buildah(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot())
            .args(args);
        let out = run_bounded(cmd, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot())
            .args(["rm", "--all"]);
        let _ = run_bounded(cmd, Duration::from_secs(120));
    }
}

/// What a platform team does for a namespace whose Secrets the controller may read (push and pull
/// secrets, webhook secrets): a RoleBinding of the chart's secret-reader ClusterRole to the
/// controller's ServiceAccount there. `kubectl` runs kubectl as the admin.
pub fn grant_secret_reader(kubectl: &dyn Fn(&[&str]) -> String, namespace: &str) {
    let account = kubectl(&[
        "get",
        "clusterrolebinding",
        "kiln-controller",
        "-o",
        "jsonpath={.subjects[0].name}",
    ]);
    kubectl(&[
        "-n",
        namespace,
        "create",
        "rolebinding",
        "kiln-secret-reader",
        "--clusterrole=kiln-secret-reader",
        &format!("--serviceaccount={CONTROLLER_NAMESPACE}:{}", account.trim()),
    ]);
}

/// What to start.
#[derive(Default)]
pub struct Options {
    /// Start a `docker-registry` (the controller's `--registry`, plain HTTP).
    pub registry: bool,
    /// Also name that registry `localhost:<port>` to the controller, as an insecure registry: under
    /// that name its images are external ones (imports), not the internal registry's.
    pub registry_alias: bool,
    /// More arguments for `kiln controller`.
    pub controller_args: Vec<String>,
    /// Run build Pods in a real builder image under runc instead of as host processes.
    pub runc: Option<RuncKubelet>,
    /// Enforce Pod Security admission; the test namespace is labelled `baseline`.
    pub pod_security: bool,
    /// Start no controller (the test starts replicas with [`Cluster::start_replica`]).
    pub no_controller: bool,
    /// Start the registry with token authentication, `kiln controller` as its token server (a
    /// P-256 key and self-signed certificate made with openssl).
    pub registry_tokens: bool,
}

/// The kubelet's runc runtime, as a node would have it.
pub struct RuncKubelet {
    /// The builder image (pulled from its registry by the kubelet).
    pub builder_image: String,
    /// Localhost seccomp profiles to put under the kubelet's seccomp root: (relative path, file).
    pub seccomp_profiles: Vec<(String, PathBuf)>,
}

/// The registry's `auth.token.service` (kiln's default).
pub const TOKEN_SERVICE: &str = "kiln-registry";

/// Everything started. Fields drop in order: controller, sandbox, registry, work dir.
pub struct Cluster {
    controller: Option<Service>,
    sandbox: Option<Service>,
    /// The registry, when asked for.
    pub registry: Option<Registry>,
    /// Logs, kubeconfigs and whatever the test writes.
    pub work: tempfile::TempDir,
    namespace: String,
    /// The builder image the controllers put in build Pods.
    builder_image: String,
    /// The port of the controller `start` runs (chosen first: the registry's token realm).
    controller_port: u16,
}

impl Cluster {
    /// Starts the sandbox (RBAC, kubelet), the CRDs, the controller's identity, the namespace
    /// with its `builder` ServiceAccount and the tenant, then the controller.
    pub fn start(namespace: &str, options: Options) -> Cluster {
        let mut cluster = Cluster {
            controller: None,
            sandbox: None,
            registry: None,
            work: tempfile::tempdir().unwrap(),
            namespace: namespace.to_string(),
            builder_image: BUILDER_IMAGE.to_string(),
            controller_port: 0,
        };
        let controller_port = free_port();
        let mut controller_args = options.controller_args.clone();
        if options.registry_tokens {
            let (key, cert) = cluster.token_key();
            let realm = format!("http://127.0.0.1:{controller_port}/registry/token");
            cluster.registry = Some(Registry::start_token_auth(
                free_port(),
                &realm,
                TOKEN_SERVICE,
                "kiln",
                &cert,
                &cluster.log("registry.log"),
            ));
            controller_args.extend([
                "--registry-token-key".to_string(),
                key.display().to_string(),
                "--registry-token-certificate".to_string(),
                cert.display().to_string(),
            ]);
        } else if options.registry {
            cluster.registry = Some(Registry::start(None));
        }
        let port = free_port();
        let mut serve = Command::new(sandbox_binary());
        serve
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .arg("--service-account-admission")
            .arg("--kubelet")
            .arg("--kubelet-root")
            .arg(cluster.work.path().join("kubelet"))
            .env("RUST_LOG", "info");
        let builder_image = match &options.runc {
            None => {
                serve
                    .arg("--image-map")
                    .arg(format!("{BUILDER_IMAGE}={}", env!("CARGO_BIN_EXE_kiln")));
                BUILDER_IMAGE.to_string()
            }
            Some(runc) => {
                // What the chart's DaemonSet does on a node: the profiles under the seccomp root.
                let root = cluster.work.path().join("seccomp");
                for (relative, file) in &runc.seccomp_profiles {
                    let dest = root.join(relative);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    std::fs::copy(file, &dest).unwrap();
                }
                serve
                    .args(["--runtime", "runc"])
                    .arg("--seccomp-root")
                    .arg(&root);
                runc.builder_image.clone()
            }
        };
        if enforcing() {
            serve.args(["--authorization", "rbac"]);
        }
        if options.pod_security {
            serve.arg("--pod-security");
        }
        cluster.sandbox = Some(Service::spawn_logged(
            serve,
            port,
            "kiln-sandbox serve",
            &cluster.log("sandbox.log"),
        ));
        let crds = super::repo_root().join("crds");
        cluster.kubectl_ok(&["apply", "-f", &crds.display().to_string()]);
        cluster.kubectl_ok(&[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            "crd",
            "--all",
        ]);
        if enforcing() {
            cluster.install_controller_identity();
        }
        cluster.kubectl_ok(&["create", "namespace", namespace]);
        if options.pod_security {
            cluster.kubectl_ok(&[
                "label",
                "namespace",
                namespace,
                "pod-security.kubernetes.io/enforce=baseline",
            ]);
        }
        cluster.kubectl_ok(&["-n", namespace, "create", "serviceaccount", "builder"]);
        if enforcing() {
            grant_secret_reader(&|args| cluster.kubectl_ok(args), namespace);
            cluster.admit_tenant();
        }
        if let (true, Some(registry)) = (options.registry_alias, &cluster.registry) {
            controller_args.push("--insecure-registry".into());
            controller_args.push(format!("localhost:{}", registry.service.port));
        }
        cluster.builder_image = builder_image;
        cluster.controller_port = controller_port;
        if !options.no_controller {
            cluster.start_controller(&controller_args);
        }
        cluster
    }

    /// A P-256 signing key (PKCS#8) and its self-signed certificate, made with openssl.
    pub fn token_key(&self) -> (PathBuf, PathBuf) {
        let key = self.work.path().join("token-key.pem");
        let cert = self.work.path().join("token-cert.pem");
        let mut openssl = Command::new("openssl");
        openssl
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=kiln registry tokens", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert);
        let out = run_bounded(openssl, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (key, cert)
    }

    /// The controller's HTTP port (the registry token server's too).
    pub fn controller_port(&self) -> u16 {
        self.controller_port
    }

    /// The admin's kubeconfig.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.kubeconfig()
    }

    fn kubeconfig(&self) -> PathBuf {
        self.work.path().join("kubeconfig")
    }

    fn controller_kubeconfig(&self) -> PathBuf {
        if enforcing() {
            self.work.path().join("kubeconfig-controller")
        } else {
            self.kubeconfig()
        }
    }

    /// The tenant's kubeconfig: its own token (enforcing), else the admin's.
    pub fn tenant_kubeconfig(&self) -> PathBuf {
        if enforcing() {
            self.work.path().join("kubeconfig-tenant")
        } else {
            self.kubeconfig()
        }
    }

    /// A file in the work dir.
    pub fn log(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `GET path` from the controller's HTTP server (`/metrics`, `/healthz`): (status, body).
    pub fn controller_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.controller.as_ref()?.port, path)
    }

    /// The controller's PID.
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Service::pid)
    }

    /// The sandbox's PID.
    pub fn sandbox_pid(&self) -> Option<u32> {
        self.sandbox.as_ref().map(Service::pid)
    }

    /// Runs kubectl as the admin: (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.kubectl_with(&self.kubeconfig(), args)
    }

    fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", kubeconfig).args(args);
        let out = run_bounded(cmd, Duration::from_secs(60));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// kubectl as the admin, which must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(ok, "kubectl {args:?} failed:\n{out}{err}");
        out
    }

    /// kubectl as the tenant, which must succeed; returns stdout.
    pub fn tenant_kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl_with(&self.tenant_kubeconfig(), args);
        assert!(ok, "kubectl (as the tenant) {args:?} failed:\n{out}{err}");
        out
    }

    /// Applies a manifest (JSON or YAML value) as the tenant.
    pub fn tenant_apply(&self, name: &str, manifest: &Value) {
        let path = self.work.path().join(format!("{name}.json"));
        std::fs::write(&path, manifest.to_string()).unwrap();
        self.tenant_kubectl_ok(&["apply", "-f", &path.display().to_string()]);
    }

    /// `kiln` as the tenant, with its kubeconfig.
    pub fn tenant_kiln(&self) -> Command {
        let mut cmd = kiln();
        cmd.env("KUBECONFIG", self.tenant_kubeconfig());
        cmd
    }

    /// The object as the tenant sees it, None when it is not there (yet).
    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let (ok, out, _) = self.kubectl_with(
            &self.tenant_kubeconfig(),
            &["-n", &self.namespace, "get", kind, name, "-o", "json"],
        );
        ok.then(|| serde_json::from_str(&out).ok()).flatten()
    }

    /// Waits until Build `name` is in a terminal phase and returns it.
    pub fn wait_build(&self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(build) = self.get("build", name) {
                let phase = build["status"]["phase"].as_str().unwrap_or("");
                if ["Complete", "Failed", "Error", "Cancelled"].contains(&phase) {
                    return build;
                }
            }
            assert!(
                Instant::now() < deadline,
                "build {name} did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The `forbidden:` lines of the sandbox's log (requests it refused).
    pub fn refusals(&self) -> Vec<String> {
        std::fs::read_to_string(self.log("sandbox.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("forbidden:"))
            .map(String::from)
            .collect()
    }

    fn install_controller_identity(&self) {
        self.kubectl_ok(&["create", "namespace", CONTROLLER_NAMESPACE]);
        let mut helm = Command::new("helm");
        helm.args(["template", "kiln"])
            .arg(super::repo_root().join("charts/kiln"))
            .args(["--namespace", CONTROLLER_NAMESPACE])
            .env("HELM_CACHE_HOME", self.work.path().join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.work.path().join("helm/config"))
            .env("HELM_DATA_HOME", self.work.path().join("helm/data"));
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
                    || (matches!(kind, "ServiceAccount" | "Role" | "RoleBinding")
                        && d["metadata"]["namespace"] == CONTROLLER_NAMESPACE)
            })
            .collect();
        let account = wanted
            .iter()
            .find(|d| d["kind"] == "ClusterRoleBinding")
            .and_then(|b| b["subjects"][0]["name"].as_str())
            .expect("the chart binds its ClusterRole to a ServiceAccount")
            .to_string();
        let rendered = self.work.path().join("chart-rbac");
        std::fs::create_dir_all(&rendered).unwrap();
        for (i, document) in wanted.iter().enumerate() {
            std::fs::write(rendered.join(format!("{i:02}.json")), document.to_string()).unwrap();
        }
        self.kubectl_ok(&["apply", "-f", &rendered.display().to_string()]);
        self.write_token_kubeconfig(
            &account,
            CONTROLLER_NAMESPACE,
            &self.controller_kubeconfig(),
        );
    }

    fn write_token_kubeconfig(&self, account: &str, namespace: &str, path: &Path) {
        let token = self.kubectl_ok(&[
            "create",
            "token",
            account,
            "-n",
            namespace,
            "--duration=24h",
        ]);
        let admin = std::fs::read_to_string(self.kubeconfig()).unwrap();
        assert!(admin.contains("token: sandbox"), "{admin}");
        let scoped = admin.replace("token: sandbox", &format!("token: {}", token.trim()));
        let scoped = scoped.replace(
            "namespace: default",
            &format!("namespace: {}", self.namespace),
        );
        std::fs::write(path, scoped).unwrap();
    }

    fn admit_tenant(&self) {
        let ns = self.namespace.as_str();
        self.kubectl_ok(&["-n", ns, "create", "serviceaccount", TENANT]);
        self.kubectl_ok(&[
            "-n",
            ns,
            "create",
            "rolebinding",
            "developer-edit",
            "--clusterrole=edit",
            &format!("--serviceaccount={ns}:{TENANT}"),
        ]);
        self.write_token_kubeconfig(TENANT, ns, &self.tenant_kubeconfig());
    }

    fn start_controller(&mut self, extra: &[String]) {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.controller =
            Some(self.spawn_controller(self.controller_port, &extra, &[], "controller.log"));
    }

    /// Starts one more `kiln controller`, the replica `name` (its POD_NAME), with leader election
    /// on a Lease in the controller's namespace, logging to `controller-<name>.log`; returns once
    /// it answers `/readyz`. The caller owns it (declare it after the cluster, so it stops first).
    pub fn start_replica(&self, name: &str, extra: &[&str]) -> Service {
        let mut args = vec![
            "--leader-election",
            "--lease-namespace",
            CONTROLLER_NAMESPACE,
        ];
        args.extend(extra);
        self.spawn_controller(
            free_port(),
            &args,
            &[("POD_NAME", name)],
            &format!("controller-{name}.log"),
        )
    }

    /// `kiln controller` with `extra` arguments and `env` on a free port, once it answers
    /// `/readyz`.
    fn spawn_controller(
        &self,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
        log: &str,
    ) -> Service {
        let mut cmd = kiln();
        cmd.args(["controller", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--builder-image", &self.builder_image])
            .args(extra)
            .env("KUBECONFIG", self.controller_kubeconfig())
            .env("RUST_LOG", "info,kiln=debug");
        for (key, value) in env {
            cmd.env(key, value);
        }
        if let Some(registry) = &self.registry {
            cmd.args(["--registry", &registry.addr()])
                .arg("--insecure-registry-internal");
        }
        let service = Service::spawn_logged(cmd, port, "kiln controller", &self.log(log));
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/readyz").map(|(code, _)| code) != Some(200) {
            assert!(Instant::now() < deadline, "the controller never got ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        service
    }

    fn dump(&self) {
        eprintln!("=== requests the sandbox refused ===");
        for line in self.refusals() {
            eprintln!("{line}");
        }
        let mut logs: Vec<String> = std::fs::read_dir(self.work.path())
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("controller") && n.ends_with(".log"))
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        logs.push("sandbox.log".into());
        for name in &logs {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(200)..].join("\n");
            eprintln!("===== {name} (last 200 lines)\n{tail}");
        }
        let ns = self.namespace.as_str();
        for kind in ["builds", "pods", "buildconfigs", "imagestreams"] {
            let (_, out, err) = self.kubectl(&["-n", ns, "get", kind, "-o", "yaml"]);
            eprintln!("===== kubectl get {kind} -o yaml\n{out}{err}");
        }
        let (_, pods, _) = self.kubectl(&["-n", ns, "get", "pods", "-o", "name"]);
        for pod in pods.lines() {
            for container in ["clone", "build"] {
                let (_, out, err) = self.kubectl(&["-n", ns, "logs", pod, "-c", container]);
                eprintln!("===== {pod} {container}\n{out}{err}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
    }
}
