//! Over TCP: `kiln-sandbox serve --kubelet` driven by the real kubectl.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// `kiln-sandbox serve --kubelet` in a child process, stopped with SIGTERM when dropped.
struct Sandbox {
    child: Child,
    kubeconfig: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sandbox {
    fn start() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let root = dir.path().join("kubelet");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--kubelet",
                "--kubelet-root",
            ])
            .arg(&root)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let sandbox = Sandbox {
            child,
            kubeconfig,
            root,
            _dir: dir,
        };
        let line = receiver.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
        sandbox
    }

    /// Runs kubectl (bounded by LIMIT); returns (success, stdout, stderr).
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::io::Write::write_all(&mut pipe, input.as_bytes()).unwrap();
        }
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kubectl {args:?} timed out");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            out_reader.join().unwrap(),
            err_reader.join().unwrap(),
        )
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (success, out, err) = self.kubectl(args, stdin);
        assert!(success, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
}

fn wait_removed(path: &Path) {
    let start = Instant::now();
    while path.exists() {
        assert!(start.elapsed() < LIMIT, "{} left behind", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  restartPolicy: Never
  containers:
  - name: count
    image: busybox
    command: ["sh", "-c"]
    args:
    - |
      for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.3; done
      echo -n "counted to 6" > /dev/termination-log
"#;

#[test]
fn kubectl_logs_follow_a_pod_run_by_the_kubelet() {
    let sandbox = Sandbox::start();
    sandbox.ok(&["apply", "-f", "-"], Some(POD));
    sandbox.ok(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/counter",
            "--timeout=20s",
        ],
        None,
    );
    // `logs -f` starts while the container runs and ends when it exits.
    let started = Instant::now();
    let out = sandbox.ok(&["logs", "-f", "counter"], None);
    let want: String = (1..=6).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out, want);
    assert!(started.elapsed() < Duration::from_secs(10));
    sandbox.ok(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/counter",
            "--timeout=20s",
        ],
        None,
    );
    let message = sandbox.ok(
        &[
            "get",
            "pod",
            "counter",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.message}",
        ],
        None,
    );
    assert_eq!(message, "counted to 6");
    let tail = sandbox.ok(&["logs", "counter", "--tail=2"], None);
    assert_eq!(tail, "line 5\nline 6\n");

    sandbox.ok(&["delete", "pod", "counter", "--wait=true"], None);
    let pods = sandbox.root.join("pods");
    if pods.exists() {
        for entry in std::fs::read_dir(&pods).unwrap().flatten() {
            wait_removed(&entry.path());
        }
    }
}
