use axum::http::Method;

use super::*;
use crate::apiserver::http::route;

fn attrs(method: Method, uri: &str) -> Attributes {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let route = route::parse(path);
    let query = Query::parse(query).unwrap();
    attributes(UserInfo::anonymous(), &method, path, &route, &query).unwrap()
}

#[test]
fn request_attributes_table() {
    // (method, uri, verb, namespace, group, resource, subresource, name, resource request)
    let cases = [
        (
            Method::GET,
            "/api/v1/namespaces/a/pods/p",
            "get",
            "a",
            "",
            "pods",
            "",
            "p",
            true,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/a/pods",
            "list",
            "a",
            "",
            "pods",
            "",
            "",
            true,
        ),
        (
            Method::GET,
            "/api/v1/pods?watch=true",
            "watch",
            "",
            "",
            "pods",
            "",
            "",
            true,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/a/pods?watch=1&fieldSelector=metadata.name%3Dp",
            "watch",
            "a",
            "",
            "pods",
            "",
            "p",
            true,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/a/pods/p/log",
            "get",
            "a",
            "",
            "pods",
            "log",
            "p",
            true,
        ),
        (
            Method::POST,
            "/apis/build.kiln.dev/v1alpha1/namespaces/a/builds",
            "create",
            "a",
            "build.kiln.dev",
            "builds",
            "",
            "",
            true,
        ),
        (
            Method::PUT,
            "/apis/build.kiln.dev/v1alpha1/namespaces/a/builds/b/status",
            "update",
            "a",
            "build.kiln.dev",
            "builds",
            "status",
            "b",
            true,
        ),
        (
            Method::PATCH,
            "/apis/build.kiln.dev/v1alpha1/namespaces/a/builds/b",
            "patch",
            "a",
            "build.kiln.dev",
            "builds",
            "",
            "b",
            true,
        ),
        (
            Method::DELETE,
            "/apis/build.kiln.dev/v1alpha1/namespaces/a/builds/b",
            "delete",
            "a",
            "build.kiln.dev",
            "builds",
            "",
            "b",
            true,
        ),
        (
            Method::DELETE,
            "/apis/build.kiln.dev/v1alpha1/namespaces/a/builds",
            "deletecollection",
            "a",
            "build.kiln.dev",
            "builds",
            "",
            "",
            true,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/a/serviceaccounts/sa/token",
            "create",
            "a",
            "",
            "serviceaccounts",
            "token",
            "sa",
            true,
        ),
        // A namespace is in itself.
        (
            Method::GET,
            "/api/v1/namespaces/a",
            "get",
            "a",
            "",
            "namespaces",
            "",
            "a",
            true,
        ),
        (
            Method::GET,
            "/api/v1/namespaces",
            "list",
            "",
            "",
            "namespaces",
            "",
            "",
            true,
        ),
        (Method::GET, "/apis", "get", "", "", "", "", "", false),
        (Method::GET, "/healthz", "get", "", "", "", "", "", false),
        (Method::POST, "/version", "post", "", "", "", "", "", false),
    ];
    for (method, uri, verb, ns, group, resource, sub, name, is_resource) in cases {
        let a = attrs(method, uri);
        assert_eq!(
            (
                a.verb.as_str(),
                a.namespace.as_str(),
                a.api_group.as_str(),
                a.resource.as_str(),
                a.subresource.as_str(),
                a.name.as_str(),
                a.resource_request
            ),
            (verb, ns, group, resource, sub, name, is_resource),
            "{uri}"
        );
        if !is_resource {
            assert_eq!(a.path, uri);
        }
    }
}

#[test]
fn forbidden_messages() {
    let sa = UserInfo::service_account("ns", "sa", "");
    let with = |uri: &str, method: Method| Attributes {
        user: sa.clone(),
        ..attrs(method, uri)
    };
    let cases = [
        (
            with(
                "/apis/build.kiln.dev/v1alpha1/namespaces/ns/builds/x",
                Method::PUT,
            ),
            "",
            r#"builds.build.kiln.dev "x" is forbidden: User "system:serviceaccount:ns:sa" cannot update resource "builds" in API group "build.kiln.dev" in the namespace "ns""#,
        ),
        (
            with("/api/v1/namespaces/ns/pods", Method::GET),
            "",
            r#"pods is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "pods" in API group "" in the namespace "ns""#,
        ),
        (
            with("/api/v1/nodes", Method::GET),
            "",
            r#"nodes is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "nodes" in API group "" at the cluster scope"#,
        ),
        (
            with("/api/v1/namespaces/ns/pods/p/log", Method::GET),
            "RBAC: role.rbac.authorization.k8s.io \"r\" not found",
            r#"pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "pods/log" in API group "" in the namespace "ns": RBAC: role.rbac.authorization.k8s.io "r" not found"#,
        ),
        (
            with("/metrics", Method::GET),
            "",
            r#"forbidden: User "system:serviceaccount:ns:sa" cannot get path "/metrics""#,
        ),
    ];
    for (attributes, reason, message) in cases {
        let error = forbidden(&attributes, reason);
        let status = error.to_status();
        assert_eq!(status["code"], 403);
        assert_eq!(status["reason"], "Forbidden");
        assert_eq!(status["message"], message);
        if attributes.resource_request {
            assert_eq!(status["details"]["kind"], attributes.resource.as_str());
            assert_eq!(status["details"]["group"], attributes.api_group.as_str());
        }
    }
}
