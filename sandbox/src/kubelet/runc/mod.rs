//! The runc runtime: Pods' images pulled and unpacked, each container run by runc from an OCI
//! runtime spec made the way containerd's CRI plugin makes it.

pub mod auth;
pub mod claim_ids;
pub mod image;
pub mod image_config;
pub mod process;
pub mod resources;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod unpack;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::{Container, Pod};

use self::auth::Credential;
use self::claim_ids::{ClaimHold, ClaimOwners};
use self::image::{ImageStore, PullError};
use self::process::RuncContainer;
use self::security::{effective, resolve_user, verify_non_root};
use self::spec::{oci_spec, seccomp_choice, IdRange, SeccompChoice, SpecInput};
use super::error::Error;
use super::plan::{ContainerPlan, HostVolume};
use super::runtime::prepare_dirs;
use super::script::ContainerDirs;

/// Ids per Pod user namespace (the kubelet's default).
pub const IDS_PER_POD: u32 = 65536;

/// How the runc runtime is set up.
#[derive(Debug, Clone)]
pub struct RuncConfig {
    /// The runc binary (default `runc` from `PATH`).
    pub binary: PathBuf,
    /// runc's state directory.
    pub state_root: PathBuf,
    /// Where images are unpacked and kept.
    pub image_dir: PathBuf,
    /// The root of `Localhost` seccomp profiles (the kubelet's `<root-dir>/seccomp`).
    pub seccomp_root: PathBuf,
    /// Registries spoken to over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
}

impl RuncConfig {
    /// Defaults under the kubelet's root directory.
    pub fn under(root: &Path) -> Self {
        RuncConfig {
            binary: PathBuf::from("runc"),
            state_root: root.join("runc"),
            image_dir: root.join("images"),
            seccomp_root: root.join("seccomp"),
            insecure_registries: Vec::new(),
        }
    }
}

/// Why a container cannot start (yet).
#[derive(Debug)]
pub enum NotReady {
    /// The image is not available: waiting with the error's reason, retried with back-off.
    Pull(PullError),
    /// `CreateContainerConfigError`, retried.
    Config(String),
    /// The container cannot run at all.
    Fatal(String),
    /// A volume it needs is busy: waiting with `ContainerCreating`, retried.
    Busy(String),
}

impl From<Error> for NotReady {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(m) => NotReady::Config(m),
            e => NotReady::Fatal(e.to_string()),
        }
    }
}

/// The runc runtime of one kubelet.
#[derive(Debug)]
pub struct RuncRuntime {
    config: RuncConfig,
    images: ImageStore,
    ranges: Mutex<HashMap<String, u32>>,
    claims: Arc<ClaimOwners>,
}

/// A container ready for `runc run`.
#[derive(Debug)]
pub struct Prepared {
    /// What runs (reported and used for the termination message).
    pub plan: ContainerPlan,
    /// The runc side.
    pub container: RuncContainer,
    /// The image's id for the container status.
    pub image_id: String,
}

/// What [`RuncRuntime::prepare`] needs to know about the container.
#[derive(Debug)]
pub struct Request<'a> {
    /// The Pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// Its resolved environment (`env`, `envFrom`).
    pub env: Vec<(String, String)>,
    /// The Pod's volumes on the host.
    pub volumes: &'a BTreeMap<String, HostVolume>,
    /// The container's host paths.
    pub dirs: &'a ContainerDirs,
    /// Credentials from the Pod's `imagePullSecrets` that match the image.
    pub credentials: Vec<Credential>,
    /// `init` or `app`.
    pub kind: &'a str,
}

