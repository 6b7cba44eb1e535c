//! The controller's ClusterRole against the requests the controller makes, and the tenant roles
//! under the sandbox's RBAC.

use super::*;

/// Every API request `kiln controller` makes, as (API group, resource[/subresource], verb), and
/// where: the ClusterRole must grant exactly these.
const CONTROLLER_REQUESTS: &[(&str, &str, &str)] = &[
    // controller/run.rs: one watch per kind (kube's watcher lists, then watches).
    ("build.kiln.dev", "buildconfigs", "list"),
    ("build.kiln.dev", "buildconfigs", "watch"),
    ("build.kiln.dev", "builds", "list"),
    ("build.kiln.dev", "builds", "watch"),
    ("image.kiln.dev", "imagestreams", "list"),
    ("image.kiln.dev", "imagestreams", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    // instantiate.rs (ConfigChange and ImageChange triggers): read the BuildConfig, find a
    // request's Build by label (list), create the Build, read it after a 409, raise lastVersion.
    ("build.kiln.dev", "buildconfigs", "get"),
    ("build.kiln.dev", "builds", "create"),
    ("build.kiln.dev", "builds", "get"),
    ("build.kiln.dev", "buildconfigs/status", "update"),
    // controller/build.rs: record the built commit in spec.revision (git builds).
    ("build.kiln.dev", "builds", "update"),
    // controller/build.rs, build_config.rs: every Build status write (replace, with CAS).
    ("build.kiln.dev", "builds/status", "update"),
    // controller/build_config.rs: history pruning.
    ("build.kiln.dev", "builds", "delete"),
    // controller/build_config.rs: the build Pod; build.rs: read it when the cache lacks it,
    // delete it on cancel.
    ("", "pods", "create"),
    ("", "pods", "get"),
    ("", "pods", "delete"),
    // controller/build/log_copy.rs: a finishing build's log, read from its Pod and kept in a
    // ConfigMap owned by the Build.
    ("", "pods/log", "get"),
    ("", "configmaps", "create"),
    // controller/build/storage.rs: a BuildConfig's build storage claim (`--build-storage=volume`).
    ("", "persistentvolumeclaims", "create"),
    ("", "serviceaccounts", "get"),
    // controller/image_stream.rs: TagEvents; the ImageStream is created when missing.
    // controller/imports: imported TagEvents and ImportSuccess conditions (imagestreams/status).
    ("image.kiln.dev", "imagestreams", "get"),
    ("image.kiln.dev", "imagestreams", "create"),
    ("image.kiln.dev", "imagestreams/status", "update"),
    // controller/events.rs.
    ("events.k8s.io", "events", "create"),
    // controller/build_config/start.rs: may the build's ServiceAccount push to or pull from
    // another namespace's ImageStream.
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
    // registry/token: the registry token server's TokenReview of a registry password.
    ("authentication.k8s.io", "tokenreviews", "create"),
];

/// The requests granted per namespace only, by the chart's secret-reader ClusterRole bound there:
/// controller/build/mod.rs, whether the push secret of a Pending build exists (metadata only);
/// build/confirm.rs, the push and pull secrets a digest is confirmed with;
/// imports/secrets.rs, the pull secrets the `default` ServiceAccount names; webhook/secrets.rs,
/// the webhook secrets triggers name.
const PER_NAMESPACE_REQUESTS: &[(&str, &str, &str)] = &[("", "secrets", "get")];

/// (group, resource, verb) triples a role's rules grant.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap_or_else(|| panic!("rule without {key}: {rule}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    assert_ne!(verb, "*", "no wildcard verbs");
                    assert_ne!(resource, "*", "no wildcard resources");
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn controller_role() -> Value {
    find(
        &render("kiln", "kiln-system", &[]),
        "ClusterRole",
        "kiln-controller",
    )
    .clone()
}

#[test]
fn the_controller_cluster_role_grants_exactly_the_requests_the_controller_makes() {
    let granted = grants(&controller_role());
    let wanted: BTreeSet<(String, String, String)> = CONTROLLER_REQUESTS
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let missing: Vec<_> = wanted.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    // Git builds record their commit with an update of the Build itself.
    assert!(granted.contains(&("build.kiln.dev".into(), "builds".into(), "update".into())));
    // Secrets: nothing cluster-wide; a get by name, in the namespaces that bind the reader role.
    assert!(
        !granted.iter().any(|(_, r, _)| r == "secrets"),
        "the controller's ClusterRole reads no Secret"
    );
    let per_namespace = grants(&secret_reader_role());
    let wanted: BTreeSet<(String, String, String)> = PER_NAMESPACE_REQUESTS
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    assert_eq!(per_namespace, wanted);
    let docs = render("kiln", "kiln-system", &[]);
    assert!(
        !docs
            .iter()
            .any(|d| kind_of(d) == "ClusterRoleBinding"
                && d["roleRef"]["name"] == "kiln-secret-reader"),
        "the reader role is never bound cluster-wide"
    );
    let listed = render(
        "kiln",
        "kiln-system",
        &["--set", "builder.namespaces={team-a,team-b}"],
    );
    let bound: Vec<&str> = listed
        .iter()
        .filter(|d| kind_of(d) == "RoleBinding" && d["roleRef"]["name"] == "kiln-secret-reader")
        .map(|d| str_at(d, "/metadata/namespace"))
        .collect();
    assert_eq!(bound, ["team-a", "team-b"]);
}

fn secret_reader_role() -> Value {
    find(
        &render("kiln", "kiln-system", &[]),
        "ClusterRole",
        "kiln-secret-reader",
    )
    .clone()
}

/// The requests leader election makes (controller/leader/mod.rs: read the Lease, create it when
/// missing, replace it with the resourceVersion read to take, renew and release it).
const LEASE_REQUESTS: &[(&str, &str, &str)] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
];

