//! Extraction tests: formats, limits, and one named case for each escape found so far.

use super::testgen::{self, entry, Kind, Nest};
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
            link_stays_inside(Path::new(link), Path::new(target)),
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

fn link(t: &str) -> Kind {
    Kind::Symlink(t.as_bytes().to_vec())
}

fn hard(t: &str) -> Kind {
    Kind::HardLink(t.as_bytes().to_vec())
}

fn file(d: &str) -> Kind {
    Kind::File(d.as_bytes().to_vec())
}

/// The shape that wrote `/pwned-zip` on the host: `a -> .`, then a link five `a`s deep that is
/// lexically inside but physically at the top pointing five levels up, then a file through it.
fn symlink_chain() -> Vec<testgen::Entry> {
    vec![
        entry("a", link(".")),
        entry("a/a/a/a/a/y", link("../../../../../pwned-zip")),
        entry("y", file("pwned")),
    ]
}

fn assert_contained(nest: &Nest, before: &std::collections::BTreeMap<PathBuf, String>) {
    assert_eq!(
        &nest.outside(),
        before,
        "something outside the destination changed"
    );
    let bad = testgen::links_leaving(&nest.dest, &nest.dest_real());
    assert!(bad.is_empty(), "links leading outside: {bad:?}");
}

#[test]
fn zip_symlink_chain_cannot_write_outside() {
    let nest = Nest::new();
    let before = nest.outside();
    let err = extract(
        &testgen::zip(&symlink_chain())[..],
        &nest.dest,
        None,
        1 << 20,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::ThroughLink { name, at } if name == "a/a/a/a/a/y" && at == "a"),
        "{err}"
    );
    assert_contained(&nest, &before);
    assert!(!nest.tmp.path().join("o1/pwned-zip").exists());
}

#[test]
fn tar_symlink_chain_cannot_write_outside() {
    for archive in [
        testgen::tar(&symlink_chain()),
        testgen::tar_gz(&symlink_chain()),
    ] {
        let nest = Nest::new();
        let before = nest.outside();
        let err = extract(&archive[..], &nest.dest, None, 1 << 20).unwrap_err();
        assert!(matches!(err, Error::ThroughLink { .. }), "{err}");
        assert_contained(&nest, &before);
    }
}

