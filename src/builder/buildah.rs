//! Running buildah: storage selection (overlay, falling back to vfs), argument building (pure) and
//! process execution that streams output to stdout while keeping the last lines for the report.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Lines of output kept for a failure report.
pub(crate) const TAIL_LINES: usize = 20;

/// Why a buildah command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// buildah could not be started.
    #[error("cannot run buildah: {0}")]
    Spawn(std::io::Error),
    /// buildah exited non-zero.
    #[error("{summary}")]
    Failed {
        /// buildah's last `Error:` line, or the exit status.
        summary: String,
        /// The last lines of output.
        tail: String,
    },
}

impl Error {
    /// The last output lines, if buildah ran.
    pub(crate) fn tail(&self) -> Option<String> {
        match self {
            Self::Failed { tail, .. } => Some(tail.clone()),
            Self::Spawn(_) => None,
        }
    }
}

/// How to reach buildah's storage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Buildah {
    /// The buildah binary.
    pub(crate) program: PathBuf,
    /// `--root` (None: buildah's default).
    pub(crate) root: Option<PathBuf>,
    /// `--runroot` (None: buildah's default).
    pub(crate) runroot: Option<PathBuf>,
    /// `--storage-driver`: `overlay` or `vfs`.
    pub(crate) driver: String,
}

/// Options of one `buildah bud`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BudOptions {
    /// The context directory.
    pub(crate) context: PathBuf,
    /// The Dockerfile (may live outside the context).
    pub(crate) dockerfile: PathBuf,
    /// The tag to give the result.
    pub(crate) tag: String,
    /// `--layers` (layer cache) unless the optimization policy squashes.
    pub(crate) layers: bool,
    /// `--no-cache`.
    pub(crate) no_cache: bool,
    /// `--build-arg` pairs.
    pub(crate) build_args: Vec<(String, String)>,
    /// `--target`.
    pub(crate) target: Option<String>,
    /// `--volume host:container:ro` mounts for RUN steps.
    pub(crate) volumes: Vec<(PathBuf, String)>,
    /// `--authfile`.
    pub(crate) authfile: Option<PathBuf>,
    /// `--tls-verify=false`.
    pub(crate) insecure: bool,
    /// `--cache-from` and `--cache-to` this repository (with `--layers` only).
    pub(crate) cache_repository: Option<String>,
}

