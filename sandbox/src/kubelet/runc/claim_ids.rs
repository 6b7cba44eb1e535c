//! PersistentVolumeClaim volumes in user-namespaced containers. A node mounts such a volume
//! id-mapped, so files keep the container's ids on disk whatever host range the Pod got, and a
//! later Pod of another range reads them as its own. This runtime (runc 1.1, no id-mapped
//! mounts) shifts the owners instead: before a container uses the volume, every owner in the
//! range the volume was last used in is moved into the container's range (the volume's root
//! directory's owner tells which: its block of [`IDS_PER_POD`] ids; host ids for a new volume).
//! Containers of one range share a volume; a container of another range waits until they end.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::IDS_PER_POD;

/// The claim volumes in use, by host path: the range their owners are in and how many running
/// containers use them.
#[derive(Debug, Default)]
pub struct ClaimOwners {
    uses: Arc<Mutex<HashMap<PathBuf, Use>>>,
}

#[derive(Debug)]
struct Use {
    base: u32,
    holders: usize,
}

/// One container's use of a claim volume, released when the container is deleted (or dropped).
#[derive(Debug)]
pub struct ClaimHold {
    uses: Arc<Mutex<HashMap<PathBuf, Use>>>,
    path: PathBuf,
    released: AtomicBool,
}

impl ClaimHold {
    /// Ends this use (once).
    pub fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut uses = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = uses.get_mut(&self.path) {
            entry.holders = entry.holders.saturating_sub(1);
            if entry.holders == 0 {
                uses.remove(&self.path);
            }
        }
    }
}

impl Drop for ClaimHold {
    fn drop(&mut self) {
        self.release();
    }
}

/// The first id of the range `path`'s owner is in (0: host ids).
pub fn range_of(path: &Path) -> std::io::Result<u32> {
    let uid = std::fs::symlink_metadata(path)?.uid();
    Ok(uid / IDS_PER_POD * IDS_PER_POD)
}

impl ClaimOwners {
    /// Takes `volume` for a container whose root is host id `base` (0 without a user namespace),
    /// shifting its owners into that range first when they are in another. Blocking (it walks the
    /// volume). `Err` with a message when containers of another range use it now.
    pub fn hold(&self, volume: &Path, base: u32) -> Result<ClaimHold, String> {
        let mut uses = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = uses.get(volume).filter(|e| e.holders > 0) {
            if entry.base != base {
                return Err(format!(
                    "volume {} is in use by a container of another user-namespace id range",
                    volume.display()
                ));
            }
        } else {
            let from = range_of(volume).map_err(|e| format!("{}: {e}", volume.display()))?;
            if from != base {
                shift_tree(volume, from, base)
                    .map_err(|e| format!("shifting the owners of {}: {e}", volume.display()))?;
            }
        }
        let entry = uses
            .entry(volume.to_path_buf())
            .or_insert(Use { base, holders: 0 });
        entry.base = base;
        entry.holders += 1;
        Ok(ClaimHold {
            uses: self.uses.clone(),
            path: volume.to_path_buf(),
            released: AtomicBool::new(false),
        })
    }
}

/// Moves every owner and group of `root`'s tree in `[from, from + IDS_PER_POD)` to the same
/// offset from `to`, never following a link; ids outside that range are left alone, so a hard
/// link met twice and a walk interrupted and run again end the same. The root goes last (its
/// owner records the range). setuid and setgid bits, which a chown clears, are set again.
pub fn shift_tree(root: &Path, from: u32, to: u32) -> std::io::Result<()> {
    let map = |id: u32| {
        (from..from + IDS_PER_POD)
            .contains(&id)
            .then(|| id - from + to)
    };
    let mut stack = vec![root.to_path_buf()];
    let mut dirs_done = Vec::new();
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
            dirs_done.push(path);
            continue;
        }
        shift_one(&path, &meta, &map)?;
    }
    // Directories after their contents, deepest first, the root last.
    for dir in dirs_done.iter().rev() {
        let meta = std::fs::symlink_metadata(dir)?;
        shift_one(dir, &meta, &map)?;
    }
    Ok(())
}

fn shift_one(
    path: &Path,
    meta: &std::fs::Metadata,
    map: &impl Fn(u32) -> Option<u32>,
) -> std::io::Result<()> {
    let (uid, gid) = (map(meta.uid()), map(meta.gid()));
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, uid, gid)?;
    let mode = meta.mode() & 0o7777;
    if !meta.file_type().is_symlink() && mode & 0o6000 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};

    fn owner(path: &Path) -> (u32, u32) {
        let m = std::fs::symlink_metadata(path).unwrap();
        (m.uid(), m.gid())
    }

    /// Runs as root (chown to any id), as the kubelet does.
    #[test]
    fn owners_move_between_ranges_and_the_volume_is_held_by_one_range_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("claim");
        std::fs::create_dir_all(volume.join("overlay/l")).unwrap();
        std::fs::write(volume.join("overlay/file"), "x").unwrap();
        std::fs::write(volume.join("outsider"), "y").unwrap();
        std::fs::hard_link(volume.join("overlay/file"), volume.join("hard")).unwrap();
        symlink("../file", volume.join("overlay/l/link")).unwrap();
        chown(volume.join("overlay/file"), Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(
            volume.join("overlay/file"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        let one = IDS_PER_POD;
        let two = 2 * IDS_PER_POD;
        // A file of an id no range holds stays as it is.
        chown(volume.join("outsider"), Some(5 * IDS_PER_POD + 7), None).unwrap();

        let owners = ClaimOwners::default();
        let first = owners.hold(&volume, one).unwrap();
        assert_eq!(owner(&volume), (one, one));
        assert_eq!(
            owner(&volume.join("overlay/file")),
            (one + 1000, one + 1000)
        );
        assert_eq!(owner(&volume.join("overlay/l/link")), (one, one));
        let mode = std::fs::metadata(volume.join("overlay/file"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o7777, 0o4755, "setuid kept");
        assert_eq!(owner(&volume.join("outsider")).0, 5 * IDS_PER_POD + 7);
        // The same range shares it; another waits.
        let second = owners.hold(&volume, one).unwrap();
        assert!(owners.hold(&volume, two).is_err());
        first.release();
        assert!(owners.hold(&volume, two).is_err(), "one holder is left");
        drop(second);
        let third = owners.hold(&volume, two).unwrap();
        assert_eq!(owner(&volume.join("hard")), (two + 1000, two + 1000));
        assert_eq!(range_of(&volume).unwrap(), two);
        drop(third);
        // Back to host ids for a container without a user namespace.
        let host = owners.hold(&volume, 0).unwrap();
        assert_eq!(owner(&volume.join("overlay/file")), (1000, 1000));
        drop(host);
    }
}
