//! Images: their configuration, pulls and pull secrets, volumes seen by their users.

use serde_json::{json, Value};

use crate::kubelet_support::*;
use crate::support::*;

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
