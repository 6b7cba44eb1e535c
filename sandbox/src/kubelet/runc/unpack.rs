//! Image layers unpacked into a root file system through directory handles, whiteouts applied.
//!
//! Every entry path is walked from a handle on the root with `openat(O_DIRECTORY | O_NOFOLLOW)`,
//! so a symlink an earlier entry or layer planted (`etc -> /etc` of the host, say) is never
//! followed: the entry is refused. Files are created `O_EXCL | O_NOFOLLOW` after what they
//! replace was removed; hard links name an entry already unpacked, resolved the same way.
//! Symlinks keep their targets as they are (an absolute target is resolved inside the container
//! at run time), owners and modes (setuid included) are kept, as a runtime keeps them.
//! Whiteouts: `.wh.NAME` removes NAME of a lower layer, `.wh..wh..opq` empties its directory of
//! what lower layers put there.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's path is absolute after cleaning, climbs out, or is empty.
    #[error("layer entry {0:?} escapes the root file system")]
    Escape(String),
    /// An entry's path goes through a symlink or a file.
    #[error("layer entry {name:?} goes through a link or file at {at:?}")]
    ThroughLink {
        /// The entry.
        name: String,
        /// Where the walk stopped.
        at: String,
    },
    /// A hard link names something that is not a regular file of the root.
    #[error("layer entry {name:?} is a hard link to {target:?}, which is not a file of the image")]
    HardLink {
        /// The entry.
        name: String,
        /// Its target.
        target: String,
    },
    /// Reading the layer or writing the root failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(Errno) -> UnpackError {
    let context = context.into();
    move |e| UnpackError::Io {
        context,
        source: e.into(),
    }
}

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The normal components of an entry path (`./a/b/` → `a`, `b`); `None` if it climbs out.
fn components(path: &Path) -> Option<Vec<OsString>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p.to_os_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A root file system being written.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Creates `dir` and opens it.
    pub fn create(dir: &Path) -> Result<Root, UnpackError> {
        std::fs::create_dir_all(dir).map_err(|source| UnpackError::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let fd = rustix::fs::open(dir, DIR, Mode::empty())
            .map_err(io(format!("opening {}", dir.display())))?;
        Ok(Root { fd })
    }

    /// Opens the directory `parts` below the root (creating missing ones when `create`).
    fn dir(&self, parts: &[OsString], name: &str, create: bool) -> Result<OwnedFd, UnpackError> {
        let mut cur = rustix::fs::openat(&self.fd, ".", DIR, Mode::empty())
            .map_err(io("opening the root"))?;
        let mut at = PathBuf::new();
        for part in parts {
            at.push(part);
            let through = |at: &Path| UnpackError::ThroughLink {
                name: name.to_string(),
                at: at.display().to_string(),
            };
            cur = match rustix::fs::openat(&cur, part.as_os_str(), DIR, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, part.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io(format!("creating {}", at.display()))(e)),
                    }
                    rustix::fs::openat(&cur, part.as_os_str(), DIR, Mode::empty()).map_err(|e| {
                        match e {
                            Errno::LOOP | Errno::NOTDIR => through(&at),
                            e => io(format!("opening {}", at.display()))(e),
                        }
                    })?
                }
                Err(Errno::LOOP | Errno::NOTDIR) => return Err(through(&at)),
                Err(e) => return Err(io(format!("opening {}", at.display()))(e)),
            };
        }
        Ok(cur)
    }

    /// Unpacks one layer (an uncompressed tar stream).
    pub fn apply_layer(&self, layer: impl Read) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(layer);
        // Paths written by this layer: an opaque whiteout keeps them.
        let mut written: HashSet<Vec<OsString>> = HashSet::new();
        let entries = archive.entries().map_err(|source| UnpackError::Io {
            context: "reading the layer".into(),
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| UnpackError::Io {
                context: "reading the layer".into(),
                source,
            })?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let path = PathBuf::from(OsStr::from_bytes(&raw));
            let parts = components(&path).ok_or_else(|| UnpackError::Escape(name.clone()))?;
            let Some((last, parents)) = parts.split_last() else {
                continue; // the root itself
            };
            let last_bytes = last.as_bytes();
            if last_bytes == OPAQUE.as_bytes() {
                let dir = self.dir(parents, &name, true)?;
                self.empty_dir(&dir, parents, &written, &name)?;
                continue;
            }
            if let Some(hidden) = last_bytes.strip_prefix(WHITEOUT.as_bytes()) {
                let parent = self.dir(parents, &name, true)?;
                remove_all(&parent, OsStr::from_bytes(hidden), &name)?;
                continue;
            }
            let parent = self.dir(parents, &name, true)?;
            self.write_entry(&mut entry, &parent, last, &parts, &name)?;
            written.insert(parts.clone());
        }
        Ok(())
    }

    fn empty_dir(
        &self,
        dir: &OwnedFd,
        parts: &[OsString],
        written: &HashSet<Vec<OsString>>,
        name: &str,
    ) -> Result<(), UnpackError> {
        for child in list(dir, name)? {
            let mut path = parts.to_vec();
            path.push(child.clone());
            if !written.contains(&path) {
                remove_all(dir, &child, name)?;
            }
        }
        Ok(())
    }

    fn write_entry(
        &self,
        entry: &mut tar::Entry<'_, impl Read>,
        parent: &OwnedFd,
        last: &OsStr,
        parts: &[OsString],
        name: &str,
    ) -> Result<(), UnpackError> {
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header
            .uid()
            .ok()
            .and_then(|u| u32::try_from(u).ok())
            .filter(|u| *u != u32::MAX)
            .unwrap_or(0);
        let gid = header
            .gid()
            .ok()
            .and_then(|g| u32::try_from(g).ok())
            .filter(|g| *g != u32::MAX)
            .unwrap_or(0);
        let existing = rustix::fs::statat(parent, last, AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing.is_some_and(|st| FileType::from_raw_mode(st.st_mode).is_dir());
        if kind.is_dir() {
            if !existing_dir {
                if existing.is_some() {
                    remove_all(parent, last, name)?;
                }
                rustix::fs::mkdirat(parent, last, Mode::from_raw_mode(0o700))
                    .map_err(io(format!("creating {name}")))?;
            }
            let fd = rustix::fs::openat(parent, last, DIR, Mode::empty())
                .map_err(io(format!("opening {name}")))?;
            rustix::fs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(io(format!("chown {name}")))?;
            return rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(io(format!("chmod {name}")));
        }
        if existing.is_some() {
            remove_all(parent, last, name)?;
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(parent, last, flags, Mode::from_raw_mode(0o600))
                    .map_err(io(format!("creating {name}")))?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(entry, &mut file).map_err(|source| UnpackError::Io {
                    context: format!("writing {name}"),
                    source,
                })?;
                rustix::fs::fchown(
                    &file,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(io(format!("chown {name}")))?;
                // After chown, which clears setuid/setgid bits.
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                    .map_err(io(format!("chmod {name}")))
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, last)
                    .map_err(io(format!("creating symlink {name}")))?;
                rustix::fs::chownat(
                    parent,
                    last,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io(format!("chown {name}")))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let refuse = || UnpackError::HardLink {
                    name: name.to_string(),
                    target: String::from_utf8_lossy(&target).into_owned(),
                };
                let tparts =
                    components(Path::new(OsStr::from_bytes(&target))).ok_or_else(refuse)?;
                let (tlast, tparents) = tparts.split_last().ok_or_else(refuse)?;
                let tparent = self.dir(tparents, name, false).map_err(|_| refuse())?;
                match rustix::fs::statat(&tparent, tlast.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
                    _ => return Err(refuse()),
                }
                if tparts == parts {
                    return Ok(());
                }
                rustix::fs::linkat(&tparent, tlast.as_os_str(), parent, last, AtFlags::empty())
                    .map_err(io(format!("creating hard link {name}")))
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                rustix::fs::mknodat(parent, last, file_type, Mode::from_raw_mode(mode), dev)
                    .map_err(io(format!("creating device {name}")))?;
                rustix::fs::chownat(
                    parent,
                    last,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io(format!("chown {name}")))
            }
            // PAX and GNU headers are consumed by the tar reader; anything else is skipped.
            _ => Ok(()),
        }
    }
}

