//! The API behaviours kiln relies on, checked against the sandbox and, on request, against a real
//! cluster, so the sandbox cannot drift from Kubernetes where it matters to kiln.
//!
//! Every check runs against the in-process sandbox (CEL rules on; the authorization checks with
//! `--authorization rbac`; TokenReview, which kiln's registry token server uses) in the normal
//! test run. To run
//! the same checks against a cluster (kiln's CRDs are applied; each run uses its own namespace,
//! deleted at the end):
//!
//! ```text
//! KILN_CONFORMANCE_KUBECONFIG=$HOME/.kube/config cargo test --test api_conformance -- --ignored
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kiln::api::{Build, BuildConfig, BuildPhase, BuildStatus};
use kiln_sandbox::{ApiServer, Authorization, ServerConfig};
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::json;

type Check = fn(Client, String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every check, by name.
const CHECKS: [(&str, Check); 9] = [
    ("a second create of a name is AlreadyExists", |c, ns| {
        Box::pin(create_twice_conflicts(c, ns))
    }),
    (
        "a write from a stale resourceVersion is refused",
        |c, ns| Box::pin(stale_write_conflicts(c, ns)),
    ),
    ("a status write takes only the status", |c, ns| {
        Box::pin(status_write_takes_only_status(c, ns))
    }),
    (
        "a label-selected list finds exactly the matches",
        |c, ns| Box::pin(label_selected_list(c, ns)),
    ),
    (
        "a watch delivers each write at the version it returned",
        |c, ns| Box::pin(watch_delivers_written_versions(c, ns)),
    ),
    ("deleting a BuildConfig removes its Builds", |c, ns| {
        Box::pin(owner_cascade(c, ns))
    }),
    ("a Build's spec is immutable", |c, ns| {
        Box::pin(build_spec_immutable(c, ns))
    }),
    ("spec.revision may be set once", |c, ns| {
        Box::pin(revision_set_once(c, ns))
    }),
    (
        "a Lease is taken by compare-and-swap, and its spec validated",
        |c, ns| Box::pin(lease_compare_and_swap(c, ns)),
    ),
];

/// Makes a client of the same cluster that authenticates with a bearer token.
type Mint = Arc<dyn Fn(&str) -> Client + Send + Sync>;

type AuthCheck = fn(Client, Mint, String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Checks of what authorization answers (the sandbox runs them with `--authorization rbac`).
const AUTH_CHECKS: [(&str, AuthCheck); 3] = [
    (
        "a refused request is Forbidden with the apiserver's message",
        |c, mint, ns| Box::pin(refused_request_is_forbidden(c, mint, ns)),
    ),
    (
        "a SubjectAccessReview answers as RBAC grants",
        |c, _, ns| Box::pin(subject_access_review_follows_rbac(c, ns)),
    ),
    (
        "a TokenReview authenticates a token for the audiences it names only",
        |c, mint, ns| Box::pin(token_review_checks_audiences(c, mint, ns)),
    ),
];

const BUILD_CONFIG: &str = "app";

fn build_config() -> BuildConfig {
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": BUILD_CONFIG},
        "spec": {"source": {"git": {"uri": "https://git.example.com/app.git"}},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}}}
    }))
    .expect("a valid BuildConfig")
}

fn build(name: &str, labels: serde_json::Value) -> Build {
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": name, "labels": labels},
        "spec": {"source": {"git": {"uri": "https://git.example.com/app.git"}},
            "strategy": {"type": "Docker"}, "triggeredBy": [{"message": "Manually triggered"}]}
    }))
    .expect("a valid Build")
}

fn status_code(result: Result<impl Sized, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("expected an API status, got {other}"),
    }
}

async fn create_twice_conflicts(client: Client, ns: String) {
    let api: Api<Build> = Api::namespaced(client, &ns);
    let first = build("app-1", json!({}));
    api.create(&PostParams::default(), &first).await.unwrap();
    match api.create(&PostParams::default(), &first).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"))
        }
        other => panic!("second create: {other:?}"),
    }
}

