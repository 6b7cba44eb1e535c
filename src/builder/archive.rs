//! Binary source: a tar, tar.gz or zip stream (or a single file with `binary.asFile`) unpacked into
//! the workspace.
//!
//! Paths are resolved physically: [`tree`] writes every entry through a directory handle on the
//! destination, refusing symlinks on the way and never following a link when it writes, so an
//! earlier entry (a link `a -> .` and `a/a/y -> ../../x`, say) cannot redirect a later one. Links
//! are kept only when they resolve inside ([`link_stays_inside`]), hard links only to regular files
//! of the archive. The input, the decompressed stream and the bytes written are each bounded, and
//! so is the number of entries.

use std::io::{BufReader, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

/// The default limit on the bytes a binary source may unpack to (2 GiB).
pub(crate) const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// The default limit on the entries of a binary source archive.
pub(crate) const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

mod tree;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An entry path leaves the destination.
    #[error("archive entry {0:?} points outside the source directory")]
    Traversal(String),
    /// A symlink or hardlink target leaves the destination.
    #[error("archive link {name:?} -> {target:?} points outside the source directory")]
    LinkEscape {
        /// The link's path.
        name: String,
        /// Its target.
        target: String,
    },
    /// An entry's path runs through a symlink or a non-directory already in the destination.
    #[error("archive entry {name:?} goes through {at:?}, which is a symlink or not a directory")]
    ThroughLink {
        /// The entry's path.
        name: String,
        /// The component that is not a directory.
        at: String,
    },
    /// An entry would replace a directory written before.
    #[error("archive entry {0:?} would replace a directory")]
    ReplacesDirectory(String),
    /// A hard link whose target is not a regular file already unpacked from the archive.
    #[error(
        "archive hard link {name:?} -> {target:?} does not name a regular file of the archive"
    )]
    HardLinkTarget {
        /// The link's path.
        name: String,
        /// Its target.
        target: String,
    },
    /// More bytes than allowed.
    #[error("the binary source is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// More entries than allowed.
    #[error("the binary source has more than the limit of {0} entries")]
    TooManyEntries(u64),
    /// Neither tar, gzip nor zip, and no asFile name.
    #[error("the binary source is not a tar, tar.gz or zip archive (set binary.asFile to keep it as one file)")]
    UnknownFormat,
    /// The zip reader failed.
    #[error("invalid zip archive: {0}")]
    Zip(String),
    /// The input ended before its tar or gzip stream did (an interrupted upload).
    #[error("the input ended before its archive was complete ({0})")]
    Truncated(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// The formats recognised by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// gzip-compressed (assumed to hold a tar).
    Gzip,
    /// zip.
    Zip,
    /// plain tar (`ustar` magic at offset 257).
    Tar,
    /// anything else.
    Unknown,
}

/// Detects the format from the first bytes of a stream.
pub(crate) fn sniff(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if head.get(257..262) == Some(b"ustar") {
        Format::Tar
    } else {
        Format::Unknown
    }
}

/// The relative path an entry may be written to, or None when it leaves the destination.
///
/// This is only the first, lexical filter; where the path really leads is decided while writing,
/// by [`tree`]'s walk, which refuses symlinks on the way.
pub(crate) fn safe_relative(name: &str) -> Option<PathBuf> {
    relative(Path::new(name))
}

fn relative(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (relative to the destination, reached without links) with `target`
/// resolves inside the destination wherever it is followed from.
///
/// The target must be relative, climb (`..`) only before its first name, and at most as many
/// levels as the link's directory is deep. A `..` after a name is refused: the name may itself be
/// a link (`a -> .` makes `a/a/../..` climb two levels that a lexical reading does not see). With
/// every link in the tree of this shape, following any of them ends inside the destination.
pub(crate) fn link_stays_inside(link: &Path, target: &Path) -> bool {
    let depth = link
        .parent()
        .map(|p| {
            p.components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .count()
        })
        .unwrap_or(0);
    let mut up = 0usize;
    let mut named = false;
    for c in target.components() {
        match c {
            Component::Normal(_) => named = true,
            Component::CurDir => {}
            Component::ParentDir if !named => up += 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    !target.as_os_str().is_empty() && up <= depth
}

/// The bounds of one extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The most bytes read from the input, unpacked from it, and written (each counted separately).
    pub(crate) bytes: u64,
    /// The most entries an archive may hold.
    pub(crate) entries: u64,
}

/// A reader that fails once more than `limit` bytes went through it.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R> Limited<R> {
    fn new(inner: R, limit: u64) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("larger than {} bytes", self.limit),
            )
        })?;
        Ok(n)
    }
}

/// A reader that remembers whether its input ended (a read returned nothing).
struct EndSeen<R> {
    inner: R,
    ended: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R> EndSeen<R> {
    fn new(inner: R) -> (Self, std::rc::Rc<std::cell::Cell<bool>>) {
        let ended = std::rc::Rc::default();
        (
            EndSeen {
                inner,
                ended: std::rc::Rc::clone(&ended),
            },
            ended,
        )
    }
}

impl<R: Read> Read for EndSeen<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.set(true);
        }
        Ok(n)
    }
}