#[test]
fn the_lease_is_granted_by_a_role_in_the_release_namespace_only() {
    let docs = render("kiln", "kiln-system", &[]);
    let role = find(&docs, "Role", "kiln-leader-election");
    assert_eq!(str_at(role, "/metadata/namespace"), "kiln-system");
    let wanted: BTreeSet<(String, String, String)> = LEASE_REQUESTS
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    assert_eq!(grants(role), wanted);
    let binding = find(&docs, "RoleBinding", "kiln-leader-election");
    assert_eq!(str_at(binding, "/roleRef/name"), "kiln-leader-election");
    assert_eq!(str_at(binding, "/subjects/0/name"), "kiln");
    assert_eq!(str_at(binding, "/subjects/0/namespace"), "kiln-system");
    // Nothing about Leases in the ClusterRole: no replica may touch another namespace's.
    assert!(!grants(&controller_role())
        .iter()
        .any(|(group, _, _)| group == "coordination.k8s.io"));
}

/// The agent the controller's requests carry in the scenario below.
const CONTROLLER_AGENT: &str = "kiln-controller";

/// Runs the real controller in-process against the sandbox through the lifecycle that reaches
/// its API requests (triggers, a git build recording its commit, a push secret check, a new
/// ImageStream, a cancel, pruning), and checks that each request it made is granted by the
/// rendered ClusterRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_controller_makes_is_granted_by_the_rendered_cluster_role() {
    use controller_support::{bc_yaml, digest, Harness, NS};
    use kiln::api::{Build, BuildPhase};
    use kube::api::{Api, Patch, PatchParams};

    // What the controller holds in a namespace that binds the secret-reader role.
    let granted: BTreeSet<_> = grants(&controller_role())
        .union(&grants(&secret_reader_role()))
        .cloned()
        .collect();
    // The harness's own controller is replaced by one whose requests carry CONTROLLER_AGENT; the
    // harness's client (no agent) drives the scenario.
    let mut h = Harness::start().await;
    h.kill_controller();
    // Build storage claims on, so their creation is among the requests.
    let mut settings = controller_support::settings();
    settings.pod.storage.mode = kiln::controller::StorageMode::Volume;
    let controller = kiln::controller::run::run(
        h.server.client_as(CONTROLLER_AGENT),
        settings,
        std::future::pending(),
    )
    .await;

    // ConfigChange trigger → instantiate; a pushSecret (missing while Pending); keep one build.
    h.create_bc(&bc_yaml(
        "app",
        "Serial",
        "    pushSecret:\n      name: push-creds\n  successfulBuildsHistoryLimit: 1\n  triggers:\n  - type: ConfigChange\n",
    ))
    .await;
    h.wait_pod("app-1").await;
    h.complete("app-1", &digest(1)).await;
    h.start_build("app", "second").await;
    h.complete("app-2", &digest(2)).await;
    // Pruning deletes app-1.
    controller_support::eventually("app-1 pruned", || async {
        h.phase("app-1").await.is_none().then_some(())
    })
    .await;
    // A cancel deletes the running build's Pod.
    h.start_build("app", "third").await;
    h.wait_pod("app-3").await;
    h.run_pod("app-3").await;
    Api::<Build>::namespaced(h.client.clone(), NS)
        .patch(
            "app-3",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
        )
        .await
        .unwrap();
    h.wait_phase("app-3", BuildPhase::Cancelled).await;
    // A build pushing to another namespace's ImageStream is authorized first.
    h.create_bc(&bc_yaml("shared", "Serial", "      namespace: other\n"))
        .await;
    h.start_build("shared", "cross").await;
    h.wait_pod("shared-1").await;
    // An import reads the namespace's pull secrets (its `default` ServiceAccount) and writes the
    // tag's condition (nothing listens on port 1).
    let is: kiln::api::ImageStream = serde_json::from_value(serde_json::json!({
        "apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
        "metadata": {"name": "upstream", "namespace": NS},
        "spec": {"tags": [{"name": "1", "from": {"kind": "DockerImage", "name": "127.0.0.1:1/up/base:1"},
                           "importPolicy": {"insecure": true}}]}
    }))
    .unwrap();
    Api::<kiln::api::ImageStream>::namespaced(h.client.clone(), NS)
        .create(&kube::api::PostParams::default(), &is)
        .await
        .unwrap();
    controller_support::eventually("the import's condition", || async {
        let is = h.image_stream("upstream").await?;
        is.status?.tags.first()?.conditions.first().map(drop)
    })
    .await;
    controller.abort();

    let done = h.builds().await;
    assert!(done.iter().any(|b| b
        .spec
        .common
        .revision
        .as_ref()
        .is_some_and(|r| r.git.is_some())));
    let made: BTreeSet<(String, String)> = h
        .server
        .request_counts()
        .into_iter()
        .filter(|c| c.agent == CONTROLLER_AGENT)
        .map(|c| (c.resource, c.verb))
        .collect();
    // The scenario reached the requests this test is about.
    for needed in [
        ("builds", "update"),
        ("builds", "delete"),
        ("builds/status", "update"),
        ("buildconfigs/status", "update"),
        ("pods", "create"),
        ("pods", "delete"),
        ("persistentvolumeclaims", "create"),
        ("secrets", "get"),
        ("serviceaccounts", "get"),
        ("imagestreams", "create"),
        ("imagestreams/status", "update"),
        ("events", "create"),
        ("subjectaccessreviews", "create"),
    ] {
        assert!(
            made.contains(&(needed.0.to_string(), needed.1.to_string())),
            "the scenario made no {needed:?} request: {made:?}"
        );
    }
    // The request counter records resources without their group; kiln's resource names are
    // unambiguous among the groups the controller talks to.
    let ungranted: Vec<_> = made
        .iter()
        .filter(|(resource, verb)| !granted.iter().any(|(_, r, v)| r == resource && v == verb))
        .collect();
    assert!(
        ungranted.is_empty(),
        "the controller made requests its roles do not grant: {ungranted:?}"
    );
}

