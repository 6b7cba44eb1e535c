//! Pod volumes: what each one contains (pure) and writing it under the Pod directory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod, Volume};

use super::env::{field_value, lookup_key, ObjectData, Objects};
use super::error::{Error, Result};

/// Default file mode of Secret, ConfigMap, projected and downward-API volumes (0644).
pub const DEFAULT_MODE: i32 = 0o644;

/// One file of a Secret/ConfigMap/projected/downward-API volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the volume root.
    pub path: String,
    /// File contents.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

/// What a volume holds on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeContent {
    /// An empty directory shared by the Pod's containers.
    EmptyDir,
    /// A host directory or file, bound as is.
    HostPath(String),
    /// Files rendered from Secrets, ConfigMaps or the downward API (mounted read-only).
    Files(Vec<FileEntry>),
    /// A bound PersistentVolumeClaim's volume directory, kept across Pods.
    Claim(PathBuf),
}

/// Computes the contents of one volume of a Pod.
pub fn volume_content(pod: &Pod, volume: &Volume, objects: &Objects) -> Result<VolumeContent> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if volume.empty_dir.is_some() {
        return Ok(VolumeContent::EmptyDir);
    }
    if let Some(host) = &volume.host_path {
        return Ok(VolumeContent::HostPath(host.path.clone()));
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        let dir = objects.claims.get(&claim.claim_name).ok_or_else(|| {
            Error::Config(format!(
                "persistentvolumeclaim \"{}\" not found",
                claim.claim_name
            ))
        })?;
        return Ok(VolumeContent::Claim(dir.clone()));
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let mode = s.default_mode.unwrap_or(DEFAULT_MODE);
        let source = Source::new("Secret", namespace, &name, &objects.secrets, s.optional);
        return Ok(VolumeContent::Files(
            source.files(s.items.as_deref(), mode)?,
        ));
    }
    if let Some(m) = &volume.config_map {
        let mode = m.default_mode.unwrap_or(DEFAULT_MODE);
        let source = Source::new(
            "ConfigMap",
            namespace,
            &m.name,
            &objects.config_maps,
            m.optional,
        );
        return Ok(VolumeContent::Files(
            source.files(m.items.as_deref(), mode)?,
        ));
    }
    if let Some(d) = &volume.downward_api {
        let mode = d.default_mode.unwrap_or(DEFAULT_MODE);
        return Ok(VolumeContent::Files(downward_files(
            pod,
            d.items.as_deref(),
            mode,
        )?));
    }
    if let Some(p) = &volume.projected {
        let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        let mut files = Vec::new();
        for source in p.sources.iter().flatten() {
            if let Some(s) = &source.secret {
                let src = Source::new("Secret", namespace, &s.name, &objects.secrets, s.optional);
                files.extend(src.files(s.items.as_deref(), mode)?);
            } else if let Some(m) = &source.config_map {
                let table = &objects.config_maps;
                let src = Source::new("ConfigMap", namespace, &m.name, table, m.optional);
                files.extend(src.files(m.items.as_deref(), mode)?);
            } else if let Some(d) = &source.downward_api {
                files.extend(downward_files(pod, d.items.as_deref(), mode)?);
            } else if let Some(t) = &source.service_account_token {
                let key = (volume.name.clone(), t.path.clone());
                let token = objects.tokens.get(&key).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "projected volume {}: no token requested for {}",
                        volume.name, t.path
                    ))
                })?;
                files.push(FileEntry {
                    path: t.path.clone(),
                    data: token.as_bytes().to_vec(),
                    mode: mode_bits(mode),
                });
            } else {
                return Err(Error::Unsupported(format!(
                    "projected volume {}: source kind",
                    volume.name
                )));
            }
        }
        return Ok(VolumeContent::Files(files));
    }
    Err(Error::Unsupported(format!(
        "volume {}: only emptyDir, hostPath, persistentVolumeClaim, secret, configMap, downwardAPI and projected",
        volume.name
    )))
}

