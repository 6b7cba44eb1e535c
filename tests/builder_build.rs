//! End-to-end builder tests: a real `docker-registry`, a real `git daemon`, real buildah, and the
//! `kiln builder clone|build` steps of the build Pod (plus `kiln build` locally).
//!
//! One fixture per test binary: the registry, the git server, a repository holding the go-server
//! example, and a buildah storage holding the base images made by `scripts/make-base-images.sh`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use kiln::api::contract::BuildReport;
use kiln::api::StatusReason;
use serde_json::{json, Value};
use support::{git, kiln, run_bounded, GitDaemon, Registry};

const BUILD_LIMIT: Duration = Duration::from_secs(300);

struct Fixture {
    registry: Registry,
    git: GitDaemon,
    /// The directory the git server serves.
    repos: tempfile::TempDir,
    storage: PathBuf,
    /// The first commit (tagged v1).
    first: String,
    /// The tip of main.
    second: String,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let registry = Registry::start(None);
        let storage = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("builder-build-storage");
        if storage.exists() {
            // Images of earlier runs carry other registry ports: drop them.
            let mut rmi = buildah(&storage);
            rmi.args(["rmi", "--all", "--force"]);
            let _ = run_bounded(rmi, Duration::from_secs(120));
        }
        let mut make = Command::new(support::repo_root().join("scripts/make-base-images.sh"));
        make.arg(registry.addr())
            .env("BUILDAH_ROOT", storage.join("root"))
            .env("BUILDAH_RUNROOT", storage.join("run"));
        let out = run_bounded(make, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "make-base-images: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let repos = tempfile::tempdir().unwrap();
        let work = repos.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        support::copy_dir(
            &support::repo_root().join("examples/go-server"),
            &work.join("app"),
        );
        std::os::unix::fs::symlink("/", work.join("escape")).unwrap();
        git(&work, &["add", "-A"]);
        git(
            &work,
            &["commit", "-q", "-m", "First version of the server"],
        );
        git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
        let first = git(&work, &["rev-parse", "HEAD"]);
        let server = work.join("app/server.go");
        let mut text = std::fs::read_to_string(&server).unwrap();
        text.push_str("\n// Second version.\n");
        std::fs::write(&server, text).unwrap();
        git(
            &work,
            &["commit", "-q", "-am", "Second version of the server"],
        );
        let second = git(&work, &["rev-parse", "HEAD"]);
        git(repos.path(), &["clone", "-q", "--bare", "work", "app.git"]);
        let git = GitDaemon::start(repos.path());
        Fixture {
            registry,
            git,
            repos,
            storage,
            first,
            second,
        }
    })
}

fn buildah(storage: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"));
    c
}

/// A Build manifest as the controller would pass it in the BUILD variable.
fn build_json(
    name: &str,
    source: Value,
    dockerfile: Option<&str>,
    output: &str,
    commit: Option<&str>,
) -> Value {
    let f = fixture();
    let mut source = source;
    if let Some(d) = dockerfile {
        source["dockerfile"] = json!(d);
    }
    let mut b = json!({
        "apiVersion": "build.kiln.dev/v1alpha1",
        "kind": "Build",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "source": source,
            "strategy": {"type": "Docker", "dockerStrategy": {
                "buildArgs": [{"name": "REGISTRY", "value": f.registry.addr()}]
            }},
            "output": {"to": {"kind": "DockerImage", "name": output}},
        }
    });
    if let Some(c) = commit {
        b["spec"]["revision"] = json!({"type": "Git", "git": {"commit": c}});
    }
    b
}

fn git_source(uri: &str, r#ref: Option<&str>, context_dir: Option<&str>) -> Value {
    let mut s = json!({"type": "Git", "git": {"uri": uri}});
    if let Some(r) = r#ref {
        s["git"]["ref"] = json!(r);
    }
    if let Some(c) = context_dir {
        s["contextDir"] = json!(c);
    }
    s
}

struct PodRun {
    report: BuildReport,
    success: bool,
    log: String,
}

