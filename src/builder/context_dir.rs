//! The build context directory: `source.contextDir` must name a directory inside the checkout.

use std::path::{Component, Path, PathBuf};

/// Why a contextDir is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Error {
    /// The path leaves the checkout lexically (`..`, absolute paths).
    #[error("contextDir {0:?} points outside the source repository (no '..' or absolute paths)")]
    Escapes(String),
    /// A symlink inside the checkout resolves outside of it.
    #[error(
        "contextDir {0:?} resolves through a symlink to a place outside the source repository"
    )]
    SymlinkEscape(String),
    /// The directory does not exist in the checkout.
    #[error("contextDir {dir:?} does not exist in the source at {at}; check source.contextDir and the ref")]
    Missing {
        /// The contextDir as given.
        dir: String,
        /// Where it was looked for (the commit, or "the archive").
        at: String,
    },
    /// The path names a file, not a directory.
    #[error("contextDir {0:?} is not a directory")]
    NotADirectory(String),
}

/// The normalized relative path of a contextDir (`""` for the root), refusing `..` and absolute paths.
pub(crate) fn normalize(context_dir: &str) -> Result<PathBuf, Error> {
    let mut out = PathBuf::new();
    for component in Path::new(context_dir.trim()).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Escapes(context_dir.to_string()));
            }
        }
    }
    Ok(out)
}

/// Resolves a contextDir inside `root` on disk, following symlinks only while they stay inside.
/// `at` names the source for messages (a commit hash or "the archive").
pub(crate) fn resolve(root: &Path, context_dir: Option<&str>, at: &str) -> Result<PathBuf, Error> {
    let raw = context_dir.unwrap_or("");
    let rel = normalize(raw)?;
    let missing = || Error::Missing {
        dir: raw.to_string(),
        at: at.to_string(),
    };
    let root = root.canonicalize().map_err(|_| missing())?;
    let joined = root.join(&rel);
    let real = match joined.canonicalize() {
        Ok(real) => real,
        Err(_) if joined.symlink_metadata().is_ok() => {
            return Err(Error::SymlinkEscape(raw.to_string()))
        }
        Err(_) => return Err(missing()),
    };
    if !real.starts_with(&root) {
        return Err(Error::SymlinkEscape(raw.to_string()));
    }
    if !real.is_dir() {
        return Err(Error::NotADirectory(raw.to_string()));
    }
    Ok(real)
}

/// The largest Dockerfile read from the source (1 MiB).
pub(crate) const MAX_DOCKERFILE_BYTES: u64 = 1 << 20;

/// Reads the file `rel` below `dir` (a resolved context directory), refusing a path that leaves
/// `root` (the checkout) lexically or through a symlink, anything but a regular file, and more
/// than [`MAX_DOCKERFILE_BYTES`]: a `Dockerfile -> /var/run/secrets/…` link in a repository must
/// not make the builder read, and echo in its errors, a file of the build Pod.
pub(crate) fn read_file_inside(root: &Path, dir: &Path, rel: &str) -> Result<String, String> {
    use std::io::Read;
    let normal =
        normalize(rel).map_err(|_| format!("{rel:?} must stay inside the context directory"))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("resolving the source directory: {e}"))?;
    let real = dir
        .join(normal)
        .canonicalize()
        .map_err(|e| format!("cannot read {rel:?} in the context directory: {e}"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{rel:?} resolves through a symlink to a place outside the source repository"
        ));
    }
    let file = std::fs::File::open(&real).map_err(|e| format!("cannot read {rel:?}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {rel:?}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{rel:?} is not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_DOCKERFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {rel:?}: {e}"))?;
    if text.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(format!(
            "{rel:?} is larger than {MAX_DOCKERFILE_BYTES} bytes"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        for (input, want) in [
            ("", Some("")),
            ("a/b", Some("a/b")),
            ("./a/./b/", Some("a/b")),
            ("a/../b", None),
            ("/etc", None),
            ("..", None),
        ] {
            let got = normalize(input).ok();
            assert_eq!(got.as_deref(), want.map(Path::new), "{input}");
        }
    }

    #[test]
    fn resolve_on_disk() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app/sub")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink("app", root.join("inside")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-kiln-target", root.join("dangling")).unwrap();
        type Check = fn(&Result<PathBuf, Error>) -> bool;
        let cases: &[(Option<&str>, Check)] = &[
            (None, |r| r.is_ok()),
            (Some("app/sub"), |r| {
                r.as_ref().is_ok_and(|p| p.ends_with("app/sub"))
            }),
            (Some("inside/sub"), |r| {
                r.as_ref().is_ok_and(|p| p.ends_with("app/sub"))
            }),
            (Some("out"), |r| matches!(r, Err(Error::SymlinkEscape(_)))),
            (Some("dangling"), |r| {
                matches!(r, Err(Error::SymlinkEscape(_)))
            }),
            (Some("../x"), |r| matches!(r, Err(Error::Escapes(_)))),
            (Some("nope"), |r| matches!(r, Err(Error::Missing { .. }))),
            (Some("file"), |r| matches!(r, Err(Error::NotADirectory(_)))),
        ];
        for (input, check) in cases {
            let got = resolve(root, *input, "abc123");
            assert!(check(&got), "{input:?}: {got:?}");
        }
    }

    #[test]
    fn files_are_read_only_inside_the_checkout() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "push-token").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("shared.Dockerfile"), "FROM busybox\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("app/leak")).unwrap();
        std::os::unix::fs::symlink("../shared.Dockerfile", root.join("app/up")).unwrap();
        std::fs::write(
            root.join("app/big"),
            vec![b'#'; MAX_DOCKERFILE_BYTES as usize + 1],
        )
        .unwrap();
        let app = root.join("app");
        for (rel, want) in [
            ("Dockerfile", Ok("FROM scratch\n")),
            ("up", Ok("FROM busybox\n")),
            ("leak", Err("outside the source repository")),
            ("../shared.Dockerfile", Err("must stay inside")),
            ("/etc/passwd", Err("must stay inside")),
            (".", Err("not a regular file")),
            ("big", Err("larger than")),
        ] {
            let got = read_file_inside(root, &app, rel);
            match (want, &got) {
                (Ok(text), Ok(t)) => assert_eq!(t, text, "{rel}"),
                (Err(part), Err(e)) => {
                    assert!(e.contains(part), "{rel}: {e}");
                    assert!(!e.contains("push-token"), "{e}");
                }
                _ => panic!("{rel}: {got:?}"),
            }
        }
    }
}
