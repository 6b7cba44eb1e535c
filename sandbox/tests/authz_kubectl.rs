//! `kiln-sandbox serve --authorization rbac --pod-security` over TCP with the real kubectl:
//! `kubectl create token`, `kubectl auth can-i` (and `--list`, `whoami`) as that token, applying
//! a Role and RoleBinding, kubectl's rendering of 401 and 403, and Pod Security refusals.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Sandbox {
    _process: Killed,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Sandbox {
    fn start(flags: &[&str]) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = Killed(child);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address");
        assert!(line.starts_with("listening on http"), "{line}");
        Sandbox {
            _process: process,
            _dir: dir,
            kubeconfig,
        }
    }

    /// Runs kubectl (each request bounded by `--request-timeout`): (success, stdout, stderr).
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new("kubectl")
            .arg("--request-timeout=20s")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(pipe);
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (success, out, err) = self.run(args, None);
        assert!(success, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }

    fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let (success, out, err) = self.run(args, Some(input));
        assert!(success, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
}

const ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team}
rules:
- apiGroups: [\"\"]
  resources: [pods, pods/log]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: builder-reads-pods, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: builder, namespace: team}
";

#[test]
fn kubectl_create_token_and_auth_can_i() {
    let sandbox = Sandbox::start(&["--authorization", "rbac"]);
    // The kubeconfig's credentials are the admin's.
    let who = sandbox.ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(who, "kubernetes-admin");
    sandbox.ok(&["create", "namespace", "team"]);
    sandbox.ok(&["create", "serviceaccount", "builder", "-n", "team"]);
    let token = sandbox.ok(&["create", "token", "builder", "-n", "team"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped: {token}");
    let as_builder = |args: &[&str]| {
        let mut all = vec!["--token", token];
        all.extend_from_slice(args);
        sandbox.run(&all, None)
    };

    let (_, out, _) = as_builder(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(out, "system:serviceaccount:team:builder");
    let (allowed, out, _) = as_builder(&["auth", "can-i", "list", "pods", "-n", "team"]);
    assert_eq!((allowed, out.trim()), (false, "no"));
    let (success, _, err) = as_builder(&["get", "pods", "-n", "team"]);
    assert!(!success);
    assert!(
        err.contains(r#"Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:team:builder" cannot list resource "pods" in API group "" in the namespace "team""#),
        "{err}"
    );

    // The admin applies a Role and RoleBinding; the same token may now read pods in `team`.
    let out = sandbox.ok_stdin(&["apply", "-f", "-"], ROLE);
    assert!(
        out.contains("role.rbac.authorization.k8s.io/pod-reader created"),
        "{out}"
    );
    assert!(
        out.contains("rolebinding.rbac.authorization.k8s.io/builder-reads-pods created"),
        "{out}"
    );
    let (allowed, out, _) = as_builder(&["auth", "can-i", "list", "pods", "-n", "team"]);
    assert_eq!((allowed, out.trim()), (true, "yes"));
    let (allowed, out, _) = as_builder(&[
        "auth",
        "can-i",
        "get",
        "pods",
        "--subresource=log",
        "-n",
        "team",
    ]);
    assert_eq!((allowed, out.trim()), (true, "yes"));
    let (allowed, out, _) = as_builder(&["auth", "can-i", "delete", "pods", "-n", "team"]);
    assert_eq!((allowed, out.trim()), (false, "no"));
    let (allowed, _, _) = as_builder(&["auth", "can-i", "list", "pods", "-n", "default"]);
    assert!(!allowed);
    let (success, _, err) = as_builder(&["get", "pods", "-n", "team"]);
    assert!(success, "{err}");
    let list = as_builder(&["auth", "can-i", "--list", "-n", "team"]).1;
    let pods_row = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_default();
    assert!(pods_row.contains("[get list watch]"), "{list}");
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );

    // A token nobody issued.
    let (success, _, err) = sandbox.run(&["--token", "forged", "get", "pods"], None);
    assert!(!success);
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );
}

#[test]
fn kubectl_sees_pod_security_refusals() {
    let sandbox = Sandbox::start(&["--pod-security"]);
    sandbox.ok(&["create", "namespace", "team"]);
    sandbox.ok(&[
        "label",
        "namespace",
        "team",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let pod = "apiVersion: v1
kind: Pod
metadata: {name: build, namespace: team}
spec:
  containers:
  - name: build
    image: busybox
    securityContext: {privileged: true}
";
    let (success, _, err) = sandbox.run(&["apply", "-f", "-"], Some(pod));
    assert!(!success);
    assert!(
        err.contains(r#"pods "build" is forbidden: violates PodSecurity "baseline:latest": privileged (container "build" must not set securityContext.privileged=true)"#),
        "{err}"
    );
    let out = sandbox.ok_stdin(
        &["apply", "-f", "-"],
        &pod.replace(
            "securityContext: {privileged: true}",
            "securityContext: {privileged: false}",
        ),
    );
    assert!(out.contains("pod/build created"), "{out}");
}
