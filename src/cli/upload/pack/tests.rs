//! What each input produces, read back through the builder's own extraction.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// Produces the input and unpacks it as the clone step does; returns the unpacked directory.
fn roundtrip(input: &Input) -> tempfile::TempDir {
    let mut bytes = Vec::new();
    input.produce(&mut bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("source");
    let as_file = input.as_file();
    crate::builder::archive::extract(&bytes[..], &dest, as_file.as_deref(), 1 << 30).unwrap();
    out
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join("source").join(rel)).unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Bob")
        .env("GIT_COMMITTER_EMAIL", "bob@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_directory_keeps_files_modes_and_links_without_following_them() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("app/bin")).unwrap();
    std::fs::write(src.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(src.path().join("app/bin/run"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        src.path().join("app/bin/run"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("bin/run", src.path().join("app/start")).unwrap();
    let out = roundtrip(&Input::Dir(src.path().to_path_buf()));
    assert_eq!(read(out.path(), "Dockerfile"), "FROM scratch\n");
    let run = out.path().join("source/app/bin/run");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let start = out.path().join("source/app/start");
    assert_eq!(
        std::fs::read_link(&start).unwrap(),
        Path::new("bin/run"),
        "links are sent as links"
    );
}

#[test]
fn a_link_out_of_the_directory_is_sent_as_a_link_never_its_target() {
    let src = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "do not send").unwrap();
    std::os::unix::fs::symlink(&secret, src.path().join("leak")).unwrap();
    let mut bytes = Vec::new();
    Input::Dir(src.path().to_path_buf())
        .produce(&mut bytes)
        .unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut links = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
        assert!(!content.contains("do not send"));
        if entry.header().entry_type().is_symlink() {
            links.push(entry.link_name().unwrap().unwrap().into_owned());
        }
    }
    assert_eq!(links, [secret]);
    // ... which the build then refuses, naming it.
    let dest = tempfile::tempdir().unwrap();
    let err = crate::builder::archive::extract(&bytes[..], &dest.path().join("s"), None, 1 << 30)
        .unwrap_err()
        .to_string();
    assert!(err.contains("leak"), "{err}");
}

#[test]
fn a_file_is_sent_as_it_is_under_its_name() {
    let src = tempfile::tempdir().unwrap();
    let jar = src.path().join("app.jar");
    std::fs::write(&jar, b"PK\x03\x04 not really a jar").unwrap();
    let input = Input::File(jar.clone());
    assert_eq!(input.as_file().as_deref(), Some("app.jar"));
    let mut bytes = Vec::new();
    input.produce(&mut bytes).unwrap();
    assert_eq!(bytes, std::fs::read(&jar).unwrap());
    let out = roundtrip(&input);
    assert_eq!(
        std::fs::read(out.path().join("source/app.jar")).unwrap(),
        b"PK\x03\x04 not really a jar"
    );
}

#[test]
fn an_archive_is_sent_as_it_is() {
    let src = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    tar.append_data(&mut header, "hello.txt", &b"hi\n"[..])
        .unwrap();
    let archive = src.path().join("ctx.tar");
    std::fs::write(&archive, tar.into_inner().unwrap()).unwrap();
    let input = Input::Archive(archive.clone());
    assert_eq!(input.as_file(), None);
    let mut bytes = Vec::new();
    input.produce(&mut bytes).unwrap();
    assert_eq!(bytes, std::fs::read(&archive).unwrap());
    assert_eq!(read(roundtrip(&input).path(), "hello.txt"), "hi\n");
}

#[test]
fn a_repository_sends_tracked_files_at_the_commit() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::create_dir(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/run"), "v1\n").unwrap();
    std::fs::set_permissions(dir.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("bin/run", dir.join("run")).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first\n\nbody"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("bin/run"), "v2\n").unwrap();
    git(dir, &["commit", "-q", "-am", "second"]);
    // Neither an untracked file nor an uncommitted change is sent.
    std::fs::write(dir.join("untracked"), "x").unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM changed\n").unwrap();

    let head = Input::Repo {
        dir: dir.join("bin"),
        commit: None,
    };
    let out = roundtrip(&head);
    assert_eq!(read(out.path(), "bin/run"), "v2\n");
    assert_eq!(read(out.path(), "Dockerfile"), "FROM scratch\n");
    assert!(!out.path().join("source/untracked").exists());
    assert!(!out.path().join("source/.git").exists());
    let run = out.path().join("source/bin/run");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(out.path().join("source/run")).unwrap(),
        Path::new("bin/run")
    );

    let older = Input::Repo {
        dir: dir.to_path_buf(),
        commit: Some(first[..8].to_string()),
    };
    assert_eq!(read(roundtrip(&older).path(), "bin/run"), "v1\n");
    let commit = older.commit().unwrap().unwrap();
    assert_eq!(commit.id, first);
    assert_eq!(commit.author, ("Ada".into(), "ada@example.com".into()));
    assert_eq!(commit.committer, ("Bob".into(), "bob@example.com".into()));
    assert_eq!(commit.message, "first\n\nbody");

    let missing = Input::Repo {
        dir: dir.to_path_buf(),
        commit: Some("0123456789".into()),
    };
    let err = missing.commit().unwrap_err().to_string();
    assert!(err.contains("commit 0123456789"), "{err}");
}

#[test]
fn inputs_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let missing = dir.path().join("missing");
    for (input, ok, text) in [
        (Input::Dir(dir.path().into()), true, ""),
        (Input::Dir(file.clone()), false, "--from-dir"),
        (Input::File(file.clone()), true, ""),
        (Input::File(dir.path().into()), false, "not a regular file"),
        (Input::Archive(missing.clone()), false, "--from-archive"),
        (
            Input::Repo {
                dir: missing,
                commit: None,
            },
            false,
            "--from-repo",
        ),
    ] {
        let result = input.check();
        assert_eq!(result.is_ok(), ok, "{input:?}");
        if let Err(e) = result {
            assert!(e.to_string().contains(text), "{e}");
        }
    }
    let plain = Input::Repo {
        dir: dir.path().into(),
        commit: None,
    };
    assert!(plain
        .commit()
        .unwrap_err()
        .to_string()
        .contains("git repository"));
}

#[test]
fn the_channel_writer_hands_over_bounded_chunks_in_order() {
    let (sender, mut receiver) = mpsc::channel(1);
    let producer = std::thread::spawn(move || {
        let mut w = ChannelWriter::new(sender);
        for i in 0..300u32 {
            w.write_all(&vec![(i % 256) as u8; 1000]).unwrap();
        }
        w.flush().unwrap();
    });
    let mut got = Vec::new();
    while let Some(chunk) = receiver.blocking_recv() {
        assert!(chunk.len() <= CHUNK);
        got.extend(chunk);
    }
    producer.join().unwrap();
    assert_eq!(got.len(), 300_000);
    assert!(got
        .chunks(1000)
        .enumerate()
        .all(|(i, c)| c.iter().all(|b| *b == (i % 256) as u8)));
    // A consumer that went away stops the producer with an error instead of blocking it.
    let (sender, receiver) = mpsc::channel(1);
    drop(receiver);
    let mut w = ChannelWriter::new(sender);
    assert!(w.write_all(&vec![0u8; CHUNK * 2]).is_err());
}