/// A sandbox enforcing RBAC with kiln's CRDs and the chart rendered by `helm` for release
/// `kiln` in `kiln-system` (what `helm install` would create).
pub(super) async fn installed_under_rbac() -> kiln_sandbox::ApiServer {
    installed_under_rbac_with(&render("kiln", "kiln-system", &[])).await
}

/// `installed_under_rbac` with these rendered objects.
async fn installed_under_rbac_with(docs: &[Value]) -> kiln_sandbox::ApiServer {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};

    let server = kiln_sandbox::ApiServer::with_config(kiln_sandbox::ServerConfig {
        authorization: kiln_sandbox::Authorization::Rbac,
        ..kiln_sandbox::ServerConfig::default()
    });
    let admin = server.client();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(admin.clone());
    let text = std::fs::read_to_string(repo_root().join("crds/kiln.yaml")).unwrap();
    for doc in kiln::yaml::read_documents(&text).unwrap() {
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(doc).unwrap(),
        )
        .await
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "kiln-system"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    create_rendered(&server, docs, "kiln-system");
    server
}

/// `role` without `verb` on `group`/`resource`; every other grant stays (a rule naming several
/// resources or verbs is split).
fn without_grant(role: &Value, group: &str, resource: &str, verb: &str) -> Value {
    let mut out = role.clone();
    let mut rules = Vec::new();
    for rule in role["rules"].as_array().cloned().unwrap_or_default() {
        let names = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        let (groups, resources, verbs) = (names("apiGroups"), names("resources"), names("verbs"));
        let hit = groups.iter().any(|g| g == group)
            && resources.iter().any(|r| r == resource)
            && verbs.iter().any(|v| v == verb);
        if !hit {
            rules.push(rule);
            continue;
        }
        let mut rest = rule.clone();
        rest["resources"] = resources
            .iter()
            .filter(|r| *r != resource)
            .cloned()
            .collect();
        if rest["resources"].as_array().is_some_and(|r| !r.is_empty()) {
            rules.push(rest);
        }
        let mut narrowed = rule.clone();
        narrowed["resources"] = serde_json::json!([resource]);
        narrowed["verbs"] = verbs.iter().filter(|v| *v != verb).cloned().collect();
        if narrowed["verbs"].as_array().is_some_and(|v| !v.is_empty()) {
            rules.push(narrowed);
        }
    }
    out["rules"] = Value::from(rules);
    out
}

