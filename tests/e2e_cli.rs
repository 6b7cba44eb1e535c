//! End to end: the `oc`-style workflow of the real `kiln` binary against the sandbox with its
//! kubelet, a registry, a git daemon and the real controller (on the chart's RBAC, the tenant on
//! its own `edit`-bound token), one environment for every scenario:
//!
//! - `kubectl kiln start-build … -F` through kubectl's plugin lookup (a `kubectl-kiln` link on
//!   the PATH) streams the clone log, then the build log;
//! - `start-build --wait` exits 0 for a build that completes and 1, with the reason and message
//!   on one line, for one that fails;
//! - `kiln logs` reads a build's log after its Pod is deleted (the controller's copy), and
//!   deleting the Build removes the copy;
//! - `kiln cancel-build` cancels a running build (CancelledBuild, Pod gone, log kept);
//! - `kiln get` and `kiln describe` read the objects, and `kubectl get` shows the CRDs' printer
//!   columns;
//! - bad input ends with one line and exit code 1 or 2, never a backtrace or a Debug dump.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::cluster::{enforcing, sandbox_binary, Cluster, Options, Storage};
use support::{git, kiln, run_bounded, GitDaemon};

const NAMESPACE: &str = "demo";

/// Runs the `kiln` binary as the tenant with `args`.
fn tenant_kiln(cluster: &Cluster, args: &[&str]) -> Output {
    let mut cmd = kiln();
    cmd.args(args)
        .env("KUBECONFIG", cluster.tenant_kubeconfig());
    run_bounded(cmd, Duration::from_secs(300))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The position of `needle` in `haystack`, failing with the whole text when it is missing.
fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{haystack}"))
}

/// Asserts a failed run printed exactly one `error: …` line containing `contains` and exited
/// with `code`.
fn assert_one_line_error(out: &Output, code: i32, contains: &str, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code; stderr:\n{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: one line:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert!(
        stderr.contains(contains),
        "{what}: {contains:?} not in {stderr}"
    );
    for debug in ["panicked", "Status {", "ErrorResponse", "backtrace", "Api("] {
        assert!(!stderr.contains(debug), "{what}: {stderr}");
    }
}

/// The admin's kubeconfig.
fn admin_kubeconfig(cluster: &Cluster) -> PathBuf {
    cluster.work.path().join("kubeconfig")
}

fn registry(cluster: &Cluster) -> String {
    cluster.registry.as_ref().expect("a registry").addr()
}

/// A git repository `cli.git` with three Dockerfiles: `quick/` builds and pushes, `failing/`
/// fails in a RUN step, `slow/` sleeps; served by the returned daemon.
fn make_repository(cluster: &Cluster, repos: &Path) -> GitDaemon {
    let src = repos.join("cli");
    let registry = registry(cluster);
    for (dir, run) in [
        ("quick", "echo built-by-kiln"),
        ("failing", "echo about-to-fail && false"),
        ("slow", "echo sleeping && sleep 600"),
    ] {
        std::fs::create_dir_all(src.join(dir)).unwrap();
        std::fs::write(
            src.join(dir).join("Dockerfile"),
            format!("FROM {registry}/library/busybox:latest\nRUN {run}\n"),
        )
        .unwrap();
    }
    git(&src, &["init", "-q", "-b", "main"]);
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "three Dockerfiles"]);
    git(repos, &["clone", "-q", "--bare", "cli", "cli.git"]);
    GitDaemon::start(repos)
}

/// A BuildConfig of directory `name` in the repository, pushing to ImageStreamTag `name:latest`,
/// with a Generic webhook trigger (no ConfigChange: builds start only from the command line).
fn build_config(name: &str, git_url: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"git": {"uri": git_url, "ref": "main"}, "contextDir": name},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": format!("{name}:latest")}},
            "triggers": [{"type": "Generic", "generic": {"secretReference": {"name": format!("{name}-hook")}}}]
        }
    })
}

/// A directory holding `kubectl-kiln`, a link to the binary under test.
fn plugin_dir(cluster: &Cluster) -> PathBuf {
    let dir = cluster.work.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kiln"), dir.join("kubectl-kiln")).unwrap();
    dir
}

