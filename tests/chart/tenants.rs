//! Two tenants under the sandbox's RBAC with the chart installed: namespace A's builds may push to,
//! build from, or be triggered by namespace B's ImageStreams only once B grants A's `builder`
//! ServiceAccount the chart's `kiln-image-pusher`/`kiln-image-puller` ClusterRoles.

use super::*;

const A: &str = controller_support::NS;
const B: &str = "tenant-b";

/// A BuildConfig in A pushing to `app:latest` in B or `<name>:latest` in A; `from_b` builds from
/// B's `base:1`, and `trigger` adds an ImageChange trigger on that base.
fn bc(name: &str, output_namespace: &str, from_b: bool, trigger: bool) -> kiln::api::BuildConfig {
    let from = if from_b {
        format!("    dockerStrategy:\n      from:\n        kind: ImageStreamTag\n        namespace: {B}\n        name: base:1\n")
    } else {
        String::new()
    };
    let triggers = if trigger {
        "  triggers:\n  - type: ImageChange\n    imageChange: {}\n"
    } else {
        ""
    };
    let stream = if output_namespace == B { "app" } else { name };
    let yaml = format!(
        "apiVersion: build.kiln.dev/v1alpha1\nkind: BuildConfig\nmetadata:\n  name: {name}\n  namespace: {A}\nspec:\n  runPolicy: Parallel\n  source:\n    git:\n      uri: https://git.example.com/{name}.git\n  strategy:\n    type: Docker\n{from}  output:\n    to:\n      kind: ImageStreamTag\n      namespace: {output_namespace}\n      name: {stream}:latest\n{triggers}"
    );
    serde_json::from_value(kiln::yaml::read_documents(&yaml).unwrap().remove(0)).unwrap()
}

/// Gives B's `base:1` the image `digest`, as a push to B would.
async fn tag_base(admin: &kube::Client, digest: &str) {
    use kiln::api::ImageStream;
    use kube::api::{Api, PostParams};
    let streams: Api<ImageStream> = Api::namespaced(admin.clone(), B);
    let mut stream = streams.get("base").await.unwrap();
    stream.status = Some(
        serde_json::from_value(serde_json::json!({"tags": [{"tag": "1", "items": [{
            "created": "2026-01-01T00:00:00Z",
            "dockerImageReference": format!("{}/{B}/base@{digest}", controller_support::REGISTRY),
            "image": digest, "generation": 1}]}]}))
        .unwrap(),
    );
    streams
        .replace_status("base", &PostParams::default(), &stream)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_namespaces_image_streams_are_reached_only_once_it_grants_the_image_roles() {
    use controller_support::{digest, eventually, terminated};
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kiln::api::{Build, BuildConfig, BuildPhase, ImageStream, StatusReason};
    use kiln::instantiate::{instantiate, BuildRequest};
    use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

    let server = rbac::installed_under_rbac().await;
    let admin = server.client();
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": B}})).unwrap(),
        )
        .await
        .unwrap();
    for name in ["base", "app"] {
        Api::<ImageStream>::namespaced(admin.clone(), B)
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    serde_json::json!({"metadata": {"name": name}, "spec": {}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
    }
    tag_base(&admin, &digest(1)).await;
    let b_app_before = Api::<ImageStream>::namespaced(admin.clone(), B)
        .get("app")
        .await
        .unwrap();

    let controller_token = server.create_token("kiln-system", "kiln").unwrap();
    let controller = kiln::controller::run::run(
        server.client_with_token(&controller_token),
        controller_support::settings(),
        std::future::pending(),
    )
    .await;

    let configs: Api<BuildConfig> = Api::namespaced(admin.clone(), A);
    for config in [
        bc("push", B, false, false),
        bc("pull", A, true, false),
        bc("follow", A, true, true),
    ] {
        configs
            .create(&PostParams::default(), &config)
            .await
            .unwrap();
    }
    let request = |id: &str| BuildRequest {
        request_id: id.into(),
        ..BuildRequest::default()
    };
    for name in ["push", "pull"] {
        instantiate(&admin, A, name, &request("first"))
            .await
            .unwrap();
    }
    let builds: Api<Build> = Api::namespaced(admin.clone(), A);
    let ended = |name: &'static str| {
        let builds = builds.clone();
        async move {
            eventually(&format!("{name} to end"), || async {
                let b = builds.get_opt(name).await.unwrap()?;
                let s = b.status?;
                (s.phase == BuildPhase::Failed).then_some((s.reason, s.message.unwrap_or_default()))
            })
            .await
        }
    };
    // Refused, each with its reason and a message naming the account and the grant.
    let (reason, message) = ended("push-1").await;
    assert_eq!(reason, Some(StatusReason::InvalidOutputReference));
    assert!(
        message.contains(&format!("{A}/builder may not push to ImageStream {B}/app"))
            && message.contains("kiln-image-pusher"),
        "{message}"
    );
    let (reason, message) = ended("pull-1").await;
    assert_eq!(reason, Some(StatusReason::InvalidImageReference));
    assert!(
        message.contains(&format!("may not pull from ImageStream {B}/base")),
        "{message}"
    );
    // The ImageChange trigger on B's tag fired, and its build was refused the same way.
    let (reason, _) = ended("follow-1").await;
    assert_eq!(reason, Some(StatusReason::InvalidImageReference));
    // No build Pod ran, and B's ImageStream is untouched.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), A);
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let b_app_after = Api::<ImageStream>::namespaced(admin.clone(), B)
        .get("app")
        .await
        .unwrap();
    assert_eq!(
        b_app_after.metadata.resource_version,
        b_app_before.metadata.resource_version
    );

    // B grants A's builder the chart's image roles.
    for role in ["kiln-image-pusher", "kiln-image-puller"] {
        let binding: RoleBinding = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{A}-builder-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": A}]}))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), B)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
    for name in ["push", "pull"] {
        instantiate(&admin, A, name, &request("second"))
            .await
            .unwrap();
    }
    tag_base(&admin, &digest(2)).await;
    for pod in ["push-2-build", "pull-2-build", "follow-2-build"] {
        eventually(&format!("{pod} created"), || async {
            pods.get_opt(pod).await.unwrap()
        })
        .await;
    }
    // The push completes into B's ImageStream.
    let report = serde_json::json!({"imageDigest": digest(7)}).to_string();
    pods.patch_status(
        "push-2-build",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"phase": "Succeeded",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [terminated("build", 0, &report)]}})),
    )
    .await
    .unwrap();
    eventually("B's app:latest to record the push", || async {
        let stream = Api::<ImageStream>::namespaced(admin.clone(), B)
            .get("app")
            .await
            .unwrap();
        stream
            .status?
            .tags
            .iter()
            .any(|t| t.tag == "latest" && t.items.first().is_some_and(|i| i.image == digest(7)))
            .then_some(())
    })
    .await;
    controller.abort();
}