/// Runs `kiln builder clone` then `kiln builder build` as the Pod would, with their own workspace.
fn pod_build(
    build: &Value,
    archive: Option<&Path>,
    push_secret: Option<&Path>,
    insecure: &[String],
) -> PodRun {
    let f = fixture();
    let ws = tempfile::tempdir().unwrap();
    let json = build.to_string();
    let mut clone = kiln();
    clone
        .args(["builder", "clone", "--workspace"])
        .arg(ws.path())
        .arg("--termination-log")
        .arg(ws.path().join("clone.log"))
        .arg("--source-secret")
        .arg(ws.path().join("no-secret"))
        .env("BUILD", &json);
    if let Some(a) = archive {
        clone.arg("--from-archive").arg(a);
    }
    let out = run_bounded(clone, BUILD_LIMIT);
    let mut log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return PodRun {
            report: read_report(&ws.path().join("clone.log")),
            success: false,
            log,
        };
    }
    let mut build_cmd = kiln();
    build_cmd
        .args(["builder", "build", "--workspace"])
        .arg(ws.path())
        .arg("--termination-log")
        .arg(ws.path().join("build.log"))
        .arg("--root")
        .arg(f.storage.join("root"))
        .arg("--runroot")
        .arg(f.storage.join("run"))
        .arg("--pull-secret")
        .arg(ws.path().join("no-secret"))
        .arg("--push-secret")
        .arg(push_secret.map_or(ws.path().join("no-secret"), Path::to_path_buf))
        .env("BUILD", &json)
        .env("KILN_INSECURE_REGISTRIES", insecure.join(","));
    if let Some(v) = build
        .pointer("/metadata/annotations/test-volumes-dir")
        .and_then(Value::as_str)
    {
        build_cmd.env("KILN_BUILD_VOLUMES_DIR", v);
    }
    // What the kubelet resolved for the build container's valueFrom variables.
    if let Some(vars) = build
        .pointer("/metadata/annotations/test-value-from")
        .and_then(Value::as_str)
    {
        let vars: serde_json::Map<String, Value> = serde_json::from_str(vars).unwrap();
        for (name, value) in vars {
            build_cmd.env(name, value.as_str().unwrap());
        }
    }
    let out = run_bounded(build_cmd, BUILD_LIMIT);
    log += &(String::from_utf8_lossy(&out.stdout).into_owned()
        + &String::from_utf8_lossy(&out.stderr));
    PodRun {
        report: read_report(&ws.path().join("build.log")),
        success: out.status.success(),
        log,
    }
}

fn read_report(path: &Path) -> BuildReport {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no termination message at {}: {e}", path.display()));
    assert!(
        text.len() <= 4096,
        "termination message is {} bytes",
        text.len()
    );
    serde_json::from_str(&text).unwrap()
}

fn insecure_default() -> Vec<String> {
    vec![fixture().registry.addr()]
}

/// Copies an image from the registry into an OCI layout and returns (path, size) of every regular
/// file in its layers, with the content of `wanted` if present.
fn image_files(reference: &str, wanted: &str) -> (Vec<(String, u64)>, Option<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:img", layout.display()));
    let out = run_bounded(copy, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(&manifest_digest)).unwrap()).unwrap();
    let mut files = Vec::new();
    let mut content = None;
    for layer in manifest["layers"].as_array().unwrap() {
        let file = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let size = entry.header().size().unwrap();
            if path == wanted {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).unwrap();
                content = Some(buf);
            }
            files.push((path, size));
        }
    }
    (files, content)
}

/// Runs the extracted server on a free port and returns the body of `GET /`.
fn serve_once(binary: &[u8]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server");
    std::fs::write(&path, binary).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = support::free_port();
    let mut child = Command::new(&path)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            let _ = s.read_to_string(&mut response);
            break response
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    body
}

fn assert_success(run: &PodRun) {
    assert!(
        run.success && !run.report.is_failure(),
        "build failed: {:?}\n{}",
        run.report,
        run.log
    );
}

fn assert_digest_confirmed(run: &PodRun, repo: &str, tag: &str) {
    let digest = run.report.image_digest.clone().expect("a digest");
    let registry = fixture().registry.manifest_digest(repo, tag, None);
    assert_eq!(
        Some(digest),
        registry,
        "reported digest vs the registry's Docker-Content-Digest"
    );
}

