//! End to end, Binary builds: the real `kiln controller` and `kiln builder` against
//! `kiln-sandbox serve --kubelet` over TCP, enforcing RBAC (the tenant holds only `edit`).
//!
//! A Binary build nobody uploads to ends Failed with FetchSourceFailed once the controller's
//! `--binary-input-timeout` passes, instead of waiting for its one-week deadline, and
//! `kiln start-build` of a Binary BuildConfig without input is refused.
//!
//! `kiln start-build --from-dir` uploads a 200 MiB directory (incompressible data from a seeded
//! generator) through the build Pod's `attach` subresource with the tenant's own token; the build
//! copies it into an image, pushes it to a real `docker-registry`, and the Build and the
//! ImageStream record the registry's digest. `--from-file`, `--from-archive` and `--from-repo`
//! build too. The peak memory of the client, the controller and the sandbox is printed (a
//! measurement, not an assertion).

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::{enforcing, Cluster, Options};

const NAMESPACE: &str = "bin";
/// How long build Pods wait for their upload in these tests.
const INPUT_TIMEOUT_SECS: u64 = 10;

fn binary_build_config(name: &str, triggers: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"type": "Binary", "binary": {}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": format!("127.0.0.1:1/{NAMESPACE}/{name}:latest")}},
            "triggers": triggers,
        }
    })
}

#[test]
fn a_binary_build_nobody_uploads_to_fails_with_a_reason_in_bounded_time() {
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            controller_args: vec![
                "--binary-input-timeout".into(),
                INPUT_TIMEOUT_SECS.to_string(),
            ],
            ..Options::default()
        },
    );
    // A ConfigChange trigger starts build 1 of a Binary BuildConfig: nothing will ever upload.
    cluster.tenant_apply(
        "waiting",
        &binary_build_config("waiting", json!([{"type": "ConfigChange"}])),
    );
    let started = std::time::Instant::now();
    let first = cluster.wait_build("waiting-1", Duration::from_secs(120));
    let waited = started.elapsed();
    let status = &first["status"];
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert_eq!(status["reason"], "FetchSourceFailed", "{status:#}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "no binary input arrived within {INPUT_TIMEOUT_SECS}s"
        )),
        "{message}"
    );
    assert!(
        waited >= Duration::from_secs(INPUT_TIMEOUT_SECS),
        "it waited for the upload first ({waited:?})"
    );
    // Started from the command line without input, a Binary BuildConfig is refused (exit 2).
    let mut start = cluster.tenant_kiln();
    start.args(["start-build", "waiting", "-n", NAMESPACE]);
    let out = support::run_bounded(start, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has a Binary source: start it with --from-dir DIR"),
        "{stderr}"
    );
    assert!(cluster.get("build", "waiting-2").is_none());
    if enforcing() {
        let refused = cluster.refusals();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
}

