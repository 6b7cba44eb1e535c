//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>`, resource lists.
//! Only the legacy (unaggregated) format is served; kubectl falls back to it.

use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::resources::{Registry, ResourceInfo};

/// The Kubernetes version the sandbox reports.
pub const KUBERNETES_MINOR: &str = "33";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-kiln-sandbox"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(registry: &Registry, name: &str) -> ApiResult<Value> {
    let (group, versions) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| g == name)
        .ok_or(ApiError::UnknownPath)?;
    let mut entry = group_entry(&group, &versions);
    if let Some(map) = entry.as_object_mut() {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    Ok(entry)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(info: &ResourceInfo) -> Vec<Value> {
    let mut entries = vec![json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": if super::resources::REVIEW_GROUPS.contains(&info.group.as_str()) {
            &["create"][..]
        } else {
            VERBS
        },
        "shortNames": info.short_names,
        "categories": info.categories,
        "storageVersionHash": "",
    })];
    if info.has_status {
        entries.push(json!({
            "name": format!("{}/status", info.plural),
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for sub in &info.extra_subresources {
        let (kind, verbs) = match *sub {
            "log" => ("Pod", vec!["get"]),
            "attach" => ("PodAttachOptions", vec!["create", "get"]),
            "binding" => ("Binding", vec!["create"]),
            "token" => ("TokenRequest", vec!["create"]),
            _ => (info.kind.as_str(), vec!["get"]),
        };
        let mut entry = json!({
            "name": format!("{}/{sub}", info.plural),
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": kind,
            "verbs": verbs,
        });
        if *sub == "token" {
            entry["group"] = json!("authentication.k8s.io");
            entry["version"] = json!("v1");
        }
        entries.push(entry);
    }
    entries
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> ApiResult<Value> {
    if !registry.serves_group_version(group, version) {
        return Err(ApiError::UnknownPath);
    }
    let resources: Vec<Value> = registry
        .resources_of(group, version)
        .into_iter()
        .flat_map(resource_entries)
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_documents() {
        let registry = Registry::new();
        let core = resource_list(&registry, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        for expected in [
            "pods",
            "pods/status",
            "pods/log",
            "namespaces",
            "configmaps",
            "secrets",
            "events",
        ] {
            assert!(names.contains(&expected), "{expected}");
        }
        let groups = groups(&registry);
        let group_names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert!(group_names.contains(&"coordination.k8s.io"));
        assert!(group_names.contains(&"apiextensions.k8s.io"));
        assert!(!group_names.contains(&""));
        assert!(resource_list(&registry, "nope.dev", "v1").is_err());
        assert_eq!(
            group(&registry, "events.k8s.io").unwrap()["preferredVersion"]["version"],
            "v1"
        );
    }
}
