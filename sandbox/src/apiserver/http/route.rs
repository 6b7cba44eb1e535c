//! Parsing request paths into API routes.

/// A resource request path, decomposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `log`, `binding`).
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    GroupVersion(String, String),
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/sandbox/...` admin endpoints (fault injection).
    Admin(Vec<String>),
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApiGroupVersion(String, String),
    /// Anything else (including `/openapi/*`, answered 404 so kubectl falls back).
    Unknown,
}

/// Splits a path into API segments.
pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", version] => {
            Route::OpenApiGroupVersion(String::new(), version.to_string())
        }
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApiGroupVersion(group.to_string(), version.to_string())
        }
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["sandbox", rest @ ..] => Route::Admin(rest.iter().map(|s| s.to_string()).collect()),
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::GroupVersion(String::new(), version.to_string()),
        ["apis", group, version] => Route::GroupVersion(group.to_string(), version.to_string()),
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (namespace, rest) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] => {
            return Route::Resource(ResourcePath {
                group: group.into(),
                version: version.into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some(ns.to_string()),
                subresource: Some(sub.to_string()),
            });
        }
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        ns: Option<&str>,
        plural: &str,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Route {
        Route::Resource(ResourcePath {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.map(String::from),
            plural: plural.into(),
            name: name.map(String::from),
            subresource: sub.map(String::from),
        })
    }

    #[test]
    fn routes_table() {
        let cases = [
            ("/version", Route::Version),
            ("/api", Route::CoreVersions),
            ("/apis", Route::Groups),
            ("/apis/kiln.dev", Route::Group("kiln.dev".into())),
            ("/api/v1", Route::GroupVersion("".into(), "v1".into())),
            (
                "/apis/kiln.dev/v1",
                Route::GroupVersion("kiln.dev".into(), "v1".into()),
            ),
            ("/api/v1/pods", res("", None, "pods", None, None)),
            (
                "/api/v1/namespaces",
                res("", None, "namespaces", None, None),
            ),
            (
                "/api/v1/namespaces/a",
                res("", None, "namespaces", Some("a"), None),
            ),
            (
                "/api/v1/namespaces/a/status",
                res("", None, "namespaces", Some("a"), Some("status")),
            ),
            (
                "/api/v1/namespaces/a/pods",
                res("", Some("a"), "pods", None, None),
            ),
            (
                "/api/v1/namespaces/a/pods/p",
                res("", Some("a"), "pods", Some("p"), None),
            ),
            (
                "/api/v1/namespaces/a/pods/p/log",
                res("", Some("a"), "pods", Some("p"), Some("log")),
            ),
            (
                "/apis/kiln.dev/v1/namespaces/a/builds/b/status",
                res("kiln.dev", Some("a"), "builds", Some("b"), Some("status")),
            ),
            (
                "/apis/x/v1/namespaces/a/builds/b/status/more",
                Route::Unknown,
            ),
            ("/openapi/v2", Route::Unknown),
            ("/openapi/v3", Route::OpenApiRoot),
            (
                "/openapi/v3/api/v1",
                Route::OpenApiGroupVersion("".into(), "v1".into()),
            ),
            (
                "/openapi/v3/apis/kiln.dev/v1",
                Route::OpenApiGroupVersion("kiln.dev".into(), "v1".into()),
            ),
            ("/healthz", Route::Health),
            ("/sandbox/faults", Route::Admin(vec!["faults".into()])),
            ("/", Route::Unknown),
        ];
        for (path, expected) in cases {
            assert_eq!(parse(path), expected, "{path}");
        }
    }
}
