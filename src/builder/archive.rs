//! Binary source: a tar, tar.gz or zip stream (or a single file with `binary.asFile`) unpacked into
//! the workspace with path-traversal, symlink-escape and size protection.

use std::io::{BufReader, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

/// The default limit on the bytes a binary source may unpack to (2 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// More bytes than allowed.
    #[error("the binary source is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// Neither tar, gzip nor zip, and no asFile name.
    #[error("the binary source is not a tar, tar.gz or zip archive (set binary.asFile to keep it as one file)")]
    UnknownFormat,
    /// The zip reader failed.
    #[error("invalid zip archive: {0}")]
    Zip(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// The formats recognised by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
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
pub fn sniff(head: &[u8]) -> Format {
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
pub fn safe_relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a symlink at `link` (relative to the destination) with `target` stays inside it.
pub fn link_stays_inside(link: &Path, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for c in Path::new(target).components() {
        match c {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// A reader that fails once more than `limit` bytes went through it.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
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

fn too_large(limit: u64) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::FileTooLarge => {
            Error::TooLarge(limit)
        }
        other => other,
    }
}

/// Unpacks `input` into `dest` (created), or writes it as `dest/<as_file>`; returns the entries written.
pub fn extract(
    input: impl Read,
    dest: &Path,
    as_file: Option<&str>,
    max_bytes: u64,
) -> Result<usize, Error> {
    std::fs::create_dir_all(dest).map_err(io(format!("creating {}", dest.display())))?;
    let mut reader = BufReader::new(Limited {
        inner: input,
        left: max_bytes,
        limit: max_bytes,
    });
    if let Some(name) = as_file {
        let rel = safe_relative(name)
            .filter(|p| p.components().count() == 1)
            .ok_or_else(|| Error::Traversal(name.to_string()))?;
        let mut file =
            std::fs::File::create(dest.join(rel)).map_err(io(format!("creating {name}")))?;
        std::io::copy(&mut reader, &mut file)
            .map_err(io("writing the binary source"))
            .map_err(too_large(max_bytes))?;
        return Ok(1);
    }
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(io("reading the binary source"))
        .map_err(too_large(max_bytes))?;
    let format = sniff(&head);
    let reader = std::io::Cursor::new(head).chain(reader);
    match format {
        Format::Gzip => {
            untar(flate2::read::GzDecoder::new(reader), dest).map_err(too_large(max_bytes))
        }
        Format::Tar => untar(reader, dest).map_err(too_large(max_bytes)),
        Format::Zip => {
            let mut reader = reader;
            let mut tmp = tempfile::tempfile().map_err(io("buffering the zip archive"))?;
            std::io::copy(&mut reader, &mut tmp)
                .map_err(io("buffering the zip archive"))
                .map_err(too_large(max_bytes))?;
            tmp.rewind().map_err(io("buffering the zip archive"))?;
            unzip(tmp, dest, max_bytes)
        }
        Format::Unknown => Err(Error::UnknownFormat),
    }
}

fn untar(input: impl Read, dest: &Path) -> Result<usize, Error> {
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    let mut count = 0;
    for entry in archive.entries().map_err(io("reading the tar stream"))? {
        let mut entry = entry.map_err(io("reading a tar entry"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = safe_relative(&name).ok_or_else(|| Error::Traversal(name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let target = entry
            .link_name()
            .map_err(io("reading a link target"))?
            .map(|t| t.to_string_lossy().into_owned());
        let path = dest.join(&rel);
        ensure_parent_inside(dest, &path, &name)?;
        if kind.is_symlink() {
            let target = target.unwrap_or_default();
            if !link_stays_inside(&rel, &target) {
                return Err(Error::LinkEscape { name, target });
            }
            std::os::unix::fs::symlink(&target, &path)
                .map_err(io(format!("creating symlink {name}")))?;
        } else if kind.is_hard_link() {
            let target = target.unwrap_or_default();
            let src = safe_relative(&target).ok_or_else(|| Error::LinkEscape {
                name: name.clone(),
                target: target.clone(),
            })?;
            std::fs::hard_link(dest.join(src), &path)
                .map_err(io(format!("creating hard link {name}")))?;
        } else if kind.is_dir() {
            std::fs::create_dir_all(&path).map_err(io(format!("creating {name}")))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            entry.unpack(&path).map_err(io(format!("writing {name}")))?;
        } else {
            continue; // devices, fifos, pax headers: skipped
        }
        count += 1;
    }
    Ok(count)
}

fn unzip(file: std::fs::File, dest: &Path, max_bytes: u64) -> Result<usize, Error> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::Zip(e.to_string()))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::Zip(e.to_string()))?;
        let name = entry.name().to_string();
        let rel = safe_relative(&name).ok_or_else(|| Error::Traversal(name.clone()))?;
        let path = dest.join(&rel);
        ensure_parent_inside(dest, &path, &name)?;
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(io(format!("creating {name}")))?;
            continue;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(io(format!("reading link {name}")))?;
            if !link_stays_inside(&rel, &target) {
                return Err(Error::LinkEscape { name, target });
            }
            std::os::unix::fs::symlink(&target, &path)
                .map_err(io(format!("creating symlink {name}")))?;
            continue;
        }
        let mut out = std::fs::File::create(&path).map_err(io(format!("writing {name}")))?;
        let mut limited = Limited {
            inner: &mut entry,
            left: max_bytes.saturating_sub(total),
            limit: max_bytes,
        };
        total += std::io::copy(&mut limited, &mut out)
            .map_err(io(format!("writing {name}")))
            .map_err(too_large(max_bytes))?;
        out.flush().map_err(io(format!("writing {name}")))?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777));
        }
    }
    Ok(zip.len())
}

