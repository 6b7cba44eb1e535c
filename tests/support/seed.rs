//! The seed's go-server example (`examples/go-server/`) for end-to-end tests: its base images in a
//! registry, a git daemon serving it, its manifests patched for this run, and its built image run
//! and asked for its page.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::cluster::Storage;
use super::{free_port, git, http_get, repo_root, run_bounded, GitDaemon, Registry, Service};

/// The example's repository: `<dir>/git/src` (a work tree whose `main` holds
/// `examples/go-server/`), its bare clone `go-server.git`, served by a git daemon.
pub struct SeedSource {
    /// The daemon serving `<dir>/git`.
    pub daemon: GitDaemon,
    /// The git:// URL of `go-server.git`.
    pub url: String,
    /// The work tree (commit there, then push to `../go-server.git`).
    pub src: PathBuf,
}

impl SeedSource {
    /// Makes the repositories under `dir` and serves them.
    pub fn start(dir: &Path) -> SeedSource {
        let repos = dir.join("git");
        let src = repos.join("src");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        super::copy_dir(
            &repo_root().join("examples/go-server"),
            &src.join("examples/go-server"),
        );
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "go-server example"]);
        git(&repos, &["clone", "-q", "--bare", "src", "go-server.git"]);
        let daemon = GitDaemon::start(&repos);
        let url = daemon.url("go-server.git");
        SeedSource { daemon, url, src }
    }
}

/// Pushes the example's base images (`library/golang:1.19`, `library/busybox:latest`, made from
/// Debian packages by `scripts/make-base-images.sh`) to `registry`, through `storage`.
pub fn push_base_images(registry: &Registry, storage: &Storage) {
    make_base_images(registry, storage, &[]);
}

/// `scripts/make-base-images.sh REGISTRY ARGS…` (`--busybox`: the busybox image alone) through
/// `storage`, pushed to `registry`.
pub fn make_base_images(registry: &Registry, storage: &Storage, args: &[&str]) {
    let mut make = Command::new(repo_root().join("scripts/make-base-images.sh"));
    make.arg(registry.addr())
        .args(args)
        .env("BUILDAH_ROOT", storage.root())
        .env("BUILDAH_RUNROOT", storage.runroot());
    let out = run_bounded(make, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "make-base-images: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `examples/go-server/` with `git_url` as the BuildConfig's source and `registry` as its
/// `REGISTRY` build argument (where the base images are), written to `dir`.
pub fn patched_example(git_url: &str, registry: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut patched_uri = false;
    let mut patched_registry = false;
    for entry in std::fs::read_dir(repo_root().join("examples/go-server")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut documents = Vec::new();
        for document in serde_norway::Deserializer::from_str(&text) {
            let mut value: Value = serde::Deserialize::deserialize(document).unwrap();
            if value["kind"] == "BuildConfig" {
                value["spec"]["source"]["git"]["uri"] = git_url.into();
                patched_uri = true;
                for arg in value["spec"]["strategy"]["dockerStrategy"]["buildArgs"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if arg["name"] == "REGISTRY" {
                        arg["value"] = registry.into();
                        patched_registry = true;
                    }
                }
            }
            if !value.is_null() {
                documents.push(serde_norway::to_string(&value).unwrap());
            }
        }
        std::fs::write(dir.join(path.file_name().unwrap()), documents.join("---\n")).unwrap();
    }
    assert!(
        patched_uri && patched_registry,
        "examples/go-server has a BuildConfig with a git URI and a REGISTRY build arg"
    );
}

/// Pulls `reference` into `storage`, runs its /app/server (output to `log`) and returns the body
/// of `GET /` and the image's commit label.
pub fn run_image(storage: &Storage, reference: &str, log: &Path) -> (String, String) {
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    let commit = storage.buildah(&[
        "inspect",
        "--format",
        "{{index .OCIv1.Config.Labels \"io.kiln.build.commit.id\"}}",
        &ctr,
    ]);
    let mount = PathBuf::from(storage.buildah(&["mount", &ctr]));
    let server = mount.join("app/server");
    assert!(server.is_file(), "the image has no /app/server");
    let port = free_port();
    let mut cmd = Command::new(&server);
    cmd.env("PORT", port.to_string());
    let service = Service::spawn_logged(cmd, port, "go-server", log);
    let answer = http_get(port, "/");
    drop(service);
    storage.buildah(&["rm", &ctr]);
    match answer {
        Some((200, body)) => (body, commit),
        other => panic!("GET / answered {other:?}"),
    }
}

/// Checks the example's answer: its welcome line and a 32-hex id.
pub fn assert_example_answer(body: &str) {
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2, "answer: {body:?}");
    assert_eq!(lines[0], "Welcome to my website!");
    assert!(
        lines[1].len() == 32 && lines[1].bytes().all(|b| b.is_ascii_hexdigit()),
        "a 32-hex id: {body:?}"
    );
}
