//! Built-in kinds' strategies: server-side defaults, status on create, and validation.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::super::error::FieldCause;
use super::super::meta;
use super::super::names::{validate_name, NameRule};
use super::super::resources::ResourceInfo;

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    !info.custom && info.group == group && info.plural == plural
}

/// Prepares a new object: status reset and kind-specific defaults.
pub fn prepare_create(info: &ResourceInfo, object: &mut Value) {
    if info.custom && info.has_status {
        meta::as_map(object).remove("status");
    }
    if is(info, "", "pods") {
        default_pod(object);
        meta::as_map(object).insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": "BestEffort"}),
        );
    }
    if is(info, "", "namespaces") {
        let map = meta::as_map(object);
        map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        map.insert("status".into(), json!({"phase": "Active"}));
    }
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        accept_crd(object);
    }
    prepare_write(info, object);
}

/// Applied on every create and main-resource update.
pub fn prepare_write(info: &ResourceInfo, object: &mut Value) {
    if is(info, "", "secrets") {
        let map = meta::as_map(object);
        if let Some(Value::Object(string_data)) = map.remove("stringData") {
            let data = meta::as_map(map.entry("data").or_insert_with(|| json!({})));
            for (key, value) in string_data {
                let text = value.as_str().unwrap_or_default();
                data.insert(
                    key,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
        if map
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            map.insert("type".into(), json!("Opaque"));
        }
    }
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        accept_crd(object);
    }
}

fn default_pod(pod: &mut Value) {
    let spec = meta::as_map(meta::as_map(pod).entry("spec").or_insert_with(|| json!({})));
    for (key, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        spec.entry(key).or_insert(value);
    }
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(container);
            }
        }
    }
}

fn default_container(container: &mut Map<String, Value>) {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pull = default_pull_policy(image);
    for (key, value) in [
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        ("imagePullPolicy", json!(pull)),
        ("resources", json!({})),
    ] {
        container.entry(key).or_insert(value);
    }
}

