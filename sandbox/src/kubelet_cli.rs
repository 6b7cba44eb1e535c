//! `kiln-sandbox serve --kubelet`: flags and start-up of the local kubelet.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use kiln_sandbox::kubelet::config::parse_image_mapping;
use kiln_sandbox::kubelet::runc::{RuncConfig, RuncRuntime};
use kiln_sandbox::kubelet::{
    ImageMapping, InstantMode, Kubelet, KubeletConfig, KubeletHandle, Runtime,
};
use kiln_sandbox::{serve, ApiServer};

/// The `User-Agent` of the kubelet's requests (`GET /sandbox/metrics` counts them apart).
pub const KUBELET_AGENT: &str = "kiln-sandbox-kubelet";

/// Flags of the local kubelet.
#[derive(Args, Debug)]
pub struct KubeletArgs {
    /// Also run the local kubelet: Pods run as host processes in private mount namespaces.
    #[arg(long)]
    kubelet: bool,
    /// Directory for Pod volumes and mount points (default: a new temporary directory,
    /// removed on SIGTERM/SIGINT).
    #[arg(long, requires = "kubelet")]
    kubelet_root: Option<PathBuf>,
    /// The kubelet's node name (it runs Pods bound to it and unbound Pods).
    #[arg(long, default_value = "sandbox-node", requires = "kubelet")]
    node_name: String,
    /// Run IMAGE's entrypoint as this host binary: IMAGE=HOSTPATH (repeatable).
    #[arg(long = "image-map", value_parser = image_mapping, requires = "kubelet")]
    image_map: Vec<ImageMapping>,
    /// Instant mode: complete every Pod at once with this termination message (the
    /// `sandbox.kiln.dev/termination-message` annotation overrides it), running nothing.
    /// `{{uid-digest}}` in the message becomes `sha256:<64 hex>` derived from the Pod's uid.
    #[arg(long, requires = "kubelet")]
    instant: Option<String>,
    /// The container runtime: `host` (host processes, images not pulled) or `runc` (images
    /// pulled from their registries and run by runc).
    #[arg(long, value_enum, default_value = "host", requires = "kubelet")]
    runtime: RuntimeKind,
    /// A registry the runc runtime pulls from over plain HTTP (loopback ones always are);
    /// repeatable.
    #[arg(long = "insecure-registry", requires = "kubelet")]
    insecure_registries: Vec<String>,
    /// The directory of `Localhost` seccomp profiles (default: `<kubelet-root>/seccomp`).
    #[arg(long, requires = "kubelet")]
    seccomp_root: Option<PathBuf>,
}

/// `--runtime`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RuntimeKind {
    /// Host processes in private namespaces.
    Host,
    /// runc.
    Runc,
}

fn image_mapping(text: &str) -> Result<ImageMapping, String> {
    parse_image_mapping(text).map_err(|e| e.to_string())
}

/// A running kubelet and the root directory it owns.
pub struct Running {
    handle: KubeletHandle,
    owned_root: Option<PathBuf>,
}

impl Running {
    /// Stops the kubelet and removes a temporary root directory.
    pub async fn stop(self) {
        self.handle.stop().await;
        if let Some(root) = self.owned_root {
            if let Err(e) = std::fs::remove_dir_all(&root) {
                tracing::warn!(root = %root.display(), error = %e, "removing kubelet root");
            }
        }
    }
}

/// Starts the kubelet when `--kubelet` was given (in-process client, logs into the server).
pub fn start(args: &KubeletArgs, server: &ApiServer) -> Result<Option<Running>, serve::ServeError> {
    if !args.kubelet {
        return Ok(None);
    }
    let (root, owned_root) = match &args.kubelet_root {
        Some(root) => (root.clone(), None),
        None => {
            let root =
                std::env::temp_dir().join(format!("kiln-sandbox-kubelet-{}", std::process::id()));
            (root.clone(), Some(root))
        }
    };
    std::fs::create_dir_all(&root).map_err(|source| serve::ServeError::Io {
        context: format!("creating {}", root.display()),
        source,
    })?;
    let mut config = KubeletConfig::new(&root);
    config.node_name = args.node_name.clone();
    for row in &args.image_map {
        config.image_map.prepend(row.clone());
    }
    if args.runtime == RuntimeKind::Runc {
        if let Some(closed) = untraversable_ancestor(&root) {
            return Err(serve::ServeError::Manifest {
                path: root.clone(),
                message: format!(
                    "{} cannot be searched by other users, so a user-namespaced container \
                     (hostUsers: false) cannot reach its root file system under the kubelet \
                     root; run `chmod o+x {}` or choose another --kubelet-root",
                    closed.display(),
                    closed.display()
                ),
            });
        }
        let mut runc = RuncConfig::under(&root);
        runc.insecure_registries = args.insecure_registries.clone();
        if let Some(dir) = &args.seccomp_root {
            runc.seccomp_root = dir.clone();
        }
        config.runtime = Runtime::Runc(Arc::new(RuncRuntime::new(runc)));
    }
    config.instant = args
        .instant
        .clone()
        .map(|default_message| InstantMode { default_message });
    let handle = Kubelet::new(server.client_as(KUBELET_AGENT), config)
        .with_logs(Arc::new(server.logs()))
        .with_stdin(server.stdin())
        .run();
    Ok(Some(Running { handle, owned_root }))
}

/// The first directory on the way to `root` (itself included) that other users may not search
/// (no `o+x`): a user-namespaced container's root, an unmapped id on the host, must pass through.
fn untraversable_ancestor(root: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let root = std::fs::canonicalize(root).ok()?;
    root.ancestors()
        .filter(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 == 0))
        .last()
        .map(std::path::Path::to_path_buf)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::untraversable_ancestor;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_closed_directory_on_the_way_to_the_kubelet_root_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        let root = closed.join("kubelet");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(untraversable_ancestor(&root), None);
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            untraversable_ancestor(&root),
            Some(std::fs::canonicalize(&closed).unwrap())
        );
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(untraversable_ancestor(&root), None);
    }
}
