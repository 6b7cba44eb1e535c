//! Webhooks end to end in-process: the real router and BuildConfig cache, the sandbox API
//! server, `instantiate`, and payloads written from each provider's documented format.

mod controller_support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use controller_support::{eventually, sandbox, Harness, NS};
use k8s_openapi::api::core::v1::Secret;
use kiln::api::{Build, BuildConfig};
use kiln::webhook::verify::sign;
use kiln::webhook::Webhooks;
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::Value;
use tower::ServiceExt;

const SECRET: &str = "s3cr3t-hook";
const GITLAB_TOKEN: &str = "gl-t0ken";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `app`: every provider's trigger, the GitHub secret in a Secret; `tagged`: branch and tag globs.
async fn setup(client: &kube::Client) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hook"},
        "stringData": {"WebHookSecretKey": SECRET}
    }))
    .unwrap();
    let mut secret = secret;
    secret.data = Some(
        [(
            "WebHookSecretKey".to_string(),
            k8s_openapi::ByteString(SECRET.as_bytes().to_vec()),
        )]
        .into(),
    );
    secret.string_data = None;
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), NS);
    for (name, extra) in [
        ("app", ""),
        ("tagged", ", branches: [\"release/*\"], tags: [\"v*\"]"),
    ] {
        let yaml = format!(
            r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {{name: {name}, namespace: {NS}}}
spec:
  source: {{type: Git, git: {{uri: "https://git.example.com/app.git", ref: main}}}}
  strategy: {{type: Docker}}
  triggers:
    - {{type: GitHub, github: {{secretReference: {{name: hook}}{extra}}}}}
    - {{type: GitLab, gitlab: {{secret: {GITLAB_TOKEN}{extra}}}}}
    - {{type: Bitbucket, bitbucket: {{secret: {SECRET}{extra}}}}}
    - {{type: Generic, generic: {{secret: {SECRET}, allowEnv: true{extra}}}}}
"#
        );
        let doc = kiln::yaml::read_documents(&yaml).unwrap().remove(0);
        let bc: BuildConfig = serde_json::from_value(doc).unwrap();
        configs.create(&PostParams::default(), &bc).await.unwrap();
    }
}

struct Env {
    client: kube::Client,
    webhooks: Arc<Webhooks>,
    _server: kiln_sandbox::ApiServer,
}

async fn env() -> Env {
    controller_support::init_logs();
    let (server, client) = sandbox().await;
    setup(&client).await;
    let webhooks = Arc::new(Webhooks::start(client.clone()));
    let w = webhooks.clone();
    eventually("the webhook cache to sync", || async {
        w.is_ready().then_some(())
    })
    .await;
    Env {
        client,
        webhooks,
        _server: server,
    }
}

/// An answer: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
    raw: String,
}

impl Answer {
    fn build(&self) -> Option<&str> {
        self.body["build"].as_str()
    }
    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
}

async fn send(
    webhooks: &Webhooks,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = webhooks
        .router()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let raw = String::from_utf8_lossy(&bytes).to_string();
    assert!(
        !raw.contains(SECRET) && !raw.contains(GITLAB_TOKEN),
        "the answer leaks a secret: {raw}"
    );
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw,
    }
}

fn openshift_url(name: &str, secret: &str, kind: &str) -> String {
    format!("/apis/build.kiln.dev/v1alpha1/namespaces/{NS}/buildconfigs/{name}/webhooks/{secret}/{kind}")
}

fn plain_url(name: &str, kind: &str) -> String {
    format!("/webhooks/{NS}/{name}/{kind}")
}

fn github(event: &str, delivery: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-github-event", event.into()),
        ("x-github-delivery", delivery.into()),
        ("x-hub-signature-256", sign(SECRET.as_bytes(), body)),
    ]
}

fn gitlab(event: &str, uuid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-gitlab-event", event.into()),
        ("x-gitlab-event-uuid", uuid.into()),
        ("x-gitlab-token", GITLAB_TOKEN.into()),
    ]
}

fn bitbucket(event: &str, uuid: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-event-key", event.into()),
        ("x-request-uuid", uuid.into()),
        ("x-hub-signature", sign(SECRET.as_bytes(), body)),
    ]
}

