//! What a binary build's upload carries, produced as a stream: a directory or a git commit as a
//! gzipped tar made while it is sent, a file or an archive as it is. Nothing is staged on disk or
//! held whole in memory: the producer writes into a bounded channel ([`ChannelWriter`]) and blocks
//! while the upload is behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::Error;

/// The size of the chunks the producer hands to the uploader.
pub(crate) const CHUNK: usize = 64 * 1024;

/// What to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// A directory's contents, as a gzipped tar.
    Dir(PathBuf),
    /// One file, kept as one file in the build's context (`binary.asFile`).
    File(PathBuf),
    /// A tar, tar.gz or zip archive, sent as it is and unpacked by the build.
    Archive(PathBuf),
    /// The files git tracks at a commit of a repository (HEAD by default), as a gzipped tar.
    Repo {
        /// The repository's working directory (or any directory inside it).
        dir: PathBuf,
        /// The commit (default HEAD).
        commit: Option<String>,
    },
}

/// The commit a `--from-repo` upload comes from, for the Build's revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Commit {
    /// The full hash.
    pub(crate) id: String,
    /// `Name <email>` of the author.
    pub(crate) author: (String, String),
    /// `Name <email>` of the committer.
    pub(crate) committer: (String, String),
    /// The commit message.
    pub(crate) message: String,
}

impl Input {
    /// How the user named it, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Input::Dir(d) => format!("directory {}", d.display()),
            Input::File(f) => format!("file {}", f.display()),
            Input::Archive(a) => format!("archive {}", a.display()),
            Input::Repo { dir, commit } => format!(
                "repository {} at {}",
                dir.display(),
                commit.as_deref().unwrap_or("HEAD")
            ),
        }
    }

    /// Checks that the input exists and is what it claims, before any build is started.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let (path, want_dir, flag) = match self {
            Input::Dir(d) => (d, true, "--from-dir"),
            Input::File(f) => (f, false, "--from-file"),
            Input::Archive(a) => (a, false, "--from-archive"),
            Input::Repo { dir, .. } => (dir, true, "--from-repo"),
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::Input(format!("{flag} {}: {e}", path.display())))?;
        match (want_dir, meta.is_dir(), meta.is_file()) {
            (true, true, _) | (false, _, true) => Ok(()),
            (true, _, _) => Err(Error::Input(format!(
                "{flag} {} is not a directory",
                path.display()
            ))),
            (false, _, _) => Err(Error::Input(format!(
                "{flag} {} is not a regular file",
                path.display()
            ))),
        }
    }

    /// The `binary.asFile` name the build keeps the stream under (`--from-file` only).
    pub(crate) fn as_file(&self) -> Option<String> {
        match self {
            Input::File(f) => f.file_name().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        }
    }

    /// Writes the whole upload into `out` (blocking; run it on a blocking thread).
    pub(crate) fn produce(&self, out: impl Write) -> Result<(), Error> {
        match self {
            Input::File(path) | Input::Archive(path) => {
                let mut file = std::fs::File::open(path).map_err(io(path))?;
                copy(&mut file, out, path)
            }
            Input::Dir(dir) => {
                let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                let mut tar = tar::Builder::new(gz);
                tar.follow_symlinks(false);
                tar.append_dir_all(".", dir).map_err(io(dir))?;
                finish(tar, dir)
            }
            Input::Repo { dir, commit } => {
                let repo = git2::Repository::discover(dir).map_err(git(dir))?;
                let commit = resolve(&repo, commit.as_deref(), dir)?;
                let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                let mut tar = tar::Builder::new(gz);
                let tree = commit.tree().map_err(git(dir))?;
                let time = u64::try_from(commit.time().seconds()).unwrap_or(0);
                append_tree(&repo, &tree, Path::new(""), time, &mut tar, dir)?;
                finish(tar, dir)
            }
        }
    }

    /// The commit `--from-repo` uploads (None for the other inputs).
    pub(crate) fn commit(&self) -> Result<Option<Commit>, Error> {
        let Input::Repo { dir, commit } = self else {
            return Ok(None);
        };
        let repo = git2::Repository::discover(dir).map_err(git(dir))?;
        let c = resolve(&repo, commit.as_deref(), dir)?;
        let person = |s: git2::Signature<'_>| {
            (
                s.name().unwrap_or_default().to_string(),
                s.email().unwrap_or_default().to_string(),
            )
        };
        Ok(Some(Commit {
            id: c.id().to_string(),
            author: person(c.author()),
            committer: person(c.committer()),
            message: c.message().unwrap_or_default().trim_end().to_string(),
        }))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Input(format!("reading {}: {e}", path.display()))
}

