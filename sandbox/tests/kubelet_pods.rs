//! The local kubelet against the in-process API server: real processes in mount namespaces.

mod kubelet_support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use kubelet_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_container_emptydir_secret_and_termination_message() {
    let s = Setup::start();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"token": "s3cret-value"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // mountPaths that do not exist on the host: created inside the container only.
    let work = "/sandbox-test-work/shared";
    s.create(json!({
        "metadata": {"name": "happy"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "work", "emptyDir": {}},
                        {"name": "sec", "secret": {"secretName": "creds"}}],
            "initContainers": [{
                "name": "writer", "image": "busybox",
                "command": ["sh", "-c", format!("echo from-init > {work}/note; echo init says hi")],
                "volumeMounts": [{"name": "work", "mountPath": work}]
            }],
            "containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c"],
                "args": [format!(
                    "set -e; n=$(cat {work}/note); t=$(cat /sandbox-test-sec/token); \
                     [ \"$TOKEN\" = s3cret-value ]; [ \"$t\" = \"$TOKEN\" ]; \
                     [ \"$POD\" = happy ]; [ \"$(hostname)\" = happy ]; \
                     [ \"$(pwd)\" = {work} ]; \
                     if touch /sandbox-test-sec/x 2>/dev/null; then echo writable; exit 9; fi; \
                     echo \"read $n\"; printf 'digest=sha256:abc %s' \"$n\" > /dev/termination-log")],
                "workingDir": work,
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "volumeMounts": [{"name": "work", "mountPath": work},
                                 {"name": "sec", "mountPath": "/sandbox-test-sec"}]
            }]
        }
    }))
    .await;
    let pod = s.wait_for("happy", finished).await;
    let status = pod.status.clone().unwrap();
    let main = &status.container_statuses.as_ref().unwrap()[0];
    let term = main.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(phase(&pod), "Succeeded", "{status:#?}");
    assert_eq!(term.exit_code, 0);
    assert_eq!(term.reason.as_deref(), Some("Completed"));
    assert_eq!(term.message.as_deref(), Some("digest=sha256:abc from-init"));
    assert!(term.started_at.is_some() && term.finished_at.is_some());
    assert_eq!(main.image, "busybox");
    assert!(!main.ready);
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    let init_term = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((init.name.as_str(), init_term.exit_code), ("writer", 0));
    assert!(status.start_time.is_some());
    // Created unbound, bound to the kubelet's node through pods/binding.
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    assert_eq!(node.as_deref(), Some("sandbox-node"));
    let logs = s.server.logs();
    let read = |c: &str| {
        let snap = logs.read("default", "happy", c).unwrap();
        assert!(snap.finished);
        snap.lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<String>()
    };
    assert_eq!(read("writer"), "init says hi\n");
    assert_eq!(read("main"), "read from-init\n");
    // Nothing of the container's file system reached the host.
    assert!(!Path::new("/sandbox-test-work").exists());
    assert!(!Path::new("/sandbox-test-sec").exists());

    let pod_dir = s
        .root
        .path()
        .join("pods")
        .join(pod.metadata.uid.clone().unwrap());
    assert!(
        pod_dir.join("volumes/work/note").exists(),
        "emptyDir kept until deletion"
    );
    s.pods()
        .delete("happy", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("happy").await;
    let start = Instant::now();
    while pod_dir.exists() {
        assert!(start.elapsed() < LIMIT, "pod dir left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logs.read("default", "happy", "main").is_none());
    assert_eq!(mounts_under(s.root.path()), Vec::<String>::new());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_report_exit_codes_and_log_fallback() {
    let s = Setup::start();
    s.create(json!({
        "metadata": {"name": "sad"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "fails", "image": "busybox",
             "command": ["sh", "-c", "echo first; sleep 0.1; echo boom >&2; exit 3"],
             "terminationMessagePolicy": "FallbackToLogsOnError"},
            {"name": "quiet", "image": "busybox", "command": ["sh", "-c", "echo x; exit 4"]},
            {"name": "ok", "image": "busybox", "command": ["true"]}
        ]}
    }))
    .await;
    let pod = s.wait_for("sad", finished).await;
    assert_eq!(phase(&pod), "Failed");
    let fails = terminated(&pod, "fails").unwrap();
    assert_eq!(fails.exit_code, 3);
    assert_eq!(fails.reason.as_deref(), Some("Error"));
    assert_eq!(fails.message.as_deref(), Some("first\nboom\n"));
    let quiet = terminated(&pod, "quiet").unwrap();
    assert_eq!((quiet.exit_code, quiet.message), (4, None));
    assert_eq!(terminated(&pod, "ok").unwrap().exit_code, 0);

    // A failing init container stops the Pod before its containers run.
    s.create(json!({
        "metadata": {"name": "bad-init"},
        "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 7"]}],
            "containers": [{"name": "never", "image": "busybox", "command": ["true"]}]}
    }))
    .await;
    let pod = s.wait_for("bad-init", finished).await;
    assert_eq!(phase(&pod), "Failed");
    assert_eq!(terminated(&pod, "setup").unwrap().exit_code, 7);
    assert!(terminated(&pod, "never").is_none());
    let main = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let reason = main
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .reason
        .clone();
    assert_eq!(reason.as_deref(), Some("PodInitializing"));

    // An unknown command: the shell of `env` reports 127, as a shell would.
    s.create(json!({
        "metadata": {"name": "missing"},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["/no/such/program"]}]}
    }))
    .await;
    let pod = s.wait_for("missing", finished).await;
    assert_eq!(phase(&pod), "Failed");
    assert_eq!(terminated(&pod, "c").unwrap().exit_code, 127);

    // An image with no entry in the image map and no command cannot run; nor can a volume
    // kind the kubelet does not implement.
    s.create(json!({
        "metadata": {"name": "unmapped"},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "example.com/unknown:1"}]}
    }))
    .await;
    s.create(json!({
        "metadata": {"name": "nfs"},
        "spec": {"restartPolicy": "Never",
            "volumes": [{"name": "v", "nfs": {"server": "h", "path": "/"}}],
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    }))
    .await;
    for (name, want) in [
        ("unmapped", "no entrypoint in the image map"),
        ("nfs", "only emptyDir"),
    ] {
        let pod = s.wait_for(name, finished).await;
        assert_eq!(phase(&pod), "Failed", "{name}");
        let t = terminated(&pod, "c").unwrap();
        assert_eq!(
            (t.exit_code, t.reason.as_deref()),
            (128, Some("ContainerCannotRun"))
        );
        assert!(t.message.unwrap_or_default().contains(want), "{name}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_kills_the_pod() {
    let s = Setup::start();
    let started = Instant::now();
    s.create(json!({
        "metadata": {"name": "slow"},
        "spec": {"restartPolicy": "Never", "activeDeadlineSeconds": 1, "containers": [
            {"name": "sleeper", "image": "busybox", "command": ["sleep", "4242"]}
        ]}
    }))
    .await;
    // The Pod is marked Failed at the deadline; the container's end is reported after.
    let pod = s
        .wait_for("slow", |p| {
            finished(p) && terminated(p, "sleeper").is_some()
        })
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(1),
        "killed before the deadline"
    );
    let status = pod.status.clone().unwrap();
    assert_eq!(phase(&pod), "Failed");
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    // `sleep` as PID 1 ignores SIGTERM, so it is SIGKILLed after the grace period.
    let t = terminated(&pod, "sleeper").unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (137, Some("Error")));
    assert_eq!(processes_with("sleep 4242"), Vec::<String>::new());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_kills_removes_and_cleans_up() {
    let s = Setup::start();
    // Bound to the kubelet's node: the API server deletes gracefully and waits for it.
    let bound = s
        .create(json!({
            "metadata": {"name": "bound"},
            "spec": {"nodeName": "sandbox-node", "restartPolicy": "Never",
                "volumes": [{"name": "scratch", "emptyDir": {}}],
                "containers": [{"name": "c", "image": "busybox",
                    "command": ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo trap-set; while :; do sleep 0.05; done; : 4343"],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/sandbox-test-scratch"}]}]}
        }))
        .await;
    // Force-deleted (grace 0): the API server removes it at once; the kubelet sees DELETED.
    let loose = s
        .create(json!({
            "metadata": {"name": "loose"},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "4343"]}]}
        }))
        .await;
    for name in ["bound", "loose"] {
        s.wait_for(name, |p| phase(p) == "Running").await;
    }
    // SIGTERM before the trap is set would be ignored (the shell is PID 1) and end in SIGKILL.
    let start = Instant::now();
    let trap_set = || {
        let log = s.server.logs().read("default", "bound", "c");
        log.is_some_and(|l| l.lines.iter().any(|l| l.text == "trap-set\n"))
    };
    while !trap_set() {
        assert!(start.elapsed() < LIMIT, "the trap was never set");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = |pod: &k8s_openapi::api::core::v1::Pod| {
        s.root
            .path()
            .join("pods")
            .join(pod.metadata.uid.clone().unwrap())
    };
    assert!(dir(&bound).exists() && dir(&loose).exists());
    assert!(!processes_with("sleep 4343").is_empty());

    // Record what the graceful deletion writes before the object goes.
    let api = s.pods();
    let events = tokio::spawn(async move {
        let config = watcher::Config::default().fields("metadata.name=bound");
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut seen = Vec::new();
        while let Some(Ok(event)) = stream.next().await {
            match event {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => seen.push(pod),
                watcher::Event::Delete(_) => break,
                _ => {}
            }
        }
        seen
    });
    s.pods()
        .delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    s.pods().delete("loose", &now).await.unwrap();
    s.wait_gone("bound").await;
    s.wait_gone("loose").await;
    wait_removed(&dir(&bound)).await;
    wait_removed(&dir(&loose)).await;
    let seen = tokio::time::timeout(LIMIT, events).await.unwrap().unwrap();
    // The trap handled SIGTERM: exit 0 reported while the Pod was terminating.
    let last = seen.last().unwrap();
    assert!(last.metadata.deletion_timestamp.is_some());
    assert_eq!(terminated(last, "c").unwrap().exit_code, 0, "{seen:#?}");
    let logs = s.server.logs();
    assert!(logs.read("default", "bound", "c").is_none());
    assert_eq!(processes_with("sleep 4343"), Vec::<String>::new());
    assert_eq!(processes_with("4343"), Vec::<String>::new());
    assert_eq!(mounts_under(s.root.path()), Vec::<String>::new());
    assert!(!Path::new("/sandbox-test-scratch").exists());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_of_every_kind_at_their_paths() {
    let s = Setup::start();
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"}, "data": {"mode": "fast", "app.conf": "x=1\n"}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "keys"}, "stringData": {"id": "k-1"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let script = r#"set -e
[ "$MODE" = fast ]
[ "$CFG_mode" = fast ]
[ "$(cat /etc/sandbox-test/app.conf)" = x=1 ]
[ "$(cat /sandbox-test-proj/id)" = k-1 ]
[ "$(cat /sandbox-test-proj/meta/name)" = vols ]
[ "$(cat /sandbox-test-proj/mode)" = fast ]
[ "$(cat /sandbox-test-one.conf)" = x=1 ]
[ "$(stat -c %a /etc/sandbox-test/app.conf)" = 400 ]
[ -d /sandbox-test-data/sub ] || exit 11
echo sub > /sandbox-test-data/sub/file
if touch /sandbox-test-ro/x 2>/dev/null; then exit 12; fi
[ "$(cat /sandbox-test-ro/sub/file)" = sub ]
if touch /etc/sandbox-test/new 2>/dev/null; then exit 13; fi
touch /etc/sandbox-test-written-in-container
echo ok"#;
    s.create(json!({
        "metadata": {"name": "vols"},
        "spec": {"restartPolicy": "Never",
            "volumes": [
                {"name": "cfg", "configMap": {"name": "settings", "defaultMode": 0o400}},
                {"name": "data", "emptyDir": {}},
                {"name": "proj", "projected": {"sources": [
                    {"secret": {"name": "keys"}},
                    {"configMap": {"name": "settings", "items": [{"key": "mode", "path": "mode"}]}},
                    {"downwardAPI": {"items": [{"path": "meta/name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
                ]}}
            ],
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/sandbox-test"},
                    {"name": "cfg", "mountPath": "/sandbox-test-one.conf", "subPath": "app.conf"},
                    {"name": "proj", "mountPath": "/sandbox-test-proj"},
                    {"name": "data", "mountPath": "/sandbox-test-data/sub", "subPath": "sub"},
                    {"name": "data", "mountPath": "/sandbox-test-ro", "readOnly": true}
                ]}]}
    }))
    .await;
    let pod = s.wait_for("vols", finished).await;
    let t = terminated(&pod, "c").unwrap();
    let log = s.server.logs().read("default", "vols", "c").unwrap();
    let text: String = log.lines.iter().map(|l| l.text.clone()).collect();
    assert_eq!(
        (phase(&pod), t.exit_code, text.as_str()),
        ("Succeeded", 0, "ok\n")
    );
    for host_path in [
        "/etc/sandbox-test",
        "/etc/sandbox-test-written-in-container",
        "/sandbox-test-one.conf",
        "/sandbox-test-proj",
        "/sandbox-test-data",
        "/sandbox-test-ro",
    ] {
        assert!(!Path::new(host_path).exists(), "{host_path} on the host");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_bound_on_first_use_kept_across_pods_and_removed_with_the_claim() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let s = Setup::start();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    let created = claims.create(&PostParams::default(), &claim).await.unwrap();
    let pod = |name: &str, script: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                "volumeMounts": [{"name": "data", "mountPath": "/sandbox-test-claim"}]}]
            }
        })
    };
    s.create(pod("writer", "echo kept > /sandbox-test-claim/note"))
        .await;
    assert_eq!(phase(&s.wait_for("writer", finished).await), "Succeeded");
    let bound = claims.get("data").await.unwrap().status.unwrap();
    assert_eq!(bound.phase.as_deref(), Some("Bound"));
    assert_eq!(bound.capacity.unwrap()["storage"].0, "1Gi");
    let dir = s
        .root
        .path()
        .join("claims/default")
        .join(format!("data-{}", created.metadata.uid.unwrap()));
    // The writer's Pod goes; its claim's volume stays for the next Pod.
    s.pods()
        .delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    s.wait_gone("writer").await;
    assert!(dir.join("note").is_file());
    s.create(pod(
        "reader",
        "[ \"$(cat /sandbox-test-claim/note)\" = kept ]",
    ))
    .await;
    assert_eq!(phase(&s.wait_for("reader", finished).await), "Succeeded");

    // A Pod naming a claim that does not exist waits for it.
    let missing = json!({
        "metadata": {"name": "waiting"},
        "spec": {"restartPolicy": "Never",
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}],
                 "containers": [{"name": "main", "image": "busybox", "command": ["true"],
                                 "volumeMounts": [{"name": "d", "mountPath": "/sandbox-test-claim"}]}]}
    });
    s.create(missing).await;
    let waiting = s
        .wait_for("waiting", |p| {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            statuses.is_some_and(|c| {
                c[0].state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.message.as_deref())
                    .is_some_and(|m| m.contains("persistentvolumeclaim \"nope\" not found"))
            })
        })
        .await;
    assert_eq!(phase(&waiting), "Pending");

    // Deleting the claim removes its volume.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    wait_removed(&dir).await;
    s.stop().await;
}
