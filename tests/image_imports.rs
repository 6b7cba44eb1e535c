//! ImageStream imports with the real controller on the in-process sandbox and a real
//! `docker-registry` on 127.0.0.1: a tag importing from the registry gets its digest; `oc
//! new-build`'s shape (output stream, base stream importing an external image, a BuildConfig with
//! ConfigChange and ImageChange triggers) builds once on creation and once per new base digest
//! with a short scheduled interval; failures show as the tag's `ImportSuccess` condition with the
//! registry's message; pull secrets of the `default` ServiceAccount authenticate; `reference: true`
//! tags and tags of other tags are followed without asking a registry. Build Pods are scripted.

mod controller_support;
mod support;

use std::time::Duration;

use controller_support::{digest, eventually, Harness, NS};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kiln::api::image_stream::{TagEventCondition, IMPORT_REQUEST_ANNOTATION};
use kiln::api::{Build, BuildConfig, ImageStream};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::json;
use support::Registry;

/// The scheduled-import interval the controller runs with here.
const INTERVAL: Duration = Duration::from_secs(1);

/// Pushes a one-layer image whose layer holds `content` to `reference`; returns its digest.
async fn push(reference: &str, content: &str, basic: Option<(&str, &str)>) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let parsed: Reference = reference.parse().unwrap();
    let auth = basic.map_or(RegistryAuth::Anonymous, |(u, p)| {
        RegistryAuth::Basic(u.into(), p.into())
    });
    let layer = ImageLayer::new(
        content.as_bytes().to_vec(),
        "application/vnd.oci.image.layer.v1.tar".into(),
        None,
    );
    let config = Config::new(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );
    client
        .push(&parsed, &[layer], config, &auth, None)
        .await
        .unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
    client.fetch_manifest_digest(&parsed, &auth).await.unwrap()
}

/// A harness whose controller re-imports scheduled tags every [`INTERVAL`].
async fn harness() -> Harness {
    let mut h = Harness::start().await;
    let mut settings = controller_support::settings();
    settings.import_interval = INTERVAL;
    h.start_controller_with(settings).await;
    h
}

async fn create_stream(h: &Harness, spec: serde_json::Value, name: &str) {
    let is: ImageStream = serde_json::from_value(json!({
        "apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": name, "namespace": NS}, "spec": spec
    }))
    .unwrap();
    Api::<ImageStream>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &is)
        .await
        .unwrap();
}

/// The current (pull spec, digest) of `stream:tag`, once it has one.
async fn wait_image(h: &Harness, stream: &str, tag: &str, digest: &str) -> String {
    eventually(&format!("{stream}:{tag} to be {digest}"), || async {
        let is = h.image_stream(stream).await?;
        let list = is.status?.tags.into_iter().find(|t| t.tag == tag)?;
        let current = list.items.first()?;
        (current.image == digest).then(|| current.docker_image_reference.clone())
    })
    .await
}

/// The `ImportSuccess` condition of `stream:tag`, once one matches `check`.
async fn wait_condition(
    h: &Harness,
    stream: &str,
    tag: &str,
    check: impl Fn(&TagEventCondition) -> bool,
) -> TagEventCondition {
    eventually(&format!("a condition on {stream}:{tag}"), || async {
        let is = h.image_stream(stream).await?;
        let list = is.status?.tags.into_iter().find(|t| t.tag == tag)?;
        list.conditions
            .into_iter()
            .find(|c| c.type_ == "ImportSuccess" && check(c))
    })
    .await
}

/// Asks for a new import of every imported tag of `stream`, as `kiln import-image` does.
async fn request_import(h: &Harness, stream: &str, token: &str) {
    Api::<ImageStream>::namespaced(h.client.clone(), NS)
        .patch(
            stream,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {IMPORT_REQUEST_ANNOTATION: token}}})),
        )
        .await
        .unwrap();
}

async fn app_builds(h: &Harness) -> Vec<Build> {
    h.builds()
        .await
        .into_iter()
        .filter(|b| b.name_any().starts_with("app-"))
        .collect()
}

