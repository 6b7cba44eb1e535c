use super::*;
use serde_json::json;

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p1", "namespace": "ns1", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap()
}

fn objects() -> Objects {
    let data = |pairs: &[(&str, &str)]| -> ObjectData {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    Objects {
        secrets: [("s".to_string(), data(&[("a", "1"), ("b", "2")]))].into(),
        config_maps: [("cm".to_string(), data(&[("conf", "x=y")]))].into(),
        tokens: [(("v".to_string(), "token".to_string()), "t0k".to_string())].into(),
        claims: [("data".to_string(), "/k/claims/ns1/data-u1".into())].into(),
    }
}

fn file(path: &str, data: &str, mode: u32) -> FileEntry {
    FileEntry {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        mode,
    }
}

fn content(volume: serde_json::Value) -> Result<VolumeContent> {
    let volume: Volume = serde_json::from_value(volume).unwrap();
    volume_content(&pod(), &volume, &objects())
}

#[test]
fn volume_contents() {
    let ok_cases = [
        (
            json!({"name": "v", "emptyDir": {}}),
            VolumeContent::EmptyDir,
        ),
        (
            json!({"name": "v", "hostPath": {"path": "/srv/x"}}),
            VolumeContent::HostPath("/srv/x".into()),
        ),
        (
            json!({"name": "v", "persistentVolumeClaim": {"claimName": "data"}}),
            VolumeContent::Claim("/k/claims/ns1/data-u1".into()),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "s"}}),
            VolumeContent::Files(vec![file("a", "1", 0o644), file("b", "2", 0o644)]),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "s", "defaultMode": 0o400,
                   "items": [{"key": "b", "path": "dir/bee"}, {"key": "a", "path": "a", "mode": 0o600}]}}),
            VolumeContent::Files(vec![file("dir/bee", "2", 0o400), file("a", "1", 0o600)]),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "absent", "optional": true}}),
            VolumeContent::Files(vec![]),
        ),
        (
            json!({"name": "v", "configMap": {"name": "cm"}}),
            VolumeContent::Files(vec![file("conf", "x=y", 0o644)]),
        ),
        (
            json!({"name": "v", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}),
            VolumeContent::Files(vec![
                file("name", "p1", 0o644),
                file("labels", "app=\"x\"", 0o644),
            ]),
        ),
        (
            json!({"name": "v", "projected": {"defaultMode": 0o440, "sources": [
                {"secret": {"name": "s", "items": [{"key": "a", "path": "sa"}]}},
                {"configMap": {"name": "cm"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"serviceAccountToken": {"path": "token"}}]}}),
            VolumeContent::Files(vec![
                file("sa", "1", 0o440),
                file("conf", "x=y", 0o440),
                file("ns", "ns1", 0o440),
                file("token", "t0k", 0o440),
            ]),
        ),
    ];
    for (volume, want) in ok_cases {
        assert_eq!(content(volume.clone()).unwrap(), want, "{volume}");
    }
    let err_cases = [
        (
            json!({"name": "v", "secret": {"secretName": "absent"}}),
            "secret \"absent\" not found",
        ),
        (
            json!({"name": "v", "persistentVolumeClaim": {"claimName": "unbound"}}),
            "persistentvolumeclaim \"unbound\" not found",
        ),
        (
            json!({"name": "v", "configMap": {"name": "cm", "items": [{"key": "nope", "path": "n"}]}}),
            "couldn't find key nope in ConfigMap ns1/cm",
        ),
        (
            json!({"name": "v", "secret": {"secretName": "s", "items": [{"key": "a", "path": "../x"}]}}),
            "invalid volume item path",
        ),
        (
            json!({"name": "v", "nfs": {"server": "h", "path": "/"}}),
            "only emptyDir",
        ),
    ];
    for (volume, want) in err_cases {
        let err = content(volume.clone()).unwrap_err().to_string();
        assert!(err.contains(want), "{volume}: {err}");
    }
}

#[test]
fn relative_paths() {
    for (path, ok) in [
        ("a", true),
        ("a/b", true),
        ("..a", true),
        ("", false),
        ("/a", false),
        ("a/../b", false),
    ] {
        assert_eq!(check_relative(path).is_ok(), ok, "{path}");
    }
}

#[test]
fn materializes_files_with_modes() {
    let dir = tempfile::tempdir().unwrap();
    let files = VolumeContent::Files(vec![file("d/x", "hello", 0o600)]);
    let root = materialize(dir.path(), "vol", &files).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("d/x")).unwrap(), "hello");
    let mode = std::fs::metadata(root.join("d/x"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let empty = materialize(dir.path(), "scratch", &VolumeContent::EmptyDir).unwrap();
    assert!(empty.is_dir());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    let host = VolumeContent::HostPath("/srv".into());
    assert_eq!(
        materialize(dir.path(), "h", &host).unwrap(),
        PathBuf::from("/srv")
    );
}
