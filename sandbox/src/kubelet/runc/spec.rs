//! Pod container + image configuration → the OCI runtime spec runc runs (pure), the way
//! containerd's CRI plugin builds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::image_config::ImageConfig;
use super::seccomp::{self, Profile};
use super::security::{capabilities, Effective, User};
use crate::kubelet::env::expand;
use crate::kubelet::error::{Error, Result};
use crate::kubelet::plan::{
    termination_path, volume_mounts, ContainerPlan, HostVolume, DEFAULT_PATH,
};

/// `/proc` and `/sys` paths containerd masks in unprivileged containers.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// `/proc` paths containerd makes read-only in unprivileged containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Plans a container from its image: `command`/`args` over the image's `Entrypoint`/`Cmd`
/// (`$(VAR)`-expanded with the container's environment), the image's `Env` under the
/// container's, `PATH` and `HOSTNAME` added when missing, `workingDir` over `WorkingDir`.
pub fn plan(
    pod: &Pod,
    container: &Container,
    env: Vec<(String, String)>,
    volumes: &BTreeMap<String, HostVolume>,
    image: &ImageConfig,
) -> Result<ContainerPlan> {
    let expanded =
        |list: &[String]| -> Vec<String> { list.iter().map(|a| expand(a, &env)).collect() };
    let command = container.command.as_deref().filter(|c| !c.is_empty());
    let args = container.args.as_deref().filter(|a| !a.is_empty());
    let argv: Vec<String> = match (command, args) {
        (Some(command), args) => {
            let mut argv = expanded(command);
            argv.extend(expanded(args.unwrap_or(&[])));
            argv
        }
        (None, Some(args)) => {
            let mut argv = image.entrypoint.clone().unwrap_or_default();
            argv.extend(expanded(args));
            argv
        }
        (None, None) => {
            let mut argv = image.entrypoint.clone().unwrap_or_default();
            argv.extend(image.cmd.clone().unwrap_or_default());
            argv
        }
    };
    if argv.is_empty() {
        return Err(Error::Config(format!(
            "container {}: no command specified",
            container.name
        )));
    }
    let mut merged: Vec<(String, String)> = image.env_pairs();
    for (k, v) in &env {
        match merged.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.clone(),
            None => merged.push((k.clone(), v.clone())),
        }
    }
    if !merged.iter().any(|(k, _)| k == "PATH") {
        merged.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if !merged.iter().any(|(k, _)| k == "HOSTNAME") {
        let hostname = pod.metadata.name.clone().unwrap_or_default();
        merged.insert(0, ("HOSTNAME".into(), hostname));
    }
    let mounts = volume_mounts(container, &env, volumes)?;
    let working_dir = container
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    Ok(ContainerPlan {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        argv,
        env: merged,
        working_dir,
        mounts,
        termination_path: termination_path(container),
        fallback_to_logs: container.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
    })
}

/// Which seccomp profile a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No filter (`Unconfined`, unset, or privileged).
    Unconfined,
    /// containerd's default profile.
    RuntimeDefault,
    /// A profile file under the kubelet's seccomp root.
    Localhost(PathBuf),
}

/// The seccomp profile of a container: privileged containers and an unset profile run
/// unconfined (the kubelet's default without `SeccompDefault`).
pub fn seccomp_choice(settings: &Effective, seccomp_root: &Path) -> Result<SeccompChoice> {
    if settings.privileged {
        return Ok(SeccompChoice::Unconfined);
    }
    let Some(profile) = &settings.seccomp else {
        return Ok(SeccompChoice::Unconfined);
    };
    match profile.type_.as_str() {
        "Unconfined" => Ok(SeccompChoice::Unconfined),
        "RuntimeDefault" => Ok(SeccompChoice::RuntimeDefault),
        "Localhost" => {
            let rel = profile.localhost_profile.as_deref().unwrap_or("");
            if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
                return Err(Error::Config(format!(
                    "seccompProfile.localhostProfile {rel:?} must be a relative path inside the seccomp root"
                )));
            }
            Ok(SeccompChoice::Localhost(seccomp_root.join(rel)))
        }
        other => Err(Error::Config(format!(
            "seccompProfile.type {other:?} is not RuntimeDefault, Localhost or Unconfined"
        ))),
    }
}

