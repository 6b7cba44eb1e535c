//! kiln's own images: the repository's `Dockerfile` built with buildah (chroot isolation) into its
//! `controller` and `builder` targets, from Debian 12 bases made locally by
//! `scripts/make-base-images.sh --kiln` (mmdebstrap; the root filesystems are cached under the
//! target dir) and the kiln binary under test (`KILN_FROM=prebuilt`), pushed to a
//! `docker-registry` on 127.0.0.1. Checks what each image is for: the controller holds kiln and
//! only what kiln links, runs as user 65532 (asked from inside, under runc) and answers through
//! its entrypoint; the builder runs kiln and a buildah that builds inside the container. Sizes
//! and build times are printed; `make images` measures them on a release binary.
//!
//! Then the builder image does what it is for (`images/runc_seed.rs`): the seed example built by
//! `kiln controller` with build Pods in that image, run by runc under the default `unprivileged`
//! profile in a namespace enforcing Pod Security `baseline`, and a hostile Dockerfile refused.

#[path = "images/runc_seed.rs"]
mod runc_seed;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{run_bounded, Registry};

const LIMIT: Duration = Duration::from_secs(600);

struct Store {
    root: PathBuf,
    run: PathBuf,
    driver: &'static str,
}

impl Store {
    fn buildah(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .args(["--storage-driver", self.driver]);
        c
    }

    /// Runs buildah with `args`; its stdout, or a panic naming the command and its stderr.
    fn run(&self, args: &[&str]) -> String {
        let mut c = self.buildah();
        c.args(args);
        let out = run_bounded(c, LIMIT);
        assert!(
            out.status.success(),
            "buildah {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `argv` in a working container of `image` under runc, as the image's user, with
    /// buildah's default capabilities; (success, stdout + stderr). (buildah 1.28's chroot
    /// isolation loses the output of a short-lived process now and then; runc does not.)
    fn run_in(&self, image: &str, argv: &[&str]) -> (bool, String) {
        self.run_in_with(image, &[], argv)
    }

    /// `run_in` with extra `buildah run` options (volumes).
    fn run_in_with(&self, image: &str, options: &[&str], argv: &[&str]) -> (bool, String) {
        let ctr = self.run(&["from", "--quiet", "--pull-never", image]);
        let ctr = ctr.trim();
        let mut c = self.buildah();
        c.args(["run", "--isolation", "oci"])
            .args(options)
            .arg(ctr)
            .arg("--")
            .args(argv);
        let out = run_bounded(c, LIMIT);
        self.run(&["rm", ctr]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The image's configuration as buildah reports it.
    fn inspect(&self, image: &str) -> Value {
        serde_json::from_str(&self.run(&["inspect", "--type", "image", image]))
            .unwrap_or_else(|e| panic!("buildah inspect {image}: {e}"))
    }
}

/// The files (not directories) of an image, as absolute paths, read from its mounted root.
fn files_of(store: &Store, image: &str) -> BTreeSet<String> {
    let ctr = store.run(&["from", "--quiet", "--pull-never", image]);
    let ctr = ctr.trim();
    let mnt = store.run(&["mount", ctr]);
    let mnt = PathBuf::from(mnt.trim());
    let mut files = BTreeSet::new();
    walk(&mnt, &mnt, &mut files);
    store.run(&["umount", ctr]);
    store.run(&["rm", ctr]);
    files
}

/// The contents of files of an image (absolute paths), read from its mounted root.
fn read_files(store: &Store, image: &str, paths: &[&str]) -> Vec<String> {
    let ctr = store.run(&["from", "--quiet", "--pull-never", image]);
    let ctr = ctr.trim();
    let mnt = store.run(&["mount", ctr]);
    let mnt = PathBuf::from(mnt.trim());
    let texts = paths
        .iter()
        .map(|p| {
            let file = mnt.join(p.trim_start_matches('/'));
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{p} in {image}: {e}"))
        })
        .collect();
    store.run(&["umount", ctr]);
    store.run(&["rm", ctr]);
    texts
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, out);
        } else {
            out.insert(format!("/{}", path.strip_prefix(root).unwrap().display()));
        }
    }
}

/// A program's path on PATH (installed by scripts/install-deps.sh).
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (scripts/install-deps.sh)"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn controller_and_builder_images_build_from_the_dockerfile_and_do_their_jobs() {
    let registry = Registry::start(None);
    let reg = registry.addr();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("images");
    let root = dir.join("storage/root");
    let run = dir.join("storage/run");
    if root.exists() {
        // Images of earlier runs carry other registry ports: drop them (the Debian root
        // filesystems stay cached as tarballs).
        let mut rmi = Command::new("buildah");
        rmi.arg("--root").arg(&root).arg("--runroot").arg(&run);
        rmi.args(["rmi", "--all", "--force"]);
        let _ = run_bounded(rmi, LIMIT);
    }

