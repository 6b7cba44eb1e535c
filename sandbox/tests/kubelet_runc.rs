//! The kubelet's runc runtime with the real runc, a real `docker-registry` on 127.0.0.1 and
//! images built locally with buildah (`scripts/make-base-images.sh`): runtime fidelity checked
//! from inside containers — capabilities, the user namespace's id map, a read-only root,
//! seccomp refusing `unshare` under `RuntimeDefault`, the termination message — plus the image's
//! entrypoint, env, user and working directory, `runAsNonRoot`, pull errors, one unpacked image
//! shared by Pods whose writes stay apart, and deletion leaving no container or mount behind.
//! Runs as root (runc, mounts).

mod kubelet_support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kiln_sandbox::kubelet::runc::{RuncConfig, RuncRuntime};
use kiln_sandbox::kubelet::Runtime;
use kube::api::DeleteParams;
use kubelet_support::*;
use serde_json::{json, Value};

/// A `docker-registry` holding the test images, for the whole test binary.
struct Images {
    _registry: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:<port>/library/busybox:latest` (made by make-base-images.sh; runs as root).
    busybox: String,
    /// Built on busybox: `ENTRYPOINT ["/bin/sh","-c"]`, `CMD`, `ENV GREETING=image`,
    /// `WORKDIR /home/app`, `USER 1000:1000`.
    app: String,
    port: u16,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let registry = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/install-deps.sh installs it)");
        // Killed with the test process.
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
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < LIMIT, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
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
        run(buildah().args(["push", "--quiet", "--tls-verify=false", &app, &format!("docker://{app}")]));
        Images {
            _registry: registry,
            _dir: dir,
            busybox,
            app,
            port,
        }
    })
}

fn runc_setup() -> Setup {
    Setup::with_config(|c| {
        let runc = RuncConfig::under(&c.root_dir);
        c.runtime = Runtime::Runc(Arc::new(RuncRuntime::new(runc)));
    })
}

fn pod(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["restartPolicy"] = json!("Never");
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// A one-container Pod running `script` in busybox with `security` as its securityContext.
fn shell_pod(name: &str, script: &str, security: Value) -> Value {
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

fn message(pod: &Pod) -> String {
    terminated(pod, "c")
        .and_then(|t| t.message)
        .unwrap_or_default()
}

fn exit_code(pod: &Pod) -> i32 {
    terminated(pod, "c").map_or(-1, |t| t.exit_code)
}

fn waiting(pod: &Pod) -> Option<(String, String)> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let w = status.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))
}

async fn run_all(s: &Setup, pods: Vec<Value>) -> Vec<Pod> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_fidelity_from_inside_containers() {
    let _ = images();
    let s = runc_setup();
    let status_line =
        |field: &str| format!("grep {field} /proc/self/status | cut -f2 > /dev/termination-log");
    let pods = vec![
        shell_pod("caps-default", &status_line("CapEff"), json!({})),
        shell_pod(
            "caps-edited",
            &status_line("CapEff"),
            json!({"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "CHOWN"]}}),
        ),
        shell_pod("caps-dropped", &status_line("CapEff"), json!({"capabilities": {"drop": ["CHOWN", "KILL"]}})),
        shell_pod("privileged", &status_line("CapEff"), json!({"privileged": true})),
        shell_pod(
            "no-new-privs",
            &status_line("NoNewPrivs"),
            json!({"allowPrivilegeEscalation": false}),
        ),
        shell_pod("host-users", "cat /proc/self/uid_map > /dev/termination-log", json!({})),
        {
            let mut p = shell_pod(
                "user-ns",
                "(cat /proc/self/uid_map; id -u) > /dev/termination-log; touch /data/made-inside",
                json!({}),
            );
            p["spec"]["hostUsers"] = json!(false);
            p
        },
        shell_pod(
            "read-only",
            "(touch /x 2>&1; echo rc=$?; touch /data/y && echo volume-writable) > /dev/termination-log",
            json!({"readOnlyRootFilesystem": true}),
        ),
        shell_pod(
            "writable",
            "(touch /x && echo root-writable) > /dev/termination-log",
            json!({}),
        ),
        shell_pod(
            "seccomp-default",
            "(unshare -U true 2>&1; echo rc=$?; grep Seccomp: /proc/self/status) > /dev/termination-log",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        ),
        shell_pod(
            "seccomp-unconfined",
            "(unshare -U true 2>&1; echo rc=$?; grep Seccomp: /proc/self/status) > /dev/termination-log",
            json!({"seccompProfile": {"type": "Unconfined"}}),
        ),
        {
            let mut p = shell_pod("custom-path", "echo custom > /tmp/done.txt; exit 3", json!({}));
            p["spec"]["containers"][0]["terminationMessagePath"] = json!("/tmp/done.txt");
            p
        },
    ];
    let done = run_all(&s, pods).await;
    let by_name = |name: &str| {
        done.iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap()
    };
    // containerd's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(message(by_name("caps-default")), "00000000a80425fb\n");
    // CHOWN (0) and NET_ADMIN (12) only.
    assert_eq!(message(by_name("caps-edited")), "0000000000001001\n");
    // The default set without CHOWN (0) and KILL (5).
    assert_eq!(message(by_name("caps-dropped")), "00000000a80425da\n");
    // Privileged: every capability the runtime itself has (containerd's cap.Current()).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    let all = u64::from_str_radix(bounding.trim_start_matches("CapBnd:").trim(), 16).unwrap();
    assert_eq!(
        message(by_name("privileged")),
        format!("{all:016x}\n"),
        "{:?}",
        terminated(by_name("privileged"), "c")
    );
    assert_eq!(message(by_name("no-new-privs")), "1\n");

    // The host's users: the identity map. A user namespace: its own range, root inside.
    let fields = |text: &str| -> Vec<String> {
        text.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        fields(&message(by_name("host-users"))),
        ["0", "0", "4294967295"]
    );
    let userns = by_name("user-ns");
    let text = message(userns);
    let map = fields(&text);
    assert_eq!(map[0], "0", "{text}");
    assert_eq!(map[2], "65536", "{text}");
    let host: u32 = map[1].parse().unwrap();
    assert!(host >= 65536 && host.is_multiple_of(65536), "{text}");
    assert_eq!(text.lines().nth(1), Some("0"), "root inside: {text}");
    // What root in the namespace wrote belongs to the range's first id on the host.
    let uid = userns.metadata.uid.clone().unwrap();
    let made = s
        .root
        .path()
        .join(format!("pods/{uid}/volumes/data/made-inside"));
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (host, host));

    let ro = message(by_name("read-only"));
    assert!(ro.contains("Read-only file system"), "{ro}");
    assert!(
        ro.contains("rc=1") && ro.contains("volume-writable"),
        "{ro}"
    );
    assert_eq!(message(by_name("writable")), "root-writable\n");

    // containerd's profile refuses unshare without CAP_SYS_ADMIN; unconfined, it succeeds.
    let filtered = message(by_name("seccomp-default"));
    assert!(filtered.contains("Operation not permitted"), "{filtered}");
    assert!(
        filtered.contains("rc=1") && filtered.contains("Seccomp:\t2"),
        "{filtered}"
    );
    let open = message(by_name("seccomp-unconfined"));
    assert!(
        open.contains("rc=0") && open.contains("Seccomp:\t0"),
        "{open}"
    );

    let custom = by_name("custom-path");
    assert_eq!((message(custom), exit_code(custom)), ("custom\n".into(), 3));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_config_user_checks_pull_errors_and_sharing() {
    let imgs = images();
    let s = runc_setup();
    let app = |name: &str, extra: Value| {
        let mut c = json!({"name": "c", "image": imgs.app});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        pod(name, json!({"containers": [c]}))
    };
    let script = "echo $GREETING $(pwd) $(id -u):$(id -g) > /dev/termination-log";
    let pods = vec![
        app("image-cmd", json!({})),
        app("image-args", json!({"args": [script]})),
        app(
            "pod-overrides",
            json!({
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "GREETING", "value": "pod"}],
                "workingDir": "/w",
                "securityContext": {"runAsUser": 2000, "runAsGroup": 3000},
            }),
        ),
        pod(
            "writer",
            json!({"containers": [{"name": "c", "image": imgs.busybox,
                "command": ["sh", "-c", "echo one > /written-by-writer"]}]}),
        ),
    ];
    let done = run_all(&s, pods).await;
    let msgs: Vec<String> = done.iter().map(message).collect();
    assert_eq!(msgs[0], "from-image-cmd\n");
    assert_eq!(msgs[1], "image /home/app 1000:1000\n");
    assert_eq!(msgs[2], "pod /w 2000:3000\n");
    assert_eq!(exit_code(&done[3]), 0);
    // A later Pod of the same image does not see the first one's write.
    let reader = run_all(
        &s,
        vec![pod(
            "reader",
            json!({"containers": [{"name": "c", "image": imgs.busybox, "imagePullPolicy": "Always",
                "command": ["sh", "-c", "test -e /written-by-writer; echo $? > /dev/termination-log"]}]}),
        )],
    )
    .await;
    assert_eq!(message(&reader[0]), "1\n");
    // One unpacked root per image, shared by every Pod.
    let unpacked: Vec<String> = std::fs::read_dir(s.root.path().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("sha256-"))
        .collect();
    assert_eq!(unpacked.len(), 2, "{unpacked:?}");

    // runAsNonRoot on an image running as root: refused before start, as the kubelet does.
    let created = s
        .create(pod(
            "non-root",
            json!({"containers": [{"name": "c", "image": imgs.busybox, "command": ["true"],
                "securityContext": {"runAsNonRoot": true}}]}),
        ))
        .await;
    let uid = created.metadata.uid.clone().unwrap();
    let refused = s
        .wait_for("non-root", |p| {
            waiting(p).is_some_and(|w| w.0 == "CreateContainerConfigError")
        })
        .await;
    assert_eq!(
        waiting(&refused).unwrap().1,
        format!("container has runAsNonRoot and image will run as root (pod: \"non-root_default({uid})\", container: c)")
    );
    // A missing image, and one never pulled under `Never`.
    s.create(pod(
        "missing",
        json!({"containers": [{"name": "c", "image": format!("127.0.0.1:{}/nothing/here:1", imgs.port)}]}),
    ))
    .await;
    s.create(pod(
        "never",
        json!({"containers": [{"name": "c", "image": format!("127.0.0.1:{}/test/app:2", imgs.port), "imagePullPolicy": "Never"}]}),
    ))
    .await;
    let missing = s
        .wait_for("missing", |p| {
            waiting(p).is_some_and(|w| w.0 == "ErrImagePull" || w.0 == "ImagePullBackOff")
        })
        .await;
    assert_eq!(
        missing.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    let never = s
        .wait_for("never", |p| {
            waiting(p).is_some_and(|w| w.0 == "ErrImageNeverPull")
        })
        .await;
    assert!(waiting(&never)
        .unwrap()
        .1
        .contains("is not present with pull policy of Never"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_stops_the_container_and_leaves_nothing() {
    let imgs = images();
    let s = runc_setup();
    s.create(pod(
        "sleeper",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": imgs.busybox,
            "command": ["sh", "-c", "echo up; exec sleep 4747"]}]}),
    ))
    .await;
    s.wait_for("sleeper", |p| phase(p) == "Running").await;
    let state = s.root.path().join("runc");
    let listed = run(Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["list", "-q"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    s.pods()
        .delete("sleeper", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("sleeper").await;
    let start = Instant::now();
    while !processes_with("sleep 4747").is_empty() {
        assert!(start.elapsed() < LIMIT, "the container outlived its Pod");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = run(Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["list", "-q"]));
    assert_eq!(listed, "");
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&s.root.path().display().to_string()))
        .map(str::to_string)
        .collect();
    assert_eq!(mounts, Vec::<String>::new());
    s.stop().await;
}