/// One grant taken out of the rendered ClusterRole — `create pods`, the one a build cannot do
/// without: the sandbox refuses exactly that request of the controller and nothing else, and the
/// Build does not stall: it carries `CannotCreateBuildPod` with the API's message while the
/// controller retries, a Warning Event says so, and the build ends `Error` after the retry window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_missing_from_the_cluster_role_is_refused_and_the_build_says_why() {
    use controller_support::{bc_yaml, eventually, NS};
    use k8s_openapi::api::events::v1::Event;
    use kiln::api::{Build, BuildConfig, BuildPhase, StatusReason};
    use kiln::instantiate::{instantiate, BuildRequest};
    use kube::api::{Api, ListParams, PostParams};

    let mut docs = render("kiln", "kiln-system", &[]);
    let role = docs
        .iter_mut()
        .find(|d| kind_of(d) == "ClusterRole" && name_of(d) == "kiln-controller")
        .expect("the controller's ClusterRole");
    let narrowed = without_grant(role, "", "pods", "create");
    let before = grants(role);
    let after = grants(&narrowed);
    let removed: Vec<_> = before.difference(&after).collect();
    assert_eq!(
        removed,
        [&("".to_string(), "pods".to_string(), "create".to_string())],
        "exactly one grant removed"
    );
    *role = narrowed;
    let server = installed_under_rbac_with(&docs).await;
    let admin = server.client();
    let controller_token = server.create_token("kiln-system", "kiln").unwrap();
    let controller = kiln::controller::run::run(
        server.client_with_token(&controller_token),
        kiln::controller::Settings {
            pod_create_retry_window: std::time::Duration::from_secs(3),
            ..controller_support::settings()
        },
        std::future::pending(),
    )
    .await;

    let bc: BuildConfig = serde_json::from_value(
        kiln::yaml::read_documents(&bc_yaml("app", "Serial", ""))
            .unwrap()
            .remove(0),
    )
    .unwrap();
    Api::<BuildConfig>::namespaced(admin.clone(), NS)
        .create(&PostParams::default(), &bc)
        .await
        .unwrap();
    instantiate(&admin, NS, "app", &BuildRequest::default())
        .await
        .unwrap();
    let builds: Api<Build> = Api::namespaced(admin.clone(), NS);
    let api_message = r#"cannot create resource "pods" in API group "" in the namespace "default""#;
    let waiting = eventually("app-1 to carry the refusal", || async {
        let build = builds.get("app-1").await.ok()?;
        build.status.filter(|s| s.reason.is_some())
    })
    .await;
    assert_eq!(waiting.phase, BuildPhase::New);
    assert_eq!(waiting.reason, Some(StatusReason::CannotCreateBuildPod));
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(api_message),
        "the API's message is the Build's: {:?}",
        waiting.message
    );
    let events: Api<Event> = Api::namespaced(admin.clone(), NS);
    let warning = eventually("a Warning Event", || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.note.as_deref().unwrap_or_default().contains(api_message)
            })
    })
    .await;
    assert!(warning.regarding.is_some());
    let ended = eventually("app-1 to end Error after the retry window", || async {
        let build = builds.get("app-1").await.ok()?;
        build.status.filter(|s| s.phase == BuildPhase::Error)
    })
    .await;
    assert_eq!(ended.reason, Some(StatusReason::CannotCreateBuildPod));

    // The only requests refused were that one, made by the controller.
    let refused: BTreeSet<(String, String, String, String, String)> = server
        .refusals()
        .into_iter()
        .map(|r| (r.user, r.verb, r.api_group, r.resource, r.namespace))
        .collect();
    assert_eq!(
        refused,
        BTreeSet::from([(
            "system:serviceaccount:kiln-system:kiln".to_string(),
            "create".to_string(),
            String::new(),
            "pods".to_string(),
            NS.to_string(),
        )]),
        "the sandbox refused exactly the removed grant"
    );
    drop(controller);
}

