//! Property test: random paths, methods, query strings and bodies always get a well-formed
//! answer (a Status error for every failure) and never crash the server.

mod apiserver_support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use kiln_sandbox::{ApiServer, ServerConfig};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_string()),
        Just("apis".to_string()),
        Just("v1".to_string()),
        Just("namespaces".to_string()),
        Just("default".to_string()),
        Just("configmaps".to_string()),
        Just("pods".to_string()),
        Just("status".to_string()),
        Just("log".to_string()),
        Just("binding".to_string()),
        Just("example.dev".to_string()),
        Just("widgets".to_string()),
        Just("apiextensions.k8s.io".to_string()),
        Just("customresourcedefinitions".to_string()),
        Just("sandbox".to_string()),
        Just("faults".to_string()),
        Just("openapi".to_string()),
        Just("v3".to_string()),
        "[a-zA-Z0-9._%~-]{0,12}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        Just("watch=true".to_string()),
        Just("timeoutSeconds=0".to_string()),
        "labelSelector=[a-z!=(), %]{0,12}",
        "fieldSelector=[a-z.!=,]{0,16}",
        "limit=[0-9-]{0,3}",
        "continue=[A-Za-z0-9_-]{0,12}",
        "resourceVersion=[0-9a-z]{0,4}",
        "fieldManager=[a-z]{0,5}",
        Just("dryRun=All".to_string()),
        Just("fieldValidation=Strict".to_string()),
        "propagationPolicy=[A-Za-z]{0,10}",
        "tailLines=[0-9]{0,2}",
        "gracePeriodSeconds=-?[0-9]{1,20}",
        "timeoutSeconds=[0-9]{18,20}",
        "limitBytes=[0-9]{1,20}",
        "[a-zA-Z%]{1,8}=[a-zA-Z%0-9]{0,8}",
    ];
    proptest::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join("&"))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let object = prop_oneof![
        Just(serde_json::json!({"metadata": {"name": "x"}, "data": {"a": "b"}})),
        Just(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})),
        Just(serde_json::json!({"metadata": {"name": "w"}, "spec": {"size": "big"}})),
        Just(serde_json::json!([{"op": "test", "path": "/x", "value": 1}])),
        Just(serde_json::json!({"metadata": {"labels": [1]}})),
        Just(serde_json::json!({"kind": "CustomResourceDefinition", "metadata": {"name": "a.b"}, "spec": {"group": "b"}})),
        Just(serde_json::json!({"propagationPolicy": "Sideways"})),
        Just(serde_json::json!(null)),
    ]
    .prop_map(|v| v.to_string().into_bytes());
    prop_oneof![
        object,
        proptest::collection::vec(any::<u8>(), 0..64),
        "[{}\\[\\]\":,a-z0-9 ]{0,40}".prop_map(String::into_bytes)
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
    ]
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("application/json"),
        Just("application/merge-patch+json"),
        Just("application/json-patch+json"),
        Just("application/strategic-merge-patch+json"),
        Just("application/apply-patch+yaml"),
        Just("application/vnd.kubernetes.protobuf"),
        Just("text/plain"),
    ]
}

const CODES: &[u16] = &[200, 201, 400, 403, 404, 405, 409, 410, 413, 415, 422];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn every_answer_is_well_formed(
        segments in proptest::collection::vec(segment(), 0..7),
        query in query(),
        method in method(),
        body in body(),
        content_type in content_type(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = ApiServer::with_config(ServerConfig { max_body_bytes: 4096, ..Default::default() });
            let router = server.router();
            apiserver_support::call(&router, Method::POST, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Some(apiserver_support::widget_crd()), "application/json").await;
            let path = format!("/{}?{}", segments.join("/"), query);
            let Ok(request) = Request::builder().method(method.clone()).uri(&path).header("content-type", content_type).body(Body::from(body.clone())) else {
                return; // not a valid URI at all: nothing reaches the server
            };
            let response = tokio::time::timeout(Duration::from_secs(5), router.clone().oneshot(request)).await.unwrap().unwrap();
            let code = response.status().as_u16();
            assert!(CODES.contains(&code), "{method} {path}: unexpected {code}");
            let bytes = match tokio::time::timeout(Duration::from_secs(3), axum::body::to_bytes(response.into_body(), usize::MAX)).await {
                Ok(bytes) => bytes.unwrap(),
                Err(_) => {
                    // A stream (watch or log follow) that is still open: only valid for 200.
                    assert_eq!(code, 200, "{method} {path}");
                    return;
                }
            };
            // HEAD answers carry no body by definition.
            if code >= 400 && method != Method::HEAD {
                let status: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {path}: {code} body is not JSON: {e}"));
                assert_eq!(status["kind"], "Status", "{method} {path}");
                assert_eq!(status["code"], code, "{method} {path}");
                assert!(status["reason"].as_str().is_some_and(|r| !r.is_empty()), "{method} {path}");
            }
            // The server still answers afterwards.
            let (code, _) = apiserver_support::call(&router, Method::GET, "/api/v1/namespaces", None, "application/json").await;
            assert_eq!(code.as_u16(), 200);
        });
    }
}