/// A tar or gzip failure once the input ended (or an unexpected end reported as such) is a
/// truncated stream: the upload stopped before the archive did.
fn truncated(input_ended: bool) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Io {
            ref context,
            ref source,
        } if input_ended || source.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated(format!("{context}: {source}"))
        }
        other => other,
    }
}

fn too_large(limit: u64) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::FileTooLarge => {
            Error::TooLarge(limit)
        }
        other => other,
    }
}

/// Unpacks `input` into `dest` (created), or writes it as `dest/<as_file>`; returns the entries written.
pub(crate) fn extract(
    input: impl Read,
    dest: &Path,
    as_file: Option<&str>,
    max_bytes: u64,
) -> Result<usize, Error> {
    let limits = Limits {
        bytes: max_bytes,
        entries: DEFAULT_MAX_ENTRIES,
    };
    extract_limited(input, dest, as_file, limits)
}

/// [`extract`] with an explicit entry bound.
pub(crate) fn extract_limited(
    input: impl Read,
    dest: &Path,
    as_file: Option<&str>,
    limits: Limits,
) -> Result<usize, Error> {
    let tree = tree::Tree::open(dest)?;
    let mut reader = BufReader::new(Limited::new(input, limits.bytes));
    if let Some(name) = as_file {
        let rel = safe_relative(name)
            .filter(|p| p.components().count() == 1)
            .ok_or_else(|| Error::Traversal(name.to_string()))?;
        let mut file = tree.create_file(&rel, name, 0o644)?;
        std::io::copy(&mut reader, &mut file)
            .map_err(io("writing the binary source"))
            .map_err(too_large(limits.bytes))?;
        return Ok(1);
    }
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(io("reading the binary source"))
        .map_err(too_large(limits.bytes))?;
    let format = sniff(&head);
    let (reader, input_ended) = EndSeen::new(std::io::Cursor::new(head).chain(reader));
    let result = match format {
        // The bound sits above the decoder: it counts the bytes the stream unpacks to.
        Format::Gzip => {
            let mut gz = Limited::new(flate2::read::GzDecoder::new(reader), limits.bytes);
            untar(&mut gz, &tree, limits).and_then(|n| {
                // The rest of the stream (padding, gzip trailer) is read so that its checksum
                // and length are checked: a stream cut short after the tar's end is refused too.
                std::io::copy(&mut gz, &mut std::io::sink())
                    .map(|_| n)
                    .map_err(io("reading the end of the gzip stream"))
            })
        }
        Format::Tar => untar(reader, &tree, limits),
        Format::Zip => {
            let mut reader = reader;
            let mut tmp = tempfile::tempfile().map_err(io("buffering the zip archive"))?;
            std::io::copy(&mut reader, &mut tmp).map_err(io("buffering the zip archive"))?;
            tmp.rewind().map_err(io("buffering the zip archive"))?;
            return unzip(tmp, &tree, limits).map_err(too_large(limits.bytes));
        }
        Format::Unknown => Err(Error::UnknownFormat),
    };
    let result = result.map_err(truncated(input_ended.get()));
    result.map_err(too_large(limits.bytes))
}

/// Counts the bytes written across all entries of one archive.
struct Budget {
    written: u64,
    limits: Limits,
    entries: u64,
}

impl Budget {
    fn entry(&mut self) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(Error::TooManyEntries(self.limits.entries));
        }
        Ok(())
    }

    /// Copies `data` into `out`, failing once the archive's bytes written pass the bound.
    fn copy(&mut self, data: impl Read, out: &mut std::fs::File, name: &str) -> Result<(), Error> {
        let left = self.limits.bytes.saturating_sub(self.written);
        let mut limited = Limited::new(data, left);
        let n = std::io::copy(&mut limited, out).map_err(io(format!("writing {name}")))?;
        self.written += n;
        Ok(())
    }
}

/// The entry's name as a path (bytes as they are, not lossily decoded) and as text for messages.
fn entry_name(bytes: &[u8]) -> (PathBuf, String) {
    use std::os::unix::ffi::OsStrExt;
    (
        PathBuf::from(std::ffi::OsStr::from_bytes(bytes)),
        String::from_utf8_lossy(bytes).into_owned(),
    )
}

/// Unpacks a tar stream; one that ends without its end-of-archive blocks is [`Error::Truncated`].
fn untar(input: impl Read, tree: &tree::Tree, limits: Limits) -> Result<usize, Error> {
    let (input, ended) = EndSeen::new(input);
    let count = untar_entries(input, tree, limits).map_err(truncated(ended.get()))?;
    // tar stops at the first end-of-archive block; reaching the end of the input instead means
    // the stream was cut at an entry boundary (every tar writer ends with those blocks).
    if ended.get() {
        return Err(Error::Truncated(
            "the tar stream has no end-of-archive blocks".into(),
        ));
    }
    Ok(count)
}

