//! Each container's own root file system over the shared image: an overlay mount (the image
//! as the lower layer, the container's writes in its own upper directory), or, for a user
//! namespace, a copy whose owners are shifted into the container's id range (runc 1.1 has no
//! id-mapped mounts).

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::kubelet::error::{Error, Result};

/// A container root on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRoot {
    /// The directory holding everything of this root (removed by [`release`]).
    pub dir: PathBuf,
    /// The root file system runc uses.
    pub rootfs: PathBuf,
    /// Whether `rootfs` is an overlay mount to unmount.
    pub mounted: bool,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

/// Makes the root of one container in `dir` from the image's root `image`: an overlay, or a
/// copy shifted by `shift` host ids (also the fallback when overlay cannot be mounted here).
pub fn prepare(image: &Path, dir: &Path, shift: Option<u32>) -> Result<ContainerRoot> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io(format!("creating {}", rootfs.display())))?;
    if shift.is_none() {
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            image.display(),
            upper.display(),
            work.display()
        );
        if let Ok(data) = CString::new(options) {
            let mounted =
                rustix::mount::mount("overlay", &rootfs, "overlay", MountFlags::empty(), &*data);
            match mounted {
                Ok(()) => {
                    return Ok(ContainerRoot {
                        dir: dir.to_path_buf(),
                        rootfs,
                        mounted: true,
                    })
                }
                Err(e) => tracing::info!(error = %e, "overlay mount failed; copying the image"),
            }
        }
    }
    copy_tree(image, &rootfs, shift.unwrap_or(0))?;
    Ok(ContainerRoot {
        dir: dir.to_path_buf(),
        rootfs,
        mounted: false,
    })
}

/// Unmounts and removes a container root.
pub fn release(root: &ContainerRoot) {
    if root.mounted {
        if let Err(e) = rustix::mount::unmount(&root.rootfs, UnmountFlags::DETACH) {
            tracing::warn!(path = %root.rootfs.display(), error = %e, "unmounting a container root");
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&root.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %root.dir.display(), error = %e, "removing a container root");
        }
    }
}

/// Copies `from` into the existing directory `to`, never following a link, adding `shift` to
/// every owner and group. The source is the store's own unpacked image, which nothing else
/// writes; the destination is new.
fn copy_tree(from: &Path, to: &Path, shift: u32) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(from).map_err(io(format!("reading {}", from.display())))?;
    set_owner_and_mode(to, &meta, shift)?;
    let entries = std::fs::read_dir(from).map_err(io(format!("listing {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", from.display())))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta =
            std::fs::symlink_metadata(&src).map_err(io(format!("reading {}", src.display())))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst).map_err(io(format!("creating {}", dst.display())))?;
            copy_tree(&src, &dst, shift)?;
        } else if kind.is_symlink() {
            let target =
                std::fs::read_link(&src).map_err(io(format!("reading {}", src.display())))?;
            std::os::unix::fs::symlink(&target, &dst)
                .map_err(io(format!("creating {}", dst.display())))?;
            std::os::unix::fs::lchown(&dst, shifted(meta.uid(), shift), shifted(meta.gid(), shift))
                .map_err(io(format!("chown {}", dst.display())))?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst).map_err(io(format!("copying {}", src.display())))?;
            set_owner_and_mode(&dst, &meta, shift)?;
        }
        // Device nodes and sockets of an image are not copied into a user namespace.
    }
    Ok(())
}

fn shifted(id: u32, shift: u32) -> Option<u32> {
    Some(id.saturating_add(shift))
}

fn set_owner_and_mode(path: &Path, meta: &std::fs::Metadata, shift: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, shifted(meta.uid(), shift), shifted(meta.gid(), shift))
        .map_err(io(format!("chown {}", path.display())))?;
    let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
    std::fs::set_permissions(path, mode).map_err(io(format!("chmod {}", path.display())))
}