/// The bytes a process has written through `write` and friends (`wchar` of `/proc/<pid>/io`):
/// for `kiln start-build` mostly the upload stream.
fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_upload_killed_mid_stream_fails_the_build_with_a_reason() {
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            controller_args: vec!["--binary-input-timeout".into(), "300".into()],
            ..Options::default()
        },
    );
    // 96 MiB of incompressible data: far more than goes through while the client is watched.
    let dir = cluster.work.path().join("context");
    std::fs::create_dir_all(&dir).unwrap();
    random_files(&dir, 24, 4 << 20);
    cluster.tenant_apply("cut", &binary_build_config("cut", json!([])));
    let mut cmd = cluster.tenant_kiln();
    cmd.args(["start-build", "cut", "-n", NAMESPACE, "--from-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(cluster.log("start-build-cut.err")).unwrap());
    let mut child = cmd.spawn().unwrap();
    // Killed (SIGKILL: nothing is flushed or closed politely) once 4 MiB are on their way.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if written_bytes(child.id()).is_some_and(|n| n >= 4 << 20) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "kiln start-build ended ({status}) before it was killed: {}",
                std::fs::read_to_string(cluster.log("start-build-cut.err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The attach session ends with the client, the clone step's stdin closes mid-archive, and
    // the build fails at once with the reason (not after the 300 s input timeout).
    let build = cluster.wait_build("cut-1", Duration::from_secs(120));
    let status = &build["status"];
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert_eq!(status["reason"], "FetchSourceFailed", "{status:#}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the binary input ended after")
            && message.contains("the upload was interrupted"),
        "{message}"
    );
    assert!(
        cluster
            .get("pod", "cut-1-build")
            .is_some_and(|p| p["status"]["phase"] == "Failed"),
        "the build Pod stops too"
    );
}

/// The peak resident memory (`VmHWM`) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `kiln start-build` as the tenant, sampling its peak memory while it runs; returns
/// (stdout, stderr, peak RSS in KiB).
fn start_build(cluster: &Cluster, args: &[&str]) -> (String, String, u64) {
    let out_file = cluster.log("start-build.out");
    let err_file = cluster.log("start-build.err");
    let mut cmd = cluster.tenant_kiln();
    cmd.args(["start-build", "-n", NAMESPACE])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln start-build {args:?} did not end within 300 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(out_file).unwrap();
    let stderr = std::fs::read_to_string(err_file).unwrap();
    assert!(
        status.success(),
        "kiln start-build {args:?}: {stdout}{stderr}"
    );
    (stdout, stderr, peak)
}

/// Writes `files` files of `size` bytes from a seeded xorshift generator (incompressible).
fn random_files(dir: &Path, files: usize, size: usize) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; size];
    for i in 0..files {
        for word in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        std::fs::write(dir.join(format!("blob-{i:02}.bin")), &buf).unwrap();
    }
}

/// A Binary BuildConfig pushing to ImageStreamTag `<name>:latest`, with an optional inline
/// Dockerfile.
fn upload_config(name: &str, dockerfile: Option<&str>) -> serde_json::Value {
    let mut bc = binary_build_config(name, json!([]));
    bc["spec"]["output"] =
        json!({"to": {"kind": "ImageStreamTag", "name": format!("{name}:latest")}});
    if let Some(text) = dockerfile {
        bc["spec"]["source"]["dockerfile"] = json!(text);
    }
    bc
}