/// The apiserver's default `imagePullPolicy`: `Always` for `:latest` or no tag (a registry's
/// `:port` is not a tag), `IfNotPresent` for other tags and digests.
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.split_once(':') {
        None | Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// Marks a CRD accepted and established, as the apiextensions controllers do.
fn accept_crd(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter(|x| x.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|x| x.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let now = meta::now();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    meta::as_map(crd).insert(
        "status".into(),
        json!({
            "acceptedNames": names,
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "storedVersions": stored,
        }),
    );
}

/// Validation of built-in kinds (the subset of apiserver rules kiln and kubectl rely on).
pub fn validate(info: &ResourceInfo, object: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    if is(info, "", "pods") {
        validate_pod(object, &mut causes);
    }
    if is(info, "coordination.k8s.io", "leases") {
        validate_lease(object, &mut causes);
    }
    if is(info, "", "persistentvolumeclaims") {
        // The apiserver's ValidatePersistentVolumeClaimSpec: an access mode and a storage request.
        let modes = object
            .pointer("/spec/accessModes")
            .and_then(Value::as_array);
        if modes.is_none_or(|m| m.is_empty()) {
            causes.push(FieldCause::required("spec.accessModes"));
        }
        if object.pointer("/spec/resources/requests/storage").is_none() {
            causes.push(FieldCause::required("spec.resources[storage]"));
        }
    }
    if is(info, "", "configmaps") || is(info, "", "secrets") {
        for field in ["data", "binaryData"] {
            let Some(data) = object.get(field) else {
                continue;
            };
            let Some(map) = data.as_object() else {
                causes.push(FieldCause::invalid(field, data, "must be a map of strings"));
                continue;
            };
            for (key, value) in map {
                let path = format!("{field}[{key}]");
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                {
                    causes.push(FieldCause::invalid(&path, &Value::String(key.clone()), "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
                }
                let decodes = value.as_str().is_some_and(|s| {
                    field == "data" && is(info, "", "configmaps")
                        || base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                });
                if !decodes {
                    causes.push(FieldCause::invalid(
                        &path,
                        value,
                        "must be a string (base64 for binary data)",
                    ));
                }
            }
        }
    }
    causes
}

/// The apiserver's `ValidateLeaseSpec`: a positive duration, a non-negative transitions count, a
/// known strategy, and a preferred holder only with a strategy.
fn validate_lease(lease: &Value, causes: &mut Vec<FieldCause>) {
    let spec = |field: &str| lease.pointer(&format!("/spec/{field}"));
    if let Some(duration) = spec("leaseDurationSeconds").filter(|v| !v.is_null()) {
        if duration.as_i64().is_none_or(|d| d <= 0) {
            causes.push(FieldCause::invalid(
                "spec.leaseDurationSeconds",
                duration,
                "must be greater than 0",
            ));
        }
    }
    if let Some(transitions) = spec("leaseTransitions").filter(|v| !v.is_null()) {
        if transitions.as_i64().is_none_or(|t| t < 0) {
            causes.push(FieldCause::invalid(
                "spec.leaseTransitions",
                transitions,
                "must be greater than or equal to 0",
            ));
        }
    }
    let strategy = spec("strategy").and_then(Value::as_str).unwrap_or_default();
    if !strategy.is_empty() && strategy != "OldestEmulationVersion" {
        causes.push(FieldCause::new(
            "FieldValueNotSupported",
            "spec.strategy",
            format!(
                "Unsupported value: {strategy:?}: supported values: \"OldestEmulationVersion\""
            ),
        ));
    }
    let preferred = spec("preferredHolder")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !preferred.is_empty() && strategy.is_empty() {
        causes.push(FieldCause::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
}

fn validate_pod(pod: &Value, causes: &mut Vec<FieldCause>) {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        causes.push(FieldCause::required("spec.containers"));
    }
    let mut seen = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(items) = pod
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, container) in items.iter().enumerate() {
            let path = format!("spec.{list}[{i}]");
            match container.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(FieldCause::required(format!("{path}.name"))),
                Some(name) => {
                    if !validate_name(name, NameRule::Label).is_empty() {
                        causes.push(FieldCause::invalid(format!("{path}.name"), &Value::String(name.into()), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
                    }
                    if seen.contains(&name) {
                        causes.push(FieldCause::new(
                            "FieldValueDuplicate",
                            format!("{path}.name"),
                            format!("Duplicate value: {name:?}"),
                        ));
                    }
                    seen.push(name);
                }
            }
            if container
                .get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(FieldCause::required(format!("{path}.image")));
            }
        }
    }
    if let Some(policy) = pod.pointer("/spec/restartPolicy").and_then(Value::as_str) {
        if !["Always", "OnFailure", "Never"].contains(&policy) {
            causes.push(FieldCause::new(
                "FieldValueNotSupported",
                "spec.restartPolicy",
                format!("Unsupported value: {policy:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn default_pull_policies() {
        let cases = [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("busybox:1.36", "IfNotPresent"),
            ("127.0.0.1:5000/team/app", "Always"),
            ("127.0.0.1:5000/team/app:latest", "Always"),
            ("127.0.0.1:5000/team/app:1", "IfNotPresent"),
            ("quay.io/a/b@sha256:00", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn lease_rules_table() {
        let registry = Registry::new();
        let leases = registry.get("coordination.k8s.io", "v1", "leases").unwrap();
        // (spec, the fields refused)
        let cases: &[(Value, &[&str])] = &[
            (json!({}), &[]),
            (
                json!({"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0}),
                &[],
            ),
            (
                json!({"holderIdentity": null, "leaseDurationSeconds": 1}),
                &[],
            ),
            (
                json!({"leaseDurationSeconds": 0}),
                &["spec.leaseDurationSeconds"],
            ),
            (
                json!({"leaseDurationSeconds": -3}),
                &["spec.leaseDurationSeconds"],
            ),
            (json!({"leaseTransitions": -1}), &["spec.leaseTransitions"]),
            (json!({"preferredHolder": "a"}), &["spec.preferredHolder"]),
            (
                json!({"preferredHolder": "a", "strategy": "OldestEmulationVersion"}),
                &[],
            ),
            (json!({"strategy": "Newest"}), &["spec.strategy"]),
        ];
        for (spec, refused) in cases {
            let causes = validate(leases, &json!({"metadata": {"name": "l"}, "spec": spec}));
            let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(fields, *refused, "{spec}");
        }
    }

    #[test]
    fn pod_rules_table() {
        let registry = Registry::new();
        let pods = registry.get("", "v1", "pods").unwrap();
        let cases = [
            (
                json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
                vec![],
            ),
            (json!({"spec": {}}), vec!["spec.containers"]),
            (
                json!({"spec": {"containers": [{"name": "a"}]}}),
                vec!["spec.containers[0].image"],
            ),
            (
                json!({"spec": {"containers": [{"name": "A_", "image": "x"}]}}),
                vec!["spec.containers[0].name"],
            ),
            (
                json!({"spec": {"initContainers": [{"name": "a", "image": "x"}], "containers": [{"name": "a", "image": "x"}]}}),
                vec!["spec.containers[0].name"],
            ),
            (
                json!({"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}}),
                vec!["spec.restartPolicy"],
            ),
        ];
        for (pod, fields) in cases {
            let got: Vec<String> = validate(pods, &pod).into_iter().map(|c| c.field).collect();
            assert_eq!(got, fields, "{pod}");
        }
    }

    #[test]
    fn secret_string_data_is_encoded() {
        let registry = Registry::new();
        let secrets = registry.get("", "v1", "secrets").unwrap();
        let mut secret = json!({"stringData": {"token": "abc"}});
        prepare_write(secrets, &mut secret);
        assert_eq!(secret, json!({"data": {"token": "YWJj"}, "type": "Opaque"}));
        let bad = json!({"data": {"token": "!!!"}});
        assert_eq!(validate(secrets, &bad).len(), 1);
    }

    #[test]
    fn pods_start_pending_with_defaults() {
        let registry = Registry::new();
        let pods = registry.get("", "v1", "pods").unwrap();
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "busybox"}]}, "status": {"phase": "Running"}});
        prepare_create(pods, &mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(
            pod["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
    }
}