/// The names in a directory (without `.` and `..`).
fn list(dir: &OwnedFd, name: &str) -> Result<Vec<OsString>, UnpackError> {
    let fd =
        rustix::fs::openat(dir, ".", DIR, Mode::empty()).map_err(io(format!("listing {name}")))?;
    let entries = rustix::fs::Dir::read_from(&fd).map_err(io(format!("listing {name}")))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {name}")))?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            out.push(OsStr::from_bytes(child).to_os_string());
        }
    }
    Ok(out)
}

/// Removes `child` of `parent` and everything below it, never following a link.
pub fn remove_all(parent: &OwnedFd, child: &OsStr, name: &str) -> Result<(), UnpackError> {
    let st = match rustix::fs::statat(parent, child, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io(format!("inspecting {name}"))(e)),
    };
    if FileType::from_raw_mode(st.st_mode).is_dir() {
        let dir = rustix::fs::openat(parent, child, DIR, Mode::empty())
            .map_err(io(format!("opening {name}")))?;
        for grandchild in list(&dir, name)? {
            remove_all(&dir, &grandchild, name)?;
        }
        rustix::fs::unlinkat(parent, child, AtFlags::REMOVEDIR)
            .map_err(io(format!("removing {name}")))
    } else {
        rustix::fs::unlinkat(parent, child, AtFlags::empty())
            .map_err(io(format!("removing {name}")))
    }
}

/// Reads a file of the root file system (`etc/passwd`), resolving every component inside the
/// root: a symlink to `/etc/passwd` reads the image's, never the host's. `None` when missing.
pub fn read_inside(root: &Path, rel: &str) -> Option<String> {
    let dir = rustix::fs::open(root, DIR, Mode::empty()).ok()?;
    let resolve = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