#[test]
fn file_over_a_planted_link_replaces_the_link() {
    // `y -> ../secret` is refused, so plant an inside link and write over it: the write must
    // replace the link, never go through it.
    for archive in [
        testgen::tar(&[
            entry("target", file("original")),
            entry("y", link("target")),
            entry("y", file("new")),
        ]),
        testgen::zip(&[
            entry("target", file("original")),
            entry("y", link("target")),
            entry("y", file("new")),
        ]),
    ] {
        let nest = Nest::new();
        let before = nest.outside();
        extract(&archive[..], &nest.dest, None, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(nest.dest.join("target")).unwrap(),
            "original"
        );
        assert_eq!(std::fs::read_to_string(nest.dest.join("y")).unwrap(), "new");
        assert!(!nest.dest.join("y").is_symlink());
        assert_contained(&nest, &before);
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn gzip_bomb_is_bounded_after_decompression() {
    // 3 GiB of zeros as a .tar.gz, compressed lazily while it is read; the limit is 8 MiB.
    let limit = 8 << 20;
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let input = Counted {
        inner: testgen::zeros_tar_gz("zeros", 3 << 30),
        read: read.clone(),
    };
    let nest = Nest::new();
    let before = nest.outside();
    let err = extract(input, &nest.dest, None, limit).unwrap_err();
    assert!(matches!(err, Error::TooLarge(l) if l == limit), "{err}");
    let written = std::fs::metadata(nest.dest.join("zeros"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        written <= limit,
        "wrote {written} bytes past the limit of {limit}"
    );
    // The compressed stream read is a small fraction of the limit: a bound on the compressed
    // bytes alone would have let gigabytes through.
    assert!(
        read.get() < limit / 64,
        "read {} compressed bytes",
        read.get()
    );
    assert_contained(&nest, &before);
}

#[test]
fn zip_bomb_is_bounded_after_decompression() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts: zip::write::SimpleFileOptions = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for name in ["one", "two"] {
            z.start_file(name, opts).unwrap();
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..3 {
                z.write_all(&chunk).unwrap();
            }
        }
        z.finish().unwrap();
    }
    let archive = buf.into_inner();
    let limit = 4 << 20;
    assert!((archive.len() as u64) < limit / 64);
    let nest = Nest::new();
    let err = extract(&archive[..], &nest.dest, None, limit).unwrap_err();
    assert!(matches!(err, Error::TooLarge(l) if l == limit), "{err}");
    let written: u64 = ["one", "two"]
        .iter()
        .filter_map(|n| std::fs::metadata(nest.dest.join(n)).ok())
        .map(|m| m.len())
        .sum();
    assert!(written <= limit, "wrote {written} bytes");
}

#[test]
fn hard_links_out_of_the_tree_are_refused() {
    let nest = Nest::new();
    let abs_secret = nest.tmp.path().join("o1/secret");
    let abs_secret = abs_secret.to_str().unwrap();
    let cases: Vec<(Vec<testgen::Entry>, &str)> = vec![
        (vec![entry("h", hard("../secret"))], "LinkEscape"),
        (vec![entry("h", hard(abs_secret))], "LinkEscape"),
        (vec![entry("d/h", hard("d/../../secret"))], "LinkEscape"),
        // through a link planted inside: the target's walk refuses the link
        (
            vec![entry("up", link(".")), entry("h", hard("up/f"))],
            "ThroughLink",
        ),
        // to a link (a hard-linked symlink would keep its target at another depth)
        (
            vec![
                entry("a/l", link("../f")),
                entry("f", file("x")),
                entry("h", hard("a/l")),
            ],
            "HardLinkTarget",
        ),
        (vec![entry("h", hard("missing"))], "HardLinkTarget"),
        (
            vec![entry("d", Kind::Dir), entry("h", hard("d"))],
            "HardLinkTarget",
        ),
    ];
    for (entries, want) in cases {
        let nest = Nest::new();
        let before = nest.outside();
        let err = extract(&testgen::tar(&entries)[..], &nest.dest, None, 1 << 20).unwrap_err();
        let got = format!("{err:?}");
        assert!(got.starts_with(want), "{entries:?}: {got}");
        assert_contained(&nest, &before);
    }
}

#[test]
fn hard_link_inside_and_rewritten_leaves_the_original() {
    let entries = [
        entry("f", file("one")),
        entry("sub/h", hard("f")),
        entry("sub/h", file("two")),
        entry("g", hard("f")),
    ];
    let nest = Nest::new();
    assert_eq!(
        extract(&testgen::tar(&entries)[..], &nest.dest, None, 1 << 20).unwrap(),
        4
    );
    assert_eq!(std::fs::read_to_string(nest.dest.join("f")).unwrap(), "one");
    assert_eq!(
        std::fs::read_to_string(nest.dest.join("sub/h")).unwrap(),
        "two"
    );
    assert_eq!(std::fs::read_to_string(nest.dest.join("g")).unwrap(), "one");
}

#[test]
fn absolute_and_parent_entries_are_refused() {
    let nest = Nest::new();
    let abs = nest.tmp.path().join("o1/abs");
    let abs = abs.to_str().unwrap().to_string();
    for name in [
        abs.as_str(),
        "../escape",
        "a/../../escape",
        "/escape",
        "./../escape",
    ] {
        let entries = [entry(name, file("x"))];
        for archive in [
            testgen::tar(&entries),
            testgen::tar_gz(&entries),
            testgen::zip(&entries),
        ] {
            let nest = Nest::new();
            let before = nest.outside();
            let err = extract(&archive[..], &nest.dest, None, 1 << 20).unwrap_err();
            assert!(matches!(err, Error::Traversal(_)), "{name}: {err}");
            assert_contained(&nest, &before);
        }
    }
    for target in [
        abs.as_str(),
        "/etc",
        "../../secret",
        "x/../../secret",
        "x/../..",
    ] {
        let entries = [entry("l", link(target))];
        for archive in [testgen::tar(&entries), testgen::zip(&entries)] {
            let nest = Nest::new();
            let err = extract(&archive[..], &nest.dest, None, 1 << 20).unwrap_err();
            assert!(matches!(err, Error::LinkEscape { .. }), "{target}: {err}");
        }
    }
}

#[test]
fn duplicates_replace_files_and_links_but_never_directories() {
    for (entries, ok) in [
        (vec![entry("f", file("one")), entry("f", file("two"))], true),
        (
            vec![
                entry("f", link("g")),
                entry("f", Kind::Dir),
                entry("f/x", file("x")),
            ],
            true,
        ),
        (vec![entry("d", Kind::Dir), entry("d", Kind::Dir)], true),
        (
            vec![entry("d/x", file("x")), entry("d", file("over"))],
            false,
        ),
        (vec![entry("d/x", file("x")), entry("d", link("."))], false),
        (vec![entry("d", link(".")), entry("d/x", file("x"))], false),
    ] {
        for archive in [testgen::tar(&entries), testgen::zip(&entries)] {
            let nest = Nest::new();
            let before = nest.outside();
            let res = extract(&archive[..], &nest.dest, None, 1 << 20);
            assert_eq!(res.is_ok(), ok, "{entries:?}: {res:?}");
            assert_contained(&nest, &before);
        }
    }
}

#[test]
fn entry_count_is_bounded() {
    let entries: Vec<_> = (0..5).map(|i| entry(&format!("f{i}"), file("x"))).collect();
    let limits = Limits {
        bytes: 1 << 20,
        entries: 4,
    };
    for archive in [
        testgen::tar(&entries),
        testgen::tar_gz(&entries),
        testgen::zip(&entries),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let err = extract_limited(&archive[..], dir.path(), None, limits).unwrap_err();
        assert!(matches!(err, Error::TooManyEntries(4)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let five = Limits {
            entries: 5,
            ..limits
        };
        assert_eq!(
            extract_limited(&archive[..], dir.path(), None, five).unwrap(),
            5
        );
    }
}

#[test]
fn setuid_and_setgid_bits_are_dropped() {
    use std::os::unix::fs::PermissionsExt;
    let mut h = testgen::tar_header(b"tool", tar::EntryType::Regular, b"", 1);
    {
        let header = tar::Header::from_byte_slice(&h);
        let mut header = header.clone();
        header.set_mode(0o6755);
        header.set_cksum();
        h.copy_from_slice(header.as_bytes());
    }
    let mut data = h.to_vec();
    data.extend_from_slice(&[b'x'; 512]);
    data.extend_from_slice(&[0; 1024]);
    let dir = tempfile::tempdir().unwrap();
    extract(&data[..], dir.path(), None, 1 << 20).unwrap();
    let mode = std::fs::metadata(dir.path().join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn as_file_does_not_follow_a_link_in_the_destination() {
    let nest = Nest::new();
    std::fs::create_dir_all(&nest.dest).unwrap();
    std::os::unix::fs::symlink("../secret", nest.dest.join("app.jar")).unwrap();
    let before = nest.outside();
    extract(&b"jar bytes"[..], &nest.dest, Some("app.jar"), 1 << 20).unwrap();
    assert_eq!(
        std::fs::read_to_string(nest.dest.join("app.jar")).unwrap(),
        "jar bytes"
    );
    assert_eq!(nest.outside(), before);
}

#[test]
fn zip_entry_count_is_read_before_the_directory_is_indexed() {
    // One real entry, but the end record declares 65,000: refused before the zip reader
    // allocates for the declared count.
    let mut archive = testgen::zip(&[entry("f", file("x"))]);
    let eocd = archive.len() - 22;
    archive[eocd + 8..eocd + 12].copy_from_slice(&[0xe8, 0xfd, 0xe8, 0xfd]);
    let limits = Limits {
        bytes: 1 << 20,
        entries: 1000,
    };
    let dir = tempfile::tempdir().unwrap();
    let err = extract_limited(&archive[..], dir.path(), None, limits).unwrap_err();
    assert!(matches!(err, Error::TooManyEntries(1000)), "{err}");
}

#[test]
fn a_stream_cut_short_is_truncated_wherever_it_stops() {
    let big = vec![7u8; 20_000];
    let tar = tar_with(|b| {
        for name in ["a", "b"] {
            let mut h = file_header(big.len() as u64);
            b.append_data(&mut h, name, big.as_slice()).unwrap();
        }
    });
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    // The end of the first entry's data (512-byte header + 20,000 bytes padded to 20,480).
    let boundary = 512 + 20_480;
    let cases: Vec<(&str, &[u8], bool)> = vec![
        ("whole tar", &tar, true),
        ("whole tar.gz", &gz, true),
        ("tar cut at an entry boundary", &tar[..boundary], false),
        ("tar cut inside an entry", &tar[..boundary + 700], false),
        ("tar cut inside a header", &tar[..boundary + 100], false),
        (
            "tar without its end-of-archive blocks",
            &tar[..2 * boundary],
            false,
        ),
        ("tar.gz cut in the middle", &gz[..gz.len() / 2], false),
        ("tar.gz without its trailer", &gz[..gz.len() - 8], false),
    ];
    for (what, input, complete) in cases {
        let dest = tempfile::tempdir().unwrap();
        let result = extract(input, dest.path(), None, 1 << 30);
        match (result, complete) {
            (Ok(n), true) => assert_eq!(n, 2, "{what}"),
            (Err(Error::Truncated(detail)), false) => {
                assert!(!detail.is_empty(), "{what}")
            }
            (other, _) => panic!("{what}: {other:?}"),
        }
    }
}
