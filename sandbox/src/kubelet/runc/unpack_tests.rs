use super::*;
use std::os::unix::fs::MetadataExt;

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32, u64),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, data, mode, uid) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn layers_stack_with_whiteouts_owners_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("rootfs");
    let root = Root::create(&root_dir).unwrap();
    root.apply_layer(
        &layer(&[
            E::Dir("etc", 0o755),
            E::File("etc/passwd", b"root", 0o644, 0),
            E::File("etc/gone", b"x", 0o644, 0),
            E::Dir("opt/keep", 0o700),
            E::File("opt/old1", b"1", 0o644, 0),
            E::File("opt/keep/f", b"k", 0o600, 0),
            E::File("bin/su", b"su", 0o4755, 0),
            E::File("home/app/owned", b"o", 0o640, 1000),
            E::Link("bin/sh", "/bin/busybox"),
            E::Hard("bin/su2", "bin/su"),
        ])[..],
    )
    .unwrap();
    root.apply_layer(
        &layer(&[
            E::File("etc/.wh.gone", b"", 0o644, 0),
            E::File("opt/.wh..wh..opq", b"", 0o644, 0),
            E::File("opt/new", b"n", 0o644, 0),
            E::File("etc/passwd", b"root2", 0o600, 0),
        ])[..],
    )
    .unwrap();
    assert_eq!(names(&root_dir.join("etc")), ["passwd"]);
    assert_eq!(
        std::fs::read(root_dir.join("etc/passwd")).unwrap(),
        b"root2"
    );
    assert_eq!(names(&root_dir.join("opt")), ["new"]);
    let su = std::fs::metadata(root_dir.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        std::fs::metadata(root_dir.join("bin/su2")).unwrap().ino(),
        su.ino()
    );
    let owned = std::fs::metadata(root_dir.join("home/app/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        std::fs::read_link(root_dir.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        read_inside(&root_dir, "etc/passwd").as_deref(),
        Some("root2")
    );
}

#[test]
fn entries_never_leave_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root_dir = dir.path().join("rootfs");
    let root = Root::create(&root_dir).unwrap();
    // A symlink to a host directory, then a file through it.
    root.apply_layer(&layer(&[E::Link("etc", &outside.display().to_string())])[..])
        .unwrap();
    let through = root.apply_layer(&layer(&[E::File("etc/passwd", b"x", 0o644, 0)])[..]);
    assert!(
        matches!(through, Err(UnpackError::ThroughLink { .. })),
        "{through:?}"
    );
    // A whiteout through the link does not delete on the host either.
    std::fs::write(outside.join("victim"), b"v").unwrap();
    let whiteout = root.apply_layer(&layer(&[E::File("etc/.wh.victim", b"", 0o644, 0)])[..]);
    assert!(whiteout.is_err());
    assert!(outside.join("victim").exists());
    // Hard links must name a file of the image.
    let hard = root
        .apply_layer(&layer(&[E::Hard("h", &outside.join("victim").display().to_string())])[..]);
    // An absolute link name is taken inside the root, where nothing of that name exists.
    assert!(
        matches!(hard, Err(UnpackError::HardLink { .. })),
        "{hard:?}"
    );
    let climb = root.apply_layer(&layer(&[E::Hard("h2", "../outside/victim")])[..]);
    assert!(climb.is_err());
    assert_eq!(names(&outside), ["victim"]);
    // A symlink in the root is read inside it, never on the host.
    root.apply_layer(&layer(&[E::Dir("e", 0o755), E::Link("e/passwd", "/etc/passwd")])[..])
        .unwrap();
    assert_eq!(read_inside(&root_dir, "e/passwd"), None);
}