/// Writes `status.lastVersion = version` on top of `base` (guarded by its resourceVersion).
async fn write_last_version(
    api: &Api<BuildConfig>,
    base: &BuildConfig,
    version: i64,
) -> Result<BuildConfig, kube::Error> {
    let mut next = base.clone();
    next.status
        .get_or_insert_with(Default::default)
        .last_version = version;
    api.replace_status(BUILD_CONFIG, &PostParams::default(), &next)
        .await
}

async fn stale_write_conflicts(client: Client, ns: String) {
    let api: Api<BuildConfig> = Api::namespaced(client, &ns);
    let created = api
        .create(&PostParams::default(), &build_config())
        .await
        .unwrap();
    let written = write_last_version(&api, &created, 1).await.unwrap();
    assert_ne!(written.resource_version(), created.resource_version());
    let stale = write_last_version(&api, &created, 2).await;
    assert_eq!(
        status_code(stale),
        409,
        "the write was based on the old version"
    );
    let now = api.get(BUILD_CONFIG).await.unwrap();
    assert_eq!(now.status.map(|s| s.last_version), Some(1));
}

async fn status_write_takes_only_status(client: Client, ns: String) {
    // The controller caches finished Builds without spec and labels and may base a status write
    // on such a copy: the spec and labels it sends must not land.
    let api: Api<Build> = Api::namespaced(client, &ns);
    let created = api
        .create(
            &PostParams::default(),
            &build("app-1", json!({"team": "a"})),
        )
        .await
        .unwrap();
    let mut slim = created.clone();
    slim.metadata.labels = None;
    slim.spec = Default::default();
    slim.status = Some(BuildStatus {
        phase: BuildPhase::Complete,
        ..BuildStatus::default()
    });
    let written = api
        .replace_status("app-1", &PostParams::default(), &slim)
        .await
        .unwrap();
    assert_eq!(
        written.status.as_ref().map(|s| s.phase),
        Some(BuildPhase::Complete)
    );
    assert_eq!(written.spec, created.spec, "the spec is untouched");
    assert_eq!(written.labels(), created.labels(), "labels are untouched");
}

async fn label_selected_list(client: Client, ns: String) {
    let api: Api<Build> = Api::namespaced(client, &ns);
    for (name, labels) in [
        ("app-1", json!({"config": "app", "request": "r1"})),
        ("app-2", json!({"config": "app", "request": "r2"})),
        ("other-1", json!({"config": "other", "request": "r1"})),
    ] {
        api.create(&PostParams::default(), &build(name, labels))
            .await
            .unwrap();
    }
    let found = api
        .list(&ListParams::default().labels("config=app,request=r1"))
        .await
        .unwrap();
    let names: Vec<String> = found.items.iter().map(|b| b.name_any()).collect();
    assert_eq!(names, ["app-1"]);
}

async fn watch_delivers_written_versions(client: Client, ns: String) {
    let api: Api<BuildConfig> = Api::namespaced(client, &ns);
    let created = api
        .create(&PostParams::default(), &build_config())
        .await
        .unwrap();
    let from = created.resource_version().unwrap_or_default();
    let stream = api
        .watch(&WatchParams::default().timeout(20), &from)
        .await
        .unwrap();
    let written = write_last_version(&api, &created, 1).await.unwrap();
    let mut stream = stream.boxed();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no event for the write");
        match stream.try_next().await.unwrap() {
            Some(WatchEvent::Modified(bc)) => {
                assert_eq!(bc.resource_version(), written.resource_version());
                assert_eq!(bc.status.map(|s| s.last_version), Some(1));
                return;
            }
            Some(WatchEvent::Bookmark(_)) => continue,
            other => panic!("unexpected watch event {other:?}"),
        }
    }
}

