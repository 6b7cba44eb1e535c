//! Pod container → what to execute on the host (pure).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::config::ImageMap;
use super::env::expand;
use super::error::{Error, Result};
use super::volumes::check_relative;

/// `PATH` given to containers whose environment has none (the usual image default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the termination message is written unless the container says otherwise.
pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// A bind mount from the host into the container's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host path (a volume directory, a file in it, or a hostPath).
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    /// Remounted read-only.
    pub read_only: bool,
}

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    /// Container name.
    pub name: String,
    /// Image reference (reported in status; never pulled).
    pub image: String,
    /// Command and arguments, `$(VAR)` expanded.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the container.
    pub working_dir: String,
    /// Volume mounts, parents before children.
    pub mounts: Vec<Mount>,
    /// Where the container may write its termination message.
    pub termination_path: String,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

/// A volume ready on the host: its path and whether it must be mounted read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    /// Host path of the volume.
    pub path: PathBuf,
    /// Secret/ConfigMap/projected/downward-API volumes are always read-only.
    pub forced_read_only: bool,
    /// A PersistentVolumeClaim's volume, shared with other Pods and kept after this one.
    pub persistent: bool,
}

/// The command line of a container: the Pod's `command`, or the image's host entrypoint
/// from the image map, followed by `args`; both `$(VAR)`-expanded.
pub fn argv(
    container: &Container,
    env: &[(String, String)],
    images: &ImageMap,
) -> Result<Vec<String>> {
    let image = container.image.as_deref().unwrap_or("");
    let mapped = images.lookup(image);
    let mut argv: Vec<String> = match container.command.as_deref() {
        Some(command) if !command.is_empty() => command.iter().map(|c| expand(c, env)).collect(),
        _ => match mapped {
            Some(entry) => vec![entry.to_string()],
            None => {
                return Err(Error::Unsupported(format!(
                "container {}: no command, and image {image:?} has no entrypoint in the image map",
                container.name
            )))
            }
        },
    };
    // A mapped image replaces a command naming the same program (e.g. `kiln` → the host build).
    if let (Some(entry), Some(first)) = (mapped, argv.first_mut()) {
        if basename(first) == basename(entry) {
            *first = entry.to_string();
        }
    }
    argv.extend(container.args.iter().flatten().map(|a| expand(a, env)));
    if argv[0].contains('=') {
        return Err(Error::Unsupported(format!(
            "container {}: a command containing '=' ({:?})",
            container.name, argv[0]
        )));
    }
    Ok(argv)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Adds what a container runtime adds when the container does not set it: `PATH`, `HOSTNAME`
/// and `HOME` (`/root`: containers run as root), in front of the container's own variables.
pub fn runtime_env(env: Vec<(String, String)>, hostname: &str) -> Vec<(String, String)> {
    let defaults = [
        ("PATH", DEFAULT_PATH),
        ("HOSTNAME", hostname),
        ("HOME", "/root"),
    ];
    let mut out: Vec<(String, String)> = defaults
        .iter()
        .filter(|(name, _)| !env.iter().any(|(k, _)| k == name))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend(env);
    out
}

/// Plans one container of a Pod, given its resolved environment and the Pod's volumes.
pub fn container_plan(
    pod: &Pod,
    container: &Container,
    env: Vec<(String, String)>,
    volumes: &BTreeMap<String, HostVolume>,
    images: &ImageMap,
) -> Result<ContainerPlan> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("pod");
    let env = runtime_env(env, pod_name);
    let argv = argv(container, &env, images)?;
    let mounts = volume_mounts(container, &env, volumes)?;
    Ok(ContainerPlan {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        argv,
        env,
        working_dir: container
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string()),
        mounts,
        termination_path: termination_path(container),
        fallback_to_logs: container.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
    })
}

/// The container's volume mounts on the host's volume directories (`subPath`s joined),
/// parents before children.
pub fn volume_mounts(
    container: &Container,
    env: &[(String, String)],
    volumes: &BTreeMap<String, HostVolume>,
) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let volume = volumes.get(&m.name).ok_or_else(|| {
            Error::Config(format!("volume mount {}: no volume of that name", m.name))
        })?;
        if !m.mount_path.starts_with('/') {
            return Err(Error::Config(format!(
                "volume mount {}: mountPath {:?} is not absolute",
                m.name, m.mount_path
            )));
        }
        let sub_path = m
            .sub_path_expr
            .as_deref()
            .map(|e| expand(e, env))
            .or_else(|| m.sub_path.clone())
            .filter(|s| !s.is_empty());
        let source = match sub_path {
            Some(sub) => {
                check_relative(&sub)?;
                volume.path.join(sub)
            }
            None => volume.path.clone(),
        };
        mounts.push(Mount {
            source,
            target: m.mount_path.clone(),
            read_only: volume.forced_read_only || m.read_only.unwrap_or(false),
        });
    }
    mounts.sort_by_key(|m| m.target.split('/').filter(|c| !c.is_empty()).count());
    Ok(mounts)
}

/// `terminationMessagePath`, or the default when unset or not absolute.
pub fn termination_path(container: &Container) -> String {
    container
        .termination_message_path
        .clone()
        .filter(|p| p.starts_with('/'))
        .unwrap_or_else(|| DEFAULT_TERMINATION_PATH.to_string())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
