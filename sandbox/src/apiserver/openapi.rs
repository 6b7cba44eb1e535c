//! A minimal OpenAPI v3 surface. kubectl uses `/openapi/v3` to decide whether the server
//! validates fields itself (`fieldValidation` on PATCH operations). We publish one document per
//! served group/version, listing a PATCH operation per kind with the `fieldValidation` and
//! `dryRun` parameters but no schemas; kubectl then relies on server-side validation and
//! computes strategic merge patches from its compiled-in types. `/openapi/v2` stays 404.

use serde_json::{json, Map, Value};

use super::resources::Registry;

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group/version documents.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut group_versions = vec![(String::new(), "v1".to_string())];
    for (group, versions) in registry.groups() {
        group_versions.extend(versions.into_iter().map(|v| (group.clone(), v)));
    }
    for (group, version) in group_versions {
        let hash = registry.resources_of(&group, &version).len();
        let p = prefix(&group, &version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`: PATCH operations per kind.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.serves_group_version(group, version) {
        return None;
    }
    let mut paths = Map::new();
    for info in registry.resources_of(group, version) {
        let base = prefix(group, version);
        let path = if info.namespaced {
            format!("/{base}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
        } else {
            format!("/{base}/{}/{{name}}", info.plural)
        };
        let parameter = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", info.kind),
                "parameters": [parameter("fieldValidation"), parameter("dryRun"), parameter("fieldManager")],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": info.kind},
            }}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", super::discovery::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_document_has_namespace_patch_with_field_validation() {
        let registry = Registry::new();
        let doc = document(&registry, "", "v1").unwrap();
        let op = &doc["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Namespace");
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"].is_object());
        let root = root(&registry);
        assert!(root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?"));
        assert!(root["paths"]["apis/apiextensions.k8s.io/v1"].is_object());
        let crds = document(&registry, "apiextensions.k8s.io", "v1").unwrap();
        assert!(
            crds["paths"]["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"]
                ["patch"]
                .is_object()
        );
        assert!(document(&registry, "nope.dev", "v1").is_none());
    }
}