async fn owner_cascade(client: Client, ns: String) {
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &ns);
    let builds: Api<Build> = Api::namespaced(client, &ns);
    let bc = configs
        .create(&PostParams::default(), &build_config())
        .await
        .unwrap();
    let mut owned = build("app-1", json!({}));
    owned.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "build.kiln.dev/v1alpha1".into(),
            kind: "BuildConfig".into(),
            name: BUILD_CONFIG.into(),
            uid: bc.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: None,
        },
    ]);
    builds.create(&PostParams::default(), &owned).await.unwrap();
    configs
        .delete(BUILD_CONFIG, &DeleteParams::background())
        .await
        .unwrap();
    // Garbage collection is asynchronous on a cluster.
    let deadline = Instant::now() + Duration::from_secs(60);
    while builds.get_opt("app-1").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the owned Build was not collected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn build_spec_immutable(client: Client, ns: String) {
    let api: Api<Build> = Api::namespaced(client, &ns);
    api.create(&PostParams::default(), &build("app-1", json!({})))
        .await
        .unwrap();
    let patch =
        json!({"spec": {"source": {"git": {"uri": "https://git.example.com/elsewhere.git"}}}});
    let changed = api
        .patch("app-1", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    assert_eq!(status_code(changed), 422);
    let cancel = json!({"spec": {"cancel": true}});
    let cancelled = api
        .patch("app-1", &PatchParams::default(), &Patch::Merge(&cancel))
        .await;
    assert_eq!(status_code(cancelled), 200, "cancel may be turned on");
    let undo = json!({"spec": {"cancel": false}});
    let undone = api
        .patch("app-1", &PatchParams::default(), &Patch::Merge(&undo))
        .await;
    assert_eq!(status_code(undone), 422, "cancel cannot be undone");
}

async fn revision_set_once(client: Client, ns: String) {
    let api: Api<Build> = Api::namespaced(client, &ns);
    api.create(&PostParams::default(), &build("app-1", json!({})))
        .await
        .unwrap();
    let revision =
        |commit: &str| json!({"spec": {"revision": {"type": "Git", "git": {"commit": commit}}}});
    let first = api
        .patch(
            "app-1",
            &PatchParams::default(),
            &Patch::Merge(&revision("abc0")),
        )
        .await;
    assert_eq!(status_code(first), 200, "the revision may be recorded");
    let second = api
        .patch(
            "app-1",
            &PatchParams::default(),
            &Patch::Merge(&revision("def0")),
        )
        .await;
    assert_eq!(status_code(second), 422, "and never changed");
}

/// ServiceAccount `conformance` in `ns` and a token for it (TokenRequest).
/// What leader election relies on (controller/leader): a Lease is read with `get` (404 when
/// missing), created once (the second create is AlreadyExists), and replaced only from the
/// resourceVersion the writer read: of two replicas racing from the same read, one wins and the
/// other gets 409. An unconditional replace is allowed (the elector never sends one). The spec
/// round-trips (MicroTimes at microseconds), and a non-positive duration or a negative
/// transitions count is Invalid.
async fn lease_compare_and_swap(client: Client, ns: String) {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    let api: Api<Lease> = Api::namespaced(client, &ns);
    assert!(api.get_opt("kiln").await.unwrap().is_none());
    let now = Timestamp::from_microsecond(1_790_000_000_123_456).unwrap();
    let lease = |holder: &str, transitions: i32| Lease {
        metadata: ObjectMeta {
            name: Some("kiln".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    };
    let created = api
        .create(&PostParams::default(), &lease("a", 0))
        .await
        .unwrap();
    assert_eq!(created.spec, lease("a", 0).spec, "the spec round-trips");
    assert_eq!(
        status_code(api.create(&PostParams::default(), &lease("b", 0)).await),
        409
    );
    // b and c both read `created` and try to take it.
    let mut by_b = lease("b", 1);
    by_b.metadata.resource_version = created.resource_version();
    let mut by_c = lease("c", 1);
    by_c.metadata.resource_version = created.resource_version();
    let taken = api
        .replace("kiln", &PostParams::default(), &by_b)
        .await
        .unwrap();
    assert_ne!(taken.resource_version(), created.resource_version());
    assert_eq!(
        status_code(api.replace("kiln", &PostParams::default(), &by_c).await),
        409,
        "the second taker wrote from a stale read"
    );
    let now_held = api.get("kiln").await.unwrap();
    assert_eq!(
        now_held.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("b")
    );
    // Released (no holder): the spec keeps the rest.
    let mut released = taken.clone();
    if let Some(spec) = released.spec.as_mut() {
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
    }
    let released = api
        .replace("kiln", &PostParams::default(), &released)
        .await
        .unwrap();
    let spec = released.spec.clone().unwrap();
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.lease_transitions, Some(1));
    // The apiserver's validation of a Lease spec.
    for (field, bad) in [
        (
            "spec.leaseDurationSeconds",
            LeaseSpec {
                lease_duration_seconds: Some(0),
                ..spec.clone()
            },
        ),
        (
            "spec.leaseTransitions",
            LeaseSpec {
                lease_transitions: Some(-1),
                ..spec.clone()
            },
        ),
    ] {
        let mut invalid = released.clone();
        invalid.spec = Some(bad);
        match api.replace("kiln", &PostParams::default(), &invalid).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{field}");
                assert!(s.message.contains(field), "{field}: {}", s.message);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

async fn service_account_token(client: &Client, ns: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "conformance"}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let answer = accounts
        .create_token_request("conformance", &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.expect("a token").token
}

/// Role `build-updater` (get and update on builds) bound to ServiceAccount `conformance`.
async fn grant_build_updates(client: &Client, ns: &str) {
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "build-updater"},
        "rules": [{"apiGroups": ["build.kiln.dev"], "resources": ["builds"], "verbs": ["get", "update"]}],
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "conformance-updates-builds"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "build-updater"},
        "subjects": [{"kind": "ServiceAccount", "name": "conformance", "namespace": ns}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// Retries `attempt` until it succeeds (a cluster's authorizer sees new bindings from a cache).
async fn within_10s<T, F: Future<Output = Option<T>>>(what: &str, attempt: impl Fn() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn refused_request_is_forbidden(client: Client, mint: Mint, ns: String) {
    let admin_builds: Api<Build> = Api::namespaced(client.clone(), &ns);
    admin_builds
        .create(&PostParams::default(), &build("x", json!({})))
        .await
        .unwrap();
    let token = service_account_token(&client, &ns).await;
    let builds: Api<Build> = Api::namespaced(mint(&token), &ns);
    let Err(kube::Error::Api(status)) = builds.get("x").await else {
        panic!("a ServiceAccount without a role may not read a Build");
    };
    let user = format!("system:serviceaccount:{ns}:conformance");
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            r#"builds.build.kiln.dev "x" is forbidden: User "{user}" cannot get resource "builds" in API group "build.kiln.dev" in the namespace "{ns}""#
        )
    );
    let details = status.details.expect("details");
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("x", "build.kiln.dev", "builds")
    );
    grant_build_updates(&client, &ns).await;
    let mut fetched = within_10s("the RoleBinding takes effect", || async {
        builds.get("x").await.ok()
    })
    .await;
    fetched.labels_mut().insert("seen".into(), "yes".into());
    builds
        .replace("x", &PostParams::default(), &fetched)
        .await
        .unwrap();
    // Granted verbs only: no delete, and not the status subresource.
    let refused = builds.delete("x", &DeleteParams::default()).await;
    assert_eq!(status_code(refused), 403);
    let refused = builds
        .replace_status("x", &PostParams::default(), &fetched)
        .await;
    assert_eq!(status_code(refused), 403);
}

async fn access_review(client: &Client, ns: &str, verb: &str, subresource: &str) -> bool {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": format!("system:serviceaccount:{ns}:conformance"),
                 "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                 "resourceAttributes": {"namespace": ns, "verb": verb, "group": "build.kiln.dev",
                                        "resource": "builds", "subresource": subresource, "name": "x"}},
    }))
    .unwrap();
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.expect("a review status").allowed
}

