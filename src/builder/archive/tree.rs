//! The destination of an extraction, written only through directory handles.
//!
//! Every entry path is resolved component by component from a handle on the destination with
//! `openat(O_DIRECTORY | O_NOFOLLOW)`: a symlink (or a file) anywhere on the way is refused, never
//! followed, whatever an earlier entry planted there. Files are created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` after the entry they replace was unlinked, so a write never
//! goes through a link, and hard links are made with `linkat` from a target resolved the same way.
//!
//! Written on `rustix` rather than `cap-std`: the six `*at` calls needed here are smaller than
//! cap-std's dependency tree, and rustix is already in the build (tempfile uses it).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{link_stays_inside, Error};

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// An open destination directory; all writes go through it.
pub(super) struct Tree {
    root: OwnedFd,
}

fn io_err(context: String) -> impl FnOnce(Errno) -> Error {
    move |e| Error::Io {
        context,
        source: e.into(),
    }
}

/// The parent components and the last component of a (non-empty, already checked) relative path.
fn split(rel: &Path) -> Option<(Vec<&OsStr>, &OsStr)> {
    let mut parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let last = parts.pop()?;
    Some((parts, last))
}

impl Tree {
    /// Creates `dest` if needed and opens it (the destination itself is the caller's choice).
    pub(super) fn open(dest: &Path) -> Result<Tree, Error> {
        std::fs::create_dir_all(dest).map_err(|source| Error::Io {
            context: format!("creating {}", dest.display()),
            source,
        })?;
        let root = rustix::fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err(format!("opening {}", dest.display())))?;
        Ok(Tree { root })
    }

    /// Opens the directory `parts` below the root, creating missing ones when `create`; refuses
    /// symlinks and non-directories on the way.
    fn dir(&self, parts: &[&OsStr], name: &str, create: bool) -> Result<OwnedFd, Error> {
        let mut cur = rustix::fs::openat(&self.root, ".", DIR, Mode::empty())
            .map_err(io_err("opening the destination".into()))?;
        let mut at = PathBuf::new();
        for part in parts {
            at.push(part);
            let through = |at: &Path| Error::ThroughLink {
                name: name.to_string(),
                at: at.display().to_string(),
            };
            cur = match rustix::fs::openat(&cur, *part, DIR, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(format!("creating {}", at.display()))(e)),
                    }
                    match rustix::fs::openat(&cur, *part, DIR, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(Errno::LOOP | Errno::NOTDIR) => return Err(through(&at)),
                        Err(e) => return Err(io_err(format!("opening {}", at.display()))(e)),
                    }
                }
                Err(Errno::LOOP | Errno::NOTDIR) => return Err(through(&at)),
                Err(e) => return Err(io_err(format!("opening {}", at.display()))(e)),
            };
        }
        Ok(cur)
    }

    /// The parent directory handle (created) and the last component of `rel`.
    fn parent<'a>(&self, rel: &'a Path, name: &str) -> Result<(OwnedFd, &'a OsStr), Error> {
        let (parts, last) = split(rel).ok_or_else(|| Error::Traversal(name.to_string()))?;
        Ok((self.dir(&parts, name, true)?, last))
    }

    /// Removes whatever non-directory `last` names in `parent`, so the entry replaces it.
    fn clear(parent: &OwnedFd, last: &OsStr, name: &str) -> Result<(), Error> {
        match rustix::fs::statat(parent, last, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err(format!("inspecting {name}"))(e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode).is_dir() => {
                Err(Error::ReplacesDirectory(name.to_string()))
            }
            Ok(_) => rustix::fs::unlinkat(parent, last, AtFlags::empty())
                .map_err(io_err(format!("replacing {name}"))),
        }
    }

    /// Creates the regular file `rel` (replacing a non-directory there) with `mode`'s permission bits.
    pub(super) fn create_file(&self, rel: &Path, name: &str, mode: u32) -> Result<File, Error> {
        let (parent, last) = self.parent(rel, name)?;
        Self::clear(&parent, last, name)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode & 0o777);
        let fd = rustix::fs::openat(&parent, last, flags, mode)
            .map_err(io_err(format!("creating {name}")))?;
        rustix::fs::fchmod(&fd, mode).map_err(io_err(format!("setting the mode of {name}")))?;
        Ok(File::from(fd))
    }

    /// Creates the directory `rel` (and its parents); a non-directory there is replaced.
    pub(super) fn mkdir(&self, rel: &Path, name: &str, mode: u32) -> Result<(), Error> {
        let (parent, last) = self.parent(rel, name)?;
        match rustix::fs::statat(&parent, last, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode).is_dir() => {}
            Ok(_) => {
                rustix::fs::unlinkat(&parent, last, AtFlags::empty())
                    .map_err(io_err(format!("replacing {name}")))?;
                rustix::fs::mkdirat(&parent, last, Mode::from_raw_mode(0o755))
                    .map_err(io_err(format!("creating {name}")))?;
            }
            Err(Errno::NOENT) => rustix::fs::mkdirat(&parent, last, Mode::from_raw_mode(0o755))
                .map_err(io_err(format!("creating {name}")))?,
            Err(e) => return Err(io_err(format!("inspecting {name}"))(e)),
        }
        let fd = rustix::fs::openat(&parent, last, DIR, Mode::empty()).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => Error::ThroughLink {
                name: name.to_string(),
                at: rel.display().to_string(),
            },
            e => io_err(format!("opening {name}"))(e),
        })?;
        // The owner keeps write access, so later entries can still be written into it.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o777) | 0o700))
            .map_err(io_err(format!("setting the mode of {name}")))
    }

    /// Creates the symlink `rel -> target` after checking the target cannot lead outside.
    pub(super) fn symlink(&self, rel: &Path, name: &str, target: &Path) -> Result<(), Error> {
        if !link_stays_inside(rel, target) {
            return Err(Error::LinkEscape {
                name: name.to_string(),
                target: target.display().to_string(),
            });
        }
        let (parent, last) = self.parent(rel, name)?;
        Self::clear(&parent, last, name)?;
        rustix::fs::symlinkat(target, &parent, last)
            .map_err(io_err(format!("creating symlink {name}")))
    }

    /// Creates the hard link `rel` to the regular file `target` (relative to the root), both
    /// resolved without following links.
    pub(super) fn hard_link(&self, rel: &Path, name: &str, target: &Path) -> Result<(), Error> {
        let refuse = || Error::HardLinkTarget {
            name: name.to_string(),
            target: target.display().to_string(),
        };
        let (tparts, tlast) = split(target).ok_or_else(refuse)?;
        let tparent = self.dir(&tparts, name, false).map_err(|e| match e {
            Error::Io { .. } => refuse(),
            e => e,
        })?;
        match rustix::fs::statat(&tparent, tlast, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
            _ => return Err(refuse()),
        }
        if rel == target {
            return Ok(()); // a link to itself: the file is already there
        }
        let (parent, last) = self.parent(rel, name)?;
        Self::clear(&parent, last, name)?;
        rustix::fs::linkat(&tparent, tlast, &parent, last, AtFlags::empty())
            .map_err(io_err(format!("creating hard link {name}")))
    }
}