/// The kubelet's way of naming a Pod in messages: `name_namespace(uid)`.
pub fn pod_label(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

impl RuncRuntime {
    /// A runtime with `config`.
    pub fn new(config: RuncConfig) -> Self {
        let images = ImageStore::new(&config.image_dir, config.insecure_registries.clone());
        RuncRuntime {
            config,
            images,
            ranges: Mutex::new(HashMap::new()),
            claims: Arc::new(ClaimOwners::default()),
        }
    }

    /// The Pod's user-namespace id range, allocated on first use: the lowest free block of
    /// [`IDS_PER_POD`] ids above the host's first block.
    pub fn id_range(&self, pod_uid: &str) -> IdRange {
        let mut ranges = self.ranges.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = match ranges.get(pod_uid) {
            Some(slot) => *slot,
            None => {
                let used: BTreeSet<u32> = ranges.values().copied().collect();
                let slot = (1..u32::MAX / IDS_PER_POD)
                    .find(|s| !used.contains(s))
                    .unwrap_or(1);
                ranges.insert(pod_uid.to_string(), slot);
                slot
            }
        };
        IdRange {
            host: slot * IDS_PER_POD,
            size: IDS_PER_POD,
        }
    }

    /// Frees a Pod's id range.
    pub fn release_pod(&self, pod_uid: &str) {
        self.ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pod_uid);
    }

    /// Pulls the image, plans the container, writes its root file system and bundle.
    pub async fn prepare(&self, req: Request<'_>) -> Result<Prepared, NotReady> {
        let image_name = req.container.image.clone().unwrap_or_default();
        let policy = req
            .container
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let image = self
            .images
            .ensure(&image_name, &policy, &req.credentials)
            .await
            .map_err(NotReady::Pull)?;
        let settings = effective(req.pod, req.container);
        if settings.user_namespace && settings.privileged {
            return Err(NotReady::Config(format!(
                "container {}: a privileged container cannot run in a user namespace (hostUsers: false)",
                req.container.name
            )));
        }
        let label = pod_label(req.pod);
        verify_non_root(&settings, image.config.user(), &label, &req.container.name)
            .map_err(NotReady::Config)?;
        let plan = spec::plan(req.pod, req.container, req.env, req.volumes, &image.config)?;
        let passwd = unpack::read_inside(&image.rootfs, "etc/passwd").unwrap_or_default();
        let group = unpack::read_inside(&image.rootfs, "etc/group").unwrap_or_default();
        let user = resolve_user(&settings, image.config.user(), &passwd, &group)
            .map_err(NotReady::Config)?;
        let profile = match seccomp_choice(&settings, &self.config.seccomp_root)? {
            SeccompChoice::Unconfined => None,
            SeccompChoice::RuntimeDefault => Some(seccomp::runtime_default()),
            SeccompChoice::Localhost(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    NotReady::Config(format!(
                        "cannot load seccomp profile {}: {e}",
                        path.display()
                    ))
                })?;
                Some(seccomp::parse(&text).map_err(|e| {
                    NotReady::Config(format!("seccomp profile {}: {e}", path.display()))
                })?)
            }
        };
        let uid = req.pod.metadata.uid.as_deref().unwrap_or("");
        let id_range = settings.user_namespace.then(|| self.id_range(uid));
        prepare_dirs(req.dirs)?;
        let host_root = id_range.map(|r| r.host);
        writable_by_container(&req.dirs.termination_file, host_root)?;
        for m in &plan.mounts {
            if !m.source.exists() {
                create_sub_path(&m.source, req.volumes)?;
            }
        }
        let claims = self
            .hold_claims(&plan, req.volumes, host_root.unwrap_or(0))
            .await?;
        let bundle = req.dirs.ns_dir.clone();
        let image_root = image.rootfs.clone();
        let root_dir = bundle.join("root");
        let root =
            tokio::task::spawn_blocking(move || rootfs::prepare(&image_root, &root_dir, host_root))
                .await
                .map_err(|e| NotReady::Fatal(format!("preparing the root file system: {e}")))??;
        let hostname = req.pod.metadata.name.clone().unwrap_or_default();
        let etc_files = write_etc_files(&bundle, &hostname)?;
        let id = format!("{uid}-{}-{}", req.kind, req.container.name);
        let resources = resources::linux_resources(req.container).map_err(NotReady::Config)?;
        let input = SpecInput {
            plan: &plan,
            settings: &settings,
            user: &user,
            rootfs: &root.rootfs,
            hostname: &hostname,
            termination_file: &req.dirs.termination_file,
            etc_files: &etc_files,
            started_file: &req.dirs.started_file,
            id_range,
            seccomp: profile.as_ref(),
            arch: std::env::consts::ARCH,
            cgroups_path: format!("/kiln-sandbox/{id}"),
            current_caps: &current_caps(),
            resources,
        };
        let config = oci_spec(&input);
        let text = serde_json::to_vec_pretty(&config)
            .map_err(|e| NotReady::Fatal(format!("writing the runtime spec: {e}")))?;
        let path = bundle.join("config.json");
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        let container = RuncContainer {
            binary: self.config.binary.clone(),
            state_root: self.config.state_root.clone(),
            id,
            bundle,
            root,
            claims,
        };
        // A container of the same id left by an earlier run is removed first.
        container.clear_stale().await;
        Ok(Prepared {
            plan,
            container,
            image_id: image.image_id,
        })
    }
}