#[test]
fn go_server_from_git_at_branch_tag_and_commit() {
    let f = fixture();
    let url = f.git.url("app.git");
    let reference = |tag: &str| format!("{}/demo/go-server:{tag}", f.registry.addr());

    // Branch: the tip of main.
    let branch = build_json(
        "go-server-1",
        git_source(&url, Some("main"), Some("app")),
        None,
        &reference("branch"),
        None,
    );
    let mut branch = branch;
    branch["spec"]["postCommit"] = json!({"command": ["/bin/test", "-x", "/app/server"]});
    let run = pod_build(&branch, None, None, &insecure_default());
    assert_success(&run);
    assert_digest_confirmed(&run, "demo/go-server", "branch");
    let source = run.report.source.clone().unwrap();
    assert_eq!(source.revision.commit.as_deref(), Some(f.second.as_str()));
    assert_eq!(
        source.revision.message.as_deref(),
        Some("Second version of the server")
    );
    assert_eq!(
        source.revision.author.and_then(|a| a.name).as_deref(),
        Some("Ada Builder")
    );
    let stages: Vec<String> = run
        .report
        .stages
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect();
    assert_eq!(
        stages,
        [
            "FetchInputs",
            "PullImages",
            "Build",
            "PostCommit",
            "PushImage"
        ]
    );
    assert!(
        run.log.contains("STEP") && run.log.contains("==> PushImage"),
        "log reads well:\n{}",
        run.log
    );

    // The final image: its server answers, and it holds no Go toolchain.
    let (files, binary) = image_files(&reference("branch"), "app/server");
    let binary = binary.expect("/app/server in the final image");
    let body = serve_once(&binary);
    let (welcome, id) = body.split_once('\n').unwrap_or((&body, ""));
    assert_eq!(welcome, "Welcome to my website!");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "32 hex chars, got {id:?}"
    );
    assert_ne!(serve_once(&binary), body, "a fresh id per request");
    assert!(
        !files
            .iter()
            .any(|(p, _)| p.contains("usr/local/go") || p.ends_with("bin/go")),
        "no Go toolchain"
    );
    let (base_files, _) = image_files(&format!("{}/library/busybox:latest", f.registry.addr()), "");
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    let base: u64 = base_files.iter().map(|(_, s)| s).sum();
    assert!(
        total < 2 * binary.len() as u64 + base,
        "image {total} B vs binary {} B + base {base} B",
        binary.len()
    );

    // Tag: annotated v1 is the first commit.
    let tag = build_json(
        "go-server-2",
        git_source(&url, Some("v1"), Some("app")),
        None,
        &reference("tag"),
        None,
    );
    let run = pod_build(&tag, None, None, &insecure_default());
    assert_success(&run);
    assert_digest_confirmed(&run, "demo/go-server", "tag");
    assert_eq!(
        run.report
            .source
            .as_ref()
            .and_then(|s| s.revision.commit.as_deref()),
        Some(f.first.as_str())
    );

    // Commit: the first commit, below the tip of main (the clone deepens to find it).
    let commit = build_json(
        "go-server-3",
        git_source(&url, Some("main"), Some("app")),
        None,
        &reference("commit"),
        Some(&f.first),
    );
    let run = pod_build(&commit, None, None, &insecure_default());
    assert_success(&run);
    assert_digest_confirmed(&run, "demo/go-server", "commit");
    assert_eq!(
        run.report
            .source
            .as_ref()
            .and_then(|s| s.revision.commit.as_deref()),
        Some(f.first.as_str())
    );
    let labels = image_labels(&reference("commit"));
    assert_eq!(labels["io.kiln.build.commit.id"], f.first.as_str());
    assert_eq!(labels["io.kiln.build.name"], "go-server-3");
}

fn image_labels(reference: &str) -> Value {
    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"));
    let out = run_bounded(inspect, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Labels"].clone()
}

/// A small Dockerfile on the fixture's busybox.
fn busybox_dockerfile(body: &str) -> String {
    format!("ARG REGISTRY\nFROM ${{REGISTRY}}/library/busybox:latest\n{body}\n")
}

fn expect_failure(run: &PodRun, reason: StatusReason, message_part: &str) {
    assert!(!run.success, "the build should fail:\n{}", run.log);
    assert_eq!(run.report.reason, Some(reason), "report: {:?}", run.report);
    let message = run.report.message.clone().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "message {message:?} should mention {message_part:?}"
    );
    assert!(!message.contains('\n'), "one-line message");
}