async fn builds(client: &kube::Client) -> Vec<Build> {
    Api::<Build>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn build(client: &kube::Client, name: &str) -> Build {
    Api::<Build>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}

fn commit_of(b: &Build) -> Option<String> {
    b.spec
        .common
        .revision
        .as_ref()?
        .git
        .as_ref()?
        .commit
        .clone()
}

#[tokio::test]
async fn github_push_pins_the_commit_names_the_cause_and_hides_the_secret() {
    let e = env().await;
    let body = fixture("github-push.json");
    for url in [
        openshift_url("app", SECRET, "github"),
        plain_url("app", "github"),
    ] {
        let delivery = format!("d-{}", url.len());
        let a = send(
            &e.webhooks,
            "POST",
            &url,
            &github("push", &delivery, &body),
            body.clone(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.raw);
        assert_eq!(a.body["outcome"], "accepted");
        let b = build(&e.client, a.build().unwrap()).await;
        let git = b
            .spec
            .common
            .revision
            .as_ref()
            .and_then(|r| r.git.clone())
            .unwrap();
        assert_eq!(
            git.commit.as_deref(),
            Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
        );
        assert_eq!(
            git.author.and_then(|a| a.name).as_deref(),
            Some("Mona Lisa")
        );
        assert_eq!(
            git.committer.and_then(|c| c.name).as_deref(),
            Some("GitHub")
        );
        assert_eq!(git.message.as_deref(), Some("Serve /version"));
        let cause = &b.spec.triggered_by[0];
        assert_eq!(cause.message.as_deref(), Some("GitHub WebHook"));
        assert_eq!(
            cause
                .github_web_hook
                .as_ref()
                .and_then(|h| h.secret.as_deref()),
            Some("<secret>")
        );
        let text = serde_json::to_string(&b).unwrap();
        assert!(!text.contains(SECRET), "{text}");
    }
    assert_eq!(builds(&e.client).await.len(), 2);
    let metrics = e.webhooks.metrics().render();
    assert!(
        metrics.contains(
            r#"kiln_webhook_requests_total{provider="github",outcome="accepted",reason="build"} 2"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(SECRET));
}

#[tokio::test]
async fn a_redelivery_adopts_the_first_build() {
    let e = env().await;
    let body = fixture("github-push.json");
    let first = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "same", &body),
        body.clone(),
    )
    .await;
    let again = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "same", &body),
        body.clone(),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.build(), again.build());
    let other = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "other", &body),
        body,
    )
    .await;
    assert_ne!(other.build(), first.build());
    assert_eq!(builds(&e.client).await.len(), 2);
}

#[tokio::test]
async fn pings_mismatches_tags_and_deletions() {
    let e = env().await;
    let ping = fixture("github-ping.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("ping", "p1", &ping),
        ping,
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "ping"));

    // A branch the BuildConfig does not build: 200, no build.
    let mismatch = fixture("github-push.json").replace_all("refs/heads/main", "refs/heads/feature");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "m1", &mismatch),
        mismatch,
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "ref_mismatch"));

    // A tag: nothing without a tag glob; with one, the Build clones the tag at its commit.
    let tag = fixture("github-push-tag.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "t1", &tag),
        tag.clone(),
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "ref_mismatch"));
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("tagged", "github"),
        &github("push", "t2", &tag),
        tag,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let b = build(&e.client, a.build().unwrap()).await;
    let git_ref = b
        .spec
        .common
        .source
        .as_ref()
        .and_then(|s| s.git.as_ref())
        .and_then(|g| g.ref_.clone());
    assert_eq!(git_ref.as_deref(), Some("refs/tags/v1.2.0"));
    assert_eq!(
        commit_of(&b).as_deref(),
        Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
    );

    // A branch glob: release/2 builds on `tagged`, main does not any more.
    let release =
        fixture("github-push.json").replace_all("refs/heads/main", "refs/heads/release/2");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("tagged", "github"),
        &github("push", "r1", &release),
        release,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let main = fixture("github-push.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("tagged", "github"),
        &github("push", "r2", &main),
        main,
    )
    .await;
    assert_eq!(a.reason(), "ref_mismatch");

    // Deleted branches build nothing, from any provider.
    let deleted = fixture("github-push-deleted.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "x1", &deleted),
        deleted,
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "deleted_ref"));
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "gitlab"),
        &gitlab("Push Hook", "x2"),
        fixture("gitlab-push-deleted.json"),
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "deleted_ref"));
    let deleted = fixture("bitbucket-cloud-push-deleted.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "bitbucket"),
        &bitbucket("repo:push", "x3", &deleted),
        deleted,
    )
    .await;
    assert_eq!((a.status, a.reason()), (StatusCode::OK, "deleted_ref"));

    assert_eq!(
        builds(&e.client).await.len(),
        2,
        "only the tag and the release branch built"
    );
}

