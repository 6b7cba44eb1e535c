//! HTTP-level semantics of the fake apiserver, checked request by request.

mod apiserver_support;

use std::time::Duration;

use apiserver_support::{call, widget_crd};
use axum::http::{Method, StatusCode};
use kiln_sandbox::{ApiServer, ServerConfig};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

fn assert_status(value: &Value, code: u16, reason: &str) {
    assert_eq!(value["kind"], "Status", "{value}");
    assert_eq!(value["status"], "Failure", "{value}");
    assert_eq!(value["code"], code, "{value}");
    assert_eq!(value["reason"], reason, "{value}");
}

async fn with_widgets() -> (ApiServer, axum::Router) {
    let server = ApiServer::new();
    let router = server.router();
    let (code, _) = call(
        &router,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(widget_crd()),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    (server, router)
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_get_conflicts_and_names() {
    let router = ApiServer::new().router();
    let (code, created) = call(&router, Method::POST, CMS, Some(cm("a", json!({}))), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(created["metadata"]["namespace"], "default");
    let (code, again) = call(&router, Method::POST, CMS, Some(cm("a", json!({}))), JSON).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_status(&again, 409, "AlreadyExists");
    assert_eq!(again["details"]["name"], "a");
    assert_eq!(again["message"], "configmaps \"a\" already exists");

    let generated = json!({"metadata": {"generateName": "gen-"}});
    let (code, body) = call(&router, Method::POST, CMS, Some(generated), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    let name = body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    for bad in ["Bad_Name", "-x", "a..b"] {
        let (code, body) = call(&router, Method::POST, CMS, Some(cm(bad, json!({}))), JSON).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_status(&body, 422, "Invalid");
        assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    }
    let (code, body) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces/nope/configmaps",
        Some(cm("a", json!({}))),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_status(&body, 404, "NotFound");
    let (code, body) = call(&router, Method::GET, &format!("{CMS}/missing"), None, JSON).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "configmaps \"missing\" not found");
    let (code, body) = call(
        &router,
        Method::POST,
        CMS,
        Some(json!({"kind": "Secret", "metadata": {"name": "x"}})),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_status(&body, 400, "BadRequest");
}

#[tokio::test]
async fn selectors_and_pagination() {
    let router = ApiServer::new().router();
    for (name, app, tier) in [
        ("a", "web", "front"),
        ("b", "web", "back"),
        ("c", "db", "back"),
        ("d", "db", ""),
    ] {
        let labels = if tier.is_empty() {
            json!({"app": app})
        } else {
            json!({"app": app, "tier": tier})
        };
        call(&router, Method::POST, CMS, Some(cm(name, labels)), JSON).await;
    }
    let cases = [
        ("labelSelector=app%3Dweb", vec!["a", "b"]),
        ("labelSelector=app%21%3Dweb", vec!["c", "d"]),
        ("labelSelector=tier%20in%20(back)", vec!["b", "c"]),
        ("labelSelector=tier%20notin%20(back)", vec!["a", "d"]),
        ("labelSelector=%21tier", vec!["d"]),
        ("labelSelector=app%3Ddb,tier", vec!["c"]),
        ("fieldSelector=metadata.name%3Dc", vec!["c"]),
        ("fieldSelector=metadata.name%21%3Dc", vec!["a", "b", "d"]),
        ("fieldSelector=metadata.namespace%3Dother", vec![]),
    ];
    for (query, expected) in cases {
        let (code, body) = call(&router, Method::GET, &format!("{CMS}?{query}"), None, JSON).await;
        assert_eq!(code, StatusCode::OK, "{query}: {body}");
        let names: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "{query}");
    }
    let (code, body) = call(
        &router,
        Method::GET,
        &format!("{CMS}?fieldSelector=spec.nodeName%3Dx"),
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_status(&body, 400, "BadRequest");

    let mut names = Vec::new();
    let mut query = "limit=3".to_string();
    let mut pages = 0;
    loop {
        let (_, page) = call(&router, Method::GET, &format!("{CMS}?{query}"), None, JSON).await;
        pages += 1;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(token) => {
                assert_eq!(page["metadata"]["remainingItemCount"], 1);
                query = format!("limit=3&continue={token}");
            }
            None => break,
        }
    }
    assert_eq!(
        (pages, names),
        (2, vec!["a".to_string(), "b".into(), "c".into(), "d".into()])
    );
    let (code, _) = call(
        &router,
        Method::GET,
        &format!("{CMS}?continue=garbage"),
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patches_of_every_kind() {
    let (_, router) = with_widgets().await;
    call(&router, Method::POST, CMS, Some(cm("a", json!({}))), JSON).await;
    let path = format!("{CMS}/a");
    let (code, body) = call(
        &router,
        Method::PATCH,
        &path,
        Some(json!({"data": {"k": null, "n": "1"}})),
        MERGE,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["data"], json!({"n": "1"}));
    let ops = json!([{"op": "test", "path": "/data/n", "value": "1"}, {"op": "replace", "path": "/data/n", "value": "2"}]);
    let (code, body) = call(&router, Method::PATCH, &path, Some(ops), JSON_PATCH).await;
    assert_eq!(
        (code, body["data"]["n"].clone()),
        (StatusCode::OK, json!("2"))
    );
    let failing = json!([{"op": "test", "path": "/data/n", "value": "1"}]);
    let (code, body) = call(&router, Method::PATCH, &path, Some(failing), JSON_PATCH).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_status(&body, 422, "Invalid");
    let (code, body) = call(&router, Method::PATCH, &path, Some(json!({})), "text/plain").await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_status(&body, 415, "UnsupportedMediaType");
    let stale = json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}});
    let (code, body) = call(&router, Method::PATCH, &path, Some(stale), MERGE).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_status(&body, 409, "Conflict");

    // Strategic merge for pods merges containers by name.
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
    let (code, created) = call(&router, Method::POST, pods, Some(pod), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(created["status"]["phase"], "Pending");
    let smp = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "b", "image": "z"}]}});
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{pods}/p"),
        Some(smp),
        STRATEGIC,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["spec"]["containers"][0]["image"], "x");
    assert_eq!(body["spec"]["containers"][1]["image"], "z");
    assert_eq!(body["metadata"]["generation"], 2);

    // Strategic merge is not allowed on custom resources.
    let widgets = "/apis/example.dev/v1/namespaces/default/widgets";
    call(
        &router,
        Method::POST,
        widgets,
        Some(json!({"metadata": {"name": "w"}, "spec": {"size": 1}})),
        JSON,
    )
    .await;
    let (code, _) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w"),
        Some(json!({"spec": {"size": 2}})),
        STRATEGIC,
    )
    .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn server_side_apply_creates_and_records_managers() {
    let (_, router) = with_widgets().await;
    let widgets = "/apis/example.dev/v1/namespaces/default/widgets";
    let config = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}});
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w"),
        Some(config.clone()),
        APPLY,
    )
    .await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "fieldManager is required: {body}"
    );
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=me&force=true"),
        Some(config),
        APPLY,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["spec"]["mode"], "Fast", "defaulted");
    let managed = &body["metadata"]["managedFields"][0];
    assert_eq!(
        (managed["manager"].as_str(), managed["operation"].as_str()),
        (Some("me"), Some("Apply"))
    );
    assert_eq!(managed["fieldsV1"]["f:spec"]["f:size"], json!({}));
    // YAML bodies are accepted for apply.
    let yaml = "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 5\n";
    let response = tower::ServiceExt::oneshot(
        router.clone(),
        axum::http::Request::builder()
            .method(Method::PATCH)
            .uri(format!("{widgets}/w?fieldManager=me"))
            .header("content-type", APPLY)
            .body(axum::body::Body::from(yaml))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, body) = call(&router, Method::GET, &format!("{widgets}/w"), None, JSON).await;
    assert_eq!(
        (
            body["spec"]["size"].clone(),
            body["metadata"]["generation"].clone()
        ),
        (json!(5), json!(2))
    );
    // Field ownership: another manager changing an owned field conflicts unless forced.
    let other = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 9}});
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=other"),
        Some(other.clone()),
        APPLY,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_status(&body, 409, "Conflict");
    assert_eq!(
        body["message"],
        "Apply failed with 1 conflict: conflict with \"me\": .spec.size"
    );
    assert_eq!(body["details"]["causes"][0]["field"], ".spec.size");
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=other&force=true"),
        Some(other),
        APPLY,
    )
    .await;
    assert_eq!(
        (code, body["spec"]["size"].clone()),
        (StatusCode::OK, json!(9))
    );
    // A manager that stops applying a field it alone owns removes it.
    let labelled = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"team": "a"}}, "spec": {"size": 9}});
    let (_, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=other"),
        Some(labelled),
        APPLY,
    )
    .await;
    assert_eq!(body["metadata"]["labels"]["team"], "a");
    let unlabelled = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 9}});
    let (_, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=other"),
        Some(unlabelled),
        APPLY,
    )
    .await;
    assert!(body["metadata"]["labels"].get("team").is_none(), "{body}");
    // Status through apply on the subresource only touches status.
    let status = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": {"phase": "Ready"}, "spec": {"size": 7}});
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{widgets}/w/status?fieldManager=ctl"),
        Some(status),
        APPLY,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (
            body["status"]["phase"].clone(),
            body["spec"]["size"].clone()
        ),
        (json!("Ready"), json!(9))
    );
}