#[test]
fn fetch_failures_have_reasons_and_actionable_messages() {
    let f = fixture();
    let url = f.git.url("app.git");
    let out = format!("{}/demo/never:latest", f.registry.addr());
    let dead = format!("git://127.0.0.1:{}/app.git", support::free_port());
    let cases = [
        (
            git_source(&dead, Some("main"), None),
            StatusReason::FetchSourceFailed,
            "cannot reach repository",
        ),
        (
            git_source(&url, Some("no-such-branch"), None),
            StatusReason::FetchSourceFailed,
            "ref \"no-such-branch\" not found",
        ),
        (
            git_source(&url, Some("main"), Some("missing/dir")),
            StatusReason::InvalidContextDirectory,
            "does not exist",
        ),
        (
            git_source(&url, Some("main"), Some("../..")),
            StatusReason::InvalidContextDirectory,
            "outside the source repository",
        ),
        (
            git_source(&url, Some("main"), Some("escape")),
            StatusReason::InvalidContextDirectory,
            "symlink",
        ),
        (
            git_source("ext::sh -c id", None, None),
            StatusReason::FetchSourceFailed,
            "not allowed",
        ),
    ];
    for (source, reason, part) in cases {
        let run = pod_build(
            &build_json("fail", source, None, &out, None),
            None,
            None,
            &insecure_default(),
        );
        expect_failure(&run, reason, part);
        assert_eq!(
            run.report
                .stages
                .first()
                .map(|s| format!("{:?}", s.name))
                .as_deref(),
            Some("FetchInputs")
        );
    }
    let unknown = pod_build(
        &build_json(
            "fail",
            git_source(&url, Some("no-such-branch"), None),
            None,
            &out,
            None,
        ),
        None,
        None,
        &[],
    );
    assert!(
        unknown.report.message.unwrap_or_default().contains("main"),
        "lists the branches that exist"
    );
}

#[test]
fn build_failures_have_reasons_and_actionable_messages() {
    let f = fixture();
    let url = f.git.url("app.git");
    let out = format!("{}/demo/fails:latest", f.registry.addr());
    let syntax = build_json(
        "syntax",
        git_source(&url, Some("main"), None),
        Some("FROM scratch\nFORM busybox\n"),
        &out,
        None,
    );
    let run = pod_build(&syntax, None, None, &insecure_default());
    expect_failure(&run, StatusReason::ManageDockerfileFailed, "line 2");
    assert!(run.report.message.unwrap_or_default().contains("FORM"));

    let failing = busybox_dockerfile("RUN echo about to fail && exit 3");
    let run = pod_build(
        &build_json(
            "run",
            git_source(&url, Some("main"), None),
            Some(&failing),
            &out,
            None,
        ),
        None,
        None,
        &insecure_default(),
    );
    expect_failure(&run, StatusReason::DockerBuildFailed, "exit status 3");
    assert!(
        run.report
            .log_tail
            .unwrap_or_default()
            .contains("about to fail"),
        "the log tail shows the RUN output"
    );
    let stages: Vec<String> = run
        .report
        .stages
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect();
    assert_eq!(stages, ["FetchInputs", "PullImages", "Build"]);

    let missing = "ARG REGISTRY\nFROM ${REGISTRY}/library/no-such-image:1\nRUN true\n";
    let b = build_json(
        "pull",
        git_source(&url, Some("main"), None),
        Some(missing),
        &out,
        None,
    );
    let run = pod_build(&b, None, None, &insecure_default());
    expect_failure(&run, StatusReason::PullBuilderImageFailed, "no-such-image");

    let hook_dockerfile = busybox_dockerfile("RUN echo built");
    let mut hook = build_json(
        "hook",
        git_source(&url, Some("main"), None),
        Some(&hook_dockerfile),
        &out,
        None,
    );
    hook["spec"]["postCommit"] = json!({"script": "echo running the checks; exit 7"});
    let run = pod_build(&hook, None, None, &insecure_default());
    expect_failure(
        &run,
        StatusReason::PostCommitHookFailed,
        "post-commit hook failed",
    );
    assert!(run
        .report
        .log_tail
        .unwrap_or_default()
        .contains("running the checks"));
    let stages: Vec<String> = run
        .report
        .stages
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect();
    assert_eq!(stages, ["FetchInputs", "PullImages", "Build", "PostCommit"]);
    assert_eq!(
        fixture()
            .registry
            .manifest_digest("demo/fails", "latest", None),
        None,
        "nothing was pushed"
    );
}

