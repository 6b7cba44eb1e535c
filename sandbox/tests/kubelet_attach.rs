//! Over TCP (TLS, RBAC): `pods/attach` to a container the kubelet runs with `stdin: true`, from
//! kube-rs's WebSocket client. The container keeps what it reads on stdin until end-of-file;
//! what it prints (size, first and last bytes) shows every byte arrived, in order, and that the
//! end of the session was its end-of-file. RBAC: `get` on `pods/attach` alone is refused; `get` and `create` attach.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, AttachParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const LIMIT: Duration = Duration::from_secs(30);

/// `kiln-sandbox serve --kubelet --authorization rbac`, killed when dropped.
struct Sandbox {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox"))
        .args(["serve", "--listen", "127.0.0.1:0", "--kubelet"])
        .args(["--authorization", "rbac", "--kubelet-root"])
        .arg(dir.path().join("kubelet"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let sandbox = Sandbox {
        child,
        kubeconfig,
        _dir: dir,
    };
    let line = receiver.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(line.starts_with("listening on https://"), "{line}");
    sandbox
}

async fn client(kubeconfig: &Kubeconfig) -> kube::Client {
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The admin's kubeconfig with `token` instead of the admin's.
fn with_token(kubeconfig: &Kubeconfig, token: &str) -> Kubeconfig {
    let mut scoped = kubeconfig.clone();
    for user in &mut scoped.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.token = Some(token.to_string().into());
        }
    }
    scoped
}

fn counting_pod(name: &str, once: bool) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "count", "image": "busybox", "stdin": true, "stdinOnce": once,
            "command": ["sh", "-c",
                "cat > /tmp/in; echo got $(wc -c < /tmp/in) bytes, first $(head -c 2 /tmp/in | od -An -tu1), last $(tail -c 2 /tmp/in | od -An -tu1)"],
        }]}
    }))
    .unwrap()
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Pod {
    let start = Instant::now();
    loop {
        let pod = pods.get(name).await.unwrap();
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
            return pod;
        }
        assert!(start.elapsed() < LIMIT, "pod {name} never {phase}: {pod:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn log(client: &kube::Client, name: &str) -> String {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.logs(name, &Default::default()).await.unwrap()
}

fn stdin_only() -> AttachParams {
    AttachParams::default()
        .container("count")
        .stdin(true)
        .stdout(false)
        .stderr(false)
        .max_stdin_buf_size(64 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_feeds_stdin_and_its_end_is_the_containers_eof() {
    let sandbox = start_sandbox();
    let kubeconfig = Kubeconfig::read_from(&sandbox.kubeconfig).unwrap();
    let admin = client(&kubeconfig).await;
    let pods: Api<Pod> = Api::default_namespaced(admin.clone());
    pods.create(&PostParams::default(), &counting_pod("counter", true))
        .await
        .unwrap();
    wait_phase(&pods, "counter", "Running").await;
    // Nobody attached yet: the container waits on its stdin.
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_phase(&pods, "counter", "Running").await;

    // A tenant ServiceAccount with `get` on pods/attach only is refused; `create` as well attaches.
    let accounts: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "uploader"}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::default_namespaced(admin.clone());
    let role = |verbs: serde_json::Value| -> k8s_openapi::api::rbac::v1::Role {
        serde_json::from_value(json!({
            "metadata": {"name": "attach"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods/attach"], "verbs": verbs},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            ]
        }))
        .unwrap()
    };
    roles
        .create(&PostParams::default(), &role(json!(["get"])))
        .await
        .unwrap();
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::default_namespaced(admin.clone());
    let binding = serde_json::from_value(json!({
        "metadata": {"name": "attach"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "attach"},
        "subjects": [{"kind": "ServiceAccount", "name": "uploader", "namespace": "default"}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let token = accounts
        .create_token_request("uploader", &PostParams::default(), &TokenRequest::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let tenant = client(&with_token(&kubeconfig, &token)).await;
    let tenant_pods: Api<Pod> = Api::default_namespaced(tenant);
    let refused = tenant_pods.attach("counter", &stdin_only()).await;
    let message = format!("{:?}", refused.err().expect("get alone does not attach"));
    assert!(
        message.contains("403") || message.contains("Forbidden") || message.contains("forbidden"),
        "{message}"
    );
    roles
        .replace("attach", &PostParams::default(), &{
            let mut r = role(json!(["get", "create"]));
            r.metadata.resource_version =
                roles.get("attach").await.unwrap().metadata.resource_version;
            r
        })
        .await
        .unwrap();

    // 4 MiB in uneven pieces, then end of input.
    let mut attached = tenant_pods.attach("counter", &stdin_only()).await.unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut sent = 0usize;
    for i in 0..64usize {
        let piece = vec![(i % 251) as u8; 65_536 + (i % 3)];
        stdin.write_all(&piece).await.unwrap();
        sent += piece.len();
    }
    stdin.shutdown().await.unwrap();
    let status = attached.take_status().unwrap();
    let status = tokio::time::timeout(LIMIT, status).await.unwrap();
    assert_eq!(
        status.and_then(|s| s.status).as_deref(),
        Some("Success"),
        "the session ends with a Success status"
    );
    attached.join().await.unwrap();
    wait_phase(&pods, "counter", "Succeeded").await;
    let out = log(&admin, "counter").await;
    assert_eq!(
        out.trim(),
        format!("got {sent} bytes, first 0 0, last 63 63")
    );

    // stdinOnce: the container's stdin is closed now; a container without stdin has none.
    let again = tenant_pods.attach("counter", &stdin_only()).await;
    assert!(again.is_err(), "the container ended");
    pods.create(&PostParams::default(), &{
        let mut pod = counting_pod("deaf", true);
        if let Some(spec) = pod.spec.as_mut() {
            spec.containers[0].stdin = Some(false);
            spec.containers[0].command = Some(vec!["sleep".into(), "30".into()]);
        }
        pod
    })
    .await
    .unwrap();
    wait_phase(&pods, "deaf", "Running").await;
    let deaf = tenant_pods.attach("deaf", &stdin_only()).await;
    let message = format!("{:?}", deaf.err().expect("no stdin to attach to"));
    assert!(message.contains("not started with stdin"), "{message}");
}