async fn subject_access_review_follows_rbac(client: Client, ns: String) {
    assert!(!access_review(&client, &ns, "update", "").await);
    grant_build_updates(&client, &ns).await;
    within_10s("the RoleBinding takes effect", || async {
        access_review(&client, &ns, "update", "")
            .await
            .then_some(())
    })
    .await;
    assert!(!access_review(&client, &ns, "delete", "").await);
    assert!(!access_review(&client, &ns, "update", "status").await);
    let other = namespace(&client).await;
    assert!(
        !access_review(&client, &other, "update", "").await,
        "only in its namespace"
    );
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&other, &DeleteParams::background())
        .await;
}

/// A token of ServiceAccount `conformance` in `ns` for `audiences` (none: the API server's).
async fn token_for(client: &Client, ns: &str, audiences: &[&str]) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": audiences}})).unwrap();
    let answer = accounts
        .create_token_request("conformance", &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.expect("a token").token
}

/// What a TokenReview of `token` for `audiences` answers: its status.
async fn token_review(client: &Client, token: &str, audiences: &[&str]) -> TokenReviewStatus {
    let review: TokenReview =
        serde_json::from_value(json!({"spec": {"token": token, "audiences": audiences}})).unwrap();
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .expect("a review status")
}

/// What kiln's registry token server relies on: a ServiceAccount token made for kiln's audience
/// authenticates in a TokenReview naming that audience, as its ServiceAccount, and nowhere else
/// (not for another audience, not as an API credential).
async fn token_review_checks_audiences(client: Client, mint: Mint, ns: String) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "conformance"}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let token = token_for(&client, &ns, &["kiln-conformance"]).await;
    let status = token_review(&client, &token, &["kiln-conformance"]).await;
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(
        status.audiences.as_deref(),
        Some(&["kiln-conformance".to_string()][..])
    );
    let user = status.user.expect("the user");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{ns}:conformance").as_str())
    );
    let groups = user.groups.unwrap_or_default();
    for group in [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_string(),
    ] {
        assert!(groups.contains(&group), "{groups:?}");
    }
    let other = token_review(&client, &token, &["another-audience"]).await;
    assert_ne!(other.authenticated, Some(true), "{other:?}");
    assert!(other.error.is_some_and(|e| !e.is_empty()));
    let forged = token_review(&client, "not-a-token", &["kiln-conformance"]).await;
    assert_ne!(forged.authenticated, Some(true), "{forged:?}");
    // Not an API credential: its audience is not the API server's.
    let refused = Api::<ServiceAccount>::namespaced(mint(&token), &ns)
        .get("conformance")
        .await;
    assert_eq!(status_code(refused), 401);
    // A token for the API server reviews without naming audiences.
    let api_token = token_for(&client, &ns, &[]).await;
    let status = token_review(&client, &api_token, &[]).await;
    assert_eq!(status.authenticated, Some(true), "{status:?}");
}

