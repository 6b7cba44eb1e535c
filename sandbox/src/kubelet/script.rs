//! The host command that starts a container in its own mount, PID and UTS namespaces (pure).
//!
//! Layout inside the namespace: a tmpfs on the container's host directory holds an overlay
//! whose lower layer is the host's `/` (so host programs are found) and whose upper layer is
//! on that tmpfs (so writes outside volumes vanish with the container). `/proc` is fresh,
//! `/sys` is bound, `/dev` is a small tmpfs. Volumes and the termination-message file are
//! first bound under a staging directory from the host's view, then moved to their
//! `mountPath` from inside the new root, so mount points — and symlinks on their way — are
//! created and resolved in the container's file system, never on the host.

use std::path::{Path, PathBuf};

use super::plan::ContainerPlan;

/// Host paths of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDirs {
    /// Mount point of the container's private tmpfs (only mounted inside its namespace).
    pub ns_dir: PathBuf,
    /// Host file bound at the container's `terminationMessagePath`.
    pub termination_file: PathBuf,
    /// Host file the setup writes to just before it execs the container's command.
    pub started_file: PathBuf,
}

impl ContainerDirs {
    /// The paths of container `name` (`kind` is `init` or `app`) under a Pod directory.
    pub fn new(pod_dir: &Path, kind: &str, name: &str) -> Self {
        let base = pod_dir.join("containers").join(format!("{kind}-{name}"));
        ContainerDirs {
            ns_dir: base.join("ns"),
            termination_file: base.join("termination-log"),
            started_file: base.join("started"),
        }
    }
}

/// Staging directory (inside the container root) for mounts before they are moved in place.
const STAGING: &str = "/.sandbox-mounts";
/// `PATH` for the setup shell.
pub const SETUP_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Quotes a string for POSIX sh.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Parent directory of an absolute container path (`/` for top-level entries).
fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// First stage, run by `unshare` with the host's view: builds the root and stages mounts.
pub fn setup_script(plan: &ContainerPlan, dirs: &ContainerDirs) -> String {
    let mut s = String::from("set -eu\n");
    s += &format!("T={}\n", sh_quote(&dirs.ns_dir.display().to_string()));
    s += r#"mount -t tmpfs -o mode=0755 sandbox-ctr "$T"
mkdir "$T/upper" "$T/work" "$T/root"
R="$T/root"
mount -t overlay sandbox-root -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -t tmpfs -o mode=0755,nosuid sandbox-dev "$R/dev"
for d in null zero full random urandom tty; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
"#;
    s += &format!("M=\"$R{STAGING}\"\nmkdir \"$M\"\n");
    s += "stage() { if [ -d \"$1\" ]; then mkdir \"$M/$2\"; else : > \"$M/$2\"; fi; mount --rbind \"$1\" \"$M/$2\"; }\n";
    for (i, m) in plan.mounts.iter().enumerate() {
        s += &format!("stage {} {i}\n", sh_quote(&m.source.display().to_string()));
    }
    let quoted = |p: &Path| sh_quote(&p.display().to_string());
    s += &format!("stage {} term\n", quoted(&dirs.termination_file));
    s += &format!("stage {} started\n", quoted(&dirs.started_file));
    s += "P2=$1\nshift\nexec chroot \"$R\" /bin/sh -c \"$P2\" sh \"$@\"\n";
    s
}