trait ReplaceAll {
    fn replace_all(&self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceAll for Vec<u8> {
    fn replace_all(&self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8_lossy(self).replace(from, to).into_bytes()
    }
}

#[tokio::test]
async fn gitlab_bitbucket_and_generic_build_the_newest_commit() {
    let e = env().await;
    // GitLab: the newest commit is checkout_sha, the last entry of commits[].
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "gitlab"),
        &gitlab("Push Hook", "g1"),
        fixture("gitlab-push.json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let b = build(&e.client, a.build().unwrap()).await;
    assert_eq!(
        commit_of(&b).as_deref(),
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    let git = b.spec.common.revision.and_then(|r| r.git).unwrap();
    assert_eq!(git.message.as_deref(), Some("fixed readme"));
    assert_eq!(
        b.spec.triggered_by[0].message.as_deref(),
        Some("GitLab WebHook")
    );
    // The URL secret shape works with the token too.
    let a = send(
        &e.webhooks,
        "POST",
        &openshift_url("tagged", GITLAB_TOKEN, "gitlab"),
        &gitlab("Tag Push Hook", "g2"),
        fixture("gitlab-tag-push.json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(
        commit_of(&build(&e.client, a.build().unwrap()).await).as_deref(),
        Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
    );

    // Bitbucket Cloud and Server.
    let cloud = fixture("bitbucket-cloud-push.json");
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "bitbucket"),
        &bitbucket("repo:push", "b1", &cloud),
        cloud,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let b = build(&e.client, a.build().unwrap()).await;
    assert_eq!(
        commit_of(&b).as_deref(),
        Some("709d658dc5b6d6afcd46049c2f332ee3f515a67d")
    );
    assert_eq!(
        b.spec.triggered_by[0]
            .bitbucket_web_hook
            .as_ref()
            .and_then(|h| h.secret.as_deref()),
        Some("<secret>")
    );
    let server = fixture("bitbucket-server-refs-changed.json");
    // Bitbucket without a signature is accepted on the URL-secret shape only.
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-event-key", "repo:refs_changed".to_string()),
        ("x-request-id", "b2".to_string()),
    ];
    let a = send(
        &e.webhooks,
        "POST",
        &openshift_url("app", SECRET, "bitbucket"),
        &headers,
        server.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(
        commit_of(&build(&e.client, a.build().unwrap()).await).as_deref(),
        Some("178864a7d521b6f5e720b386b2c2b0ef8563e0dc")
    );
    let a = send(
        &e.webhooks,
        "POST",
        &plain_url("app", "bitbucket"),
        &headers,
        server,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Generic, JSON: env honoured with allowEnv, build args and noCache passed on.
    let generic = fixture("generic.json");
    let a = send(
        &e.webhooks,
        "POST",
        &openshift_url("app", SECRET, "generic"),
        &[("content-type", "application/json".into())],
        generic,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let b = build(&e.client, a.build().unwrap()).await;
    let docker = b.spec.common.strategy.docker_strategy.clone().unwrap();
    assert_eq!(
        docker
            .env
            .iter()
            .find(|v| v.name == "EXTRA")
            .and_then(|v| v.value.as_deref()),
        Some("from-webhook")
    );
    assert_eq!(docker.build_args[0].name, "VERSION");
    assert_eq!(docker.no_cache, Some(true));
    assert_eq!(
        b.spec
            .common
            .revision
            .and_then(|r| r.git)
            .and_then(|g| g.committer)
            .and_then(|c| c.name)
            .as_deref(),
        Some("CI")
    );
    // Generic, YAML, and an empty body (the BuildConfig's ref, no pinned commit).
    let a = send(
        &e.webhooks,
        "POST",
        &openshift_url("app", SECRET, "generic"),
        &[("content-type", "application/yaml".into())],
        fixture("generic.yaml"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let a = send(
        &e.webhooks,
        "POST",
        &openshift_url("app", SECRET, "generic"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    assert_eq!(commit_of(&build(&e.client, a.build().unwrap()).await), None);
    assert_eq!(builds(&e.client).await.len(), 7);
}

#[tokio::test]
async fn refusals_answer_openshifts_statuses_and_build_nothing() {
    let e = env().await;
    let push = fixture("github-push.json");
    let good = github("push", "r", &push);
    let with = |name: &'static str, value: &str| {
        let mut h: Vec<(&str, String)> = good.iter().filter(|(n, _)| *n != name).cloned().collect();
        if !value.is_empty() {
            h.push((name, value.to_string()));
        }
        h
    };
    let malformed = b"{\"ref\": \"refs/heads/main\", ".to_vec();
    let oversize = vec![b' '; 25 * 1024 * 1024 + 1];
    let wrong_token = {
        let mut h = gitlab("Push Hook", "w");
        h.retain(|(n, _)| *n != "x-gitlab-token");
        h.push(("x-gitlab-token", "guess".into()));
        h
    };
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, String, Vec<(&str, String)>, Vec<u8>, StatusCode, &str)> = vec![
        ("GET", plain_url("app", "github"), good.clone(), push.clone(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("PUT", openshift_url("app", SECRET, "github"), good.clone(), push.clone(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("POST", format!("/apis/build.kiln.dev/v1alpha1/namespaces/{NS}/buildconfigs/app/webhooks/{SECRET}"), good.clone(), push.clone(), StatusCode::BAD_REQUEST, "bad_path"),
        ("POST", format!("/apis/build.kiln.dev/v1alpha1/namespaces/{NS}/buildconfigs/app/webhooks/{SECRET}/github/extra"), good.clone(), push.clone(), StatusCode::BAD_REQUEST, "bad_path"),
        ("POST", openshift_url("app", SECRET, "gogs"), good.clone(), push.clone(), StatusCode::NOT_FOUND, "unknown_type"),
        ("POST", plain_url("app", "github"), with("x-hub-signature-256", &sign(b"guess", &push)), push.clone(), StatusCode::UNAUTHORIZED, ""),
        ("POST", openshift_url("app", SECRET, "github"), with("x-hub-signature-256", ""), push.clone(), StatusCode::UNAUTHORIZED, ""),
        ("POST", plain_url("app", "github"), with("x-hub-signature-256", ""), push.clone(), StatusCode::UNAUTHORIZED, ""),
        ("POST", plain_url("app", "gitlab"), wrong_token, fixture("gitlab-push.json"), StatusCode::UNAUTHORIZED, ""),
        ("POST", plain_url("app", "github"), github("push", "big", &oversize), oversize, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("POST", plain_url("app", "github"), github("push", "mal", &malformed), malformed.clone(), StatusCode::BAD_REQUEST, "malformed_payload"),
        ("POST", plain_url("app", "github"), with("x-github-event", "issues"), push.clone(), StatusCode::BAD_REQUEST, "unsupported_event"),
        ("POST", plain_url("app", "github"), with("x-github-event", ""), push.clone(), StatusCode::BAD_REQUEST, "missing_event"),
        ("POST", plain_url("app", "github"), with("content-type", "application/x-www-form-urlencoded"), push.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type"),
        ("POST", openshift_url("app", SECRET, "generic"), vec![("content-type", "application/json".into())], malformed, StatusCode::BAD_REQUEST, "malformed_payload"),
    ];
    for (method, url, headers, body, status, reason) in cases {
        let a = send(&e.webhooks, method, &url, &headers, body).await;
        assert_eq!(
            (a.status, a.reason()),
            (status, reason),
            "{method} {reason}: {}",
            a.raw
        );
        assert_ne!(a.body["outcome"], "accepted");
    }
    // An unknown BuildConfig, no trigger of the type and a wrong URL secret: one 401 body.
    let mut bare: BuildConfig = Api::<BuildConfig>::namespaced(e.client.clone(), NS)
        .get("app")
        .await
        .unwrap();
    bare.metadata = kube::api::ObjectMeta {
        name: Some("bare".into()),
        namespace: Some(NS.into()),
        ..Default::default()
    };
    bare.spec.triggers.retain(|t| t.generic.is_none());
    Api::<BuildConfig>::namespaced(e.client.clone(), NS)
        .create(&PostParams::default(), &bare)
        .await
        .unwrap();
    let generic = vec![("content-type", "application/json".to_string())];
    let w = e.webhooks.clone();
    eventually("bare in the cache", || async {
        send(
            &w,
            "POST",
            &openshift_url("bare", SECRET, "generic"),
            &generic,
            b"{}".to_vec(),
        )
        .await;
        (w.metrics().count("generic", "refused", "no_trigger") > 0).then_some(())
    })
    .await;
    let mut bodies = Vec::new();
    for (name, secret) in [("nosuch", SECRET), ("bare", SECRET), ("app", "wrong")] {
        let a = send(
            &e.webhooks,
            "POST",
            &openshift_url(name, secret, "generic"),
            &generic,
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
        bodies.push(a.raw.replace(&format!("\\\"{name}\\\""), "NAME"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert!(builds(&e.client).await.is_empty());
    let metrics = e.webhooks.metrics().render();
    for line in [
        r#"{provider="github",outcome="refused",reason="bad_signature"}"#,
        r#"{provider="github",outcome="refused",reason="missing_signature"}"#,
        r#"{provider="gitlab",outcome="refused",reason="bad_signature"}"#,
        r#"{provider="generic",outcome="refused",reason="unknown_buildconfig"}"#,
        r#"{provider="generic",outcome="refused",reason="no_trigger"}"#,
        r#"{provider="unknown",outcome="refused",reason="unknown_type"}"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_missing_webhook_secret_refuses_every_request() {
    let (server, client) = sandbox().await;
    setup(&client).await;
    Api::<Secret>::namespaced(client.clone(), NS)
        .delete("hook", &Default::default())
        .await
        .unwrap();
    let webhooks = Webhooks::start(client.clone());
    eventually("sync", || async { webhooks.is_ready().then_some(()) }).await;
    let body = fixture("github-push.json");
    let a = send(
        &webhooks,
        "POST",
        &plain_url("app", "github"),
        &github("push", "s1", &body),
        body,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(builds(&client).await.is_empty());
    drop(server);
}

/// 100 concurrent deliveries of one event (a provider retrying, a proxy duplicating), with the
/// controller and the webhook receiver killed and restarted in the middle: exactly one Build,
/// and every answered delivery names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redeliveries_create_one_build_across_a_restart() {
    let mut h = Harness::start().await;
    setup(&h.client).await;
    let body = Arc::new(fixture("github-push.json"));
    let mut names = Vec::new();
    let mut webhooks = Arc::new(Webhooks::start(h.client.clone()));
    for round in 0..2 {
        let w = webhooks.clone();
        eventually("sync", || async { w.is_ready().then_some(()) }).await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (w, body) = (webhooks.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                send(
                    &w,
                    "POST",
                    &plain_url("app", "github"),
                    &github("push", "one-delivery", &body),
                    body.to_vec(),
                )
                .await
            }));
        }
        if round == 0 {
            // Kill everything mid-flight, as a crash would; the killed deliveries are retried.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            for t in &tasks {
                t.abort();
            }
            h.kill_controller();
        }
        for t in tasks {
            match t.await {
                Ok(a) => {
                    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
                    names.push(a.build().unwrap().to_string());
                }
                Err(e) => assert!(e.is_cancelled()),
            }
        }
        if round == 0 {
            h.start_controller().await;
            webhooks = Arc::new(Webhooks::start(h.client.clone()));
        }
    }
    // The retries of the killed deliveries.
    let retries = 100 - names.len();
    let mut tasks = Vec::new();
    for _ in 0..retries {
        let (w, body) = (webhooks.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            send(
                &w,
                "POST",
                &plain_url("app", "github"),
                &github("push", "one-delivery", &body),
                body.to_vec(),
            )
            .await
        }));
    }
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        names.push(a.build().unwrap().to_string());
    }
    assert_eq!(names.len(), 100);
    let all = builds(&h.client).await;
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|b| b.name_any()).collect::<Vec<_>>()
    );
    assert!(names.iter().all(|n| *n == all[0].name_any()), "{names:?}");
}

/// Sends one request over HTTP/1.0 to `addr` and returns the status code and body.
async fn over_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

/// The controller's own HTTP server serves the webhooks from its BuildConfig cache: a generic
/// webhook sent over HTTP starts a build, and `/metrics` scraped from the same server counts it
/// in the webhook family after the controller's families, in one OpenMetrics exposition. The real
/// `kiln start-build --list-webhooks` prints the same BuildConfig's URLs with the secret hidden.
#[tokio::test]
async fn the_controller_serves_webhooks_and_their_counters_over_http() {
    let harness = Harness::start().await;
    setup(&harness.client).await;
    let webhooks = Arc::new(Webhooks::on_store(
        harness.client.clone(),
        harness.running().build_configs(),
    ));
    let w = webhooks.clone();
    eventually("the controller's BuildConfig cache to sync", || async {
        w.is_ready().then_some(())
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = kiln::cli::controller_routes(harness.running(), webhooks.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The controller's cache may not hold the BuildConfigs yet: retry until the build starts.
    let url = openshift_url("app", SECRET, "generic");
    let body = fixture("generic.json");
    let headers = [("content-type", "application/json".to_string())];
    let answer = eventually("the webhook to start a build", || async {
        let (code, text) = over_http(addr, "POST", &url, &headers, &body).await;
        (code == 200).then_some(text)
    })
    .await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let name = answer["build"].as_str().unwrap().to_string();
    assert_eq!(build(&harness.client, &name).await.name_any(), name);
    let (code, _) = over_http(
        addr,
        "POST",
        &openshift_url("app", "wrong", "generic"),
        &headers,
        &body,
    )
    .await;
    assert_eq!(code, 401);

    let (code, metrics) = over_http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(code, 200);
    for line in [
        "kiln_webhook_requests_total{provider=\"generic\",outcome=\"accepted\",reason=\"build\"} 1\n",
        "kiln_webhook_requests_total{provider=\"generic\",outcome=\"refused\",reason=\"wrong_secret\"} 1\n",
        "# TYPE kiln_webhook_requests counter\n",
        "# TYPE kiln_reconciles counter\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert_eq!(metrics.matches("# EOF").count(), 1, "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    assert!(!metrics.contains(SECRET), "{metrics}");

    // `kiln start-build --list-webhooks`, the real binary, against the same API server over TCP.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    tokio::spawn(kiln_sandbox::serve::run(harness.server.clone(), api));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kiln_sandbox::serve::write_kubeconfig(&kubeconfig, api_addr).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["start-build", "app", "-n", NS, "--list-webhooks"])
        .args(["--webhook-url", "https://hooks.example.com"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !stdout.contains(SECRET) && !stdout.contains(GITLAB_TOKEN),
        "{stdout}"
    );
    for provider in ["github", "gitlab", "bitbucket", "generic"] {
        let shown = format!(
            "\tURL:\thttps://hooks.example.com/apis/build.kiln.dev/v1alpha1/namespaces/{NS}/buildconfigs/app/webhooks/<secret>/{provider}\n"
        );
        assert!(stdout.contains(&shown), "missing {shown:?} in\n{stdout}");
    }
    // The URL it printed, with the real secret put back, is the one the server answers.
    let printed = stdout
        .lines()
        .find(|l| l.contains("/generic") && l.contains("<secret>"))
        .and_then(|l| l.split('\t').next_back())
        .unwrap()
        .replace("https://hooks.example.com", "")
        .replace("<secret>", SECRET);
    let (code, _) = over_http(addr, "POST", &printed, &headers, &body).await;
    assert_eq!(code, 200);
}