/// A user namespace's id range: container ids `0..size` are host ids `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First host id.
    pub host: u32,
    /// Number of ids.
    pub size: u32,
}

/// Everything the spec is made from besides the plan.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The planned container.
    pub plan: &'a ContainerPlan,
    /// Its security settings.
    pub settings: &'a Effective,
    /// The resolved process user.
    pub user: &'a User,
    /// The container's root file system on the host.
    pub rootfs: &'a Path,
    /// The Pod name (the hostname).
    pub hostname: &'a str,
    /// Host file bound at `terminationMessagePath`.
    pub termination_file: &'a Path,
    /// Host files bound at `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub etc_files: &'a [(PathBuf, String)],
    /// Host file the post-start hook writes when the process runs.
    pub started_file: &'a Path,
    /// The user namespace's id range (`hostUsers: false`).
    pub id_range: Option<IdRange>,
    /// The seccomp profile, `None` for unconfined.
    pub seccomp: Option<&'a Profile>,
    /// The native architecture (`std::env::consts::ARCH`).
    pub arch: &'a str,
    /// The cgroup path runc creates.
    pub cgroups_path: String,
    /// The runtime's own capabilities (what privileged containers get).
    pub current_caps: &'a [String],
    /// `memory` and `cpu` of `linux.resources` (from the container's `resources`).
    pub resources: serde_json::Map<String, Value>,
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": kind, "source": source, "options": options})
}

fn bind(destination: &str, source: &Path, read_only: bool) -> Value {
    let mut options = vec!["rbind", "rprivate"];
    if read_only {
        options.push("ro");
    }
    json!({
        "destination": destination,
        "type": "bind",
        "source": source.display().to_string(),
        "options": options,
    })
}

/// The OCI runtime spec (`config.json`) of a container.
pub fn oci_spec(input: &SpecInput<'_>) -> Value {
    let s = input.settings;
    let caps = capabilities(s.privileged, s.capabilities.as_ref(), input.current_caps);
    let ro = if s.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ];
    if input.id_range.is_some() {
        // Without a network namespace of its own, a user namespace may not mount sysfs:
        // the host's is bound instead.
        mounts.push(bind("/sys", Path::new("/sys"), true));
    } else {
        mounts.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", ro],
        ));
        mounts.push(mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", ro],
        ));
    }
    for (file, target) in input.etc_files {
        mounts.push(bind(target, file, false));
    }
    for m in &input.plan.mounts {
        mounts.push(bind(&m.target, &m.source, m.read_only));
    }
    mounts.push(bind(
        &input.plan.termination_path,
        input.termination_file,
        false,
    ));
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut resources = input.resources.clone();
    resources.insert(
        "devices".into(),
        json!([{"allow": s.privileged, "access": "rwm"}]),
    );
    let mut linux = json!({
        "cgroupsPath": input.cgroups_path,
        "resources": resources,
    });
    if let Some(range) = input.id_range {
        namespaces.push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": range.host, "size": range.size}]);
        linux["uidMappings"] = map.clone();
        linux["gidMappings"] = map;
    }
    linux["namespaces"] = Value::Array(namespaces);
    if !s.privileged && !s.unmasked_proc {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(profile) = input.seccomp {
        linux["seccomp"] = seccomp::to_oci(profile, &caps, input.arch);
    }
    let env: Vec<String> = input
        .plan
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let started = format!(
        "echo started > '{}'",
        input
            .started_file
            .display()
            .to_string()
            .replace('\'', r"'\''")
    );
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {
                "uid": input.user.uid,
                "gid": input.user.gid,
                "additionalGids": input.user.additional_gids,
            },
            "args": input.plan.argv,
            "env": env,
            "cwd": input.plan.working_dir,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": s.no_new_privileges,
        },
        "root": {"path": input.rootfs.display().to_string(), "readonly": s.read_only_root},
        "hostname": input.hostname,
        "mounts": mounts,
        "hooks": {
            "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", started]}],
        },
        "linux": linux,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