#[tokio::test]
async fn crd_schema_validation_defaults_and_pruning() {
    let (_, router) = with_widgets().await;
    let widgets = "/apis/example.dev/v1/namespaces/default/widgets";
    let invalid = json!({"metadata": {"name": "w"}, "spec": {"size": 0, "mode": "Turbo"}});
    let (code, body) = call(&router, Method::POST, widgets, Some(invalid), JSON).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_status(&body, 422, "Invalid");
    let mut fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["spec.mode", "spec.size"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.mode: Unsupported value: \"Turbo\""),
        "{body}"
    );
    let (code, body) = call(
        &router,
        Method::POST,
        widgets,
        Some(json!({"metadata": {"name": "w"}, "spec": {}})),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["causes"][0]["field"], "spec.size");

    let with_unknown =
        json!({"metadata": {"name": "w"}, "spec": {"size": 1, "junk": true, "extra": {"kept": 1}}});
    let response = tower::ServiceExt::oneshot(
        router.clone(),
        axum::http::Request::builder()
            .method(Method::POST)
            .uri(widgets)
            .header("content-type", JSON)
            .body(axum::body::Body::from(with_unknown.to_string()))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let warning = response
        .headers()
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        warning.contains("unknown field") && warning.contains("spec.junk"),
        "{warning}"
    );
    let (_, body) = call(&router, Method::GET, &format!("{widgets}/w"), None, JSON).await;
    assert_eq!(
        body["spec"],
        json!({"size": 1, "mode": "Fast", "extra": {"kept": 1}})
    );
    let strict = json!({"metadata": {"name": "w2"}, "spec": {"size": 1, "junk": true}});
    let (code, body) = call(
        &router,
        Method::POST,
        &format!("{widgets}?fieldValidation=Strict"),
        Some(strict),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("unknown field \"spec.junk\""));
    // Deleting the CRD stops serving the resource and removes its objects.
    let crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev";
    let (_, crd) = call(&router, Method::GET, crd_path, None, JSON).await;
    let conditions: Vec<&str> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(conditions, vec!["NamesAccepted", "Established"]);
    // An update without resourceVersion is rejected for custom resources.
    let (code, body) = call(
        &router,
        Method::PUT,
        &format!("{widgets}/w"),
        Some(json!({"metadata": {"name": "w"}, "spec": {"size": 2}})),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
}

