//! The layer cache across builds, with real buildah and a real `docker-registry`: every build
//! starts from empty buildah storage, as a new build Pod does, so only the cache repository in
//! the registry can explain a reused layer. `kiln build --layer-cache` takes the repository the
//! controller would give the build's Pod (`<registry>/<namespace>/<buildconfig>-cache`);
//! `kiln builder build` takes it from the Pod's variable, as in a Pod.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use support::{kiln, run_bounded, Registry};

const BUILD_LIMIT: Duration = Duration::from_secs(300);

struct Fixture {
    registry: Registry,
    scratch: tempfile::TempDir,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// A registry holding the busybox base (made in a throwaway vfs storage).
fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let registry = Registry::start(None);
        let scratch = tempfile::Builder::new()
            .prefix("layer-cache-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let base = Storage::new(scratch.path(), "base");
        let mut make = Command::new(support::repo_root().join("scripts/make-base-images.sh"));
        make.arg(registry.addr())
            .arg("--busybox")
            .env("BUILDAH_ROOT", base.root())
            .env("BUILDAH_RUNROOT", base.runroot())
            .env("STORAGE_DRIVER", "vfs");
        let out = run_bounded(make, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "make-base-images: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(base);
        Fixture { registry, scratch }
    })
}

/// An empty buildah storage (vfs: no mounts left behind), emptied again on drop.
struct Storage(PathBuf);

impl Storage {
    fn new(parent: &Path, name: &str) -> Storage {
        let dir = parent.join(format!("store-{name}"));
        assert!(!dir.exists(), "{} is not fresh", dir.display());
        std::fs::create_dir_all(&dir).unwrap();
        Storage(dir)
    }

    fn root(&self) -> PathBuf {
        self.0.join("root")
    }

    fn runroot(&self) -> PathBuf {
        self.0.join("run")
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let mut rmi = Command::new("buildah");
        rmi.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot())
            .args(["--storage-driver", "vfs", "rmi", "--all", "--force"]);
        let _ = run_bounded(rmi, Duration::from_secs(120));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Dockerfile on the fixture's busybox whose RUN steps say when they run; only the last step
/// changes between versions.
fn dockerfile(late: &str) -> String {
    format!(
        "ARG REGISTRY\nFROM ${{REGISTRY}}/library/busybox:latest\n\
         RUN echo ran-first-step && echo one > /one\n\
         RUN echo ran-second-step && echo two > /two\n\
         RUN echo ran-late-step-{late} && echo {late} > /late\n"
    )
}

/// The BuildConfig `app` of `namespace` with an inline Dockerfile, pushing to `app:latest`.
fn build_config(dir: &Path, namespace: &str, late: &str, no_cache: bool) -> PathBuf {
    let registry = fixture().registry.addr();
    let bc = json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": dockerfile(late)},
            "strategy": {"type": "Docker", "dockerStrategy": {
                "noCache": no_cache,
                "buildArgs": [{"name": "REGISTRY", "value": registry}]
            }},
            "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}
        }
    });
    let path = dir.join(format!("bc-{namespace}-{late}-{no_cache}.json"));
    std::fs::write(&path, bc.to_string()).unwrap();
    path
}

/// `kiln build --layer-cache` of a BuildConfig in fresh storage; returns its output.
fn local_build(name: &str, namespace: &str, late: &str, no_cache: bool) -> String {
    let f = fixture();
    let storage = Storage::new(f.scratch.path(), name);
    let bc = build_config(f.scratch.path(), namespace, late, no_cache);
    let mut cmd = kiln();
    cmd.args(["build", "-f"])
        .arg(&bc)
        .args(["--registry", &f.registry.addr(), "--insecure-registry"])
        .arg("--layer-cache")
        .arg("--root")
        .arg(storage.root())
        .arg("--runroot")
        .arg(storage.runroot())
        .args(["--storage-driver", "vfs"]);
    let out = run_bounded(cmd, BUILD_LIMIT);
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kiln build {name} failed:\n{log}");
    assert!(log.contains("phase: Complete"), "{name}:\n{log}");
    log
}

/// The image id buildah reports after each step (`--> <id>`), in order.
fn step_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("--> "))
        .filter(|rest| !rest.contains(' '))
        .map(String::from)
        .collect()
}