#[test]
fn push_failures_registry_down_and_wrong_credentials() {
    let f = fixture();
    let url = f.git.url("app.git");
    let dockerfile = busybox_dockerfile("RUN echo built > /built.txt");

    let down = format!("127.0.0.1:{}", support::free_port());
    let mut insecure = insecure_default();
    insecure.push(down.clone());
    let b = build_json(
        "down",
        git_source(&url, Some("main"), None),
        Some(&dockerfile),
        &format!("{down}/demo/app:latest"),
        None,
    );
    let run = pod_build(&b, None, None, &insecure);
    expect_failure(&run, StatusReason::PushImageToRegistryFailed, "unreachable");

    let secured = Registry::start(Some(("builder", "s3cret")));
    insecure.push(secured.addr());
    let target = format!("{}/demo/app:latest", secured.addr());
    let dir = tempfile::tempdir().unwrap();
    let write_secret = |name: &str, user: &str, password: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let secret = dir.path().join(name);
        std::fs::create_dir_all(&secret).unwrap();
        let config = json!({"auths": {secured.addr(): {"auth": auth}}});
        std::fs::write(secret.join(".dockerconfigjson"), config.to_string()).unwrap();
        secret
    };
    let wrong = write_secret("wrong", "builder", "not-the-password");
    let b = build_json(
        "creds",
        git_source(&url, Some("main"), None),
        Some(&dockerfile),
        &target,
        None,
    );
    let run = pod_build(&b, None, Some(&wrong), &insecure);
    expect_failure(
        &run,
        StatusReason::PushImageToRegistryFailed,
        "refused the credentials",
    );

    // The right credentials push, and the digest is confirmed through the authenticated API.
    let right = write_secret("right", "builder", "s3cret");
    let run = pod_build(&b, None, Some(&right), &insecure);
    assert_success(&run);
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("builder:s3cret")
    };
    assert_eq!(
        run.report.image_digest,
        secured.manifest_digest("demo/app", "latest", Some(&basic))
    );
}

#[test]
fn binary_build_from_a_directory_tarball() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("site")).unwrap();
    std::fs::write(src.join("site/hello.txt"), "hello from a tarball\n").unwrap();
    std::fs::write(
        src.join("Dockerfile"),
        busybox_dockerfile("COPY site /site\nRUN grep -q tarball /site/hello.txt"),
    )
    .unwrap();
    let tarball = dir.path().join("src.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&tarball).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(".", &src).unwrap();
    tar.into_inner().unwrap().finish().unwrap();

    let reference = format!("{}/demo/binary:latest", f.registry.addr());
    let b = build_json(
        "binary-1",
        json!({"type": "Binary", "binary": {}}),
        None,
        &reference,
        None,
    );
    // forcePull: the base image is pulled from the registry even though the storage has it.
    let mut b = b;
    b["spec"]["strategy"]["dockerStrategy"]["forcePull"] = json!(true);
    let run = pod_build(&b, Some(&tarball), None, &insecure_default());
    assert_success(&run);
    assert!(
        run.log.contains("==> PullImages: pulling"),
        "forcePull pulls:\n{}",
        run.log
    );
    assert_digest_confirmed(&run, "demo/binary", "latest");
    let (_, content) = image_files(&reference, "site/hello.txt");
    assert_eq!(content.as_deref(), Some(&b"hello from a tarball\n"[..]));
}

