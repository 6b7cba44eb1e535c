//! Hostile archives for the tests, written byte by byte: the tar and zip writers of the crates
//! refuse `..`, absolute names and duplicates, which are exactly what the tests need.

use std::io::Read;

/// What an entry is.
#[derive(Clone)]
pub(super) enum Kind {
    /// A regular file with its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink to the target.
    Symlink(Vec<u8>),
    /// A hard link to the target (tar only; a zip has no hard links).
    HardLink(Vec<u8>),
}

/// One archive entry with its raw name.
#[derive(Clone)]
pub(super) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) kind: Kind,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = String::from_utf8_lossy(&self.name);
        match &self.kind {
            Kind::File(d) => write!(f, "file {name:?} ({} bytes)", d.len()),
            Kind::Dir => write!(f, "dir {name:?}"),
            Kind::Symlink(t) => write!(f, "{name:?} -> {:?}", String::from_utf8_lossy(t)),
            Kind::HardLink(t) => write!(f, "{name:?} => {:?}", String::from_utf8_lossy(t)),
        }
    }
}

/// Shorthand for an entry.
pub(super) fn entry(name: &str, kind: Kind) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        kind,
    }
}

/// A GNU tar header with raw name and link name bytes (each at most 100).
pub(super) fn tar_header(name: &[u8], kind: tar::EntryType, link: &[u8], size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_700_000_000);
    let old = h.as_old_mut();
    let n = name.len().min(100);
    old.name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    old.linkname[..l].copy_from_slice(&link[..l]);
    h.set_cksum();
    *h.as_bytes()
}

/// A tar stream of the entries, as written (no normalisation).
pub(super) fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (kind, link, data): (_, &[u8], &[u8]) = match &e.kind {
            Kind::File(d) => (tar::EntryType::Regular, b"", d),
            Kind::Dir => (tar::EntryType::Directory, b"", b""),
            Kind::Symlink(t) => (tar::EntryType::Symlink, t, b""),
            Kind::HardLink(t) => (tar::EntryType::Link, t, b""),
        };
        out.extend_from_slice(&tar_header(&e.name, kind, link, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The entries gzip-compressed as a tar.
pub(super) fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar(entries)).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

/// A zip of the entries (stored, made on Unix so modes and symlinks count; hard links are skipped).
pub(super) fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut count = 0u16;
    for e in entries {
        let (mode, data): (u32, &[u8]) = match &e.kind {
            Kind::File(d) => (0o100644, d),
            Kind::Dir => (0o040755, b""),
            Kind::Symlink(t) => (0o120777, t),
            Kind::HardLink(_) => continue,
        };
        let mut name = e.name.clone();
        if matches!(e.kind, Kind::Dir) && !name.ends_with(b"/") {
            name.push(b'/');
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // stored
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
            v.extend_from_slice(&crc.sum().to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(&name);
        out.extend_from_slice(data);
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by Unix
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&name);
        count += 1;
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `.tar.gz` of one file of `size` zero bytes, compressed lazily as it is read (nothing big is
/// ever held in memory or on disk).
pub(super) fn zeros_tar_gz(name: &str, size: u64) -> impl Read {
    let header = tar_header(name.as_bytes(), tar::EntryType::Regular, b"", size);
    let padding = size.div_ceil(512) * 512 - size + 1024;
    let stream = std::io::Cursor::new(header.to_vec())
        .chain(std::io::repeat(0).take(size))
        .chain(std::io::repeat(0).take(padding));
    flate2::read::GzEncoder::new(stream, flate2::Compression::best())
}

/// A temp dir with the destination nested seven levels down (`o1/…/o6/dest`) and a `secret` file
/// on each level, so that any escape by up to seven `..` lands inside the temp dir, where the
/// snapshot sees it.
pub(super) struct Nest {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) dest: std::path::PathBuf,
}

/// How deep the destination is below the temp dir.
pub(super) const NEST_DEPTH: usize = 7;

impl Nest {
    pub(super) fn new() -> Nest {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let mut dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("secret"), b"top").expect("writing the secret");
        for i in 1..NEST_DEPTH {
            dir.push(format!("o{i}"));
            std::fs::create_dir(&dir).expect("creating a level");
            std::fs::write(dir.join("secret"), format!("level {i}")).expect("writing a secret");
        }
        let dest = dir.join("dest");
        Nest { tmp, dest }
    }

    /// Everything in the temp dir except the destination's contents.
    pub(super) fn outside(&self) -> std::collections::BTreeMap<std::path::PathBuf, String> {
        let mut out = std::collections::BTreeMap::new();
        snapshot(self.tmp.path(), &self.dest, &mut out);
        out
    }

    /// The destination's canonical path (it exists once extraction started).
    pub(super) fn dest_real(&self) -> std::path::PathBuf {
        self.dest.canonicalize().expect("the destination exists")
    }
}

fn snapshot(
    dir: &std::path::Path,
    skip: &std::path::Path,
    out: &mut std::collections::BTreeMap<std::path::PathBuf, String>,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path == skip {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let desc = if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).ok())
        } else if meta.is_dir() {
            snapshot(&path, skip, out);
            format!("dir {:o}", meta.mode())
        } else {
            format!(
                "file {:o} {} {:?}",
                meta.mode(),
                meta.nlink(),
                std::fs::read(&path).ok()
            )
        };
        out.insert(path, desc);
    }
}

/// Symlinks under `dir` whose resolution (when it resolves) leaves `root`.
pub(super) fn links_leaving(dir: &std::path::Path, root: &std::path::Path) -> Vec<String> {
    let mut bad = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return bad;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(real) = path.canonicalize() {
                if !real.starts_with(root) {
                    bad.push(format!("{} -> {}", path.display(), real.display()));
                }
            }
        } else if meta.is_dir() {
            bad.extend(links_leaving(&path, root));
        }
    }
    bad
}
