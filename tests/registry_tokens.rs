//! Registry credentials per namespace: `docker-registry` on 127.0.0.1 with token authentication
//! and `kiln controller` as its token server, against the sandbox (RBAC, kubelet).
//!
//! Builds in namespace A get their push and pull credentials from kiln without a `pushSecret`
//! (a ServiceAccount token projected into the build Pod for kiln's audience): a build pushes to
//! A's repository and is refused on B's. The protocol itself, with tokens from the TokenRequest
//! API: A's ServiceAccount may pull A's repositories and not B's until RBAC grants it
//! `kiln-image-puller` in B (then pull only, never push); a token for the API server's audience
//! is no registry password; and a registry token is refused once it has expired (the registry
//! allows 60 s of clock skew past `exp`, so that part waits a minute).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use support::cluster::{Cluster, Options, Storage, TOKEN_SERVICE};
use support::run_bounded;

const A: &str = "team-a";
const B: &str = "team-b";
/// Registry tokens live this long here (the default is 5 minutes).
const LIFETIME_SECS: i64 = 2;
const BUILD_LIMIT: Duration = Duration::from_secs(300);

/// One GET on the registry or the token endpoint, asking for a manifest: (status, head, body).
fn request(port: u16, path: &str, header: Option<String>) -> (u16, String, String) {
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let mut headers = vec![accept.to_string()];
    headers.extend(header);
    support::http_request(port, path, &headers)
}

/// A ServiceAccount token of `namespace/builder` for `audience` (the TokenRequest API).
fn service_account_token(cluster: &Cluster, namespace: &str, audience: Option<&str>) -> String {
    let mut args = vec!["create", "token", "builder", "-n", namespace];
    if let Some(a) = audience {
        args.extend(["--audience", a]);
    }
    cluster.kubectl_ok(&args).trim().to_string()
}

/// Asks kiln's token endpoint for `scopes` with `password`: (status, body).
fn ask(cluster: &Cluster, password: &str, scopes: &[&str]) -> (u16, Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("builder:{password}"));
    let mut path = format!("/registry/token?service={TOKEN_SERVICE}");
    for scope in scopes {
        path.push_str(&format!("&scope={scope}"));
    }
    let (status, _, body) = request(
        cluster.controller_port(),
        &path,
        Some(format!("Authorization: Basic {basic}")),
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The claims of a registry token.
fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A registry token for `scopes` (which must be answered).
fn registry_token(cluster: &Cluster, password: &str, scopes: &[&str]) -> String {
    let (status, body) = ask(cluster, password, scopes);
    assert_eq!(status, 200, "token request {scopes:?}: {body}");
    body["token"].as_str().expect("a token").to_string()
}

/// GET a manifest with a registry token: (status, head).
fn get_manifest(cluster: &Cluster, repository: &str, token: Option<&str>) -> (u16, String) {
    let port = cluster.registry.as_ref().unwrap().service.port;
    let (status, head, _) = request(
        port,
        &format!("/v2/{repository}/manifests/latest"),
        token.map(|t| format!("Authorization: Bearer {t}")),
    );
    (status, head)
}

fn build_config(name: &str, namespace: &str, output: Value) -> Value {
    json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": format!("FROM scratch\nLABEL built-for={name}\n")},
            "strategy": {"type": "Docker"},
            "output": {"to": output},
            "triggers": [{"type": "ConfigChange"}]
        }
    })
}