/// Makes `<name>.git` beside the fixture's repository from a work tree with `files` (path,
/// content) and, for each `(path, url, commit)`, a submodule pinned at `commit`; returns its commit.
fn served_repo(name: &str, files: &[(&str, &str)], submodules: &[(&str, &str, &str)]) -> String {
    let base = fixture().repos.path();
    let work = base.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    support::stage_submodules(&work, submodules);
    // Added by name: `add -A` would drop the gitlinks, whose directories are not checked out.
    for (path, content) in files {
        std::fs::write(work.join(path), content).unwrap();
        git(&work, &["add", path]);
    }
    git(&work, &["commit", "-q", "-m", name]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    let bare = format!("{name}.git");
    git(
        base,
        &["clone", "-q", "--bare", &format!("{name}-work"), &bare],
    );
    commit
}

#[test]
fn a_repository_with_a_submodule_builds_with_the_submodules_files() {
    let f = fixture();
    let lib = served_repo(
        "greeting-lib",
        &[("greeting.txt", "hello from the submodule\n")],
        &[],
    );
    let dockerfile = busybox_dockerfile(
        "COPY vendor/greeting/greeting.txt /greeting.txt\nRUN echo \"run saw: $(cat /greeting.txt)\"",
    );
    served_repo(
        "with-submodule",
        &[("Dockerfile", &dockerfile)],
        &[("vendor/greeting", "../greeting-lib.git", &lib)],
    );
    let reference = format!("{}/demo/with-submodule:latest", f.registry.addr());
    let b = build_json(
        "with-submodule-1",
        git_source(&f.git.url("with-submodule.git"), Some("main"), None),
        None,
        &reference,
        None,
    );
    let run = pod_build(&b, None, None, &insecure_default());
    assert_success(&run);
    assert!(
        run.log.contains("run saw: hello from the submodule"),
        "the RUN step reads the submodule's file:\n{}",
        run.log
    );
    let (_, content) = image_files(&reference, "greeting.txt");
    assert_eq!(content.as_deref(), Some(&b"hello from the submodule\n"[..]));
}

#[test]
fn local_build_without_a_registry_writes_an_oci_layout() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        busybox_dockerfile("RUN echo local > /local.txt"),
    )
    .unwrap();
    let bc = dir.path().join("bc.yaml");
    std::fs::write(
        &bc,
        format!(
            "apiVersion: build.kiln.dev/v1alpha1\nkind: BuildConfig\nmetadata:\n  name: local\n  namespace: dev\nspec:\n  source:\n    type: Binary\n  strategy:\n    type: Docker\n    dockerStrategy:\n      buildArgs:\n      - name: REGISTRY\n        value: {}\n  output:\n    to:\n      kind: ImageStreamTag\n      name: local:latest\n",
            f.registry.addr()
        ),
    )
    .unwrap();
    let layout = dir.path().join("layout");
    let mut cmd = kiln();
    cmd.args(["build", "-f"])
        .arg(&bc)
        .arg("--context")
        .arg(&ctx)
        .arg("--oci-dir")
        .arg(&layout)
        .arg("--root")
        .arg(f.storage.join("root"))
        .arg("--runroot")
        .arg(f.storage.join("run"));
    let out = run_bounded(cmd, BUILD_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kiln build failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("phase: Complete"), "{stdout}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("imageDigest: {digest}")),
        "the status names the layout's digest:\n{stdout}"
    );
}

#[test]
fn build_volumes_reach_run_steps_but_never_a_layer() {
    let f = fixture();
    let volumes = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(volumes.path().join("app-token")).unwrap();
    std::fs::write(volumes.path().join("app-token/token"), "s3cret-token\n").unwrap();
    let dockerfile = busybox_dockerfile(
        "RUN grep -q s3cret-token /run/secrets/app/token && echo used the token > /used.txt",
    );
    let reference = format!("{}/demo/volumes:latest", f.registry.addr());
    let url = f.git.url("app.git");
    let mut b = build_json(
        "volumes-1",
        git_source(&url, Some("main"), None),
        Some(&dockerfile),
        &reference,
        None,
    );
    b["spec"]["strategy"]["dockerStrategy"]["volumes"] = json!([{
        "name": "app-token",
        "source": {"type": "Secret", "secret": {"secretName": "app-token"}},
        "mounts": [{"destinationPath": "/run/secrets/app"}]
    }]);
    b["metadata"]["annotations"] =
        json!({"test-volumes-dir": volumes.path().display().to_string()});
    let run = pod_build(&b, None, None, &insecure_default());
    assert_success(&run);
    let (files, used) = image_files(&reference, "used.txt");
    assert_eq!(
        used.as_deref(),
        Some(&b"used the token\n"[..]),
        "the RUN step read the volume"
    );
    assert!(
        !files.iter().any(|(p, _)| p.contains("token")),
        "the secret is in no layer: {files:?}"
    );
}

