//! One runc container's life: `runc run` in the foreground (its stdio are the kubelet's
//! pipes, its exit status the container's), `runc kill` to stop it, `runc delete` and the
//! root's removal afterwards.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::process::Command;

use super::claim_ids::ClaimHold;
use super::rootfs::{release, ContainerRoot};

/// A container prepared for runc.
#[derive(Debug, Clone)]
pub struct RuncContainer {
    /// The runc binary.
    pub binary: PathBuf,
    /// runc's state directory (`runc --root`).
    pub state_root: PathBuf,
    /// The container id.
    pub id: String,
    /// The bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// The container's root file system.
    pub root: ContainerRoot,
    /// The claim volumes it uses, released when it is deleted.
    pub claims: Vec<Arc<ClaimHold>>,
}

impl RuncContainer {
    fn runc(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.state_root);
        c
    }

    /// `runc run --keep --bundle B ID`, to be spawned with the kubelet's pipes (`--keep`: the
    /// cgroup stays until `runc delete`, so an OOM kill can still be read from it).
    pub fn run_command(&self) -> Command {
        let mut c = self.runc();
        c.arg("run")
            .arg("--keep")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.id);
        c
    }

    /// Sends `signal` (`TERM`, `KILL`) to the container's init process.
    pub async fn kill(&self, signal: &str) {
        let status = self
            .runc()
            .args(["kill", &self.id, signal])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if let Err(e) = status {
            tracing::warn!(id = %self.id, signal, error = %e, "runc kill");
        }
    }

    /// Removes a container of this id an earlier kubelet left in runc's state.
    pub async fn clear_stale(&self) {
        let _ = self
            .runc()
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }

    /// Whether the kernel's OOM killer killed a process of the container (read from its memory
    /// cgroup, cgroup v2 or v1, before `runc delete` removes it).
    pub fn oom_killed(&self) -> bool {
        let name = format!("kiln-sandbox/{}", self.id);
        let files = [
            format!("/sys/fs/cgroup/{name}/memory.events"),
            format!("/sys/fs/cgroup/memory/{name}/memory.oom_control"),
        ];
        files.iter().any(|path| {
            std::fs::read_to_string(path).is_ok_and(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
            })
        })
    }

    /// Removes runc's state of the container (stopping it if needed) and its root.
    pub async fn delete(&self) {
        let status = self
            .runc()
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if let Err(e) = status {
            tracing::warn!(id = %self.id, error = %e, "runc delete");
        }
        let root = self.root.clone();
        let _ = tokio::task::spawn_blocking(move || release(&root)).await;
        for hold in &self.claims {
            hold.release();
        }
    }
}
