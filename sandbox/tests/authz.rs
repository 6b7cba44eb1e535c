//! Authentication, RBAC, access reviews and Pod Security admission, in-process over the router
//! (raw requests, so the Status bodies are checked as a client receives them).

use std::path::Path;

use axum::http::{Method, StatusCode};
use kiln_sandbox::{ApiServer, Authorization, ServerConfig};
use serde_json::{json, Value};

const ADMIN: &str = "sandbox";

fn rbac_server() -> ApiServer {
    let server = ApiServer::with_config(ServerConfig {
        authorization: Authorization::Rbac,
        ..ServerConfig::default()
    });
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    kiln_sandbox::serve::preload(&server, &crds).unwrap();
    server
}

async fn call(
    server: &ApiServer,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = tower::ServiceExt::oneshot(
        server.router(),
        request.body(axum::body::Body::from(body)).unwrap(),
    )
    .await
    .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

async fn create(server: &ApiServer, uri: &str, body: Value) -> Value {
    let (code, body) = call(server, Method::POST, uri, Some(ADMIN), Some(body)).await;
    assert_eq!(code, StatusCode::CREATED, "{uri}: {body}");
    body
}

/// Namespace `team` with ServiceAccount `builder`; returns a token for it.
async fn team_with_builder(server: &ApiServer) -> String {
    create(
        server,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    create(
        server,
        "/api/v1/namespaces/team/serviceaccounts",
        json!({"metadata": {"name": "builder"}}),
    )
    .await;
    let answer = create(
        server,
        "/api/v1/namespaces/team/serviceaccounts/builder/token",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    )
    .await;
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["spec"]["expirationSeconds"], 3600);
    assert!(
        answer["status"]["expirationTimestamp"].is_string(),
        "{answer}"
    );
    answer["status"]["token"].as_str().unwrap().to_string()
}

fn forbidden_status(message: &str, group: &str, kind: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden",
        "details": {"name": name, "group": group, "kind": kind}, "code": 403,
    })
}

const BUILD_X: &str = "/apis/build.kiln.dev/v1alpha1/namespaces/team/builds/x";

