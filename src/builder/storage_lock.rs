//! One build at a time in a buildah storage root: builds of one BuildConfig that share its build
//! storage claim (its `Parallel` builds, on the node holding the claim) take turns, so no build
//! loads the store while another writes layers into it. With an emptyDir the lock is always free.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// The lock file in the storage root.
pub(crate) const LOCK_FILE: &str = "kiln-build.lock";

/// Takes the storage root's lock, waiting for a build that holds it (the message is printed once
/// when it has to wait). Held until the returned file is dropped; None when the file system
/// refuses the lock (the build goes on without it: buildah locks its own store too).
pub(crate) fn acquire(root: &Path, waiting: impl FnOnce()) -> Option<File> {
    std::fs::create_dir_all(root).ok()?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(LOCK_FILE))
        .ok()?;
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => {
            waiting();
            file.lock().ok().map(|()| file)
        }
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_build_waits_until_the_first_releases_the_storage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let mut waited = false;
        let first = acquire(&root, || waited = true).expect("the first build locks");
        assert!(!waited, "a free storage root is taken at once");
        let (tx, rx) = mpsc::channel();
        let second_root = root.clone();
        let second = std::thread::spawn(move || {
            let wait_tx = tx.clone();
            let lock = acquire(&second_root, move || wait_tx.send("waiting").unwrap());
            tx.send("locked").unwrap();
            lock.is_some()
        });
        assert_eq!(rx.recv().unwrap(), "waiting");
        // Still waiting while the first holds the lock (no message arrives).
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        assert_eq!(rx.recv().unwrap(), "locked");
        assert!(second.join().unwrap());
    }
}