fn git(path: &Path) -> impl FnOnce(git2::Error) -> Error + '_ {
    move |e| {
        Error::Input(format!(
            "the git repository at {}: {}",
            path.display(),
            e.message()
        ))
    }
}

fn copy(from: &mut impl Read, mut out: impl Write, path: &Path) -> Result<(), Error> {
    std::io::copy(from, &mut out).map_err(io(path))?;
    out.flush().map_err(io(path))
}

fn finish<W: Write>(
    tar: tar::Builder<flate2::write::GzEncoder<W>>,
    path: &Path,
) -> Result<(), Error> {
    let gz = tar.into_inner().map_err(io(path))?;
    let mut out = gz.finish().map_err(io(path))?;
    out.flush().map_err(io(path))
}

fn resolve<'r>(
    repo: &'r git2::Repository,
    commit: Option<&str>,
    dir: &Path,
) -> Result<git2::Commit<'r>, Error> {
    let spec = commit.unwrap_or("HEAD");
    repo.revparse_single(spec)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            Error::Input(format!(
                "commit {spec} in the git repository at {}: {}",
                dir.display(),
                e.message()
            ))
        })
}

/// Appends a tree's blobs (files, executables, symlinks) below `prefix`; submodules are skipped.
fn append_tree<W: Write>(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    prefix: &Path,
    mtime: u64,
    tar: &mut tar::Builder<W>,
    dir: &Path,
) -> Result<(), Error> {
    for entry in tree.iter() {
        let name = Path::new(
            std::str::from_utf8(entry.name_bytes())
                .map_err(|_| Error::Input(format!("a path in {} is not UTF-8", dir.display())))?,
        );
        let path = prefix.join(name);
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let sub = repo.find_tree(entry.id()).map_err(git(dir))?;
                append_tree(repo, &sub, &path, mtime, tar, dir)?;
            }
            Some(git2::ObjectType::Blob) => {
                let blob = repo.find_blob(entry.id()).map_err(git(dir))?;
                let mut header = tar::Header::new_gnu();
                header.set_mtime(mtime);
                header.set_uid(0);
                header.set_gid(0);
                if entry.filemode() == 0o120000 {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    header.set_mode(0o777);
                    let target = Path::new(std::str::from_utf8(blob.content()).map_err(|_| {
                        Error::Input(format!("the link {} is not UTF-8", path.display()))
                    })?);
                    tar.append_link(&mut header, &path, target)
                        .map_err(io(dir))?;
                } else {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(blob.size() as u64);
                    header.set_mode(if entry.filemode() == 0o100755 {
                        0o755
                    } else {
                        0o644
                    });
                    tar.append_data(&mut header, &path, blob.content())
                        .map_err(io(dir))?;
                }
            }
            _ => {} // submodules (commits) are not part of the tree's files
        }
    }
    Ok(())
}

/// A `Write` that hands full chunks to an async consumer through a bounded channel, blocking while
/// the channel is full: the memory between producer and upload is at most `capacity` chunks.
pub(crate) struct ChannelWriter {
    sender: mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    /// A writer feeding `sender`.
    pub(crate) fn new(sender: mpsc::Sender<Vec<u8>>) -> Self {
        ChannelWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload ended"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests;