impl Buildah {
    /// A buildah on PATH with the given storage, trying overlay first and falling back to vfs.
    pub(crate) fn detect(
        root: Option<PathBuf>,
        runroot: Option<PathBuf>,
        driver: Option<&str>,
    ) -> Self {
        let mut b = Self {
            program: PathBuf::from("buildah"),
            root,
            runroot,
            driver: "overlay".into(),
        };
        if let Some(d) = driver {
            b.driver = d.to_string();
            return b;
        }
        // A storage already initialised keeps its driver; only a new one is probed.
        let root_dir = b
            .root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/containers/storage"));
        if let Some(d) = existing_driver(&root_dir) {
            b.driver = d.to_string();
            return b;
        }
        let ok = Command::new(&b.program)
            .args(b.global_args())
            .args(["images", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            b.driver = "vfs".into();
        }
        b
    }

    /// The storage arguments every command gets.
    pub(crate) fn global_args(&self) -> Vec<String> {
        let mut args = vec!["--storage-driver".to_string(), self.driver.clone()];
        if let Some(r) = &self.root {
            args.extend(["--root".to_string(), r.display().to_string()]);
        }
        if let Some(r) = &self.runroot {
            args.extend(["--runroot".to_string(), r.display().to_string()]);
        }
        args
    }

    /// Runs `buildah <global> <args>`, streaming its output, and returns the output tail.
    pub(crate) fn run(&self, args: &[String]) -> Result<String, Error> {
        let mut cmd = Command::new(&self.program);
        cmd.args(self.global_args())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_streaming(cmd)
    }

    /// Runs a command and returns its trimmed stdout (no streaming), e.g. `images --quiet`.
    pub(crate) fn output(&self, args: &[String]) -> Result<String, Error> {
        let out = Command::new(&self.program)
            .args(self.global_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(Error::Spawn)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            Err(Error::Failed {
                summary: summary(&text, out.status.code()),
                tail: super::report::last_lines(&text, TAIL_LINES),
            })
        }
    }

    /// The images present in the storage, as `name:tag`: read from the storage's image index when
    /// it can be (no process to start), else from one `buildah images` call. A stale answer only
    /// costs a pull, as `buildah bud` still pulls any image that is missing.
    pub(crate) fn present_images(&self) -> Vec<String> {
        if let Some(root) = &self.root {
            let index = root
                .join(format!("{}-images", self.driver))
                .join("images.json");
            if let Some(names) = std::fs::read(&index)
                .ok()
                .and_then(|b| image_index_names(&b))
            {
                return names;
            }
        }
        let args: Vec<String> = ["images", "--noheading", "--format", "{{.Name}}:{{.Tag}}"]
            .map(String::from)
            .to_vec();
        self.output(&args)
            .map(|o| {
                o.lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The driver of an existing storage root (`overlay` or `vfs`), from the directories it made.
pub(crate) fn existing_driver(root: &Path) -> Option<&'static str> {
    ["overlay", "vfs"]
        .into_iter()
        .find(|d| root.join(format!("{d}-images")).is_dir())
}

/// The image names in a containers/storage `images.json` (None when it is not that format).
pub(crate) fn image_index_names(json: &[u8]) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let names = value
        .as_array()?
        .iter()
        .filter_map(|image| image.get("names")?.as_array().cloned())
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    Some(names)
}

/// Whether `image` is in a list of `name:tag` entries (a reference without a tag means `:latest`).
pub(crate) fn image_listed(present: &[String], image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    let wanted = if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    present.contains(&wanted)
}

/// The arguments of `buildah bud` for `opts` (pure).
pub(crate) fn bud_args(opts: &BudOptions) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "bud".into(),
        "--isolation".into(),
        "chroot".into(),
        "--format".into(),
        "docker".into(),
    ];
    a.push(format!("--layers={}", opts.layers));
    if opts.no_cache {
        a.push("--no-cache".into());
    }
    if let Some(repo) = opts.cache_repository.as_ref().filter(|_| opts.layers) {
        a.extend([
            "--cache-from".into(),
            repo.clone(),
            "--cache-to".into(),
            repo.clone(),
        ]);
    }
    if opts.insecure {
        a.push("--tls-verify=false".into());
    }
    if let Some(f) = &opts.authfile {
        a.extend(["--authfile".into(), f.display().to_string()]);
    }
    for (k, v) in &opts.build_args {
        a.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    if let Some(t) = &opts.target {
        a.extend(["--target".into(), t.clone()]);
    }
    for (host, dest) in &opts.volumes {
        a.extend(["--volume".into(), format!("{}:{dest}:ro", host.display())]);
    }
    a.extend([
        "--file".into(),
        opts.dockerfile.display().to_string(),
        "--tag".into(),
        opts.tag.clone(),
    ]);
    a.push(opts.context.display().to_string());
    a
}

/// The arguments of `buildah push` to a registry or an OCI layout (pure).
pub(crate) fn push_args(
    image: &str,
    dest: &str,
    digestfile: &Path,
    authfile: Option<&Path>,
    insecure: bool,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "push".into(),
        "--digestfile".into(),
        digestfile.display().to_string(),
    ];
    if insecure {
        a.push("--tls-verify=false".into());
    }
    if let Some(f) = authfile {
        a.extend(["--authfile".into(), f.display().to_string()]);
    }
    a.extend([image.to_string(), dest.to_string()]);
    a
}

/// buildah's last `Error:` line (or a generic line with the exit code), made one line.
pub(crate) fn summary(output: &str, code: Option<i32>) -> String {
    output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Error: ").map(str::to_string))
        .or_else(|| {
            output
                .lines()
                .rev()
                .find(|l| l.contains("error") || l.contains("Error"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| {
            format!(
                "buildah exited with status {}",
                code.map_or("signal".into(), |c| c.to_string())
            )
        })
}

/// Runs a command, copying stdout and stderr lines to our stdout, and keeps the last lines.
pub(crate) fn run_streaming(mut cmd: Command) -> Result<String, Error> {
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let mut readers = Vec::new();
    let out = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [out, err].into_iter().flatten() {
        let tail = Arc::clone(&tail);
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("{line}");
                if let Ok(mut t) = tail.lock() {
                    if t.len() == TAIL_LINES * 5 {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        }));
    }
    let status = child.wait().map_err(Error::Spawn)?;
    for r in readers {
        let _ = r.join();
    }
    let all: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    let text = all.join("\n");
    if status.success() {
        Ok(super::report::last_lines(&text, TAIL_LINES))
    } else {
        Err(Error::Failed {
            summary: summary(&text, status.code()),
            tail: super::report::last_lines(&text, TAIL_LINES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bud_args_table() {
        let base = BudOptions {
            context: "/ctx".into(),
            dockerfile: "/w/Dockerfile".into(),
            tag: "img:1".into(),
            layers: true,
            ..Default::default()
        };
        let full = BudOptions {
            no_cache: true,
            insecure: true,
            build_args: vec![("A".into(), "1".into())],
            target: Some("builder".into()),
            volumes: vec![("/v/s".into(), "/run/s".into())],
            authfile: Some("/a.json".into()),
            layers: false,
            ..base.clone()
        };
        let cached = BudOptions {
            cache_repository: Some("r:5000/ns/app-cache".into()),
            ..base.clone()
        };
        let squashed = BudOptions {
            layers: false,
            ..cached.clone()
        };
        let cases = [
            (cached, "bud --isolation chroot --format docker --layers=true --cache-from r:5000/ns/app-cache --cache-to r:5000/ns/app-cache --file /w/Dockerfile --tag img:1 /ctx"),
            (squashed, "bud --isolation chroot --format docker --layers=false --file /w/Dockerfile --tag img:1 /ctx"),
            (base, "bud --isolation chroot --format docker --layers=true --file /w/Dockerfile --tag img:1 /ctx"),
            (full, "bud --isolation chroot --format docker --layers=false --no-cache --tls-verify=false --authfile /a.json --build-arg A=1 --target builder --volume /v/s:/run/s:ro --file /w/Dockerfile --tag img:1 /ctx"),
        ];
        for (opts, want) in cases {
            assert_eq!(bud_args(&opts).join(" "), want);
        }
    }

    #[test]
    fn image_listing() {
        let present = vec![
            "r:5000/library/busybox:latest".to_string(),
            "r:5000/library/golang:1.19".to_string(),
        ];
        for (image, want) in [
            ("r:5000/library/busybox", true),
            ("r:5000/library/busybox:latest", true),
            ("r:5000/library/golang:1.19", true),
            ("r:5000/library/golang", false),
            ("r:5000/library/golang@sha256:00", false),
        ] {
            assert_eq!(image_listed(&present, image), want, "{image}");
        }
        let index = br#"[{"id":"a","names":["r:5000/library/busybox:latest"]},{"id":"b"}]"#;
        assert_eq!(
            image_index_names(index),
            Some(vec!["r:5000/library/busybox:latest".to_string()])
        );
        assert_eq!(image_index_names(b"{}"), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(existing_driver(dir.path()), None);
        std::fs::create_dir(dir.path().join("overlay-images")).unwrap();
        assert_eq!(existing_driver(dir.path()), Some("overlay"));
    }

    #[test]
    fn push_and_summary() {
        assert_eq!(
            push_args("i", "docker://r/i", Path::new("/d"), None, true).join(" "),
            "push --digestfile /d --tls-verify=false i docker://r/i"
        );
        for (out, code, want) in [
            (
                "STEP 1\nError: building at STEP \"RUN false\": exit status 1\n",
                Some(1),
                "building at STEP \"RUN false\": exit status 1",
            ),
            ("some error happened\nmore", Some(2), "some error happened"),
            ("", Some(3), "buildah exited with status 3"),
        ] {
            assert_eq!(summary(out, code), want);
        }
    }

    #[test]
    fn streaming_keeps_tail_and_status() {
        let mut ok = Command::new("sh");
        ok.args([
            "-c",
            "for i in $(seq 1 50); do echo line $i; done; echo err >&2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let tail = run_streaming(ok).unwrap();
        // stdout and stderr are read concurrently, so only each stream's own order is fixed.
        assert!(
            tail.contains("line 50") && !tail.contains("line 1\n"),
            "{tail}"
        );
        let mut stderr_only = Command::new("sh");
        stderr_only
            .args(["-c", "echo err >&2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        assert!(run_streaming(stderr_only).unwrap().contains("err"));
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo 'Error: boom'; exit 4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match run_streaming(bad) {
            Err(Error::Failed { summary, .. }) => assert_eq!(summary, "boom"),
            other => panic!("{other:?}"),
        }
    }
}