fn phase(cluster: &Cluster, build: &str) -> String {
    cluster
        .get("build", build)
        .and_then(|b| b["status"]["phase"].as_str().map(String::from))
        .unwrap_or_default()
}

/// Waits (at most 2 minutes) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_oc_workflow_runs_against_the_cluster() {
    let started = Instant::now();
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            registry: true,
            ..Options::default()
        },
    );
    let cluster = &cluster;
    let storage = Storage::new();
    // The base image `library/busybox:latest` alone: a few seconds.
    support::seed::make_base_images(
        cluster.registry.as_ref().expect("a registry"),
        &storage,
        &["--busybox"],
    );
    let repos = cluster.work.path().join("git");
    let daemon = make_repository(cluster, &repos);
    let git_url = daemon.url("cli.git");
    let manifests = cluster.work.path().join("cli-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for name in ["quick", "failing", "slow"] {
        std::fs::write(
            manifests.join(format!("{name}.json")),
            build_config(name, &git_url).to_string(),
        )
        .unwrap();
    }
    cluster.tenant_kubectl_ok(&["apply", "-f", &manifests.display().to_string()]);

    // 1. `kubectl kiln start-build … -F` through kubectl's plugin mechanism: the clone log, then
    //    the build log, as each container starts.
    let plugins = plugin_dir(cluster);
    let mut cmd = Command::new("kubectl");
    cmd.args(["kiln", "start-build", "quick", "-n", NAMESPACE, "-F"])
        .env("KUBECONFIG", cluster.tenant_kubeconfig())
        .env(
            "PATH",
            format!(
                "{}:{}",
                plugins.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    let out = run_bounded(cmd, Duration::from_secs(300));
    let followed = text(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl kiln -F: {followed}{}",
        text(&out.stderr)
    );
    let announced = position(&followed, "build.build.kiln.dev/quick-1 started");
    let clone = position(&followed, "==> FetchInputs: cloning");
    let build = position(&followed, "==> Build: buildah bud");
    let ran = position(&followed, "built-by-kiln");
    assert!(
        announced < clone && clone < build && build < ran,
        "the clone log comes before the build log:\n{followed}"
    );
    eventually("quick-1 Complete", || {
        phase(cluster, "quick-1") == "Complete"
    });

    // 2. --wait: 0 for a build that completes, 1 with reason and message for one that fails.
    let out = tenant_kiln(
        cluster,
        &["start-build", "quick", "-n", NAMESPACE, "--wait"],
    );
    assert!(out.status.success(), "--wait: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "build.build.kiln.dev/quick-2 started"
    );
    assert_eq!(
        phase(cluster, "quick-2"),
        "Complete",
        "--wait returns at the end"
    );
    let out = tenant_kiln(cluster, &["start-build", "failing", "-n", NAMESPACE, "-w"]);
    let failed = cluster.get("build", "failing-1").expect("failing-1 exists");
    let reason = failed["status"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        failed["status"]["phase"], "Failed",
        "{:#}",
        failed["status"]
    );
    assert_one_line_error(
        &out,
        1,
        &format!("build failing-1 ended Failed ({reason})"),
        "--wait on a failing build",
    );

    // 3. The log outlives the Pod: the controller kept it in ConfigMap quick-1-log, owned by the
    //    Build; `kiln logs` reads it once the Pod is deleted.
    // (The tenant, bound to `edit`, reads it.)
    let cm = cluster.tenant_kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "configmap",
        "quick-1-log",
        "-o",
        "json",
    ]);
    let cm: serde_json::Value = serde_json::from_str(&cm).unwrap();
    assert_eq!(cm["metadata"]["ownerReferences"][0]["kind"], "Build");
    assert_eq!(cm["metadata"]["ownerReferences"][0]["name"], "quick-1");
    cluster.kubectl_ok(&[
        "-n",
        NAMESPACE,
        "delete",
        "pod",
        "quick-1-build",
        "--wait=true",
    ]);
    let (gone, _, _) = cluster.kubectl(&["-n", NAMESPACE, "get", "pod", "quick-1-build"]);
    assert!(!gone, "the build Pod is deleted");
    for target in [
        vec!["logs", "build/quick-1"],
        vec!["logs", "bc/quick", "--version", "1"],
    ] {
        let mut args = target.clone();
        args.extend(["-n", NAMESPACE]);
        let out = tenant_kiln(cluster, &args);
        let log = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            position(&log, "==> FetchInputs: cloning") < position(&log, "built-by-kiln"),
            "{args:?}: {log}"
        );
    }
    // The latest build of a BuildConfig, live from its Pod.
    let out = tenant_kiln(cluster, &["logs", "bc/failing", "-n", NAMESPACE]);
    assert!(
        text(&out.stdout).contains("about-to-fail"),
        "{}",
        text(&out.stdout)
    );
    // Deleting the Build (what pruning does) deletes its log.
    cluster.tenant_kubectl_ok(&["-n", NAMESPACE, "delete", "build", "quick-1"]);
    eventually("quick-1-log deleted with its Build", || {
        !cluster
            .kubectl(&["-n", NAMESPACE, "get", "configmap", "quick-1-log"])
            .0
    });

    // 4. cancel-build of a running build: Cancelled (CancelledBuild), Pod deleted, log kept.
    let out = tenant_kiln(cluster, &["start-build", "slow", "-n", NAMESPACE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eventually("slow-1 Running", || phase(cluster, "slow-1") == "Running");
    eventually("the slow build's RUN step", || {
        text(&tenant_kiln(cluster, &["logs", "build/slow-1", "-n", NAMESPACE]).stdout)
            .contains("sleeping")
    });
    let out = tenant_kiln(cluster, &["cancel-build", "slow-1", "-n", NAMESPACE]);
    assert!(out.status.success(), "cancel-build: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "build.build.kiln.dev/slow-1 cancelled"
    );
    let cancelled = cluster.get("build", "slow-1").unwrap();
    assert_eq!(cancelled["status"]["phase"], "Cancelled");
    assert_eq!(cancelled["status"]["reason"], "CancelledBuild");
    eventually("slow-1's Pod deleted", || {
        !cluster
            .kubectl(&["-n", NAMESPACE, "get", "pod", "slow-1-build"])
            .0
    });
    let out = tenant_kiln(cluster, &["logs", "build/slow-1", "-n", NAMESPACE]);
    assert!(
        text(&out.stdout).contains("sleeping"),
        "the cancelled build's log is kept: {}",
        text(&out.stdout)
    );
    // Nothing left to cancel: a BuildConfig with no active build.
    let out = tenant_kiln(cluster, &["cancel-build", "bc/slow", "-n", NAMESPACE]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out.stderr)
    );

    // 5. get and describe against the cluster; kubectl's printer columns.
    let out = tenant_kiln(cluster, &["get", "builds", "-n", NAMESPACE]);
    let table = text(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION"],
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("failing-1 ") && l.contains(&format!("Failed ({reason})"))),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("slow-1 ") && l.contains("Cancelled (CancelledBuild)")),
        "{table}"
    );
    let out = tenant_kiln(cluster, &["describe", "bc/quick", "-n", NAMESPACE]);
    let described = text(&out.stdout);
    assert!(
        described.contains("/buildconfigs/quick/webhooks/<secret>/generic"),
        "{described}"
    );
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("quick-2 ") && l.contains("Complete")),
        "{described}"
    );
    let out = tenant_kiln(cluster, &["describe", "is/quick", "-n", NAMESPACE]);
    let described = text(&out.stdout);
    assert!(
        described.contains(&format!(
            "  * {}/{NAMESPACE}/quick@sha256:",
            registry(cluster)
        )),
        "{described}"
    );
    let builds = cluster.tenant_kubectl_ok(&["-n", NAMESPACE, "get", "builds"]);
    let header: Vec<&str> = builds
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "FROM", "STATUS", "STARTED"],
        "{builds}"
    );
    let configs = cluster.tenant_kubectl_ok(&["-n", NAMESPACE, "get", "bc"]);
    let header: Vec<&str> = configs
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TYPE", "FROM", "LATEST", "AGE"],
        "{configs}"
    );

    // 6. Bad input: one line, exit code 2 for the command line, 1 for the cluster.
    let dead = cluster.work.path().join("kubeconfig-dead");
    let admin = std::fs::read_to_string(admin_kubeconfig(cluster)).unwrap();
    let port = support::free_port();
    let unreachable = admin
        .lines()
        .map(|l| match l.trim_start().strip_prefix("server: ") {
            Some(_) => format!(
                "{}server: https://127.0.0.1:{port}",
                &l[..l.len() - l.trim_start().len()]
            ),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&dead, unreachable).unwrap();
    let dead = dead.display().to_string();
    for (args, code, contains) in [
        (vec!["get", "pods"], 2, "unknown resource type \"pods\""),
        (vec!["logs", "is/quick"], 2, "use bc/NAME or build/NAME"),
        (
            vec!["start-build", "quick", "--from-build", "quick-2"],
            2,
            "cannot be used with",
        ),
        (
            vec!["start-build", "quick", "--list-webhooks", "-F"],
            2,
            "cannot be used with",
        ),
        (
            vec!["logs", "build/quick-2", "--version", "2"],
            2,
            "--version applies to bc/NAME",
        ),
        (
            vec!["cancel-build", "quick-2", "--state", "done"],
            2,
            "invalid value 'done'",
        ),
        (
            vec!["describe", "build/nope-1", "-n", NAMESPACE],
            1,
            "Build 'nope-1' not found in namespace 'demo'",
        ),
        (
            vec!["logs", "bc/nope", "-n", NAMESPACE],
            1,
            "BuildConfig 'nope' not found",
        ),
        (
            vec!["get", "bc", "--kubeconfig", "/nonexistent/kubeconfig"],
            1,
            "cannot read kubeconfig",
        ),
        (
            vec!["get", "bc", "--context", "no-such-context"],
            1,
            "no-such-context",
        ),
        (
            vec!["get", "bc", "--kubeconfig", dead.as_str()],
            1,
            "cannot reach the cluster",
        ),
    ] {
        let out = tenant_kiln(cluster, &args);
        assert_one_line_error(&out, code, contains, &format!("{args:?}"));
    }
    // A namespace that does not exist (as the admin: the tenant may not even look there).
    let mut cmd = kiln();
    cmd.args(["start-build", "nope", "-n", "nowhere"])
        .env("KUBECONFIG", admin_kubeconfig(cluster));
    let out = run_bounded(cmd, Duration::from_secs(60));
    assert_one_line_error(
        &out,
        1,
        "BuildConfig 'nope' not found in namespace 'nowhere'; `kiln get bc -n nowhere` lists them",
        "a missing namespace",
    );

    eprintln!("e2e_cli: every scenario in {:?}", started.elapsed());
    if enforcing() {
        let refused = cluster.refusals();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
    // Without the CRDs (a second, bare sandbox), every verb says so: the API server's discovery
    // decides, not a guess from a 404.
    let port = support::free_port();
    let bare_config = cluster.work.path().join("kubeconfig-bare");
    let mut serve = Command::new(sandbox_binary());
    serve
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig",
        ])
        .arg(&bare_config);
    let bare =
        support::Service::spawn_logged(serve, port, "bare sandbox", &cluster.log("bare.log"));
    for args in [
        vec!["get", "bc"],
        vec!["logs", "bc/quick"],
        vec!["start-build", "quick"],
        vec!["describe", "build/quick-1"],
    ] {
        let mut cmd = kiln();
        cmd.args(&args)
            .args(["-n", NAMESPACE])
            .env("KUBECONFIG", &bare_config);
        let out = run_bounded(cmd, Duration::from_secs(60));
        assert_one_line_error(
            &out,
            1,
            "the kiln CRDs are not installed",
            &format!("{args:?} without CRDs"),
        );
    }
    drop(bare);
}