#[test]
fn a_namespace_pushes_and_pulls_only_its_own_repositories() {
    let cluster = Cluster::start(
        A,
        Options {
            registry_tokens: true,
            controller_args: vec![
                "--registry-token-lifetime".into(),
                LIFETIME_SECS.to_string(),
            ],
            ..Options::default()
        },
    );
    let registry = cluster.registry.as_ref().unwrap().addr();
    cluster.kubectl_ok(&["create", "namespace", B]);
    cluster.kubectl_ok(&["-n", B, "create", "serviceaccount", "builder"]);

    // Builds: A to its own ImageStream, A to B's repository by name, B to its own. None has a
    // pushSecret.
    let manifests = [
        build_config(
            "app",
            A,
            json!({"kind": "ImageStreamTag", "name": "app:latest"}),
        ),
        build_config(
            "intruder",
            A,
            json!({"kind": "DockerImage", "name": format!("{registry}/{B}/app:latest")}),
        ),
        build_config(
            "app",
            B,
            json!({"kind": "ImageStreamTag", "name": "app:latest"}),
        ),
    ];
    for (i, manifest) in manifests.iter().enumerate() {
        let path = cluster.work.path().join(format!("bc-{i}.json"));
        std::fs::write(&path, manifest.to_string()).unwrap();
        cluster.kubectl_ok(&["apply", "-f", &path.display().to_string()]);
    }
    let own = cluster.wait_build("app-1", BUILD_LIMIT);
    assert_eq!(
        own["status"]["phase"], "Complete",
        "A's build pushes to A's repository: {own}"
    );
    assert!(
        own["status"]["output"]["to"]["imageDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{own}"
    );
    // The controller already refuses to start a build pushing into another namespace's
    // repository of the internal registry (the registry would refuse it too: below).
    let intruder = cluster.wait_build("intruder-1", BUILD_LIMIT);
    assert_eq!(intruder["status"]["phase"], "Failed", "{intruder}");
    assert_eq!(
        intruder["status"]["reason"], "InvalidOutputReference",
        "{intruder}"
    );
    let b_build = {
        let deadline = Instant::now() + BUILD_LIMIT;
        loop {
            let (ok, out, _) = cluster.kubectl(&["-n", B, "get", "build", "app-1", "-o", "json"]);
            let build: Value = if ok {
                serde_json::from_str(&out).unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            let phase = build["status"]["phase"].as_str().unwrap_or("");
            if ["Complete", "Failed", "Error", "Cancelled"].contains(&phase) {
                break build;
            }
            assert!(Instant::now() < deadline, "B's build did not finish");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    assert_eq!(
        b_build["status"]["phase"], "Complete",
        "B's build pushes to B's repository: {b_build}"
    );

    // The protocol, with tokens from the TokenRequest API.
    let a_password = service_account_token(&cluster, A, Some(TOKEN_SERVICE));
    let b_password = service_account_token(&cluster, B, Some(TOKEN_SERVICE));
    let a_repo = format!("{A}/app");
    let b_repo = format!("{B}/app");

    // Without a token the registry sends the client to kiln.
    let (status, head) = get_manifest(&cluster, &a_repo, None);
    assert_eq!(status, 401, "{head}");
    assert!(
        head.contains(&format!(
            "realm=\"http://127.0.0.1:{}/registry/token\"",
            cluster.controller_port()
        )),
        "{head}"
    );

    // A pulls A's image; the token grants exactly push and pull on A's repository.
    let token = registry_token(
        &cluster,
        &a_password,
        &[&format!("repository:{a_repo}:pull,push,delete")],
    );
    let granted = claims(&token);
    assert_eq!(
        granted["access"],
        json!([{"type": "repository", "name": a_repo, "actions": ["pull", "push"]}]),
        "{granted}"
    );
    assert_eq!(granted["sub"], format!("system:serviceaccount:{A}:builder"));
    assert_eq!(granted["aud"], TOKEN_SERVICE);
    assert_eq!(
        granted["exp"].as_i64().unwrap() - granted["iat"].as_i64().unwrap(),
        LIFETIME_SECS
    );
    let (status, head) = get_manifest(&cluster, &a_repo, Some(&token));
    assert_eq!(status, 200, "A pulls A's image: {head}");
    let expiring = token;
    let expiry = granted["exp"].as_i64().unwrap();

    // A asks for B's repository: nothing is granted, and the registry refuses the pull.
    let token = registry_token(
        &cluster,
        &a_password,
        &[&format!("repository:{b_repo}:pull,push")],
    );
    assert_eq!(claims(&token)["access"], json!([]));
    let (status, head) = get_manifest(&cluster, &b_repo, Some(&token));
    assert_eq!(status, 401, "A may not pull B's image: {head}");
    assert!(head.contains("insufficient_scope"), "{head}");
    // B may.
    let token = registry_token(
        &cluster,
        &b_password,
        &[&format!("repository:{b_repo}:pull")],
    );
    let (status, head) = get_manifest(&cluster, &b_repo, Some(&token));
    assert_eq!(status, 200, "B pulls B's image: {head}");

    // RBAC in B grants A's builder pulls (kiln-image-puller), never pushes.
    cluster.kubectl_ok(&[
        "-n",
        B,
        "create",
        "rolebinding",
        "team-a-pulls",
        "--clusterrole=kiln-image-puller",
        &format!("--serviceaccount={A}:builder"),
    ]);
    let token = registry_token(
        &cluster,
        &a_password,
        &[&format!("repository:{b_repo}:pull,push")],
    );
    assert_eq!(
        claims(&token)["access"],
        json!([{"type": "repository", "name": b_repo, "actions": ["pull"]}])
    );
    let (status, head) = get_manifest(&cluster, &b_repo, Some(&token));
    assert_eq!(status, 200, "A pulls B's image once RBAC allows: {head}");

    // buildah pushing with the credential A's build Pods get (a ServiceAccount token of A for
    // kiln's audience as the password): A's repository takes the image, B's refuses it.
    let storage = Storage::new();
    let buildah = |args: &[&str]| {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(storage.root())
            .arg("--runroot")
            .arg(storage.runroot())
            .args(args);
        run_bounded(cmd, Duration::from_secs(300))
    };
    let ctr = buildah(&["from", "scratch"]);
    assert!(
        ctr.status.success(),
        "{}",
        String::from_utf8_lossy(&ctr.stderr)
    );
    let ctr = String::from_utf8_lossy(&ctr.stdout).trim().to_string();
    let committed = buildah(&["commit", "--quiet", &ctr, "pushed-by-a"]);
    assert!(
        committed.status.success(),
        "{}",
        String::from_utf8_lossy(&committed.stderr)
    );
    let authfile = cluster.work.path().join("a-auth.json");
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("serviceaccount:{a_password}"));
    std::fs::write(
        &authfile,
        json!({"auths": {registry.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let push = |repository: &str| {
        buildah(&[
            "push",
            "--tls-verify=false",
            "--authfile",
            &authfile.display().to_string(),
            "pushed-by-a",
            &format!("docker://{registry}/{repository}:pushed"),
        ])
    };
    let out = push(&format!("{A}/other"));
    assert!(
        out.status.success(),
        "A pushes to A: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push(&b_repo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "A must not push to B");
    assert!(
        stderr.contains("authentication required") || stderr.contains("unauthorized"),
        "{stderr}"
    );

    // Credentials kiln does not take: a token for the API server's audience, a made-up one, none.
    let api_token = service_account_token(&cluster, A, None);
    let (status, body) = ask(
        &cluster,
        &api_token,
        &[&format!("repository:{a_repo}:pull")],
    );
    assert_eq!(status, 401, "{body}");
    let (status, body) = ask(
        &cluster,
        "not-a-token",
        &[&format!("repository:{a_repo}:pull")],
    );
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = request(
        cluster.controller_port(),
        &format!("/registry/token?service={TOKEN_SERVICE}&scope=repository:{a_repo}:pull"),
        None,
    );
    assert_eq!(status, 401, "{body}");
    let (status, body) = ask(&cluster, &a_password, &["nonsense"]);
    assert_eq!(status, 400, "{body}");

    // The first token expires: the registry refuses it once `exp` (plus its 60 s of leeway) has
    // passed. Polled, bounded; what is asserted is that the refusal comes, and only after `exp`.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, head) = get_manifest(&cluster, &a_repo, Some(&expiring));
        if status == 401 {
            assert!(head.contains("invalid_token"), "{head}");
            assert!(chrono::Utc::now().timestamp() > expiry);
            break;
        }
        assert_eq!(status, 200, "{head}");
        assert!(
            Instant::now() < deadline,
            "the registry still accepts a token that expired at {expiry}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}
