//! Decoding built-in kinds through their k8s-openapi types, as the apiserver decodes them into Go
//! structs: wrongly typed fields are rejected (400) and unknown fields are dropped (reported as
//! warnings, or rejected with `fieldValidation=Strict`).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::super::resources::ResourceInfo;

fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Decodes and re-encodes a built-in object; returns the paths of the unknown fields dropped.
/// Kinds without a typed decoder are left unchanged.
pub fn normalize(info: &ResourceInfo, object: &mut Value) -> Result<Vec<String>, String> {
    if info.custom {
        return Ok(Vec::new());
    }
    let decoded = match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => round_trip::<Pod>(object),
        ("", "namespaces") => round_trip::<Namespace>(object),
        ("", "secrets") => round_trip::<Secret>(object),
        ("", "configmaps") => round_trip::<ConfigMap>(object),
        ("", "persistentvolumeclaims") => round_trip::<PersistentVolumeClaim>(object),
        ("", "serviceaccounts") => round_trip::<ServiceAccount>(object),
        ("", "events") => round_trip::<Event>(object),
        ("", "nodes") => round_trip::<Node>(object),
        ("", "services") => round_trip::<Service>(object),
        ("events.k8s.io", "events") => round_trip::<EventsV1Event>(object),
        ("coordination.k8s.io", "leases") => round_trip::<Lease>(object),
        ("apps", "deployments") => round_trip::<Deployment>(object),
        ("apps", "daemonsets") => round_trip::<DaemonSet>(object),
        ("policy", "poddisruptionbudgets") => round_trip::<PodDisruptionBudget>(object),
        ("networking.k8s.io", "ingresses") => round_trip::<Ingress>(object),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            round_trip::<CustomResourceDefinition>(object)
        }
        ("rbac.authorization.k8s.io", "roles") => round_trip::<Role>(object),
        ("rbac.authorization.k8s.io", "rolebindings") => round_trip::<RoleBinding>(object),
        ("rbac.authorization.k8s.io", "clusterroles") => round_trip::<ClusterRole>(object),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            round_trip::<ClusterRoleBinding>(object)
        }
        _ => return Ok(Vec::new()),
    }?;
    let mut unknown = Vec::new();
    unknown_fields(object, &decoded, "", &mut unknown);
    *object = decoded;
    Ok(unknown)
}

/// Paths present (and not null) in `input` but missing from `decoded`.
fn unknown_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match b.get(key) {
                    Some(decoded_child) => unknown_fields(value, decoded_child, &child, out),
                    None if !value.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;
    use serde_json::json;

    #[test]
    fn pods_round_trip_and_report_unknown_fields() {
        let registry = Registry::new();
        let pods = registry.get("", "v1", "pods").unwrap();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Never", "contaner": 1}],
                     "nodeName": null}});
        let unknown = normalize(pods, &mut pod).unwrap();
        assert_eq!(
            unknown,
            vec!["metadata.bogus", "spec.containers[0].contaner"]
        );
        assert_eq!(
            pod["spec"]["containers"][0],
            json!({"name": "a", "image": "x", "imagePullPolicy": "Never"})
        );
        let mut wrong = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "ports": [{"containerPort": "http"}]}]}});
        assert!(normalize(pods, &mut wrong).is_err());
    }

    #[test]
    fn unknown_kinds_and_custom_resources_are_untouched() {
        let registry = Registry::new();
        let mut custom = registry.get("", "v1", "pods").unwrap().clone();
        custom.custom = true;
        let mut object = json!({"anything": 1});
        assert_eq!(
            normalize(&custom, &mut object).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(object, json!({"anything": 1}));
    }
}
