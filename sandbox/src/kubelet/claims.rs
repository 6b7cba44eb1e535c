//! PersistentVolumeClaims, provisioned the way a local-path provisioner does on a one-node
//! cluster: a claim is bound when a Pod first uses it (`WaitForFirstConsumer`), its volume is a
//! directory under the kubelet's root, `<root>/claims/<namespace>/<name>-<claim uid>`, kept
//! across Pods, and removed when the claim is deleted.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::json;

use super::error::{Error, Result};

/// The directory holding every claim's volume, under the kubelet's root.
pub fn claims_root(kubelet_root: &Path) -> PathBuf {
    kubelet_root.join("claims")
}

/// The volume directory of claim `name` (uid `uid`) in `namespace`: a claim deleted and created
/// again under the same name gets a new, empty one.
pub fn claim_dir(root: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    root.join(namespace).join(format!("{name}-{uid}"))
}

/// Binds claim `name` of `namespace` for a Pod about to use it and returns its volume directory
/// (created world-writable, as a local-path volume is, on first use). A missing claim or one being
/// deleted is a configuration error the Pod waits on.
pub async fn bind(client: &Client, root: &Path, namespace: &str, name: &str) -> Result<PathBuf> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim = api
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::Config(format!("persistentvolumeclaim \"{name}\" not found")))?;
    if claim.metadata.deletion_timestamp.is_some() {
        return Err(Error::Config(format!(
            "persistentvolumeclaim \"{name}\" is being deleted"
        )));
    }
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let dir = claim_dir(root, namespace, name, &uid);
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| Error::io(format!("chmod {}", dir.display()), e))?;
    }
    let status = claim.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Bound") {
        let spec = claim.spec.clone().unwrap_or_default();
        let capacity = spec.resources.and_then(|r| r.requests).unwrap_or_default();
        let patch = json!({"status": {
            "phase": "Bound",
            "accessModes": spec.access_modes.unwrap_or_default(),
            "capacity": capacity,
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(dir)
}

/// Removes the volume directories of claims that no longer exist, as the provisioner deletes a
/// released volume (`live`: `(namespace, "<name>-<uid>")` of every claim).
pub fn remove_released(root: &Path, live: &BTreeSet<(String, String)>) {
    let Ok(namespaces) = std::fs::read_dir(root) else {
        return;
    };
    for namespace in namespaces.flatten() {
        let ns = namespace.file_name().to_string_lossy().into_owned();
        let Ok(dirs) = std::fs::read_dir(namespace.path()) else {
            continue;
        };
        for dir in dirs.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if !live.contains(&(ns.clone(), name)) {
                remove(&dir.path());
            }
        }
    }
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %dir.display(), error = %e, "removing a released claim's volume");
        }
    }
}

fn key(claim: &PersistentVolumeClaim) -> Option<(String, String)> {
    let namespace = claim.metadata.namespace.clone()?;
    let name = claim.metadata.name.as_deref()?;
    let uid = claim.metadata.uid.as_deref()?;
    Some((namespace, format!("{name}-{uid}")))
}

/// Follows claims and removes each deleted claim's volume directory (after a relist, every
/// directory whose claim is gone).
pub async fn provisioner(client: Client, root: PathBuf) {
    let api: Api<PersistentVolumeClaim> = Api::all(client);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed = BTreeSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(claim)) => listed.extend(key(&claim)),
            Ok(Event::InitDone) => remove_released(&root, &listed),
            Ok(Event::Apply(_)) => {}
            Ok(Event::Delete(claim)) => {
                if let Some((namespace, dir)) = key(&claim) {
                    remove(&root.join(namespace).join(dir));
                }
            }
            Err(e) => tracing::debug!(error = %e, "claim watch"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_claims_lose_their_directories_and_live_ones_keep_them() {
        let root = tempfile::tempdir().unwrap();
        let kept = claim_dir(root.path(), "team-a", "app-build-storage", "u1");
        let gone = claim_dir(root.path(), "team-a", "old-build-storage", "u2");
        let recreated = claim_dir(root.path(), "team-b", "app-build-storage", "u3");
        for dir in [&kept, &gone, &recreated] {
            std::fs::create_dir_all(dir.join("overlay")).unwrap();
        }
        let live = BTreeSet::from([
            ("team-a".to_string(), "app-build-storage-u1".to_string()),
            ("team-b".to_string(), "app-build-storage-u4".to_string()),
        ]);
        remove_released(root.path(), &live);
        assert!(kept.join("overlay").is_dir());
        assert!(!gone.exists());
        assert!(!recreated.exists(), "a claim of that name with another uid");
    }
}
