//! Over TCP with the real kubectl: `kiln-sandbox serve` in a child process.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KUBECTL: &str = "kubectl";
const LIMIT: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `kiln-sandbox serve` and its kubeconfig.
struct Sandbox {
    _process: Killed,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Sandbox {
    fn start() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
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
        assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
        Sandbox {
            _process: process,
            _dir: dir,
            kubeconfig,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(KUBECTL);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST");
        command
    }

    /// Runs kubectl to completion (bounded), returning (success, stdout, stderr).
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut command = self.command(args);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = Killed(command.spawn().unwrap());
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.0.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        let mut out = child.0.stdout.take().unwrap();
        let mut err = child.0.stderr.take().unwrap();
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
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < LIMIT, "kubectl {args:?} timed out");
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            out_reader.join().unwrap(),
            err_reader.join().unwrap(),
        )
    }

    /// Runs kubectl and requires success; returns stdout.
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

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn repo_crds() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crds")
        .display()
        .to_string()
}

const WIDGET: &str =
    "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n";

#[test]
fn apply_get_and_rejections() {
    let sandbox = Sandbox::start();
    let out = sandbox.ok(&["apply", "-f", &fixture("widget-crd.yaml")]);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.dev created"),
        "{out}"
    );
    sandbox.ok(&[
        "wait",
        "--for=condition=established",
        "crd/widgets.example.dev",
        "--timeout=10s",
    ]);

    // Client-side apply: create, then configure.
    let out = sandbox.ok_stdin(&["apply", "-f", "-"], WIDGET);
    assert!(out.contains("widget.example.dev/w1 created"), "{out}");
    let out = sandbox.ok_stdin(&["apply", "-f", "-"], &WIDGET.replace("size: 3", "size: 4"));
    assert!(out.contains("widget.example.dev/w1 configured"), "{out}");
    let out = sandbox.ok(&[
        "get",
        "wd",
        "w1",
        "-o",
        "jsonpath={.spec.size} {.spec.mode} {.metadata.generation}",
    ]);
    assert_eq!(out, "4 Fast 2");
    // Table output with the CRD's printer columns.
    let table = sandbox.ok(&["get", "wd"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], vec!["NAME", "SIZE", "MODE", "AGE"], "{table}");
    assert_eq!(rows[1][..3], ["w1", "4", "Fast"], "{table}");
    let pods = sandbox.ok(&["get", "pods"]);
    assert_eq!(pods.trim(), "", "no pods yet");
    let yaml = sandbox.ok(&["get", "widget", "w1", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Widget") && yaml.contains("size: 4") && yaml.contains("uid:"),
        "{yaml}"
    );

    // Switching w1 from client-side to server-side apply takes its fields over without conflicts
    // (as the apiserver does for the `kubectl` manager); another manager then conflicts.
    let out = sandbox.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &WIDGET.replace("size: 3", "size: 5"),
    );
    assert!(
        out.contains("widget.example.dev/w1 serverside-applied"),
        "{out}"
    );
    let (success, _, err) = sandbox.run(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&WIDGET.replace("size: 3", "size: 6")),
    );
    assert!(!success);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.size"),
        "{err}"
    );
    let out = sandbox.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &WIDGET.replace("size: 3", "size: 6"),
    );
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(
        sandbox.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"]),
        "6"
    );

    // Server-side apply.
    let out = sandbox.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &WIDGET.replace("w1", "w2"),
    );
    assert!(
        out.contains("widget.example.dev/w2 serverside-applied"),
        "{out}"
    );
    let managers = sandbox.ok(&[
        "get",
        "wd",
        "w2",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(managers, "kubectl");

    // An invalid object is rejected with the field named.
    let (success, _, err) = sandbox.run(
        &["apply", "-f", "-"],
        Some(
            &WIDGET
                .replace("w1", "bad")
                .replace("size: 3", "size: 0\n  mode: Turbo"),
        ),
    );
    assert!(!success);
    assert!(
        err.contains("spec.mode: Unsupported value: \"Turbo\""),
        "{err}"
    );
    assert!(err.contains("spec.size"), "{err}");
    let (success, _, err) = sandbox.run(
        &["apply", "-f", "-"],
        Some(&WIDGET.replace("w1", "Bad_Name")),
    );
    assert!(!success);
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
    let (success, _, err) = sandbox.run(&["get", "nosuchthings"], None);
    assert!(!success);
    assert!(
        err.contains("the server doesn't have a resource type \"nosuchthings\""),
        "{err}"
    );
}

#[test]
fn kiln_crds_apply_and_serve() {
    let sandbox = Sandbox::start();
    let out = sandbox.ok(&["apply", "-f", &repo_crds()]);
    let created = out
        .lines()
        .filter(|l| l.contains("customresourcedefinition.apiextensions.k8s.io/"))
        .count();
    assert!(created >= 1, "{out}");
    let names = sandbox.ok(&[
        "get",
        "crd",
        "-o",
        "jsonpath={range .items[*]}{.spec.names.plural}{\"\\n\"}{end}",
    ]);
    for plural in names.lines() {
        let out = sandbox.ok(&["get", plural, "-A", "-o", "name"]);
        assert_eq!(out, "", "{plural}");
    }
    assert_eq!(names.lines().count(), created);
}

#[test]
fn watch_patch_status_and_wait() {
    let sandbox = Sandbox::start();
    sandbox.ok(&["apply", "-f", &fixture("widget-crd.yaml")]);
    sandbox.ok_stdin(&["apply", "-f", "-"], WIDGET);

    // `get -w`, bounded: a child process that we kill after reading its events.
    let mut watch = sandbox.command(&["get", "wd", "-w", "--output-watch-events"]);
    watch.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut watch = Killed(watch.spawn().unwrap());
    let stdout = watch.0.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Table rows: EVENT NAME AGE; keep "EVENT NAME".
            let words: Vec<&str> = line.split_whitespace().take(2).collect();
            if sender.send(words.join(" ")).is_err() {
                return;
            }
        }
    });
    assert_eq!(receiver.recv_timeout(LIMIT).unwrap(), "EVENT NAME");
    assert_eq!(receiver.recv_timeout(LIMIT).unwrap(), "ADDED w1");

    // Status patch through the subresource; the watcher sees it; wait on a jsonpath.
    let waiter = {
        let mut command = sandbox.command(&[
            "wait",
            "--for=jsonpath={.status.phase}=Ready",
            "wd/w1",
            "--timeout=20s",
        ]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        Killed(command.spawn().unwrap())
    };
    std::thread::sleep(Duration::from_millis(300));
    let out = sandbox.ok(&[
        "patch",
        "wd",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"phase\":\"Ready\"}}",
    ]);
    assert!(out.contains("widget.example.dev/w1 patched"), "{out}");
    let second = receiver.recv_timeout(LIMIT).unwrap();
    assert_eq!(second, "MODIFIED w1");
    let mut waiter = waiter;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = waiter.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "kubectl wait did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "kubectl wait failed");
    // The spec was not touched by the status patch.
    let out = sandbox.ok(&[
        "get",
        "wd",
        "w1",
        "-o",
        "jsonpath={.status.phase} {.metadata.generation}",
    ]);
    assert_eq!(out, "Ready 1");
    sandbox.ok(&["delete", "wd", "w1"]);
    let third = receiver.recv_timeout(LIMIT).unwrap();
    assert_eq!(third, "DELETED w1");
}