#[tokio::test]
async fn finalizers_and_cascading_deletion() {
    let router = ApiServer::new().router();
    let (_, owner) = call(
        &router,
        Method::POST,
        CMS,
        Some(json!({"metadata": {"name": "owner", "finalizers": ["example.dev/hold"]}})),
        JSON,
    )
    .await;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let owned = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
    call(&router, Method::POST, CMS, Some(owned("child")), JSON).await;
    call(
        &router,
        Method::POST,
        CMS,
        Some(owned("grandchild-owner")),
        JSON,
    )
    .await;

    let (code, body) = call(&router, Method::DELETE, &format!("{CMS}/owner"), None, JSON).await;
    assert_eq!(code, StatusCode::OK);
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
    let (code, _) = call(&router, Method::GET, &format!("{CMS}/child"), None, JSON).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "dependents stay while the owner is terminating"
    );
    let add = json!({"metadata": {"finalizers": ["example.dev/hold", "new"]}});
    let (code, body) = call(
        &router,
        Method::PATCH,
        &format!("{CMS}/owner"),
        Some(add),
        MERGE,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let release = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "example.dev/hold"}, {"op": "remove", "path": "/metadata/finalizers/0"}]);
    let (code, _) = call(
        &router,
        Method::PATCH,
        &format!("{CMS}/owner"),
        Some(release),
        JSON_PATCH,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    for name in ["owner", "child", "grandchild-owner"] {
        let (code, _) = call(&router, Method::GET, &format!("{CMS}/{name}"), None, JSON).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{name} should be gone");
    }

    // Orphan keeps dependents and strips the reference; Foreground removes dependents first.
    for (policy, child_survives) in [("Orphan", true), ("Foreground", false)] {
        let (_, owner) = call(
            &router,
            Method::POST,
            CMS,
            Some(json!({"metadata": {"name": "o"}})),
            JSON,
        )
        .await;
        let uid = owner["metadata"]["uid"].as_str().unwrap();
        let child = json!({"metadata": {"name": "c", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": uid}]}});
        call(&router, Method::POST, CMS, Some(child), JSON).await;
        let options =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
        let (code, _) = call(
            &router,
            Method::DELETE,
            &format!("{CMS}/o"),
            Some(options),
            JSON,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = call(&router, Method::GET, &format!("{CMS}/o"), None, JSON).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{policy}");
        let (code, child) = call(&router, Method::GET, &format!("{CMS}/c"), None, JSON).await;
        assert_eq!(code == StatusCode::OK, child_survives, "{policy}");
        if child_survives {
            assert!(child["metadata"]["ownerReferences"].is_null(), "{child}");
            call(&router, Method::DELETE, &format!("{CMS}/c"), None, JSON).await;
        }
    }
}

#[tokio::test]
async fn namespace_deletion_removes_contents() {
    let router = ApiServer::new().router();
    let (code, ns) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "team"}})),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(ns["status"]["phase"], "Active");
    let (code, _) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "a.b"}})),
        JSON,
    )
    .await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "namespaces are RFC 1123 labels"
    );
    call(
        &router,
        Method::POST,
        "/api/v1/namespaces/team/configmaps",
        Some(cm("x", json!({}))),
        JSON,
    )
    .await;
    call(
        &router,
        Method::POST,
        "/api/v1/namespaces/team/secrets",
        Some(json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}})),
        JSON,
    )
    .await;
    let (_, secret) = call(
        &router,
        Method::GET,
        "/api/v1/namespaces/team/secrets/s",
        None,
        JSON,
    )
    .await;
    assert_eq!(secret["data"]["a"], "Yg==");
    let (code, _) = call(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/team",
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    for path in [
        "/api/v1/namespaces/team",
        "/api/v1/namespaces/team/configmaps/x",
        "/api/v1/namespaces/team/secrets/s",
    ] {
        let (code, _) = call(&router, Method::GET, path, None, JSON).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}");
    }
}