    let started = Instant::now();
    let mut make = Command::new(support::repo_root().join("scripts/make-base-images.sh"));
    make.arg(&reg)
        .arg("--kiln")
        .arg("--no-push")
        .arg(format!("--cache={}", dir.join("debian-cache").display()))
        .env("BUILDAH_ROOT", &root)
        .env("BUILDAH_RUNROOT", &run);
    let out = run_bounded(make, LIMIT);
    assert!(
        out.status.success(),
        "make-base-images --kiln: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bases_took = started.elapsed();
    // make-base-images falls back to vfs where overlay cannot mount; build with what it chose.
    let driver = if root.join("overlay-images").is_dir() {
        "overlay"
    } else {
        "vfs"
    };
    let store = Store { root, run, driver };

    // The binary under test, where the Dockerfile's context admits it (.dockerignore keeps
    // target/*/kiln).
    let staged = support::repo_root().join("target/image/kiln");
    std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &staged).unwrap();

    let repo = support::repo_root();
    let context = repo.display().to_string();
    let build_arg = |k: &str, v: &str| format!("{k}={v}");
    let args = [
        build_arg("BUILD_IMAGE", &format!("{reg}/base/debian-build:bookworm")),
        build_arg("DEBIAN_IMAGE", &format!("{reg}/base/debian:bookworm")),
        build_arg("KILN_FROM", "prebuilt"),
        build_arg("KILN_BINARY", "target/image/kiln"),
    ];
    let mut built = Vec::new();
    for target in ["controller", "builder"] {
        let image = format!("{reg}/kiln/{target}:test");
        let mut bud = vec![
            "bud",
            "--quiet",
            "--isolation",
            "chroot",
            "--layers",
            "--tls-verify=false",
            "--target",
            target,
            "--file",
        ];
        let dockerfile = repo.join("Dockerfile").display().to_string();
        bud.push(&dockerfile);
        for a in &args {
            bud.extend(["--build-arg", a.as_str()]);
        }
        bud.extend(["--tag", image.as_str(), context.as_str()]);
        let t = Instant::now();
        store.run(&bud);
        let took = t.elapsed();
        let digest_file = dir.join(format!("{target}.digest"));
        let dest = format!("docker://{image}");
        let digest_arg = format!("--digestfile={}", digest_file.display());
        store.run(&[
            "push",
            "--quiet",
            "--tls-verify=false",
            &digest_arg,
            &image,
            &dest,
        ]);
        let pushed = std::fs::read_to_string(&digest_file).unwrap();
        assert_eq!(
            registry.manifest_digest(&format!("kiln/{target}"), "test", None),
            Some(pushed.trim().to_string()),
            "the registry serves the {target} image that was pushed"
        );
        built.push((target, image, took));
    }

    // --- controller -----------------------------------------------------------------------------
    let controller = &built[0].1;
    let config = store.inspect(controller);
    let oci = &config["OCIv1"]["config"];
    let user = oci["User"].as_str().unwrap_or_default();
    assert_eq!(user, "65532:65532", "controller user: {oci}");
    assert_eq!(strings(&oci["Entrypoint"]), ["/usr/local/bin/kiln"]);
    assert_eq!(strings(&oci["Cmd"]), ["controller"]);

    let files = files_of(&store, controller);
    let passwd = read_files(&store, controller, &["/etc/passwd"]).remove(0);
    let passwd_ok = passwd
        .lines()
        .any(|l| l.starts_with("nonroot:x:65532:65532:"));
    assert!(passwd_ok, "/etc/passwd names user 65532");
    // kiln alone: the binary, the shared libraries it links, CA certificates and user database.
    let allowed = |f: &str| {
        f == "/usr/local/bin/kiln"
            || f.starts_with("/lib/x86_64-linux-gnu/")
            || f.starts_with("/lib64/ld-linux")
            || [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/passwd",
                "/etc/group",
                "/etc/nsswitch.conf",
            ]
            .contains(&f)
    };
    let extra: Vec<_> = files.iter().filter(|f| !allowed(f)).collect();
    assert!(
        extra.is_empty(),
        "controller image holds more than kiln: {extra:?}"
    );
    assert!(files.contains("/usr/local/bin/kiln"), "{files:?}");
    assert!(
        !files.contains("/bin/sh"),
        "no shell in the controller image"
    );