/// Second stage, run inside the new root: mounts volumes at their paths, then execs.
pub fn container_script(plan: &ContainerPlan, hostname: &str) -> String {
    let mut s = String::from("set -eu\n");
    s += &format!("M={STAGING}\n");
    s += r#"place() {
  if [ -d "$M/$1" ]; then mkdir -p "$2"; else mkdir -p "$3"; [ -e "$2" ] || : > "$2"; fi
  mount --move "$M/$1" "$2"
  if [ "$4" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
"#;
    let place = |name: &str, target: &str, ro: bool| {
        format!(
            "place {name} {} {} {}\n",
            sh_quote(target),
            sh_quote(parent(target)),
            if ro { "ro" } else { "rw" }
        )
    };
    for (i, m) in plan.mounts.iter().enumerate() {
        s += &place(&i.to_string(), &m.target, m.read_only);
    }
    s += &place("term", &plan.termination_path, false);
    s += &format!("echo {} > /proc/sys/kernel/hostname\n", sh_quote(hostname));
    let wd = sh_quote(&plan.working_dir);
    s += &format!("mkdir -p {wd}\ncd {wd}\n");
    // Tell the kubelet the command starts now; nothing of the staging area stays visible.
    s += "echo started > \"$M/started\"\numount \"$M/started\"\nrm -rf \"$M\"\n";
    s += "exec env -i \"$@\"\n";
    s
}

/// The full host command line:
/// `setpriv --pdeathsig KILL unshare … sh -c SETUP sh CONTAINER_SCRIPT NAME=VALUE… ARGV…`.
/// The parent-death signal kills the container if the kubelet process dies without
/// cleaning up; `--kill-child` then takes the whole PID namespace with it.
pub fn command_line(plan: &ContainerPlan, dirs: &ContainerDirs, hostname: &str) -> Vec<String> {
    let mut argv: Vec<String> = [
        "setpriv",
        "--pdeathsig",
        "KILL",
        "unshare",
        "--mount",
        "--uts",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(setup_script(plan, dirs));
    argv.push("sh".to_string());
    argv.push(container_script(plan, hostname));
    argv.extend(plan.env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend(plan.argv.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::plan::Mount;

    fn plan() -> ContainerPlan {
        ContainerPlan {
            name: "c".into(),
            image: "busybox".into(),
            argv: vec!["sh".into(), "-c".into(), "echo 'hi'".into()],
            env: vec![("A".into(), "x y".into())],
            working_dir: "/work dir".into(),
            mounts: vec![Mount {
                source: "/k/v".into(),
                target: "/data".into(),
                read_only: true,
            }],
            termination_path: "/dev/termination-log".into(),
            fallback_to_logs: false,
        }
    }

    #[test]
    fn quoting() {
        let cases = [
            ("a", "'a'"),
            ("a b", "'a b'"),
            ("it's", r"'it'\''s'"),
            ("", "''"),
        ];
        for (text, want) in cases {
            assert_eq!(sh_quote(text), want);
        }
    }

    #[test]
    fn parents() {
        let cases = [("/a", "/"), ("/a/b", "/a"), ("/a/b/", "/a"), ("/", "/")];
        for (path, want) in cases {
            assert_eq!(parent(path), want, "{path}");
        }
    }

    #[test]
    fn command_line_passes_env_and_argv_as_arguments() {
        let dirs = ContainerDirs {
            ns_dir: "/k/ns".into(),
            termination_file: "/k/term".into(),
            started_file: "/k/started".into(),
        };
        assert_eq!(
            ContainerDirs::new(Path::new("/k"), "init", "c").started_file,
            Path::new("/k/containers/init-c/started")
        );
        let argv = command_line(&plan(), &dirs, "p");
        assert_eq!(argv[..4], ["setpriv", "--pdeathsig", "KILL", "unshare"]);
        let tail: Vec<&str> = argv[argv.len() - 4..].iter().map(String::as_str).collect();
        assert_eq!(tail, ["A=x y", "sh", "-c", "echo 'hi'"]);
        let setup = &argv[13];
        assert!(setup.contains("T='/k/ns'"), "{setup}");
        assert!(setup.contains("stage '/k/v' 0"), "{setup}");
        assert!(setup.contains("stage '/k/term' term"), "{setup}");
        assert!(setup.contains("stage '/k/started' started"), "{setup}");
        let inner = &argv[15];
        assert!(inner.contains("place 0 '/data' '/' ro"), "{inner}");
        assert!(
            inner.contains("place term '/dev/termination-log' '/dev' rw"),
            "{inner}"
        );
        assert!(inner.contains("cd '/work dir'"), "{inner}");
    }
}