fn from_of(build: &Build) -> String {
    build
        .spec
        .common
        .strategy
        .docker_strategy
        .as_ref()
        .and_then(|d| d.from.as_ref())
        .and_then(|f| f.name.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_build_shape_builds_once_on_creation_and_once_per_new_upstream_digest() {
    let registry = Registry::start(None);
    let upstream = format!("{}/up/base:1", registry.addr());
    let first = push(&upstream, "one", None).await;
    let h = harness().await;

    // `oc new-build`'s objects: the output stream, the base stream importing the external image
    // (scheduled), and the BuildConfig with ConfigChange and ImageChange triggers.
    create_stream(&h, json!({}), "app").await;
    create_stream(
        &h,
        json!({"tags": [{"name": "1", "from": {"kind": "DockerImage", "name": upstream},
                          "importPolicy": {"insecure": true, "scheduled": true},
                          "referencePolicy": {"type": "Source"}}]}),
        "base",
    )
    .await;
    let pull_spec = wait_image(&h, "base", "1", &first).await;
    assert_eq!(pull_spec, format!("{}/up/base@{first}", registry.addr()));
    h.create_bc(&controller_support::bc_yaml(
        "app",
        "Serial",
        "  triggers:\n  - type: ConfigChange\n  - type: ImageChange\n    imageChange: {}\n",
    ).replace(
        "    type: Docker\n",
        "    type: Docker\n    dockerStrategy:\n      from:\n        kind: ImageStreamTag\n        name: base:1\n",
    ))
    .await;
    let built = h.complete("app-1", &digest(1)).await;
    assert_eq!(from_of(&built), pull_spec);
    // Several scheduled re-imports of the same digest later: still one build.
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(app_builds(&h).await.len(), 1, "one build on creation");
    assert_eq!(
        wait_image(&h, "base", "1", &first).await,
        pull_spec,
        "re-importing the same digest records nothing"
    );

    // A new upstream image: the next scheduled import records it, and the app builds once.
    let second = push(&upstream, "two", None).await;
    assert_ne!(first, second);
    let new_spec = wait_image(&h, "base", "1", &second).await;
    let rebuilt = h.complete("app-2", &digest(2)).await;
    assert_eq!(from_of(&rebuilt), new_spec);
    assert_eq!(
        rebuilt.spec.triggered_by[0].message.as_deref(),
        Some("Image change")
    );
    tokio::time::sleep(INTERVAL * 3).await;
    let names: Vec<String> = app_builds(&h).await.iter().map(|b| b.name_any()).collect();
    assert_eq!(
        names,
        ["app-1", "app-2"],
        "exactly one build per new base digest"
    );
    let history = h.tag_images("base", "1").await;
    assert_eq!(history, [second, first]);
    let bc = Api::<BuildConfig>::namespaced(h.client.clone(), NS)
        .get("app")
        .await
        .unwrap();
    let recorded = &bc.status.unwrap().image_change_triggers;
    assert_eq!(
        recorded[0].last_triggered_image_id.as_deref(),
        Some(new_spec.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_failures_show_the_condition_with_the_registrys_message() {
    let registry = Registry::start(None);
    let h = harness().await;
    let missing = format!("{}/up/missing:1", registry.addr());
    create_stream(
        &h,
        json!({"tags": [
            {"name": "missing", "from": {"kind": "DockerImage", "name": missing},
             "importPolicy": {"insecure": true}},
            // The registry speaks plain HTTP: without `insecure` the import must fail.
            {"name": "secure", "from": {"kind": "DockerImage", "name": missing}},
            {"name": "bad", "from": {"kind": "Image", "name": "x"}}
        ]}),
        "base",
    )
    .await;
    let not_found = wait_condition(&h, "base", "missing", |_| true).await;
    assert_eq!(not_found.status, "False");
    assert_eq!(not_found.reason.as_deref(), Some("NotFound"));
    let message = not_found.message.unwrap_or_default();
    assert!(
        message.contains(&missing) && message.to_lowercase().contains("manifest unknown"),
        "{message}"
    );
    let secure = wait_condition(&h, "base", "secure", |_| true).await;
    assert_eq!(secure.reason.as_deref(), Some("InternalError"));
    assert!(!secure.message.unwrap_or_default().is_empty());
    let bad = wait_condition(&h, "base", "bad", |_| true).await;
    assert_eq!(bad.reason.as_deref(), Some("InvalidImageReference"));
    assert!(bad
        .message
        .unwrap_or_default()
        .contains("\"Image\" is not supported"));

    // Not scheduled: nothing is imported again until asked; asked, the tag gets its image and
    // the condition goes.
    let pushed = push(&missing, "late", None).await;
    tokio::time::sleep(INTERVAL * 2).await;
    assert!(h.tag_images("base", "missing").await.is_empty());
    request_import(&h, "base", "request-1").await;
    wait_image(&h, "base", "missing", &pushed).await;
    let is = h.image_stream("base").await.unwrap();
    let status = is.status.unwrap();
    assert_eq!(status.observed_import_request.as_deref(), Some("request-1"));
    let tag = status.tags.iter().find(|t| t.tag == "missing").unwrap();
    assert!(tag.conditions.is_empty(), "{:?}", tag.conditions);
    let secure = status.tags.iter().find(|t| t.tag == "secure").unwrap();
    assert!(secure.items.is_empty() && !secure.conditions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_service_accounts_pull_secrets_authenticate_imports() {
    let registry = Registry::start(Some(("puller", "s3cret")));
    let image = format!("{}/private/base:1", registry.addr());
    let pushed = push(&image, "private", Some(("puller", "s3cret"))).await;
    let h = harness().await;
    create_stream(
        &h,
        json!({"tags": [{"name": "1", "from": {"kind": "DockerImage", "name": image},
                          "importPolicy": {"insecure": true}}]}),
        "base",
    )
    .await;
    let refused = wait_condition(&h, "base", "1", |_| true).await;
    assert_eq!(
        refused.reason.as_deref(),
        Some("Unauthorized"),
        "{refused:?}"
    );

    let config = json!({"auths": {registry.addr(): {"username": "puller", "password": "s3cret"}}});
    let mut secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pull", "namespace": NS},
        "type": "kubernetes.io/dockerconfigjson"
    }))
    .unwrap();
    secret.data = Some(std::collections::BTreeMap::from([(
        ".dockerconfigjson".to_string(),
        k8s_openapi::ByteString(config.to_string().into_bytes()),
    )]));
    Api::<Secret>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // The namespace's `default` ServiceAccount names it as a pull secret (as `kubectl patch
    // serviceaccount default` or `oc secrets link default pull --for=pull` do).
    Api::<ServiceAccount>::namespaced(h.client.clone(), NS)
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"imagePullSecrets": [{"name": "pull"}]})),
        )
        .await
        .unwrap();
    request_import(&h, "base", "with-secret").await;
    wait_image(&h, "base", "1", &pushed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_tags_and_tags_of_other_tags_follow_without_a_registry() {
    let registry = Registry::start(None);
    let upstream = format!("{}/up/base:1", registry.addr());
    let pushed = push(&upstream, "one", None).await;
    let h = harness().await;
    create_stream(
        &h,
        json!({"tags": [
            {"name": "1", "from": {"kind": "DockerImage", "name": upstream},
             "importPolicy": {"insecure": true}},
            // Nothing listens on port 1: a reference is never asked of a registry.
            {"name": "ref", "from": {"kind": "DockerImage", "name": "127.0.0.1:1/up/x:1"},
             "reference": true},
            {"name": "alias", "from": {"kind": "ImageStreamTag", "name": "base:1"}}
        ]}),
        "base",
    )
    .await;
    let pull_spec = wait_image(&h, "base", "1", &pushed).await;
    assert_eq!(wait_image(&h, "base", "alias", &pushed).await, pull_spec);
    assert_eq!(
        wait_image(&h, "base", "ref", "").await,
        "127.0.0.1:1/up/x:1"
    );
    // Another stream's tag by ImageStreamImage.
    create_stream(
        &h,
        json!({"tags": [{"name": "pinned", "from": {"kind": "ImageStreamImage", "name": format!("base@{pushed}")}}]}),
        "other",
    )
    .await;
    assert_eq!(wait_image(&h, "other", "pinned", &pushed).await, pull_spec);
    let is = h.image_stream("base").await.unwrap();
    assert!(is
        .status
        .unwrap()
        .tags
        .iter()
        .all(|t| t.conditions.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_namespaces_tag_is_followed_only_when_the_builder_account_may_pull_it() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let mut h = Harness::start_with(kiln_sandbox::ServerConfig {
        authorization: kiln_sandbox::Authorization::Rbac,
        ..kiln_sandbox::ServerConfig::default()
    })
    .await;
    let mut settings = controller_support::settings();
    settings.import_interval = INTERVAL;
    h.start_controller_with(settings).await;
    create_stream(
        &h,
        json!({"tags": [{"name": "1", "from": {"kind": "DockerImage", "name": "quay.io/x/base:1"},
                          "reference": true}]}),
        "base",
    )
    .await;
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(h.client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let team: Api<ImageStream> = Api::namespaced(h.client.clone(), "team");
    let mirror: ImageStream = serde_json::from_value(json!({
        "apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": "mirror", "namespace": "team"},
        "spec": {"tags": [{"name": "1", "from": {"kind": "ImageStreamTag", "namespace": NS, "name": "base:1"}}]}
    }))
    .unwrap();
    team.create(&PostParams::default(), &mirror).await.unwrap();
    let refused = eventually("the refusal", || async {
        let is = team.get("mirror").await.ok()?;
        is.status?.tags.first()?.conditions.first().cloned()
    })
    .await;
    assert_eq!(refused.reason.as_deref(), Some("Forbidden"));
    let message = refused.message.unwrap_or_default();
    assert!(
        message.contains("team/builder") && message.contains("kiln-image-puller"),
        "{message}"
    );

    // Pull access for team's builder account in the source namespace: the tag follows.
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "puller", "namespace": NS},
        "rules": [{"apiGroups": ["image.kiln.dev"], "resources": ["imagestreams/layers"], "verbs": ["get"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "team-pulls", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "puller"},
        "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": "team"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    team.patch(
        "mirror",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {IMPORT_REQUEST_ANNOTATION: "after-grant"}}}),
        ),
    )
    .await
    .unwrap();
    let followed = eventually("the tag to follow", || async {
        let is = team.get("mirror").await.ok()?;
        let tag = is.status?.tags.into_iter().next()?;
        (tag.conditions.is_empty())
            .then(|| tag.items.first().map(|e| e.docker_image_reference.clone()))
            .flatten()
    })
    .await;
    assert_eq!(followed, "quay.io/x/base:1");
}

/// Runs the real `kiln import-image` with `args` against `kubeconfig`: (success, stdout, stderr).
async fn import_image(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("import-image")
        .args(args)
        .args(["-n", NS, "--timeout", "20"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiln_import_image_creates_imports_again_and_reports_failures_like_oc() {
    let registry = Registry::start(None);
    let upstream = format!("{}/up/base:1", registry.addr());
    let first = push(&upstream, "one", None).await;
    // The default (15 minute) schedule: every import here is a requested one.
    let h = Harness::start().await;
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    tokio::spawn(kiln_sandbox::serve::run(h.server.clone(), api));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kiln_sandbox::serve::write_kubeconfig(&kubeconfig, api_addr).unwrap();

    let (ok, _, err) = import_image(&kubeconfig, &["base:1", "--from", &upstream]).await;
    assert!(!ok);
    assert!(
        err.contains("does not exist; pass --confirm to create it"),
        "{err}"
    );

    let args = [
        "base:1",
        "--from",
        &upstream,
        "--confirm",
        "--insecure",
        "--scheduled",
    ];
    let (ok, out, err) = import_image(&kubeconfig, &args).await;
    assert!(ok, "{out}{err}");
    let want = format!("base:1 -> {}/up/base@{first}", registry.addr());
    assert!(out.contains(&want), "{out}");
    let is = h.image_stream("base").await.unwrap();
    let policy = is.spec.tags[0].import_policy.clone().unwrap();
    assert_eq!(
        (policy.scheduled, policy.insecure),
        (Some(true), Some(true))
    );

    // A new upstream image, imported when asked (the schedule is 15 minutes away).
    let second = push(&upstream, "two", None).await;
    let (ok, out, err) = import_image(&kubeconfig, &["base:1"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("base:1 -> {}/up/base@{second}", registry.addr())),
        "{out}"
    );
    assert_eq!(h.tag_images("base", "1").await, [second, first]);

    let missing = format!("{}/up/missing:1", registry.addr());
    let (ok, out, err) = import_image(
        &kubeconfig,
        &["base:2", "--from", &missing, "--confirm", "--insecure"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("importing base:2 failed: NotFound:") && err.contains(&missing),
        "{err}"
    );
}