    // Through its entrypoint, as its own (non-root) user.
    let entrypoint = strings(&oci["Entrypoint"]);
    let mut version = entrypoint.clone();
    version.push("--version".into());
    let version: Vec<&str> = version.iter().map(String::as_str).collect();
    let (ok, text) = store.run_in(controller, &version);
    assert!(ok, "kiln --version in the controller image: {text}");
    assert_eq!(text.trim(), format!("kiln {}", env!("CARGO_PKG_VERSION")));
    let mut help = entrypoint.clone();
    help.push("--help".into());
    let help: Vec<&str> = help.iter().map(String::as_str).collect();
    let (ok, text) = store.run_in(controller, &help);
    assert!(ok && text.contains("controller"), "kiln --help: {text}");
    let (ok, _) = store.run_in(controller, &["/bin/sh", "-c", "true"]);
    assert!(!ok, "a shell ran in the controller image");
    // Who the entrypoint runs as, asked from inside by a static busybox lent for the check (the
    // image has no shell of its own): user 65532, which cannot write to the image's own files.
    let busybox = which("busybox");
    let lend = format!("{}:/check/busybox:ro", busybox.display());
    let (ok, text) = store.run_in_with(
        controller,
        &["--volume", &lend],
        &[
            "/check/busybox",
            "sh",
            "-c",
            "/check/busybox id -u; /check/busybox id -g; \
             /check/busybox touch /usr/local/bin/kiln 2>/dev/null && echo wrote || echo read-only",
        ],
    );
    assert!(ok, "busybox in the controller image: {text}");
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["65532", "65532", "read-only"],
        "{text}"
    );

    // --- builder --------------------------------------------------------------------------------
    let builder = &built[1].1;
    let config = store.inspect(builder);
    let oci = &config["OCIv1"]["config"];
    assert_eq!(strings(&oci["Entrypoint"]), ["/usr/local/bin/kiln"]);
    assert_eq!(oci["WorkingDir"].as_str(), Some("/workspace"));
    assert!(
        strings(&oci["Env"]).contains(&"BUILDAH_ISOLATION=chroot".to_string()),
        "{oci}"
    );
    let (ok, text) = store.run_in(builder, &["kiln", "--version"]);
    assert!(ok, "kiln in the builder image: {text}");
    assert_eq!(text.trim(), format!("kiln {}", env!("CARGO_PKG_VERSION")));
    let (ok, text) = store.run_in(builder, &["buildah", "--version"]);
    assert!(ok && text.starts_with("buildah version "), "{text}");
    let confs = [
        "storage.conf",
        "registries.conf",
        "policy.json",
        "containers.conf",
    ];
    let paths: Vec<String> = confs
        .iter()
        .map(|c| format!("/etc/containers/{c}"))
        .collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let got = read_files(&store, builder, &paths);
    for (conf, got) in confs.iter().zip(got) {
        let want =
            std::fs::read_to_string(repo.join("images/builder/containers").join(conf)).unwrap();
        assert_eq!(got, want, "/etc/containers/{conf} in the builder");
    }
    // buildah builds inside the builder: without CAP_SYS_ADMIN it makes itself a user namespace,
    // as in a user-namespaced Pod (vfs: the probe's storage sits on the image's own root).
    let script = "set -e; mkdir -p /tmp/ctx; echo built-inside > /tmp/ctx/hello; \
        printf 'FROM scratch\\nCOPY hello /hello\\n' > /tmp/ctx/Dockerfile; \
        buildah --storage-driver vfs bud --quiet --tag probe /tmp/ctx >/dev/null; \
        c=$(buildah --storage-driver vfs from probe); \
        cat \"$(buildah --storage-driver vfs mount \"$c\")/hello\"";
    let (ok, text) = store.run_in(builder, &["sh", "-c", script]);
    assert!(
        ok && text.trim_end().ends_with("built-inside"),
        "buildah inside the builder image: {text}"
    );

    for (target, image, took) in &built {
        let size = store.run(&["images", "--format", "{{.Size}}", image]);
        eprintln!(
            "images: {target}: {} (uncompressed), built in {:.1}s",
            size.trim(),
            took.as_secs_f64()
        );
    }
    eprintln!("images: bases ready in {:.1}s", bases_took.as_secs_f64());

    runc_seed::seed_builds_in_the_builder_image_under_runc(builder);
    store.run(&["rmi", "--all", "--force"]);
}