#[test]
fn delete_cascade_background_removes_dependents() {
    let sandbox = Sandbox::start();
    sandbox.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owner\ndata:\n  a: b\n",
    );
    let uid = sandbox.ok(&["get", "cm", "owner", "-o", "jsonpath={.metadata.uid}"]);
    for name in ["dep-1", "dep-2"] {
        let dependent = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {uid}\n"
        );
        sandbox.ok_stdin(&["apply", "-f", "-"], &dependent);
    }
    sandbox.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\n",
    );
    let out = sandbox.ok(&["delete", "cm", "owner", "--cascade=background"]);
    assert!(out.contains("configmap \"owner\" deleted"), "{out}");
    let remaining = sandbox.ok(&["get", "cm", "-o", "name"]);
    assert_eq!(remaining.trim(), "configmap/unrelated");

    // kubectl's typed generators send protobuf.
    sandbox.ok(&["create", "namespace", "team"]);
    sandbox.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    sandbox.ok(&[
        "create",
        "secret",
        "generic",
        "token",
        "-n",
        "team",
        "--from-literal=token=abc",
    ]);
    sandbox.ok(&["create", "serviceaccount", "builder", "-n", "team"]);
    let out = sandbox.ok(&[
        "get",
        "secret",
        "token",
        "-n",
        "team",
        "-o",
        "jsonpath={.type} {.data.token}",
    ]);
    assert_eq!(out, "Opaque YWJj");
    let out = sandbox.ok(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "team",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(out, "b");
    sandbox.ok(&["get", "serviceaccount", "builder", "-n", "team"]);
    sandbox.ok(&["delete", "namespace", "team"]);
    let (success, _, err) = sandbox.run(&["get", "configmap", "settings", "-n", "team"], None);
    assert!(!success && err.contains("NotFound"), "{err}");

    // Built-in kinds are decoded strictly by kubectl's default `--validate=strict`.
    let typo =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndata:\n  a: b\nextra: 1\n";
    let (success, _, err) = sandbox.run(&["apply", "-f", "-"], Some(typo));
    assert!(!success);
    assert!(err.contains("unknown field \"extra\""), "{err}");
    let (success, _, err) = sandbox.run(&["apply", "--validate=false", "-f", "-"], Some(typo));
    assert!(success, "{err}");

    // Pods: strategic-merge client-side apply keeps containers merged by name.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: busybox\n    env: [{name: X, value: \"1\"}]\n  - name: b\n    image: busybox\n";
    sandbox.ok_stdin(&["apply", "-f", "-"], pod);
    sandbox.ok_stdin(
        &["apply", "-f", "-"],
        &pod.replace("value: \"1\"", "value: \"2\""),
    );
    let out = sandbox.ok(&[
        "get",
        "pod",
        "p",
        "-o",
        "jsonpath={.spec.containers[*].name} {.spec.containers[0].env[0].value} {.status.phase}",
    ]);
    assert_eq!(out, "a b 2 Pending");
}