/// Whether a RUN step printed `marker` (a line of its own, not the STEP line naming it).
fn ran(log: &str, marker: &str) -> bool {
    log.lines().any(|l| l.trim() == marker)
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_rebuild_in_fresh_storage_reuses_the_cached_layers_of_its_own_namespace_only() {
    let registry = fixture().registry.addr();
    let cache_a = format!("{registry}/team-a/app-cache");
    let cache_b = format!("{registry}/team-b/app-cache");

    // Cold: every step runs, and each step after FROM (the three RUNs, then the provenance ENV
    // and LABEL) is pushed to team-a's cache as it is built.
    let cold = local_build("a-cold", "team-a", "v1", false);
    assert!(cold.contains(&format!("layer cache {cache_a}")), "{cold}");
    let cold_ids = step_ids(&cold);
    assert_eq!(cold_ids.len(), 5, "{cold}");
    assert_eq!(
        count(&cold, &format!("Pushing cache {cache_a}:")),
        5,
        "{cold}"
    );
    assert_eq!(count(&cold, "Cache pulled from remote"), 0, "{cold}");

    // A one-line change in the last RUN, new empty storage: the first two steps come from the
    // registry cache (the same layer ids; their RUN never runs), the changed step and the ones
    // after it are built and pushed.
    let warm = local_build("a-warm", "team-a", "v2", false);
    assert_eq!(
        count(&warm, &format!("Cache pulled from remote {cache_a}:")),
        2,
        "{warm}"
    );
    assert_eq!(count(&warm, "Using cache"), 2, "{warm}");
    assert_eq!(
        count(&warm, &format!("Pushing cache {cache_a}:")),
        3,
        "{warm}"
    );
    assert!(!ran(&warm, "ran-first-step"), "{warm}");
    assert!(!ran(&warm, "ran-second-step"), "{warm}");
    let warm_ids = step_ids(&warm);
    assert_eq!(warm_ids.len(), 5, "{warm}");
    assert_eq!(
        cold_ids[..2],
        warm_ids[..2],
        "the reused layers are the cached ones"
    );
    assert_ne!(cold_ids[2], warm_ids[2]);

    // noCache: the same Dockerfile, every step of which is cached, builds every step anew (new
    // layer ids) and neither reads nor writes the cache.
    let bypass = local_build("a-no-cache", "team-a", "v2", true);
    assert_eq!(count(&bypass, "Cache pulled from remote"), 0, "{bypass}");
    assert_eq!(count(&bypass, "Using cache"), 0, "{bypass}");
    assert_eq!(count(&bypass, "Pushing cache"), 0, "{bypass}");
    let bypass_ids = step_ids(&bypass);
    assert_eq!(bypass_ids.len(), 5, "{bypass}");
    assert!(
        bypass_ids.iter().all(|id| !warm_ids.contains(id)),
        "{bypass}"
    );

    // The same BuildConfig name and Dockerfile in team-b: its own repository, which team-a's
    // builds never wrote, so nothing of team-a's is read and every step is built.
    let other = local_build("b-first", "team-b", "v2", false);
    assert!(other.contains(&format!("layer cache {cache_b}")), "{other}");
    assert!(!other.contains("team-a/"), "{other}");
    assert_eq!(count(&other, "Cache pulled from remote"), 0, "{other}");
    assert_eq!(count(&other, "Using cache"), 0, "{other}");
    assert_eq!(
        count(&other, &format!("Pushing cache {cache_b}:")),
        5,
        "{other}"
    );
    let other_ids = step_ids(&other);
    assert!(
        other_ids
            .iter()
            .all(|id| !warm_ids.contains(id) && !cold_ids.contains(id)),
        "{other}"
    );
}

/// `kiln builder build` as the Pod runs it, with the cache repository in the Pod's variable.
fn pod_build(name: &str, cache: &str, late: &str) -> (bool, String) {
    let storage = Storage::new(fixture().scratch.path(), name);
    pod_build_in(&storage, name, cache, late)
}

/// [`pod_build`] in `storage` (a build storage claim that outlives the Pod); an empty `cache`:
/// no layer cache repository.
fn pod_build_in(storage: &Storage, name: &str, cache: &str, late: &str) -> (bool, String) {
    let f = fixture();
    let registry = f.registry.addr();
    let ws = tempfile::tempdir_in(f.scratch.path()).unwrap();
    let build: Value = json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": name, "namespace": "team-a",
                     "annotations": {"build.kiln.dev/build-config.name": "app"}},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": dockerfile(late)},
            "strategy": {"type": "Docker", "dockerStrategy": {
                "buildArgs": [{"name": "REGISTRY", "value": registry}]
            }},
            "output": {"to": {"kind": "DockerImage", "name": format!("{registry}/team-a/{name}:latest")}}
        }
    });
    let mut log = String::new();
    for step in ["clone", "build"] {
        let mut cmd = kiln();
        cmd.args(["builder", step, "--workspace"])
            .arg(ws.path())
            .arg("--termination-log")
            .arg(ws.path().join(format!("{step}.log")))
            .env("BUILD", build.to_string())
            .env(
                "KILN_INSECURE_REGISTRIES",
                format!("{registry},{}", cache_host(cache)),
            )
            .env(kiln::api::contract::LAYER_CACHE_ENV, cache);
        if step == "clone" {
            cmd.arg("--source-secret").arg(ws.path().join("none"));
        } else {
            cmd.arg("--root")
                .arg(storage.root())
                .arg("--runroot")
                .arg(storage.runroot())
                .args(["--storage-driver", "vfs", "--pull-secret"])
                .arg(ws.path().join("none"))
                .arg("--push-secret")
                .arg(ws.path().join("none"));
        }
        let out = run_bounded(cmd, BUILD_LIMIT);
        log += &String::from_utf8_lossy(&out.stdout);
        log += &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return (false, log);
        }
    }
    (true, log)
}