#[test]
fn value_from_env_resolved_by_the_pod_reaches_run_steps() {
    let f = fixture();
    let dockerfile = busybox_dockerfile(
        "RUN test \"$APP_TOKEN\" = from-the-secret && test \"$PLAIN\" = plain && echo saw the token > /used.txt",
    );
    let reference = format!("{}/demo/value-from:latest", f.registry.addr());
    let url = f.git.url("app.git");
    let mut b = build_json(
        "value-from-1",
        git_source(&url, Some("main"), None),
        Some(&dockerfile),
        &reference,
        None,
    );
    b["spec"]["strategy"]["dockerStrategy"]["env"] = json!([
        {"name": "PLAIN", "value": "plain"},
        {"name": "APP_TOKEN", "valueFrom": {"secretKeyRef": {"name": "app", "key": "token"}}}
    ]);
    // Without the Pod's resolved value (as `kiln build` runs it): a reason, not a guess.
    let run = pod_build(&b, None, None, &insecure_default());
    expect_failure(
        &run,
        StatusReason::UnresolvableEnvironmentVariable,
        "\"APP_TOKEN\" uses valueFrom",
    );
    b["metadata"]["annotations"] =
        json!({"test-value-from": json!({"KILN_VALUE_FROM_1": "from-the-secret"}).to_string()});
    let run = pod_build(&b, None, None, &insecure_default());
    assert_success(&run);
    let (_, used) = image_files(&reference, "used.txt");
    assert_eq!(used.as_deref(), Some(&b"saw the token\n"[..]));
    // A failing build's report (the Build's message and log snippet) carries no Secret value.
    b["spec"]["source"]["dockerfile"] = json!(busybox_dockerfile(
        "RUN echo \"token is $APP_TOKEN\" && false"
    ));
    let run = pod_build(&b, None, None, &insecure_default());
    assert!(!run.success);
    assert!(run.log.contains("token is from-the-secret"), "{}", run.log);
    let report = serde_json::to_string(&run.report).unwrap();
    assert!(
        report.contains("token is ***") && !report.contains("from-the-secret"),
        "{report}"
    );
}

#[test]
fn kiln_build_f_refuses_volumes_that_would_bind_host_paths() {
    let dir = tempfile::tempdir().unwrap();
    let long = "v".repeat(64);
    let cases = [
        ("/", "/run/s", "volumes[0].name \"/\""),
        ("/dev", "/run/s", "volumes[0].name \"/dev\""),
        ("..", "/run/s", "volumes[0].name \"..\""),
        (long.as_str(), "/run/s", "1 to 63 characters"),
        ("s", "/", "must not be the root directory"),
        ("s", "/dev", "must not be on or below /dev"),
        ("s", "/a/../../usr/bin", "'..'"),
        ("s", "run/s", "must be an absolute path"),
    ];
    for (i, (name, path, want)) in cases.iter().enumerate() {
        let bc = dir.path().join(format!("bc-{i}.json"));
        let manifest = json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "vol", "namespace": "dev"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"volumes": [{
                "name": name,
                "source": {"type": "Secret", "secret": {"secretName": "s"}},
                "mounts": [{"destinationPath": path}]
            }]}}}
        });
        std::fs::write(&bc, manifest.to_string()).unwrap();
        let out = kiln().args(["build", "-f"]).arg(&bc).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} {path} was accepted");
        assert!(
            stderr.contains("spec.strategy.dockerStrategy.volumes") && stderr.contains(want),
            "{name} {path}: {stderr}"
        );
    }
}