fn events_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let name = v["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (v["type"].as_str().unwrap().to_string(), name)
        })
        .collect()
}

async fn watch_text(router: &axum::Router, query: &str) -> String {
    let (code, body) = tokio::time::timeout(
        Duration::from_secs(5),
        call(
            router,
            Method::GET,
            &format!("{CMS}?watch=true&timeoutSeconds=1&{query}"),
            None,
            JSON,
        ),
    )
    .await
    .unwrap();
    assert_eq!(code, StatusCode::OK);
    match body {
        Value::String(s) => s,
        other => format!("{other}\n"),
    }
}

#[tokio::test]
async fn watch_replay_bookmarks_selectors_and_gone() {
    let server = ApiServer::with_config(ServerConfig {
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    });
    let router = server.router();
    let (_, a) = call(
        &router,
        Method::POST,
        CMS,
        Some(cm("a", json!({"app": "web"}))),
        JSON,
    )
    .await;
    let rv_a = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &router,
        Method::POST,
        CMS,
        Some(cm("b", json!({"app": "web"}))),
        JSON,
    )
    .await;
    call(
        &router,
        Method::PATCH,
        &format!("{CMS}/a"),
        Some(json!({"metadata": {"labels": {"app": "db"}}})),
        MERGE,
    )
    .await;
    call(&router, Method::DELETE, &format!("{CMS}/b"), None, JSON).await;

    let replay = events_of(&watch_text(&router, &format!("resourceVersion={rv_a}")).await);
    let expected: Vec<(String, String)> = [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(replay, expected);
    // With a selector, `a` leaving the selection is a DELETED.
    let selected = events_of(
        &watch_text(
            &router,
            &format!("resourceVersion={rv_a}&labelSelector=app%3Dweb"),
        )
        .await,
    );
    let expected: Vec<(String, String)> = [("ADDED", "b"), ("DELETED", "a"), ("DELETED", "b")]
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(selected, expected);
    // No resourceVersion: synthetic ADDED for the current state.
    let current = events_of(&watch_text(&router, "").await);
    assert_eq!(current, vec![("ADDED".to_string(), "a".to_string())]);
    // Bookmarks.
    let text = watch_text(&router, "resourceVersion=0&allowWatchBookmarks=true").await;
    assert!(
        events_of(&text).iter().any(|(t, _)| t == "BOOKMARK"),
        "{text}"
    );
    // Compacted history: an ERROR event carrying 410 Expired.
    server.faults().compact();
    let text = watch_text(&router, &format!("resourceVersion={rv_a}")).await;
    let error: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_status(&error["object"], 410, "Expired");
}