#[tokio::test]
async fn tokens_authenticate_and_rbac_decides() {
    let server = rbac_server();
    let token = team_with_builder(&server).await;

    // No credentials: anonymous, allowed only the public info.
    let (code, body) = call(
        &server,
        Method::GET,
        "/api/v1/namespaces/team/pods",
        None,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        forbidden_status(
            r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "team""#,
            "",
            "pods",
            ""
        )
    );
    assert_eq!(
        call(&server, Method::GET, "/version", None, None).await.0,
        StatusCode::OK
    );
    let (code, body) = call(&server, Method::GET, "/apis", None, None).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some(r#"forbidden: User "system:anonymous" cannot get path "/apis""#)
        )
    );

    // A token nobody issued is 401 with the apiserver's Status.
    let (code, body) = call(
        &server,
        Method::GET,
        "/api/v1/namespaces/team/pods",
        Some("forged"),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    // The ServiceAccount may discover, but not touch builds.
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/apis/build.kiln.dev/v1alpha1",
            Some(&token),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (code, body) = call(&server, Method::PUT, BUILD_X, Some(&token), Some(json!({}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        forbidden_status(
            r#"builds.build.kiln.dev "x" is forbidden: User "system:serviceaccount:team:builder" cannot update resource "builds" in API group "build.kiln.dev" in the namespace "team""#,
            "build.kiln.dev",
            "builds",
            "x"
        )
    );

    // A Role and RoleBinding grant get/update on builds (and builds/status) in `team` only.
    create(&server, "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles", json!({
        "metadata": {"name": "build-editor"},
        "rules": [{"apiGroups": ["build.kiln.dev"], "resources": ["builds", "builds/status"], "verbs": ["get", "update"]}],
    })).await;
    create(&server, "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings", json!({
        "metadata": {"name": "builder-edits"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "build-editor"},
        "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": "team"}],
    })).await;
    // Authorized now, so the request reaches the store: the Build does not exist.
    let (code, body) = call(&server, Method::GET, BUILD_X, Some(&token), None).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some(r#"builds.build.kiln.dev "x" not found"#)
        )
    );
    let (code, _) = call(
        &server,
        Method::PUT,
        &format!("{BUILD_X}/status"),
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_ne!(code, StatusCode::FORBIDDEN);
    // Not granted: list, delete, and anything in another namespace.
    for (method, uri) in [
        (
            Method::GET,
            "/apis/build.kiln.dev/v1alpha1/namespaces/team/builds",
        ),
        (Method::DELETE, BUILD_X),
        (
            Method::GET,
            "/apis/build.kiln.dev/v1alpha1/namespaces/default/builds/x",
        ),
    ] {
        assert_eq!(
            call(&server, method.clone(), uri, Some(&token), None)
                .await
                .0,
            StatusCode::FORBIDDEN,
            "{method} {uri}"
        );
    }

    // A binding to a Role that does not exist denies with the resolution error as the reason.
    create(
        &server,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        json!({
            "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team"}],
        }),
    )
    .await;
    let (_, body) = call(&server, Method::DELETE, BUILD_X, Some(&token), None).await;
    assert!(
        body["message"].as_str().unwrap().ends_with(
            r#"in the namespace "team": RBAC: role.rbac.authorization.k8s.io "missing" not found"#
        ),
        "{body}"
    );

    // Too short a token lifetime is invalid; a token of a deleted ServiceAccount authenticates nobody.
    let (code, body) = call(
        &server,
        Method::POST,
        "/api/v1/namespaces/team/serviceaccounts/builder/token",
        Some(ADMIN),
        Some(json!({"spec": {"expirationSeconds": 60}})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"), "{body}");
    let (code, _) = call(
        &server,
        Method::DELETE,
        "/api/v1/namespaces/team/serviceaccounts/builder",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        call(&server, Method::GET, BUILD_X, Some(&token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // A token for a ServiceAccount that does not exist is refused.
    let (code, _) = call(
        &server,
        Method::POST,
        "/api/v1/namespaces/team/serviceaccounts/builder/token",
        Some(ADMIN),
        Some(json!({})),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

async fn rules_of(server: &ApiServer, role: &str) -> Vec<Value> {
    let (code, body) = call(
        server,
        Method::GET,
        &format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["rules"].as_array().cloned().unwrap_or_default()
}

async fn review_as_alice(server: &ApiServer, verb: &str, namespace: &str) -> Value {
    let answer = create(server, "/apis/authorization.k8s.io/v1/subjectaccessreviews", json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "groups": ["system:authenticated"], "resourceAttributes": {
            "namespace": namespace, "verb": verb, "group": "build.kiln.dev", "resource": "buildconfigs"}},
    })).await;
    answer["status"].clone()
}

#[tokio::test]
async fn aggregated_cluster_roles_follow_their_selectors() {
    let server = rbac_server();
    create(
        &server,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    // The default roles are aggregated at start: admin ⊇ edit ⊇ view.
    let view = rules_of(&server, "view").await;
    let edit = rules_of(&server, "edit").await;
    let admin = rules_of(&server, "admin").await;
    assert!(!view.is_empty());
    assert!(view.iter().all(|r| edit.contains(r)) && edit.iter().all(|r| admin.contains(r)));
    assert!(admin.len() > edit.len() && edit.len() > view.len());

    let buildconfigs = json!({"apiGroups": ["build.kiln.dev"], "resources": ["buildconfigs"], "verbs": ["create", "update"]});
    create(&server, "/apis/rbac.authorization.k8s.io/v1/clusterroles", json!({
        "metadata": {"name": "kiln-edit", "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
        "rules": [buildconfigs.clone()],
    })).await;
    assert!(rules_of(&server, "edit").await.contains(&buildconfigs));
    assert!(
        rules_of(&server, "admin").await.contains(&buildconfigs),
        "nested: edit is aggregated into admin"
    );
    assert!(!rules_of(&server, "view").await.contains(&buildconfigs));

    create(&server, "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings", json!({
        "metadata": {"name": "alice-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    })).await;
    assert_eq!(
        review_as_alice(&server, "update", "team").await,
        json!({"allowed": true, "reason": r#"RBAC: allowed by RoleBinding "alice-edit/team" of ClusterRole "edit" to User "alice""#})
    );
    assert_eq!(
        review_as_alice(&server, "delete", "team").await,
        json!({"allowed": false})
    );
    assert_eq!(
        review_as_alice(&server, "update", "default").await,
        json!({"allowed": false})
    );

    // Dropping the label takes the rule out of edit (and admin) again.
    let (code, _) = call(
        &server,
        Method::PATCH,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/kiln-edit",
        Some(ADMIN),
        None,
    )
    .await;
    assert_ne!(code, StatusCode::OK, "an empty patch body is refused");
    let response = tower::ServiceExt::oneshot(
        server.router(),
        axum::http::Request::builder()
            .method(Method::PATCH)
            .uri("/apis/rbac.authorization.k8s.io/v1/clusterroles/kiln-edit")
            .header("authorization", "Bearer sandbox")
            .header("content-type", "application/merge-patch+json")
            .body(axum::body::Body::from(r#"{"metadata":{"labels":null}}"#))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!rules_of(&server, "edit").await.contains(&buildconfigs));
    assert!(!rules_of(&server, "admin").await.contains(&buildconfigs));
    assert_eq!(
        review_as_alice(&server, "update", "team").await,
        json!({"allowed": false})
    );
}

#[tokio::test]
async fn access_reviews_answer_for_the_requester() {
    let server = rbac_server();
    let token = team_with_builder(&server).await;
    let ssar = |verb: &str, resource: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "team", "verb": verb, "resource": resource}},
        })
    };
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&token),
        Some(ssar("create", "pods")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], json!({"allowed": false}));
    assert_eq!(body["spec"]["resourceAttributes"]["verb"], "create");
    let (_, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(ADMIN),
        Some(ssar("create", "pods")),
    )
    .await;
    assert_eq!(body["status"]["allowed"], true);
    // Non-resource attributes.
    let (_, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&token),
        Some(json!({"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})),
    )
    .await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
    assert_eq!(
        body["status"]["reason"],
        r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#
    );

    // The rules review lists what the basic-user and discovery roles grant.
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Some(&token),
        Some(json!({"spec": {"namespace": "team"}})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["incomplete"], false);
    assert!(body["status"]["resourceRules"].as_array().unwrap().contains(&json!({
        "verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]})), "{body}");
    assert!(body["status"]["nonResourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["nonResourceURLs"]
            .as_array()
            .unwrap()
            .contains(&json!("/apis/*"))));

    // Who am I.
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["status"]["userInfo"]["username"],
        "system:serviceaccount:team:builder"
    );
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated"
        ])
    );

    // A SubjectAccessReview needs permission to create one, and a well-formed spec.
    let sar = json!({"spec": {"user": "system:serviceaccount:team:builder", "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"}}});
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(&token),
        Some(sar.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "system:serviceaccount:team:builder" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope"#
    );
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(ADMIN),
        Some(sar),
    )
    .await;
    assert_eq!(
        (code, body["status"].clone()),
        (StatusCode::CREATED, json!({"allowed": false}))
    );
    let (code, body) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(ADMIN),
        Some(json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
        ),
        "{body}"
    );
    let (code, _) = call(
        &server,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(ADMIN),
        Some(json!({"spec": {"user": "a"}})),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // LocalSubjectAccessReview takes the path's namespace.
    let (code, body) = call(&server, Method::POST, "/apis/authorization.k8s.io/v1/namespaces/team/localsubjectaccessreviews", Some(ADMIN),
        Some(json!({"spec": {"user": "x", "resourceAttributes": {"verb": "get", "resource": "pods"}}}))).await;
    assert_eq!(
        (
            code,
            body["spec"]["resourceAttributes"]["namespace"].as_str()
        ),
        (StatusCode::CREATED, Some("team"))
    );
    // Reviews are create-only.
    let (code, _) = call(
        &server,
        Method::GET,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    // Discovery lists them, and the token subresource.
    let (_, body) = call(
        &server,
        Method::GET,
        "/apis/authorization.k8s.io/v1",
        Some(&token),
        None,
    )
    .await;
    assert!(body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "selfsubjectaccessreviews" && r["verbs"] == json!(["create"])));
    let (_, body) = call(&server, Method::GET, "/api/v1", Some(ADMIN), None).await;
    assert!(body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "serviceaccounts/token" && r["kind"] == "TokenRequest"));
}

#[tokio::test]
async fn without_rbac_everything_is_allowed() {
    let server = ApiServer::new();
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/api/v1/namespaces/default/pods",
            Some("forged"),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/api/v1/namespaces/default/pods",
            None,
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (code, body) = call(&server, Method::POST, "/apis/authorization.k8s.io/v1/subjectaccessreviews", None,
        Some(json!({"spec": {"user": "a", "resourceAttributes": {"verb": "delete", "resource": "nodes"}}}))).await;
    assert_eq!(
        (code, body["status"].clone()),
        (StatusCode::CREATED, json!({"allowed": true}))
    );
    // No default roles are created.
    let (_, body) = call(
        &server,
        Method::GET,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        None,
        None,
    )
    .await;
    assert_eq!(body["items"], json!([]));
}

fn pod(name: &str, security: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "build", "image": "busybox", "securityContext": security}]}})
}

#[tokio::test]
async fn pod_security_admission_per_level() {
    let server = ApiServer::with_config(ServerConfig {
        pod_security: true,
        ..ServerConfig::default()
    });
    for (name, level) in [
        ("open", None),
        ("base", Some("baseline")),
        ("strict", Some("restricted")),
    ] {
        let mut ns = json!({"metadata": {"name": name}});
        if let Some(level) = level {
            ns["metadata"]["labels"] = json!({"pod-security.kubernetes.io/enforce": level});
        }
        create(&server, "/api/v1/namespaces", ns).await;
    }
    let privileged = pod("p", json!({"privileged": true}));
    let plain = pod("plain", json!({}));
    let hardened = pod(
        "hardened",
        json!({
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
    );
    let uri = |ns: &str| format!("/api/v1/namespaces/{ns}/pods");
    // Unlabelled: privileged.
    create(&server, &uri("open"), privileged.clone()).await;
    // Baseline refuses the privileged Pod with upstream's message, admits the plain one.
    let (code, body) = call(
        &server,
        Method::POST,
        &uri("base"),
        None,
        Some(privileged.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        forbidden_status(
            r#"pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "build" must not set securityContext.privileged=true)"#,
            "",
            "pods",
            "p"
        )
    );
    create(&server, &uri("base"), plain.clone()).await;
    // Restricted refuses the plain Pod naming every missing setting, admits the hardened one.
    let (code, body) = call(&server, Method::POST, &uri("strict"), None, Some(plain)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        r#"pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "build" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "build" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "build" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "build" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    create(&server, &uri("strict"), hardened).await;
    // Nothing refused was stored.
    let (_, body) = call(&server, Method::GET, "/api/v1/pods", None, None).await;
    let mut names: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap(),
                p["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, ["base/plain", "open/p", "strict/hardened"]);
}