/// A fresh namespace for one check.
async fn namespace(client: &Client) -> String {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            generate_name: Some("kiln-conformance-".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap()
        .name_any()
}

/// Applies kiln's CRDs (server-side apply) and waits until they are served.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(format!("{}/crds/kiln.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("crds/kiln.yaml");
    let params = PatchParams::apply("kiln-conformance").force();
    for doc in kiln::yaml::read_documents(&text).expect("CRD YAML") {
        let crd: CustomResourceDefinition = serde_json::from_value(doc).expect("a CRD");
        api.patch(&crd.name_any(), &params, &Patch::Apply(&crd))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let probe: Api<Build> = Api::all(client.clone());
        if probe.list(&ListParams::default().limit(1)).await.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "kiln's CRDs are not served");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sandbox() -> (ApiServer, Client) {
    let server = ApiServer::with_config(ServerConfig {
        cel_rules: true,
        ..ServerConfig::default()
    });
    let client = server.client();
    install_crds(&client).await;
    (server, client)
}

/// Runs one authorization check in a fresh namespace of a fresh sandbox enforcing RBAC.
async fn on_rbac_sandbox<F: Future<Output = ()>>(check: fn(Client, Mint, String) -> F) {
    let server = ApiServer::with_config(ServerConfig {
        authorization: Authorization::Rbac,
        ..ServerConfig::default()
    });
    let client = server.client();
    install_crds(&client).await;
    let ns = namespace(&client).await;
    let mint: Mint = Arc::new(move |token: &str| server.client_with_token(token));
    check(client, mint, ns).await;
}

#[tokio::test]
async fn sandbox_refused_request_is_forbidden() {
    on_rbac_sandbox(refused_request_is_forbidden).await;
}

#[tokio::test]
async fn sandbox_token_review_checks_audiences() {
    on_rbac_sandbox(token_review_checks_audiences).await;
}

#[tokio::test]
async fn sandbox_subject_access_review_follows_rbac() {
    on_rbac_sandbox(|client, _, ns| subject_access_review_follows_rbac(client, ns)).await;
}

/// Runs one check in a fresh namespace of a fresh sandbox.
async fn on_sandbox<F: Future<Output = ()>>(check: fn(Client, String) -> F) {
    let (_server, client) = sandbox().await;
    let ns = namespace(&client).await;
    check(client, ns).await;
}

#[tokio::test]
async fn sandbox_create_twice_conflicts() {
    on_sandbox(create_twice_conflicts).await;
}

#[tokio::test]
async fn sandbox_stale_write_conflicts() {
    on_sandbox(stale_write_conflicts).await;
}

#[tokio::test]
async fn sandbox_status_write_takes_only_status() {
    on_sandbox(status_write_takes_only_status).await;
}

#[tokio::test]
async fn sandbox_label_selected_list() {
    on_sandbox(label_selected_list).await;
}

#[tokio::test]
async fn sandbox_watch_delivers_written_versions() {
    on_sandbox(watch_delivers_written_versions).await;
}

#[tokio::test]
async fn sandbox_owner_cascade() {
    on_sandbox(owner_cascade).await;
}

#[tokio::test]
async fn sandbox_build_spec_immutable() {
    on_sandbox(build_spec_immutable).await;
}

#[tokio::test]
async fn sandbox_revision_set_once() {
    on_sandbox(revision_set_once).await;
}

#[tokio::test]
async fn sandbox_lease_compare_and_swap() {
    on_sandbox(lease_compare_and_swap).await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KILN_CONFORMANCE_KUBECONFIG and run with --ignored"]
async fn every_check_on_a_real_cluster() {
    let path = std::env::var("KILN_CONFORMANCE_KUBECONFIG")
        .expect("KILN_CONFORMANCE_KUBECONFIG names the cluster's kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a usable kubeconfig");
    let client = Client::try_from(config.clone()).expect("a client");
    install_crds(&client).await;
    let mint: Mint = Arc::new(move |token: &str| {
        let mut config = config.clone();
        config.auth_info = serde_json::from_value(json!({"token": token})).expect("auth info");
        Client::try_from(config).expect("a token client")
    });
    for (name, check) in CHECKS {
        let ns = namespace(&client).await;
        eprintln!("check: {name} (namespace {ns})");
        check(client.clone(), ns.clone()).await;
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&ns, &DeleteParams::background())
            .await;
    }
    for (name, check) in AUTH_CHECKS {
        let ns = namespace(&client).await;
        eprintln!("check: {name} (namespace {ns})");
        check(client.clone(), mint.clone(), ns.clone()).await;
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&ns, &DeleteParams::background())
            .await;
    }
}