#[tokio::test]
async fn pod_logs_from_the_log_store() {
    let server = ApiServer::new();
    let router = server.router();
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "init", "image": "x"}], "containers": [{"name": "main", "image": "x"}]}});
    call(&router, Method::POST, pods, Some(pod), JSON).await;
    let (code, body) = call(&router, Method::GET, &format!("{pods}/p/log"), None, JSON).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "not started yet: {body}");
    let logs = server.logs();
    logs.start("default", "p", "main");
    logs.append("default", "p", "main", b"one\ntwo\nthree\n");
    let (code, body) = call(&router, Method::GET, &format!("{pods}/p/log"), None, JSON).await;
    assert_eq!((code, body), (StatusCode::OK, json!("one\ntwo\nthree\n")));
    let (_, body) = call(
        &router,
        Method::GET,
        &format!("{pods}/p/log?container=main&tailLines=1"),
        None,
        JSON,
    )
    .await;
    assert_eq!(body, json!("three\n"));
    let (_, body) = call(
        &router,
        Method::GET,
        &format!("{pods}/p/log?tailLines=1&timestamps=true"),
        None,
        JSON,
    )
    .await;
    let line = body.as_str().unwrap();
    assert!(
        line.ends_with(" three\n") && line.starts_with("20"),
        "{line}"
    );
    let (code, _) = call(
        &router,
        Method::GET,
        &format!("{pods}/p/log?container=nope"),
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let follower = {
        let router = router.clone();
        tokio::spawn(async move {
            call(
                &router,
                Method::GET,
                &format!("{pods}/p/log?follow=true&tailLines=0"),
                None,
                JSON,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    logs.append("default", "p", "main", b"four\n");
    logs.finish("default", "p", "main");
    let (code, body) = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((code, body), (StatusCode::OK, json!("four\n")));
}

#[tokio::test]
async fn bad_input_gets_status_errors() {
    let server = ApiServer::with_config(ServerConfig {
        max_body_bytes: 1024,
        ..Default::default()
    });
    let router = server.router();
    let cases: Vec<(Method, &str, Option<String>, u16, &str)> = vec![
        (
            Method::POST,
            CMS,
            Some("{not json".into()),
            400,
            "BadRequest",
        ),
        (Method::POST, CMS, Some("[1,2]".into()), 400, "BadRequest"),
        (
            Method::POST,
            CMS,
            Some(format!(
                "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}\"}}}}",
                "x".repeat(2000)
            )),
            413,
            "RequestEntityTooLarge",
        ),
        (
            Method::GET,
            "/api/v1/namespaces/default/nothings",
            None,
            404,
            "NotFound",
        ),
        (
            Method::GET,
            "/apis/nope.dev/v1/things",
            None,
            404,
            "NotFound",
        ),
        (Method::GET, "/openapi/v2", None, 404, "NotFound"),
        (Method::PUT, CMS, Some("{}".into()), 405, "MethodNotAllowed"),
        (
            Method::POST,
            CMS,
            Some("{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":1}}}".into()),
            400,
            "BadRequest",
        ),
        (
            Method::GET,
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(b",
            None,
            400,
            "BadRequest",
        ),
        (
            Method::GET,
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc",
            None,
            400,
            "BadRequest",
        ),
    ];
    for (method, path, body, code, reason) in cases {
        let request = axum::http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", JSON)
            .body(
                body.map(axum::body::Body::from)
                    .unwrap_or_else(axum::body::Body::empty),
            )
            .unwrap();
        let response = tower::ServiceExt::oneshot(router.clone(), request)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code, "{method} {path}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let status: Value = serde_json::from_slice(&bytes).unwrap();
        assert_status(&status, code, reason);
    }
}

#[tokio::test]
async fn fault_admin_endpoint() {
    let server = ApiServer::new();
    let router = server.router();
    let rule =
        json!({"verb": "create", "resource": "configmaps", "action": {"fail": 500}, "count": 1});
    let (code, _) = call(&router, Method::POST, "/sandbox/faults", Some(rule), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    let (_, listed) = call(&router, Method::GET, "/sandbox/faults", None, JSON).await;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1);
    let (code, body) = call(&router, Method::POST, CMS, Some(cm("a", json!({}))), JSON).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_status(&body, 500, "InternalError");
    let (code, _) = call(&router, Method::POST, CMS, Some(cm("a", json!({}))), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, body) = call(&router, Method::POST, "/sandbox/faults/compact", None, JSON).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body["compactedThrough"],
        server.resource_version().to_string()
    );
    let (code, _) = call(
        &router,
        Method::POST,
        "/sandbox/faults/drop-watches",
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = call(
        &router,
        Method::POST,
        "/sandbox/faults",
        Some(json!({"action": "boom"})),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn other_builtin_kinds() {
    let router = ApiServer::new().router();
    let cases = [
        (
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}),
        ),
        (
            "/apis/events.k8s.io/v1/namespaces/default/events",
            json!({"metadata": {"name": "e"}, "reason": "Built", "note": "ok"}),
        ),
        (
            "/api/v1/namespaces/default/events",
            json!({"metadata": {"name": "e"}, "reason": "Built", "involvedObject": {"kind": "Pod", "name": "p"}}),
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "builder"}, "automountServiceAccountToken": false}),
        ),
    ];
    for (path, object) in cases {
        let (code, body) = call(&router, Method::POST, path, Some(object), JSON).await;
        assert_eq!(code, StatusCode::CREATED, "{path}: {body}");
        let (code, list) = call(&router, Method::GET, path, None, JSON).await;
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        let expected = match path.ends_with("serviceaccounts") {
            true => vec!["builder", "default"],
            false => vec![body["metadata"]["name"].as_str().unwrap()],
        };
        assert_eq!((code, names), (StatusCode::OK, expected), "{path}");
    }
    let (_, list) = call(
        &router,
        Method::GET,
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dp,reason%3DBuilt",
        None,
        JSON,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, pod) = call(&router, Method::POST, "/api/v1/namespaces/default/pods", Some(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})), JSON).await;
    assert_eq!(
        pod["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "local"}});
    let (code, _) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces/default/pods/p/binding",
        Some(binding),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let (_, list) = call(
        &router,
        Method::GET,
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dlocal,status.phase%3DPending",
        None,
        JSON,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // A bound, running pod is deleted gracefully: it stays until a grace-0 delete.
    call(
        &router,
        Method::PATCH,
        "/api/v1/namespaces/default/pods/p/status",
        Some(json!({"status": {"phase": "Running"}})),
        MERGE,
    )
    .await;
    let (_, body) = call(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p",
        None,
        JSON,
    )
    .await;
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, _) = call(
        &router,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    call(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0",
        None,
        JSON,
    )
    .await;
    let (code, _) = call(
        &router,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn extreme_grace_periods_and_timeouts_are_clamped() {
    let router = ApiServer::new().router();
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": i64::MAX,
                     "containers": [{"name": "c", "image": "x"}]}});
    let (code, _) = call(&router, Method::POST, pods, Some(pod), JSON).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, body) = call(&router, Method::DELETE, &format!("{pods}/p"), None, JSON).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 315_360_000);
    let (code, _) = call(
        &router,
        Method::DELETE,
        &format!("{pods}/p?gracePeriodSeconds=0"),
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let watch = format!("{pods}?watch=true&timeoutSeconds={}", u64::MAX);
    let request = axum::http::Request::builder()
        .uri(watch)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn service_accounts_exist_per_namespace_and_admission_checks_them() {
    let server = ApiServer::with_config(ServerConfig {
        service_account_admission: true,
        ..Default::default()
    });
    let router = server.router();
    call(
        &router,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "team"}})),
        JSON,
    )
    .await;
    let (code, _) = call(
        &router,
        Method::GET,
        "/api/v1/namespaces/team/serviceaccounts/default",
        None,
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let pod = |account: &str| json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "x"}]}});
    let (code, body) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces/team/pods",
        Some(pod("builder")),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_status(&body, 403, "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: error looking up service account team/builder: serviceaccount \"builder\" not found"
    );
    call(
        &router,
        Method::POST,
        "/api/v1/namespaces/team/serviceaccounts",
        Some(json!({"metadata": {"name": "builder"}})),
        JSON,
    )
    .await;
    let (code, _) = call(
        &router,
        Method::POST,
        "/api/v1/namespaces/team/pods",
        Some(pod("builder")),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    // Off by default.
    let lenient = ApiServer::new().router();
    let (code, _) = call(
        &lenient,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        Some(pod("builder")),
        JSON,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
}

#[tokio::test]
async fn cel_rules_when_enabled() {
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["x-kubernetes-validations"] = json!([
        {"rule": "self.size < 100", "message": "size must stay below 100"},
        {"rule": "!has(oldSelf.mode) || self.mode == oldSelf.mode", "message": "mode is immutable"}
    ]);
    for (enabled, expected) in [
        (true, StatusCode::UNPROCESSABLE_ENTITY),
        (false, StatusCode::CREATED),
    ] {
        let server = ApiServer::with_config(ServerConfig {
            cel_rules: enabled,
            ..Default::default()
        });
        let router = server.router();
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        call(&router, Method::POST, crds, Some(crd.clone()), JSON).await;
        let widgets = "/apis/example.dev/v1/namespaces/default/widgets";
        let big = json!({"metadata": {"name": "big"}, "spec": {"size": 500}});
        let (code, body) = call(&router, Method::POST, widgets, Some(big), JSON).await;
        assert_eq!(code, expected, "{body}");
        if !enabled {
            continue;
        }
        assert_eq!(body["details"]["causes"][0]["field"], "spec");
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "Invalid value: \"object\": size must stay below 100"
        );
        let ok = json!({"metadata": {"name": "w"}, "spec": {"size": 5, "mode": "Fast"}});
        let (code, _) = call(&router, Method::POST, widgets, Some(ok), JSON).await;
        assert_eq!(code, StatusCode::CREATED);
        let change = json!({"spec": {"mode": "Slow"}});
        let (code, body) = call(
            &router,
            Method::PATCH,
            &format!("{widgets}/w"),
            Some(change),
            MERGE,
        )
        .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("mode is immutable"),
            "{body}"
        );
        let (code, _) = call(
            &router,
            Method::PATCH,
            &format!("{widgets}/w"),
            Some(json!({"spec": {"size": 6}})),
            MERGE,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
    }
}