/// Creates every rendered object in the sandbox as its admin (what `helm install` would do).
fn create_rendered(server: &kiln_sandbox::ApiServer, docs: &[Value], namespace: &str) {
    for doc in docs {
        let api_version = str_at(doc, "/apiVersion");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = server
            .plural_of(group, version, kind_of(doc))
            .unwrap_or_else(|| panic!("the sandbox serves no {api_version} {}", kind_of(doc)));
        server
            .create_object(group, version, &plural, namespace, doc.clone())
            .unwrap_or_else(|e| panic!("creating {} {}: {e:?}", kind_of(doc), name_of(doc)));
    }
}

/// With the sandbox enforcing RBAC: the controller, authenticated as the chart's ServiceAccount
/// with nothing but the rendered ClusterRole, takes a git build started by a tenant through to
/// Complete (Pod, status, recorded commit, TagEvent) and cancels another; a tenant holding
/// the built-in `edit` role (which the chart's roles aggregate into) creates a BuildConfig,
/// starts and cancels builds; one holding `view` can read them and nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_rbac_the_controller_needs_only_its_role_and_tenants_use_the_aggregated_roles() {
    use controller_support::{bc_yaml, commit_of, digest, eventually, terminated, NS};
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kiln::api::{Build, BuildConfig, BuildPhase, ImageStream};
    use kiln::instantiate::{instantiate, BuildRequest};
    use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

    let server = installed_under_rbac().await;
    let admin = server.client();

    // Tenants: ServiceAccounts bound to the built-in edit and view roles in the build namespace.
    let mut tokens = BTreeMap::new();
    for (who, role) in [("alice", "edit"), ("bob", "view")] {
        Api::<ServiceAccount>::namespaced(admin.clone(), NS)
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": who}})).unwrap(),
            )
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{who}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": who, "namespace": NS}]}))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), NS)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
        tokens.insert(who, server.create_token(NS, who).unwrap());
    }
    let alice = server.client_with_token(&tokens["alice"]);
    let bob = server.client_with_token(&tokens["bob"]);

    let controller_token = server.create_token("kiln-system", "kiln").unwrap();
    let controller = kiln::controller::run::run(
        server.client_with_token(&controller_token),
        controller_support::settings(),
        std::future::pending(),
    )
    .await;

    // alice (edit) creates a BuildConfig and starts a build the way `kiln start-build` does.
    let bc: BuildConfig = serde_json::from_value(
        kiln::yaml::read_documents(&bc_yaml("app", "Parallel", ""))
            .unwrap()
            .remove(0),
    )
    .unwrap();
    Api::<BuildConfig>::namespaced(alice.clone(), NS)
        .create(&PostParams::default(), &bc)
        .await
        .unwrap();
    // As `kiln start-build` asks: no write to the BuildConfig's status.
    let request = |id: &str| BuildRequest {
        request_id: id.into(),
        leave_last_version: true,
        ..BuildRequest::default()
    };
    let first = instantiate(&alice, NS, "app", &request("first"))
        .await
        .expect("edit may start a build");
    let builds: Api<Build> = Api::namespaced(alice.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let pod_name = format!("{}-build", first.metadata.name.as_deref().unwrap());
    eventually("the build Pod", || async {
        pods.get_opt(&pod_name).await.unwrap()
    })
    .await;
    // The kubelet's part, as the admin.
    let report =
        serde_json::json!({"imageDigest": digest(7), "source": {"commit": commit_of(&digest(7))}})
            .to_string();
    pods.patch_status(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"phase": "Succeeded",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [terminated("build", 0, &report)]}})),
    )
    .await
    .unwrap();
    let done = eventually("app-1 Complete", || async {
        let b = builds.get("app-1").await.unwrap();
        (b.status.as_ref().map(|s| s.phase) == Some(BuildPhase::Complete)).then_some(b)
    })
    .await;
    assert!(
        done.spec.common.revision.is_some(),
        "the commit is recorded"
    );
    let stream = Api::<ImageStream>::namespaced(alice.clone(), NS)
        .get("app")
        .await
        .unwrap();
    assert_eq!(stream.status.unwrap().tags[0].items[0].image, digest(7));

    // alice starts a second build and cancels it.
    instantiate(&alice, NS, "app", &request("second"))
        .await
        .unwrap();
    eventually("app-2's Pod", || async {
        pods.get_opt("app-2-build").await.unwrap()
    })
    .await;
    builds
        .patch(
            "app-2",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
        )
        .await
        .expect("edit may cancel");
    eventually("app-2 Cancelled", || async {
        let b = builds.get("app-2").await.unwrap();
        (b.status.as_ref().map(|s| s.phase) == Some(BuildPhase::Cancelled)).then_some(())
    })
    .await;

    // bob (view) reads, and is refused every write.
    let bob_builds: Api<Build> = Api::namespaced(bob.clone(), NS);
    assert_eq!(
        bob_builds
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    Api::<BuildConfig>::namespaced(bob.clone(), NS)
        .get("app")
        .await
        .unwrap();
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403);
    let mut other = bc.clone();
    other.metadata.name = Some("bobs".into());
    assert!(forbidden(
        Api::<BuildConfig>::namespaced(bob.clone(), NS)
            .create(&PostParams::default(), &other)
            .await
            .map(drop)
    ));
    assert!(forbidden(
        bob_builds
            .patch(
                "app-1",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
            )
            .await
            .map(drop)
    ));
    assert!(
        instantiate(&bob, NS, "app", &request("bob")).await.is_err(),
        "view may not start builds"
    );
    assert_eq!(
        bob_builds
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    // Nobody but the controller wrote the BuildConfig's status: it raised lastVersion itself.
    eventually("the controller to raise lastVersion to 2", || async {
        let bc = Api::<BuildConfig>::namespaced(admin.clone(), NS)
            .get("app")
            .await
            .unwrap();
        (bc.status?.last_version == 2).then_some(())
    })
    .await;
    controller.abort();
}