/// Checks that build `name` completed and that the registry, the Build and the ImageStream agree
/// on the pushed digest; returns the digest.
fn assert_pushed(cluster: &Cluster, name: &str, build: &serde_json::Value) -> String {
    assert_eq!(
        build["status"]["phase"], "Complete",
        "{:#}",
        build["status"]
    );
    let registry = cluster.registry.as_ref().unwrap();
    let digest = registry
        .manifest_digest(&format!("{NAMESPACE}/{name}"), "latest", None)
        .expect("the image is in the registry");
    assert_eq!(build["status"]["output"]["to"]["imageDigest"], digest);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = cluster.get("imagestream", name);
        let image = stream.as_ref().and_then(|s| {
            s["status"]["tags"]
                .as_array()?
                .iter()
                .find(|t| t["tag"] == "latest")?["items"][0]["image"]
                .as_str()
                .map(String::from)
        });
        if image.as_deref() == Some(digest.as_str()) {
            return digest;
        }
        assert!(Instant::now() < deadline, "ImageStream {name}: {stream:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn binary_uploads_build_and_push_through_pods_attach() {
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            registry: true,
            controller_args: vec!["--binary-input-timeout".into(), "60".into()],
            ..Options::default()
        },
    );
    let controller_before = cluster.controller_pid().and_then(peak_rss_kib);

    // 200 MiB in 20 files, and a Dockerfile copying them into an image from scratch.
    let dir = cluster.work.path().join("context");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    random_files(&dir.join("data"), 20, 10 << 20);
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY data /data\n").unwrap();
    cluster.tenant_apply("big", &upload_config("big", None));
    let started = Instant::now();
    let dir_arg = dir.display().to_string();
    let (stdout, stderr, client_peak) = start_build(&cluster, &["big", "--from-dir", &dir_arg]);
    let upload_time = started.elapsed();
    assert_eq!(
        stdout.trim(),
        "build.build.kiln.dev/big-1 started",
        "{stderr}"
    );
    assert!(stderr.contains("Uploading directory"), "{stderr}");
    let big = cluster.wait_build("big-1", Duration::from_secs(600));
    let digest = assert_pushed(&cluster, "big", &big);
    // The image holds the 200 MiB: its layers are at least that large (random data does not shrink).
    let layers = cluster
        .registry
        .as_ref()
        .unwrap()
        .manifest_layer_sizes(&format!("{NAMESPACE}/big"), &digest);
    assert!(
        layers.iter().sum::<u64>() >= 200 << 20,
        "layers of {digest}: {layers:?}"
    );
    let controller_peak = cluster.controller_pid().and_then(peak_rss_kib);
    let sandbox_peak = cluster.sandbox_pid().and_then(peak_rss_kib);
    eprintln!(
        "binary upload: 200 MiB --from-dir sent in {:.1} s (build done after {:.1} s); peak RSS: \
         kiln start-build {} MiB, kiln controller {} MiB (before the upload {} MiB), sandbox \
         (apiserver + kubelet) {} MiB",
        upload_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        client_peak / 1024,
        controller_peak.unwrap_or(0) / 1024,
        controller_before.unwrap_or(0) / 1024,
        sandbox_peak.unwrap_or(0) / 1024,
    );
    // For scripts/bench.d/binary.sh: KiB and milliseconds.
    eprintln!(
        "BENCH|binary-upload|{client_peak}|{}|{}|{}|{}",
        controller_peak.unwrap_or(0),
        controller_before.unwrap_or(0),
        sandbox_peak.unwrap_or(0),
        upload_time.as_millis()
    );

    // --from-file: one file, kept under its name beside an inline Dockerfile.
    let small = cluster.work.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::write(small.join("app.txt"), "hello\n").unwrap();
    cluster.tenant_apply(
        "file",
        &upload_config("file", Some("FROM scratch\nCOPY app.txt /app.txt\n")),
    );
    let file_arg = small.join("app.txt").display().to_string();
    start_build(&cluster, &["file", "--from-file", &file_arg]);

    // --from-archive: a tar.gz sent as it is.
    std::fs::write(small.join("Dockerfile"), "FROM scratch\nCOPY app.txt /\n").unwrap();
    let archive = cluster.work.path().join("ctx.tar.gz");
    let mut tar = std::process::Command::new("tar");
    tar.arg("-czf").arg(&archive).arg("-C").arg(&small).arg(".");
    assert!(support::run_bounded(tar, Duration::from_secs(60))
        .status
        .success());
    cluster.tenant_apply("archive", &upload_config("archive", None));
    let archive_arg = archive.display().to_string();
    start_build(&cluster, &["archive", "--from-archive", &archive_arg]);

    // --from-repo: the tracked files at HEAD; the Build records the commit.
    let repo = cluster.work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    support::git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("Dockerfile"), "FROM scratch\nCOPY app.txt /\n").unwrap();
    std::fs::write(repo.join("app.txt"), "from git\n").unwrap();
    support::git(&repo, &["add", "-A"]);
    support::git(&repo, &["commit", "-q", "-m", "binary from a repository"]);
    let head = support::git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("untracked.txt"), "not sent").unwrap();
    cluster.tenant_apply("repo", &upload_config("repo", None));
    let repo_arg = repo.display().to_string();
    start_build(&cluster, &["repo", "--from-repo", &repo_arg]);

    for name in ["file", "archive", "repo"] {
        let build = cluster.wait_build(&format!("{name}-1"), Duration::from_secs(300));
        assert_pushed(&cluster, name, &build);
        if name == "repo" {
            let revision = &build["spec"]["revision"]["git"];
            assert_eq!(revision["commit"], head.as_str());
            assert_eq!(revision["message"], "binary from a repository");
            assert_eq!(revision["author"]["name"], "Ada Builder");
        }
    }
    if enforcing() {
        let refused = cluster.refusals();
        assert!(
            refused.is_empty(),
            "refused requests:\n{}",
            refused.join("\n")
        );
    }
}
