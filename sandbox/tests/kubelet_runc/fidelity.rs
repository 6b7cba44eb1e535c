//! Runtime fidelity, checked from inside containers.

use std::os::unix::fs::MetadataExt;

use serde_json::json;

use crate::kubelet_support::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_fidelity_from_inside_containers() {
    let _ = images();
    let s = runc_setup();
    let status_line =
        |field: &str| format!("grep {field} /proc/self/status | cut -f2 > /dev/termination-log");
    let pods = vec![
        shell_pod("caps-default", &status_line("CapEff"), json!({})),
        shell_pod(
            "caps-edited",
            &status_line("CapEff"),
            json!({"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "CHOWN"]}}),
        ),
        shell_pod("caps-dropped", &status_line("CapEff"), json!({"capabilities": {"drop": ["CHOWN", "KILL"]}})),
        shell_pod("privileged", &status_line("CapEff"), json!({"privileged": true})),
        shell_pod(
            "no-new-privs",
            &status_line("NoNewPrivs"),
            json!({"allowPrivilegeEscalation": false}),
        ),
        shell_pod("host-users", "cat /proc/self/uid_map > /dev/termination-log", json!({})),
        {
            let mut p = shell_pod(
                "user-ns",
                "(cat /proc/self/uid_map; id -u; touch /etc/made && echo root-writable) > /dev/termination-log; \
                 touch /data/made-inside",
                json!({}),
            );
            p["spec"]["hostUsers"] = json!(false);
            p
        },
        shell_pod(
            "read-only",
            "(touch /x 2>&1; echo rc=$?; touch /data/y && echo volume-writable) > /dev/termination-log",
            json!({"readOnlyRootFilesystem": true}),
        ),
        shell_pod(
            "writable",
            "(touch /x && echo root-writable) > /dev/termination-log",
            json!({}),
        ),
        shell_pod(
            "seccomp-default",
            "(unshare -U true 2>&1; echo rc=$?; grep Seccomp: /proc/self/status) > /dev/termination-log",
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        ),
        shell_pod(
            "seccomp-unconfined",
            "(unshare -U true 2>&1; echo rc=$?; grep Seccomp: /proc/self/status) > /dev/termination-log",
            json!({"seccompProfile": {"type": "Unconfined"}}),
        ),
        {
            let mut p = shell_pod("custom-path", "echo custom > /tmp/done.txt; exit 3", json!({}));
            p["spec"]["containers"][0]["terminationMessagePath"] = json!("/tmp/done.txt");
            p
        },
    ];
    let mut limited = shell_pod(
        "limited",
        "(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
          cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) > /dev/termination-log",
        json!({}),
    );
    limited["spec"]["containers"][0]["resources"] =
        json!({"limits": {"memory": "32Mi", "cpu": "250m"}});
    // 64 MB held by the shell under a 24 MiB limit: the OOM killer ends it.
    let mut oom = shell_pod(
        "oom",
        "a=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived > /dev/termination-log",
        json!({}),
    );
    oom["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "24Mi"}});
    let mut pods = pods;
    pods.extend([limited, oom]);
    let done = run_all(&s, pods).await;
    let by_name = |name: &str| {
        done.iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap()
    };
    // containerd's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(message(by_name("caps-default")), "00000000a80425fb\n");
    // CHOWN (0) and NET_ADMIN (12) only.
    assert_eq!(message(by_name("caps-edited")), "0000000000001001\n");
    // The default set without CHOWN (0) and KILL (5).
    assert_eq!(message(by_name("caps-dropped")), "00000000a80425da\n");
    // Privileged: every capability the runtime itself has (containerd's cap.Current()).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    let all = u64::from_str_radix(bounding.trim_start_matches("CapBnd:").trim(), 16).unwrap();
    assert_eq!(
        message(by_name("privileged")),
        format!("{all:016x}\n"),
        "{:?}",
        terminated(by_name("privileged"), "c")
    );
    assert_eq!(message(by_name("no-new-privs")), "1\n");

    // The host's users: the identity map. A user namespace: its own range, root inside.
    let fields = |text: &str| -> Vec<String> {
        text.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        fields(&message(by_name("host-users"))),
        ["0", "0", "4294967295"]
    );
    let userns = by_name("user-ns");
    let text = message(userns);
    let map = fields(&text);
    assert_eq!(map[0], "0", "{text}");
    assert_eq!(map[2], "65536", "{text}");
    let host: u32 = map[1].parse().unwrap();
    assert!(host >= 65536 && host.is_multiple_of(65536), "{text}");
    assert_eq!(text.lines().nth(1), Some("0"), "root inside: {text}");
    // The image's files belong to the namespace's root: it writes where the image's root could.
    assert_eq!(text.lines().nth(2), Some("root-writable"), "{text}");
    let shifted: Vec<String> = std::fs::read_dir(s.root.path().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(&format!("-shift-{host}")))
        .collect();
    assert_eq!(
        shifted.len(),
        1,
        "one shifted copy of the image for the range: {shifted:?}"
    );
    // What root in the namespace wrote belongs to the range's first id on the host.
    let uid = userns.metadata.uid.clone().unwrap();
    let made = s
        .root
        .path()
        .join(format!("pods/{uid}/volumes/data/made-inside"));
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (host, host));

    let ro = message(by_name("read-only"));
    assert!(ro.contains("Read-only file system"), "{ro}");
    assert!(
        ro.contains("rc=1") && ro.contains("volume-writable"),
        "{ro}"
    );
    assert_eq!(message(by_name("writable")), "root-writable\n");

    // containerd's profile refuses unshare without CAP_SYS_ADMIN; unconfined, it succeeds.
    let filtered = message(by_name("seccomp-default"));
    assert!(filtered.contains("Operation not permitted"), "{filtered}");
    assert!(
        filtered.contains("rc=1") && filtered.contains("Seccomp:\t2"),
        "{filtered}"
    );
    let open = message(by_name("seccomp-unconfined"));
    assert!(
        open.contains("rc=0") && open.contains("Seccomp:\t0"),
        "{open}"
    );

    // The status names the pulled image by digest and the runc container.
    let status = &by_name("writable")
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let registry = images().busybox.split('/').next().unwrap().to_string();
    assert!(
        status
            .image_id
            .starts_with(&format!("{registry}/library/busybox@sha256:")),
        "{}",
        status.image_id
    );
    let uid = by_name("writable").metadata.uid.clone().unwrap();
    assert_eq!(
        status.container_id.as_deref(),
        Some(format!("runc://{uid}-app-c").as_str())
    );
    // Limits as cgroup settings, seen from inside; the OOM killer reported as the kubelet does.
    let limits = message(by_name("limited"));
    let lines: Vec<&str> = limits.lines().collect();
    assert_eq!(lines[0], "33554432", "{limits}");
    assert!(
        lines[1] == "25000 100000" || lines[1] == "25000",
        "{limits}"
    );
    let killed = terminated(by_name("oom"), "c").unwrap();
    assert_eq!(
        (killed.reason.as_deref(), killed.exit_code),
        (Some("OOMKilled"), 137),
        "{killed:?}"
    );
    let custom = by_name("custom-path");
    assert_eq!((message(custom), exit_code(custom)), ("custom\n".into(), 3));
    s.stop().await;
}
