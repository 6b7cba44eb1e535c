//! Shared set-up of the runc runtime tests: a `docker-registry` on 127.0.0.1 (optionally with
//! basic auth) holding images built locally with buildah, and Pod helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kiln_sandbox::kubelet::runc::{RuncConfig, RuncRuntime};
use kiln_sandbox::kubelet::Runtime;
use serde_json::{json, Value};

use crate::kubelet_support::*;

/// A `docker-registry` holding the test images, for the whole test binary.
pub struct Images {
    _registry: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:<port>/library/busybox:latest` (made by make-base-images.sh; runs as root).
    pub busybox: String,
    /// Built on busybox: `ENTRYPOINT ["/bin/sh","-c"]`, `CMD`, `ENV GREETING=image`,
    /// `WORKDIR /home/app`, `USER 1000:1000`.
    pub app: String,
    /// The registry's port.
    pub port: u16,
    /// Where buildah keeps the images.
    pub storage: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (registry, port) = start_registry(dir.path(), None);
        let registry_addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("buildah");
        let storage_args = [
            "--root".to_string(),
            storage.join("root").display().to_string(),
            "--runroot".to_string(),
            storage.join("run").display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ];
        run(Command::new("bash")
            .arg(repo_root().join("scripts/make-base-images.sh"))
            .arg(&registry_addr)
            .arg("--busybox")
            .env("BUILDAH_ROOT", storage.join("root"))
            .env("BUILDAH_RUNROOT", storage.join("run"))
            .env("STORAGE_DRIVER", "vfs"));
        let busybox = format!("{registry_addr}/library/busybox:latest");
        let app = format!("{registry_addr}/test/app:1");
        let buildah = || {
            let mut c = Command::new("buildah");
            c.args(&storage_args);
            c
        };
        let ctr = run(buildah().args(["from", "--pull-never", &busybox]));
        run(buildah().args([
            "config",
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "--cmd",
            r#"["echo from-image-cmd > /dev/termination-log"]"#,
            "--env",
            "GREETING=image",
            "--workingdir",
            "/home/app",
            "--user",
            "1000:1000",
            &ctr,
        ]));
        run(buildah().args(["commit", "--quiet", "--rm", &ctr, &app]));
        run(buildah().args([
            "push",
            "--quiet",
            "--tls-verify=false",
            &app,
            &format!("docker://{app}"),
        ]));
        Images {
            _registry: registry,
            _dir: dir,
            busybox,
            app,
            port,
            storage,
        }
    })
}

pub fn runc_setup() -> Setup {
    Setup::with_config(|c| {
        let runc = RuncConfig::under(&c.root_dir);
        c.runtime = Runtime::Runc(Arc::new(RuncRuntime::new(runc)));
    })
}

pub fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["restartPolicy"] = json!("Never");
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// A one-container Pod running `script` in busybox with `security` as its securityContext.
pub fn shell_pod(name: &str, script: &str, security: Value) -> Value {
    pod(
        name,
        json!({
            "containers": [{
                "name": "c",
                "image": images().busybox,
                "command": ["sh", "-c", script],
                "securityContext": security,
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }),
    )
}

pub fn message(pod: &Pod) -> String {
    terminated(pod, "c")
        .and_then(|t| t.message)
        .unwrap_or_default()
}

pub fn exit_code(pod: &Pod) -> i32 {
    terminated(pod, "c").map_or(-1, |t| t.exit_code)
}

pub fn waiting(pod: &Pod) -> Option<(String, String)> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let w = status.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
}

pub async fn run_all(s: &Setup, pods: Vec<Value>) -> Vec<Pod> {
    let mut names = Vec::new();
    for p in pods {
        names.push(p["metadata"]["name"].as_str().unwrap().to_string());
        s.create(p).await;
    }
    let mut out = Vec::new();
    for name in names {
        out.push(s.wait_for(&name, finished).await);
    }
    out
}

/// Starts a `docker-registry` on a free port with its storage in `dir`, requiring basic auth
/// when `htpasswd` is given; killed when the test process exits. A port taken by another
/// process between the probe and the start makes the registry exit: it is retried on another.
fn start_registry(dir: &Path, htpasswd: Option<(&str, &str)>) -> (Child, u16) {
    let mut auth = String::new();
    if let Some((user, password)) = htpasswd {
        let hash = bcrypt::hash(password, 4).unwrap();
        let file = dir.join("htpasswd");
        std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
        auth = format!(
            "auth:\n  htpasswd:\n    realm: sandbox-test\n    path: {}\n",
            file.display()
        );
    }
    for _attempt in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut registry = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/install-deps.sh installs it)");
        let start = Instant::now();
        let listening = loop {
            if matches!(registry.try_wait(), Ok(Some(_))) {
                break false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Ours, not another process's: still running once the port answers.
                std::thread::sleep(Duration::from_millis(100));
                break matches!(registry.try_wait(), Ok(None));
            }
            assert!(start.elapsed() < LIMIT, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        };
        if !listening {
            let _ = registry.kill();
            let _ = registry.wait();
            continue;
        }
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {}",
                    std::process::id(),
                    registry.id()
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        return (registry, port);
    }
    panic!("docker-registry could not start on a free port");
}

/// A registry requiring basic auth, holding the app image as `<addr>/private/app:1`.
pub struct PrivateRegistry {
    _registry: Child,
    _dir: tempfile::TempDir,
    /// The image.
    pub image: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl PrivateRegistry {
    /// Starts it and pushes the app image with `user`/`password`.
    pub fn start(user: &str, password: &str) -> PrivateRegistry {
        let imgs = images();
        let dir = tempfile::tempdir().unwrap();
        let (registry, port) = start_registry(dir.path(), Some((user, password)));
        let addr = format!("127.0.0.1:{port}");
        // The registry answering on the port is this one, requiring credentials.
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        std::io::Write::write_all(
            &mut stream,
            format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        let image = format!("{addr}/private/app:1");
        run(Command::new("buildah")
            .arg("--root")
            .arg(imgs.storage.join("root"))
            .arg("--runroot")
            .arg(imgs.storage.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "push",
                "--quiet",
                "--tls-verify=false",
            ])
            .arg(format!("--creds={user}:{password}"))
            .arg(&imgs.app)
            .arg(format!("docker://{image}")));
        PrivateRegistry {
            _registry: registry,
            _dir: dir,
            image,
            addr,
        }
    }
}