fn untar_entries(input: impl Read, tree: &tree::Tree, limits: Limits) -> Result<usize, Error> {
    let mut archive = tar::Archive::new(input);
    let mut budget = Budget {
        written: 0,
        limits,
        entries: 0,
    };
    let mut count = 0;
    for entry in archive.entries().map_err(io("reading the tar stream"))? {
        let mut entry = entry.map_err(io("reading a tar entry"))?;
        budget.entry()?;
        let (path, name) = entry_name(&entry.path_bytes());
        let rel = relative(&path).ok_or_else(|| Error::Traversal(name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        let target = entry.link_name_bytes().map(|t| entry_name(&t));
        if kind.is_symlink() || kind.is_hard_link() {
            let (target, shown) = target.unwrap_or_default();
            if kind.is_symlink() {
                tree.symlink(&rel, &name, &target)?;
            } else {
                let src = relative(&target).ok_or(Error::LinkEscape {
                    name: name.clone(),
                    target: shown,
                })?;
                tree.hard_link(&rel, &name, &src)?;
            }
        } else if kind.is_dir() {
            tree.mkdir(&rel, &name, mode)?;
        } else if kind.is_file() || kind.is_gnu_sparse() || kind == tar::EntryType::Continuous {
            let mtime = entry.header().mtime().ok();
            let mut file = tree.create_file(&rel, &name, mode)?;
            budget.copy(&mut entry, &mut file, &name)?;
            if let Some(t) = mtime {
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                let _ = file.set_modified(when);
            }
        } else {
            continue; // devices, fifos, global pax headers: skipped
        }
        count += 1;
    }
    Ok(count)
}

/// The largest entry count any end-of-central-directory record in the zip's tail declares (zip64
/// ones included), read before the zip reader indexes the whole directory in memory. Every
/// candidate counts, so a fake record in the comment cannot hide the real one.
fn zip_declared_entries(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::SeekFrom;
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65535);
    let start = len - tail_len;
    file.seek(SeekFrom::Start(start))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)?;
    let mut most = 0u64;
    for at in 0..tail.len().saturating_sub(21) {
        if &tail[at..at + 4] != b"PK\x05\x06" {
            continue;
        }
        most = most.max(u64::from(u16::from_le_bytes([
            tail[at + 10],
            tail[at + 11],
        ])));
        // a zip64 locator right before it points at the zip64 record with the 64-bit count
        let Some(locator) = (start + at as u64).checked_sub(20) else {
            continue;
        };
        let mut loc = [0u8; 20];
        file.seek(SeekFrom::Start(locator))?;
        file.read_exact(&mut loc)?;
        if &loc[..4] != b"PK\x06\x07" {
            continue;
        }
        let record = u64::from_le_bytes(loc[8..16].try_into().unwrap_or_default());
        let mut rec = [0u8; 40];
        if record.checked_add(40).is_some_and(|end| end <= len) {
            file.seek(SeekFrom::Start(record))?;
            file.read_exact(&mut rec)?;
            if &rec[..4] == b"PK\x06\x06" {
                most = most.max(u64::from_le_bytes(
                    rec[32..40].try_into().unwrap_or_default(),
                ));
            }
        }
    }
    file.rewind()?;
    Ok(most)
}

fn unzip(mut file: std::fs::File, tree: &tree::Tree, limits: Limits) -> Result<usize, Error> {
    if zip_declared_entries(&mut file).map_err(io("reading the zip directory"))? > limits.entries {
        return Err(Error::TooManyEntries(limits.entries));
    }
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::Zip(e.to_string()))?;
    if zip.len() as u64 > limits.entries {
        return Err(Error::TooManyEntries(limits.entries));
    }
    let mut budget = Budget {
        written: 0,
        limits,
        entries: 0,
    };
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::Zip(e.to_string()))?;
        budget.entry()?;
        let (path, name) = entry_name(entry.name_raw());
        let rel = relative(&path).ok_or_else(|| Error::Traversal(name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mode = entry.unix_mode();
        if entry.is_dir() {
            tree.mkdir(&rel, &name, mode.unwrap_or(0o755))?;
        } else if entry.is_symlink() {
            let mut target = Vec::new();
            (&mut entry)
                .take(4096)
                .read_to_end(&mut target)
                .map_err(io(format!("reading link {name}")))?;
            tree.symlink(&rel, &name, &entry_name(&target).0)?;
        } else {
            let mut out = tree.create_file(&rel, &name, mode.unwrap_or(0o644))?;
            budget.copy(&mut entry, &mut out, &name)?;
            out.flush().map_err(io(format!("writing {name}")))?;
        }
    }
    Ok(zip.len())
}

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod testgen;
#[cfg(test)]
mod tests;