fn cache_host(cache: &str) -> &str {
    cache.split('/').next().unwrap_or(cache)
}

#[test]
fn an_unreachable_or_refusing_cache_never_fails_a_build() {
    // Nothing listens: the build goes on without the cache, without buildah's retries.
    let closed = format!("127.0.0.1:{}/team-a/app-cache", support::free_port());
    let (ok, log) = pod_build("unreachable-1", &closed, "down");
    assert!(ok, "{log}");
    assert!(
        log.contains(&format!("layer cache {closed} is unreachable")),
        "{log}"
    );
    assert_eq!(count(&log, "Pushing cache"), 0, "{log}");

    // A registry that answers but refuses the push (it wants credentials the build has not): the
    // push of the first cached layer fails, and the build runs again without the cache.
    let secured = Registry::start(Some(("someone", "else")));
    let refusing = format!("{}/team-a/app-cache", secured.addr());
    let (ok, log) = pod_build("refused-1", &refusing, "refused");
    assert!(ok, "{log}");
    assert!(
        log.contains(&format!("the layer cache {refusing} failed")),
        "{log}"
    );
    assert!(log.contains("building again without it"), "{log}");
}

#[test]
fn a_rebuild_in_the_storage_an_earlier_build_left_pulls_nothing_and_reuses_its_layers() {
    // The BuildConfig's build storage claim: the same storage root for both builds, no registry
    // layer cache, so only the storage can explain what is reused.
    let storage = Storage::new(fixture().scratch.path(), "claim");
    let base = format!("{}/library/busybox:latest", fixture().registry.addr());
    let (ok, first) = pod_build_in(&storage, "claim-1", "", "v1");
    assert!(ok, "{first}");
    assert!(
        first.contains(&format!("PullImages: pulling {base}")),
        "{first}"
    );
    assert!(ran(&first, "ran-first-step"), "{first}");
    let first_ids = step_ids(&first);

    // A one-line change in the last RUN: the base is not pulled again, the two steps before the
    // change come from the storage (the same layer ids; their RUN never runs).
    let (ok, second) = pod_build_in(&storage, "claim-2", "", "v2");
    assert!(ok, "{second}");
    assert!(
        second.contains(&format!("PullImages: {base} is present")),
        "{second}"
    );
    assert!(!second.contains("PullImages: pulling"), "{second}");
    assert_eq!(count(&second, "Using cache"), 2, "{second}");
    assert!(!ran(&second, "ran-first-step"), "{second}");
    assert!(!ran(&second, "ran-second-step"), "{second}");
    assert!(ran(&second, "ran-late-step-v2"), "{second}");
    let second_ids = step_ids(&second);
    assert_eq!(first_ids[..2], second_ids[..2], "{second}");
    assert_ne!(first_ids[2], second_ids[2]);
    // Builds sharing the storage take turns through its lock file.
    assert!(storage.root().join("kiln-build.lock").is_file());
}
