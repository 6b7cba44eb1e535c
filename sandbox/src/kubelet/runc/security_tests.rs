use super::*;
use serde_json::json;

fn pod_with(container_sc: serde_json::Value, pod_sc: serde_json::Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"securityContext": pod_sc, "containers": [{"name": "c", "image": "i", "securityContext": container_sc}]},
    }))
    .unwrap();
    let container = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, container)
}

#[test]
fn container_settings_override_the_pods() {
    let (pod, c) = pod_with(
        json!({"runAsUser": 5, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "seccompProfile": {"type": "Unconfined"}}),
        json!({"runAsUser": 7, "runAsGroup": 8, "runAsNonRoot": true, "supplementalGroups": [20],
               "fsGroup": 30, "seccompProfile": {"type": "RuntimeDefault"}}),
    );
    let e = effective(&pod, &c);
    assert_eq!(e.run_as_user, Some(5));
    assert_eq!(e.run_as_group, Some(8));
    assert!(e.run_as_non_root && e.no_new_privileges && e.read_only_root && !e.privileged);
    assert_eq!(e.supplemental_groups, vec![20, 30]);
    assert_eq!(e.seccomp.unwrap().type_, "Unconfined");
    let (pod, c) = pod_with(
        json!({}),
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
    );
    assert_eq!(effective(&pod, &c).seccomp.unwrap().type_, "RuntimeDefault");
}

fn all() -> Vec<String> {
    ALL_CAPS.iter().map(|c| c.to_string()).collect()
}

fn sorted_default_in_bit_order() -> Vec<String> {
    ALL_CAPS
        .iter()
        .filter(|c| DEFAULT_CAPS.contains(c))
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn capability_sets() {
    let caps = |add: &[&str], drop: &[&str]| {
        let c = Capabilities {
            add: Some(add.iter().map(|s| s.to_string()).collect()),
            drop: Some(drop.iter().map(|s| s.to_string()).collect()),
        };
        let mut got = capabilities(false, Some(&c), &all());
        got.sort();
        got
    };
    let sorted = |list: &[&str]| {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(caps(&[], &[]), sorted(&DEFAULT_CAPS));
    assert_eq!(caps(&["NET_ADMIN"], &["ALL"]), sorted(&["CAP_NET_ADMIN"]));
    assert_eq!(caps(&["ALL"], &["CHOWN"]).len(), ALL_CAPS.len() - 1);
    assert_eq!(caps(&["cap_sys_admin"], &[]).len(), DEFAULT_CAPS.len() + 1);
    assert!(!caps(&[], &["KILL", "CAP_CHOWN"]).contains(&"CAP_KILL".to_string()));
    assert_eq!(
        caps(&[], &["KILL", "CAP_CHOWN"]).len(),
        DEFAULT_CAPS.len() - 2
    );
    assert_eq!(capabilities(true, None, &all()).len(), ALL_CAPS.len());
    assert_eq!(capabilities(false, None, &all()).len(), DEFAULT_CAPS.len());
    // What the runtime itself has bounds privileged containers (containerd's cap.Current()).
    let host = caps_from_mask(0x1fffeffffff);
    assert_eq!(host.len(), 40);
    assert!(!host.contains(&"CAP_SYS_RESOURCE".to_string()));
    assert_eq!(capabilities(true, None, &host), host);
    assert_eq!(caps_from_mask(0xa80425fb), sorted_default_in_bit_order());
    let status = "Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n";
    assert_eq!(bounding_mask(status), Some(0x1fffeffffff));
    assert_eq!(bounding_mask("nothing"), None);
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\nbroken\n";
const GROUP: &str = "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\nstaff:x:50:\n";

#[test]
fn users_resolve_like_containerd() {
    let with = |uid: Option<i64>, gid: Option<i64>, groups: Vec<i64>| Effective {
        run_as_user: uid,
        run_as_group: gid,
        supplemental_groups: groups,
        ..Default::default()
    };
    let user = |uid, gid, extra: &[u32]| User {
        uid,
        gid,
        additional_gids: extra.to_vec(),
    };
    // (settings, image user, expected)
    let cases = [
        (with(None, None, vec![]), "", user(0, 0, &[])),
        (with(None, None, vec![]), "app", user(1000, 1001, &[10])),
        (with(None, None, vec![]), "1000", user(1000, 1001, &[10])),
        (with(None, None, vec![]), "1000:50", user(1000, 50, &[10])),
        (with(None, None, vec![]), "app:staff", user(1000, 50, &[10])),
        (with(None, None, vec![]), "4242", user(4242, 0, &[])),
        (
            with(Some(1000), None, vec![]),
            "root",
            user(1000, 1001, &[10]),
        ),
        (
            with(Some(1000), Some(7), vec![50, 7]),
            "",
            user(1000, 7, &[10, 50]),
        ),
        (with(Some(77), None, vec![]), "app:staff", user(77, 0, &[])),
    ];
    for (settings, image_user, want) in cases {
        assert_eq!(
            resolve_user(&settings, image_user, PASSWD, GROUP).unwrap(),
            want,
            "{image_user} {settings:?}"
        );
    }
    let none = with(None, None, vec![]);
    assert!(resolve_user(&none, "ghost", PASSWD, GROUP)
        .unwrap_err()
        .contains("unable to find user ghost"));
    assert!(resolve_user(&none, "app:ghosts", PASSWD, GROUP)
        .unwrap_err()
        .contains("unable to find group ghosts"));
    assert!(resolve_user(&with(Some(-1), None, vec![]), "", PASSWD, GROUP).is_err());
}

#[test]
fn run_as_non_root_is_checked_like_the_kubelet() {
    let pod = "p_ns(u)";
    let strict = |uid: Option<i64>| Effective {
        run_as_non_root: true,
        run_as_user: uid,
        ..Default::default()
    };
    let root =
        "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)";
    let cases: [(Effective, &str, Result<(), String>); 8] = [
        (Effective::default(), "", Ok(())),
        (strict(None), "", Err(root.into())),
        (strict(None), "0", Err(root.into())),
        (strict(None), "0:1000", Err(root.into())),
        (strict(None), "1000", Ok(())),
        (strict(Some(1000)), "root", Ok(())),
        (
            strict(Some(0)),
            "1000",
            Err("container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: c)".into()),
        ),
        (
            strict(None),
            "app",
            Err("container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"p_ns(u)\", container: c)".into()),
        ),
    ];
    for (settings, image_user, want) in cases {
        assert_eq!(
            verify_non_root(&settings, image_user, pod, "c"),
            want,
            "{image_user}"
        );
    }
}
