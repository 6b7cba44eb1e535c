//! Each container's own root file system over the shared image: an overlay mount (the image
//! as the lower layer, the container's writes in its own upper directory). For a user
//! namespace the lower layer is a copy of the image whose owners are shifted into the Pod's id
//! range (runc 1.1 has no id-mapped mounts), made once per image and range.

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

/// Makes the root of one container in `dir` from the image's root `image`: an overlay over
/// the image or, with `shift`, over a copy of the image whose owners are shifted by `shift`
/// host ids (kept beside the image and reused by every container of that id range). Where
/// overlay cannot be mounted the container gets a copy of its own.
pub fn prepare(image: &Path, dir: &Path, shift: Option<u32>) -> Result<ContainerRoot> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io(format!("creating {}", rootfs.display())))?;
    let lower = match shift {
        Some(shift) => shifted_image(image, shift)?,
        None => image.to_path_buf(),
    };
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
    }
    // The merged root directory takes its owner and mode from the upper directory.
    let meta =
        std::fs::symlink_metadata(&lower).map_err(io(format!("reading {}", lower.display())))?;
    set_owner_and_mode(&upper, &meta, 0)?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
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
    copy_tree(&lower, &rootfs, 0)?;
    Ok(ContainerRoot {
        dir: dir.to_path_buf(),
        rootfs,
        mounted: false,
    })
}

/// The image's root with owners shifted by `shift`, made once beside the image
/// (`<image dir>-shift-<n>/rootfs`): copied into a temporary directory and renamed into place,
/// so concurrent containers either make it or use the finished one.
fn shifted_image(image: &Path, shift: u32) -> Result<PathBuf> {
    let image_dir = image.parent().unwrap_or(image);
    let name = image_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = image_dir.parent().unwrap_or(image_dir);
    let done = parent.join(format!("{name}-shift-{shift}"));
    let rootfs = done.join("rootfs");
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let partial = parent.join(format!(
        "{name}-shift-{shift}.partial-{}",
        uuid::Uuid::new_v4()
    ));
    let staged = partial.join("rootfs");
    std::fs::create_dir_all(&staged).map_err(io(format!("creating {}", staged.display())))?;
    let copied = copy_tree(image, &staged, shift);
    let renamed = copied.and_then(|()| {
        std::fs::rename(&partial, &done).map_err(io(format!("storing {}", done.display())))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
        // Another container of the range finished first.
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
    }
    renamed.map(|()| rootfs)
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