impl RuncRuntime {
    /// Takes the claim volumes the container mounts for its id range (`base`: its root's host
    /// id), their owners shifted into it (see [`claim_ids`]).
    async fn hold_claims(
        &self,
        plan: &ContainerPlan,
        volumes: &BTreeMap<String, HostVolume>,
        base: u32,
    ) -> Result<Vec<Arc<ClaimHold>>, NotReady> {
        let used: BTreeSet<PathBuf> = volumes
            .values()
            .filter(|v| v.persistent)
            .filter(|v| plan.mounts.iter().any(|m| m.source.starts_with(&v.path)))
            .map(|v| v.path.clone())
            .collect();
        let mut holds = Vec::new();
        for path in used {
            let owners = self.claims.clone();
            let hold = tokio::task::spawn_blocking(move || owners.hold(&path, base))
                .await
                .map_err(|e| NotReady::Fatal(format!("holding a claim volume: {e}")))?
                .map_err(NotReady::Busy)?;
            holds.push(Arc::new(hold));
        }
        Ok(holds)
    }
}

/// Creates a missing `subPath` in its volume with the volume's own permissions, as the
/// kubelet does (so a subPath of an emptyDir is as writable as the emptyDir).
fn create_sub_path(path: &Path, volumes: &BTreeMap<String, HostVolume>) -> Result<(), Error> {
    let volume = volumes.values().find(|v| path.starts_with(&v.path));
    let mode = volume
        .and_then(|v| std::fs::metadata(&v.path).ok())
        .map_or(0o755, |m| m.permissions().mode() & 0o7777);
    let mut at = volume.map_or_else(PathBuf::new, |v| v.path.clone());
    let rest = path.strip_prefix(&at).unwrap_or(path).to_path_buf();
    for part in rest.components() {
        at.push(part);
        if !at.exists() {
            std::fs::create_dir(&at)
                .map_err(|e| Error::io(format!("creating {}", at.display()), e))?;
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(format!("chmod {}", at.display()), e))?;
        }
    }
    Ok(())
}

/// The kubelet's own bounding set (`/proc/self/status`), all capabilities if unreadable.
fn current_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = security::bounding_mask(&status).unwrap_or(u64::MAX);
    security::caps_from_mask(mask)
}

/// The termination-message file must be writable by any container user (the kubelet makes
/// it 0666) and, in a user namespace, owned by the container's root.
fn writable_by_container(file: &Path, host_root: Option<u32>) -> Result<(), Error> {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| Error::io(format!("chmod {}", file.display()), e))?;
    if let Some(id) = host_root {
        std::os::unix::fs::chown(file, Some(id), Some(id))
            .map_err(|e| Error::io(format!("chown {}", file.display()), e))?;
    }
    Ok(())
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the container, as the kubelet
/// and containerd write them for a Pod on the host network.
fn write_etc_files(dir: &Path, hostname: &str) -> Result<Vec<(PathBuf, String)>, Error> {
    let hosts = format!(
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n"
    );
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("etc-hosts", hosts, "/etc/hosts"),
        ("etc-hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("etc-resolv.conf", resolv, "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, text, target) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
        out.push((path, target.to_string()));
    }
    Ok(out)
}
