//! The kubelet's runc runtime with the real runc, a real `docker-registry` on 127.0.0.1 and
//! images built locally with buildah (`scripts/make-base-images.sh`): runtime fidelity checked
//! from inside containers — capabilities, the user namespace's id map, a read-only root,
//! seccomp refusing `unshare` under `RuntimeDefault`, the termination message — plus the image's
//! entrypoint, env, user and working directory, `runAsNonRoot`, pull errors, one unpacked image
//! shared by Pods whose writes stay apart, and deletion leaving no container or mount behind.
//! Runs as root (runc, mounts).

mod kubelet_support;
mod runc_support;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::DeleteParams;
use kubelet_support::*;
use runc_support::*;
use serde_json::{json, Value};

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
    let custom = by_name("custom-path");
    assert_eq!((message(custom), exit_code(custom)), ("custom\n".into(), 3));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_config_user_checks_pull_errors_and_sharing() {
    let imgs = images();
    let s = runc_setup();
    let app = |name: &str, extra: Value| {
        let mut c = json!({"name": "c", "image": imgs.app});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        pod(name, json!({"containers": [c]}))
    };
    let script = "echo $GREETING $(pwd) $(id -u):$(id -g) > /dev/termination-log";
    let pods = vec![
        app("image-cmd", json!({})),
        app("image-args", json!({"args": [script]})),
        app(
            "pod-overrides",
            json!({
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "GREETING", "value": "pod"}],
                "workingDir": "/w",
                "securityContext": {"runAsUser": 2000, "runAsGroup": 3000},
            }),
        ),
        pod(
            "writer",
            json!({"containers": [{"name": "c", "image": imgs.busybox,
                "command": ["sh", "-c", "echo one > /written-by-writer"]}]}),
        ),
    ];
    let done = run_all(&s, pods).await;
    let msgs: Vec<String> = done.iter().map(message).collect();
    assert_eq!(msgs[0], "from-image-cmd\n");
    assert_eq!(msgs[1], "image /home/app 1000:1000\n");
    assert_eq!(msgs[2], "pod /w 2000:3000\n");
    assert_eq!(exit_code(&done[3]), 0);
    // A later Pod of the same image does not see the first one's write.
    let reader = run_all(
        &s,
        vec![pod(
            "reader",
            json!({"containers": [{"name": "c", "image": imgs.busybox, "imagePullPolicy": "Always",
                "command": ["sh", "-c", "test -e /written-by-writer; echo $? > /dev/termination-log"]}]}),
        )],
    )
    .await;
    assert_eq!(message(&reader[0]), "1\n");
    // One unpacked root per image, shared by every Pod.
    let unpacked: Vec<String> = std::fs::read_dir(s.root.path().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("sha256-") && !n.contains("-shift-"))
        .collect();
    assert_eq!(unpacked.len(), 2, "{unpacked:?}");

    // runAsNonRoot on an image running as root: refused before start, as the kubelet does.
    let created = s
        .create(pod(
            "non-root",
            json!({"containers": [{"name": "c", "image": imgs.busybox, "command": ["true"],
                "securityContext": {"runAsNonRoot": true}}]}),
        ))
        .await;
    let uid = created.metadata.uid.clone().unwrap();
    let refused = s
        .wait_for("non-root", |p| {
            waiting(p).is_some_and(|w| w.0 == "CreateContainerConfigError")
        })
        .await;
    assert_eq!(
        waiting(&refused).unwrap().1,
        format!("container has runAsNonRoot and image will run as root (pod: \"non-root_default({uid})\", container: c)")
    );
    // A missing image, and one never pulled under `Never`.
    s.create(pod(
        "missing",
        json!({"containers": [{"name": "c", "image": format!("127.0.0.1:{}/nothing/here:1", imgs.port)}]}),
    ))
    .await;
    s.create(pod(
        "never",
        json!({"containers": [{"name": "c", "image": format!("127.0.0.1:{}/test/app:2", imgs.port), "imagePullPolicy": "Never"}]}),
    ))
    .await;
    let missing = s
        .wait_for("missing", |p| {
            waiting(p).is_some_and(|w| w.0 == "ErrImagePull" || w.0 == "ImagePullBackOff")
        })
        .await;
    assert_eq!(
        missing.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    let never = s
        .wait_for("never", |p| {
            waiting(p).is_some_and(|w| w.0 == "ErrImageNeverPull")
        })
        .await;
    assert!(waiting(&never)
        .unwrap()
        .1
        .contains("is not present with pull policy of Never"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_stops_the_container_and_leaves_nothing() {
    let imgs = images();
    let s = runc_setup();
    s.create(pod(
        "sleeper",
        json!({"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": imgs.busybox,
            "command": ["sh", "-c", "echo up; exec sleep 4747"]}]}),
    ))
    .await;
    s.wait_for("sleeper", |p| phase(p) == "Running").await;
    let state = s.root.path().join("runc");
    let listed = run(Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["list", "-q"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    s.pods()
        .delete("sleeper", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("sleeper").await;
    let start = Instant::now();
    while !processes_with("sleep 4747").is_empty() {
        assert!(start.elapsed() < LIMIT, "the container outlived its Pod");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = run(Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["list", "-q"]));
    assert_eq!(listed, "");
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&s.root.path().display().to_string()))
        .map(str::to_string)
        .collect();
    assert_eq!(mounts, Vec::<String>::new());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_secrets_volumes_and_localhost_seccomp() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, PostParams};
    let private = PrivateRegistry::start("puller", "s3cret");
    let imgs = images();
    let s = runc_setup();
    let create = |kind: &str, value: Value| {
        let client = s.client.clone();
        let kind = kind.to_string();
        async move {
            if kind == "Secret" {
                let secret: Secret = serde_json::from_value(value).unwrap();
                let api: Api<Secret> = Api::namespaced(client, "default");
                api.create(&PostParams::default(), &secret).await.unwrap();
            } else {
                let map: ConfigMap = serde_json::from_value(value).unwrap();
                let api: Api<ConfigMap> = Api::namespaced(client, "default");
                api.create(&PostParams::default(), &map).await.unwrap();
            }
        }
    };
    let docker_config =
        json!({"auths": {(private.addr.clone()): {"username": "puller", "password": "s3cret"}}});
    create(
        "Secret",
        json!({"metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": docker_config.to_string()}}),
    )
    .await;
    create(
        "Secret",
        json!({"metadata": {"name": "creds"}, "stringData": {"key": "k", "other": "o"}}),
    )
    .await;
    create(
        "ConfigMap",
        json!({"metadata": {"name": "cfg"}, "data": {"one.txt": "one", "two.txt": "two"}}),
    )
    .await;
    // A Localhost profile refusing mkdir with EACCES.
    let profiles = s.root.path().join("seccomp/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("deny-mkdir.json"),
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let script = [
        "stat -c %a /secret/key /secret/..data 2>&1",
        "echo $(cat /cfg-one)",
        "echo $(cat /proj/name)",
        // 0600 and root's: unreadable for the image's user 1000 (no fsGroup).
        "cat /proj/two 2>&1",
        "echo written > /sub/f && echo sub-writable",
        "id -u",
    ]
    .join("; ");
    let pods = vec![
        pod(
            "private",
            json!({"imagePullSecrets": [{"name": "pull"}], "containers": [{"name": "c", "image": private.image,
            "args": [format!("({script}) > /dev/termination-log")],
            "volumeMounts": [
                {"name": "secret", "mountPath": "/secret"},
                {"name": "cfg", "mountPath": "/cfg-one", "subPath": "one.txt"},
                {"name": "proj", "mountPath": "/proj"},
                {"name": "scratch", "mountPath": "/sub", "subPath": "deeper/dir"},
            ]}],
            "volumes": [
                {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 0o400, "items": [{"key": "key", "path": "key"}]}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "proj", "projected": {"sources": [
                    {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                    {"configMap": {"name": "cfg", "items": [{"key": "two.txt", "path": "two", "mode": 0o600}]}},
                ]}},
                {"name": "scratch", "emptyDir": {}},
            ]}),
        ),
        shell_pod(
            "localhost-profile",
            "(mkdir /tmp/x 2>&1; echo rc=$?) > /dev/termination-log",
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/deny-mkdir.json"}}),
        ),
    ];
    // Without the Secret the private image is refused (`Always`: under `IfNotPresent` a node
    // that pulled it for another Pod runs it, as a kubelet without
    // KubeletEnsureSecretPulledImages does).
    s.create(pod(
        "anonymous",
        json!({"containers": [{"name": "c", "image": private.image, "imagePullPolicy": "Always"}]}),
    ))
    .await;
    let done = run_all(&s, pods).await;
    let private_pod = &done[0];
    assert_eq!(
        message(private_pod),
        "400\nstat: can't stat '/secret/..data': No such file or directory\none\nprivate\n\
         cat: can't open '/proj/two': Permission denied\nsub-writable\n1000\n",
        "{:?}",
        terminated(private_pod, "c")
    );
    let uid = private_pod.metadata.uid.clone().unwrap();
    let sub = s
        .root
        .path()
        .join(format!("pods/{uid}/volumes/scratch/deeper/dir/f"));
    assert_eq!(std::fs::read_to_string(sub).unwrap(), "written\n");
    let filtered = message(&done[1]);
    assert!(
        filtered.contains("Permission denied") && filtered.contains("rc=1"),
        "{filtered}"
    );
    let anonymous = s
        .wait_for("anonymous", |p| {
            waiting(p).is_some_and(|w| w.0 == "ErrImagePull" || w.0 == "ImagePullBackOff")
        })
        .await;
    assert_eq!(phase(&anonymous), "Pending");
    // A Localhost profile that does not exist: the container cannot be configured.
    s.create(shell_pod(
        "no-profile",
        "true",
        json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/none.json"}}),
    ))
    .await;
    let missing = s
        .wait_for("no-profile", |p| {
            waiting(p).is_some_and(|w| w.0 == "CreateContainerConfigError")
        })
        .await;
    assert!(waiting(&missing).unwrap().1.contains("none.json"));
    let _ = imgs;
    s.stop().await;
}

/// `kiln-sandbox serve --kubelet --runtime runc` over TCP, driven by the real kubectl.
#[test]
fn serve_with_the_runc_runtime_and_kubectl() {
    use std::io::BufRead;
    let imgs = images();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kubelet",
            "--runtime",
            "runc",
            "--kubelet-root",
        ])
        .arg(dir.path().join("kubelet"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let kubectl = |args: &[&str], stdin: Option<&str>| -> String {
        let mut c = Command::new("kubectl");
        c.args(args)
            .arg("--request-timeout=30s")
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST");
        let out = match stdin {
            Some(text) => {
                let mut c = c
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut c.stdin.take().unwrap(), text.as_bytes()).unwrap();
                c.wait_with_output().unwrap()
            }
            None => c.output().unwrap(),
        };
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let manifest = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": imgs.busybox,
            "command": ["sh", "-c", "echo hello from $(hostname); cat /etc/hostname > /dev/termination-log"],
            "securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "RuntimeDefault"}}}]}});
    kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
    kubectl(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/hello",
            "--timeout=30s",
        ],
        None,
    );
    assert_eq!(kubectl(&["logs", "hello"], None), "hello from hello\n");
    let message = kubectl(
        &[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.message}",
        ],
        None,
    );
    assert_eq!(message, "hello\n");
    kubectl(&["delete", "pod", "hello", "--wait=true"], None);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
