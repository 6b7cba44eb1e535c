//! One runc container's life: `runc run` in the foreground (its stdio are the kubelet's
//! pipes, its exit status the container's), `runc kill` to stop it, `runc delete` and the
//! root's removal afterwards.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

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
}

impl RuncContainer {
    fn runc(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.state_root);
        c
    }

    /// `runc run --bundle B ID`, to be spawned with the kubelet's pipes.
    pub fn run_command(&self) -> Command {
        let mut c = self.runc();
        c.arg("run").arg("--bundle").arg(&self.bundle).arg(&self.id);
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
    }
}