/// Whether a volume is always mounted read-only (as the kubelet does for rendered files).
pub fn forced_read_only(volume: &Volume) -> bool {
    let claim_read_only = volume
        .persistent_volume_claim
        .as_ref()
        .is_some_and(|c| c.read_only == Some(true));
    claim_read_only
        || volume.secret.is_some()
        || volume.config_map.is_some()
        || volume.downward_api.is_some()
        || volume.projected.is_some()
}

fn mode_bits(mode: i32) -> u32 {
    u32::try_from(mode).unwrap_or(0o644) & 0o7777
}

/// A Secret or ConfigMap as a source of files.
struct Source<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    table: &'a BTreeMap<String, ObjectData>,
    optional: bool,
}

impl<'a> Source<'a> {
    fn new(
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
        table: &'a BTreeMap<String, ObjectData>,
        optional: Option<bool>,
    ) -> Self {
        Source {
            kind,
            namespace,
            name,
            table,
            optional: optional.unwrap_or(false),
        }
    }

    fn files(&self, items: Option<&[KeyToPath]>, default_mode: i32) -> Result<Vec<FileEntry>> {
        let Some(items) = items else {
            return match self.table.get(self.name) {
                Some(values) => values
                    .iter()
                    .map(|(k, v)| entry(k, v.clone(), default_mode))
                    .collect(),
                None if self.optional => Ok(Vec::new()),
                None => Err(Error::Config(format!(
                    "{} \"{}\" not found",
                    self.kind.to_ascii_lowercase(),
                    self.name
                ))),
            };
        };
        let mut files = Vec::new();
        for item in items {
            let (kind, ns, name) = (self.kind, self.namespace, self.name);
            if let Some(data) = lookup_key(self.table, kind, ns, name, &item.key, self.optional)? {
                files.push(entry(&item.path, data, item.mode.unwrap_or(default_mode))?);
            }
        }
        Ok(files)
    }
}

fn entry(path: &str, data: Vec<u8>, mode: i32) -> Result<FileEntry> {
    check_relative(path)?;
    Ok(FileEntry {
        path: path.to_string(),
        data,
        mode: mode_bits(mode),
    })
}

fn downward_files(
    pod: &Pod,
    items: Option<&[DownwardAPIVolumeFile]>,
    default_mode: i32,
) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for item in items.into_iter().flatten() {
        let Some(field) = &item.field_ref else {
            return Err(Error::Unsupported(format!(
                "downwardAPI item {}: only fieldRef",
                item.path
            )));
        };
        let value = field_value(pod, &field.field_path)?;
        let mode = item.mode.unwrap_or(default_mode);
        files.push(entry(&item.path, value.into_bytes(), mode)?);
    }
    Ok(files)
}

/// Rejects absolute paths and `..` components in volume item paths.
pub fn check_relative(path: &str) -> Result<()> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(Error::Config(format!("invalid volume item path {path:?}")));
    }
    Ok(())
}

/// Creates a volume under `dir` (the Pod's volume directory) and returns the host path to bind.
pub fn materialize(dir: &Path, name: &str, content: &VolumeContent) -> Result<PathBuf> {
    let root = dir.join(name);
    let io = |what: &str, path: &Path, e| Error::io(format!("{what} {}", path.display()), e);
    match content {
        VolumeContent::HostPath(path) => return Ok(PathBuf::from(path)),
        VolumeContent::Claim(dir) => return Ok(dir.clone()),
        VolumeContent::EmptyDir => {
            std::fs::create_dir_all(&root).map_err(|e| io("creating", &root, e))?;
            // An emptyDir is world-writable, as the kubelet makes it.
            let perms = std::fs::Permissions::from_mode(0o777);
            std::fs::set_permissions(&root, perms).map_err(|e| io("chmod", &root, e))?;
        }
        VolumeContent::Files(files) => {
            std::fs::create_dir_all(&root).map_err(|e| io("creating", &root, e))?;
            for file in files {
                let path = root.join(&file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
                }
                std::fs::write(&path, &file.data).map_err(|e| io("writing", &path, e))?;
                let perms = std::fs::Permissions::from_mode(file.mode);
                std::fs::set_permissions(&path, perms).map_err(|e| io("chmod", &path, e))?;
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
#[path = "volumes_tests.rs"]
mod tests;
