//! `kiln-sandbox serve` over TCP enforcing authentication and RBAC, driven with the real kubectl:
//! kiln's CRDs, the chart's roles aggregated into `edit`, and tenants on their own tokens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{free_port, repo_root, run_bounded, Service};

/// The `kiln-sandbox` binary next to the `kiln` binary under test, built (or brought up to date)
/// there by cargo first: `cargo test -p kiln` alone does not build another package's binary.
pub fn sandbox_binary() -> PathBuf {
    let kiln = Path::new(env!("CARGO_BIN_EXE_kiln"));
    let profile_dir = kiln
        .parent()
        .expect("the kiln binary is in a profile directory");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory is in a target dir");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .current_dir(repo_root())
        .args([
            "build",
            "-p",
            "kiln-sandbox",
            "--bin",
            "kiln-sandbox",
            "--target-dir",
        ])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let out = run_bounded(build, Duration::from_secs(900));
    assert!(
        out.status.success(),
        "cargo build -p kiln-sandbox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join("kiln-sandbox");
    assert!(path.exists(), "no kiln-sandbox at {}", path.display());
    path
}

/// What a kubectl run printed.
pub struct Kubectl {
    /// Whether it exited 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// A running sandbox API server that enforces RBAC, with the admin's kubeconfig.
pub struct Sandbox {
    _service: Service,
    dir: PathBuf,
}

impl Sandbox {
    /// Starts `kiln-sandbox serve --authorization rbac` writing its kubeconfig and log into `dir`,
    /// then installs kiln's CRDs and the chart's ClusterRoles that aggregate into `edit`.
    pub fn start_rbac(dir: &Path) -> Sandbox {
        let port = free_port();
        let mut serve = Command::new(sandbox_binary());
        serve
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .args(["--authorization", "rbac"])
            .env("RUST_LOG", "info");
        let service =
            Service::spawn_logged(serve, port, "kiln-sandbox serve", &dir.join("sandbox.log"));
        let sandbox = Sandbox {
            _service: service,
            dir: dir.to_path_buf(),
        };
        let crds = repo_root().join("crds");
        sandbox.admin_ok(&["apply", "-f", &crds.display().to_string()]);
        sandbox.admin_ok(&[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            "crd",
            "--all",
        ]);
        sandbox.install_tenant_roles();
        sandbox
    }

    /// The admin's kubeconfig.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The sandbox's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("sandbox.log")
    }

    /// Runs kubectl with `kubeconfig`.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Kubectl {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", kubeconfig).args(args);
        let out = run_bounded(cmd, Duration::from_secs(60));
        Kubectl {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// kubectl as `kubeconfig`, which must succeed; returns stdout.
    pub fn kubectl_ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// kubectl as the admin, which must succeed; returns stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        self.kubectl_ok(&self.admin_kubeconfig(), args)
    }

    /// The chart's ClusterRoles labelled to aggregate into `edit` (rendered by `helm template`).
    fn install_tenant_roles(&self) {
        let mut helm = Command::new("helm");
        helm.args(["template", "kiln"])
            .arg(repo_root().join("charts/kiln"))
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"));
        let out = run_bounded(helm, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "helm template: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let documents = kiln::yaml::read_documents(&String::from_utf8_lossy(&out.stdout))
            .expect("helm renders YAML");
        let roles: Vec<Value> = documents
            .into_iter()
            .filter(|d| {
                d["kind"] == "ClusterRole"
                    && d["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"]
                        == "true"
            })
            .collect();
        assert!(!roles.is_empty(), "the chart aggregates roles into edit");
        let dir = self.dir.join("tenant-roles");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, role) in roles.iter().enumerate() {
            std::fs::write(dir.join(format!("{i:02}.json")), role.to_string()).unwrap();
        }
        self.admin_ok(&["apply", "-f", &dir.display().to_string()]);
    }

    /// ServiceAccount `account` in `home`, bound to `edit` in each of `namespaces` and to nothing
    /// else; returns a kubeconfig carrying its token (default namespace `home`).
    pub fn tenant(&self, account: &str, home: &str, namespaces: &[&str]) -> PathBuf {
        self.admin_ok(&["-n", home, "create", "serviceaccount", account]);
        for namespace in namespaces {
            self.admin_ok(&[
                "-n",
                namespace,
                "create",
                "rolebinding",
                &format!("{account}-edit"),
                "--clusterrole=edit",
                &format!("--serviceaccount={home}:{account}"),
            ]);
        }
        let token = self.admin_ok(&["create", "token", account, "-n", home, "--duration=24h"]);
        let admin = std::fs::read_to_string(self.admin_kubeconfig()).unwrap();
        assert!(admin.contains("token: sandbox"), "{admin}");
        let scoped = admin
            .replace("token: sandbox", &format!("token: {}", token.trim()))
            .replace("namespace: default", &format!("namespace: {home}"));
        let path = self.dir.join(format!("kubeconfig-{account}"));
        std::fs::write(&path, scoped).unwrap();
        path
    }

    /// The `forbidden:` lines of the sandbox's log (requests it refused).
    pub fn refusals(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("forbidden:"))
            .map(String::from)
            .collect()
    }
}
