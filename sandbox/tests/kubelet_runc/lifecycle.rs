//! Deletion, and the runtime behind `kiln-sandbox serve` with kubectl.

use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::DeleteParams;
use serde_json::json;

use crate::kubelet_support::*;
use crate::support::*;

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

/// `kiln-sandbox serve --kubelet --runtime runc` over TCP, driven by the real kubectl.
#[test]
fn serve_with_the_runc_runtime_and_kubectl() {
    use std::io::BufRead;
    let imgs = images();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kubelet",
            "--runtime",
            "runc",
            "--kubelet-root",
        ])
        .arg(dir.path().join("kubelet"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let kubectl = |args: &[&str], stdin: Option<&str>| -> String {
        let mut c = Command::new("kubectl");
        c.args(args)
            .arg("--request-timeout=30s")
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST");
        let out = match stdin {
            Some(text) => {
                let mut c = c
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut c.stdin.take().unwrap(), text.as_bytes()).unwrap();
                c.wait_with_output().unwrap()
            }
            None => c.output().unwrap(),
        };
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let manifest = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": imgs.busybox,
            "command": ["sh", "-c", "echo hello from $(hostname); cat /etc/hostname > /dev/termination-log"],
            "securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "RuntimeDefault"}}}]}});
    kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
    kubectl(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/hello",
            "--timeout=30s",
        ],
        None,
    );
    assert_eq!(kubectl(&["logs", "hello"], None), "hello from hello\n");
    let message = kubectl(
        &[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.message}",
        ],
        None,
    );
    assert_eq!(message, "hello\n");
    kubectl(&["delete", "pod", "hello", "--wait=true"], None);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