/// Creates the entry's parent directories and checks no symlink already on disk leads outside.
fn ensure_parent_inside(dest: &Path, path: &Path, name: &str) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(dest);
    std::fs::create_dir_all(parent).map_err(io(format!("creating the parent of {name}")))?;
    let root = dest
        .canonicalize()
        .map_err(io("resolving the source directory"))?;
    let real = parent
        .canonicalize()
        .map_err(io(format!("resolving the parent of {name}")))?;
    if real.starts_with(&root) {
        Ok(())
    } else {
        Err(Error::Traversal(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_and_paths() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Format::Gzip);
        assert_eq!(sniff(b"PK\x03\x04...."), Format::Zip);
        assert_eq!(sniff(b"hello"), Format::Unknown);
        for (name, ok) in [
            ("a/b", true),
            ("./a", true),
            ("../a", false),
            ("/etc/passwd", false),
            ("a/../../b", false),
        ] {
            assert_eq!(safe_relative(name).is_some(), ok, "{name}");
        }
        for (link, target, ok) in [
            ("a/l", "../b", true),
            ("a/l", "../../b", false),
            ("l", "/etc", false),
            ("a/b/l", "../../c/./d", true),
            ("l", "x/../..", false),
        ] {
            assert_eq!(
                link_stays_inside(Path::new(link), target),
                ok,
                "{link} -> {target}"
            );
        }
    }

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file_header(size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    #[test]
    fn extracts_tar_gz_and_refuses_escapes() {
        let good = tar_with(|b| {
            let mut h = file_header(2);
            b.append_data(&mut h, "dir/f.txt", &b"hi"[..]).unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "dir/link", "f.txt").unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(extract(&good[..], dir.path(), None, 1 << 20).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("dir/link")).unwrap(),
            "hi"
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&good).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            extract(&gz.finish().unwrap()[..], dir.path(), None, 1 << 20).unwrap(),
            2
        );

        let escaping_link = tar_with(|b| {
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "evil", "../../etc").unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract(&escaping_link[..], dir.path(), None, 1 << 20),
            Err(Error::LinkEscape { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract(&good[..], dir.path(), None, 100),
            Err(Error::TooLarge(100))
        ));

        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract(&b"plain text"[..], dir.path(), None, 1 << 20),
            Err(Error::UnknownFormat)
        ));
        assert_eq!(
            extract(&b"plain text"[..], dir.path(), Some("app.jar"), 1 << 20).unwrap(),
            1
        );
        assert!(matches!(
            extract(&b"x"[..], dir.path(), Some("../x"), 1 << 20),
            Err(Error::Traversal(_))
        ));
    }

    #[test]
    fn refuses_raw_dotdot_tar_entry() {
        // tar::Builder refuses `..` itself, so write the name into the header bytes directly.
        let mut h = file_header(1);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 512]);
        data.extend_from_slice(&[0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract(&data[..], dir.path(), None, 1 << 20),
            Err(Error::Traversal(_))
        ));
    }

    #[test]
    fn extracts_zip() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts: zip::write::SimpleFileOptions = Default::default();
            z.start_file("a/b.txt", opts).unwrap();
            z.write_all(b"zip!").unwrap();
            z.finish().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        extract(&buf.into_inner()[..], dir.path(), None, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b.txt")).unwrap(),
            "zip!"
        );
    }
}
