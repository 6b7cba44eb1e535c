//! The resource registry: built-in kinds and the resources registered by CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::error::{ApiError, ApiResult, FieldCause, Subject};

/// Everything the server knows about one served group/version/resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Kind of lists.
    pub list_kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (e.g. `all`).
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource.
    pub has_status: bool,
    /// Whether `metadata.generation` is maintained.
    pub tracks_generation: bool,
    /// Whether an update without resourceVersion is allowed.
    pub allow_unconditional_update: bool,
    /// Whether this is a custom resource (JSON patch/merge only; schema validated).
    pub custom: bool,
    /// The CRD's `openAPIV3Schema` for this version.
    pub schema: Option<Arc<Value>>,
    /// Extra subresources beyond `status` (e.g. `log`, `binding` for pods).
    pub extra_subresources: Vec<&'static str>,
    /// The CRD version's `additionalPrinterColumns` (empty for built-in kinds).
    pub printer_columns: Vec<Value>,
}

impl ResourceInfo {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage identity, shared by every version of one resource: `group/plural`.
    pub fn storage_id(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// The error subject for an object of this resource.
    pub fn subject(&self, name: &str) -> Subject {
        Subject {
            group: self.group.clone(),
            resource: self.plural.clone(),
            kind: self.kind.clone(),
            name: name.to_string(),
        }
    }
}

struct Builtin {
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
    extra: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        status: true,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        status: true,
        generation: true,
        extra: &["log", "binding"],
    },
    Builtin {
        group: "",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        short: &["no"],
        status: true,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        status: true,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "events.k8s.io",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        status: true,
        generation: true,
        extra: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        plural: "roles",
        kind: "Role",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        plural: "rolebindings",
        kind: "RoleBinding",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        plural: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
];

fn singular_of(kind: &str) -> String {
    kind.to_lowercase()
}

/// All served resources, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    resources: BTreeMap<(String, String, String), ResourceInfo>,
    /// Preferred (first listed) version per group, in registration order of groups.
    group_versions: BTreeMap<String, Vec<String>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn new() -> Self {
        let mut registry = Registry {
            resources: BTreeMap::new(),
            group_versions: BTreeMap::new(),
        };
        for b in BUILTINS {
            registry.insert(ResourceInfo {
                group: b.group.to_string(),
                version: "v1".to_string(),
                plural: b.plural.to_string(),
                singular: singular_of(b.kind),
                kind: b.kind.to_string(),
                list_kind: format!("{}List", b.kind),
                namespaced: b.namespaced,
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: if b.plural == "pods" {
                    vec!["all".into()]
                } else {
                    vec![]
                },
                has_status: b.status,
                tracks_generation: b.generation,
                allow_unconditional_update: true,
                custom: false,
                schema: None,
                extra_subresources: b.extra.to_vec(),
                printer_columns: Vec::new(),
            });
        }
        registry
    }

    fn insert(&mut self, info: ResourceInfo) {
        let versions = self.group_versions.entry(info.group.clone()).or_default();
        if !versions.contains(&info.version) {
            versions.push(info.version.clone());
        }
        self.resources.insert(
            (
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ),
            info,
        );
    }

    /// Looks up a served resource.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// Whether a group/version is served.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.group_versions
            .get(group)
            .is_some_and(|v| v.iter().any(|x| x == version))
    }

    /// Resources of one group/version.
    pub fn resources_of(&self, group: &str, version: &str) -> Vec<&ResourceInfo> {
        self.resources
            .values()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    /// Named groups (not core) with their versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.group_versions
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect()
    }

    /// Any served version of a storage id (`group/plural`), used for watch/GC bookkeeping.
    pub fn by_storage_id(&self, storage_id: &str) -> Option<&ResourceInfo> {
        self.resources
            .values()
            .find(|r| r.storage_id() == storage_id)
    }

    /// Registers (or re-registers) the resources of a CRD object.
    pub fn register_crd(&mut self, crd: &Value) -> ApiResult<()> {
        let infos = crd_resources(crd)?;
        if let Some(first) = infos.first() {
            self.unregister(&first.group, &first.plural);
        }
        for info in infos {
            self.insert(info);
        }
        Ok(())
    }

    /// Removes every version of `group/plural`.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.resources
            .retain(|(g, _, p), _| !(g == group && p == plural));
        let remaining: Vec<String> = self
            .resources
            .keys()
            .filter(|(g, _, _)| g == group)
            .map(|(_, v, _)| v.clone())
            .collect();
        if remaining.is_empty() {
            self.group_versions.remove(group);
        } else if let Some(versions) = self.group_versions.get_mut(group) {
            versions.retain(|v| remaining.contains(v));
        }
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn crd_invalid(name: &str, causes: Vec<FieldCause>) -> ApiError {
    ApiError::Invalid(
        Subject {
            group: "apiextensions.k8s.io".into(),
            resource: "customresourcedefinitions".into(),
            kind: "CustomResourceDefinition".into(),
            name: name.to_string(),
        },
        causes,
    )
}

/// Validates a CRD and returns one `ResourceInfo` per served version.
pub fn crd_resources(crd: &Value) -> ApiResult<Vec<ResourceInfo>> {
    let name = str_at(crd, &["metadata", "name"]).unwrap_or_default();
    let mut causes = Vec::new();
    let group = str_at(crd, &["spec", "group"]).unwrap_or_default();
    let plural = str_at(crd, &["spec", "names", "plural"]).unwrap_or_default();
    let kind = str_at(crd, &["spec", "names", "kind"]).unwrap_or_default();
    if group.is_empty() {
        causes.push(FieldCause::required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(FieldCause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(FieldCause::required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(FieldCause::invalid(
            "metadata.name",
            &Value::String(name.to_string()),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = str_at(crd, &["spec", "scope"]).unwrap_or_default();
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(FieldCause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                crate::apiserver::error::value_text(&Value::String(scope.to_string()))
            ),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(FieldCause::required("spec.versions"));
    }
    if !causes.is_empty() {
        return Err(crd_invalid(name, causes));
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut infos = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        let Some(version_name) = version.get("name").and_then(Value::as_str) else {
            return Err(crd_invalid(
                name,
                vec![FieldCause::required(format!("spec.versions[{index}].name"))],
            ));
        };
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let has_status = version.pointer("/subresources/status").is_some();
        infos.push(ResourceInfo {
            group: group.to_string(),
            version: version_name.to_string(),
            plural: plural.to_string(),
            singular: str_at(&names, &["singular"])
                .map(String::from)
                .unwrap_or_else(|| singular_of(kind)),
            kind: kind.to_string(),
            list_kind: str_at(&names, &["listKind"])
                .map(String::from)
                .unwrap_or_else(|| format!("{kind}List")),
            namespaced: scope == "Namespaced",
            short_names: strings("shortNames"),
            categories: strings("categories"),
            has_status,
            tracks_generation: true,
            allow_unconditional_update: false,
            custom: true,
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .map(Arc::new),
            extra_subresources: vec![],
            printer_columns: version
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
    }
    Ok(infos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(name: &str, scope: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {
                "group": "example.dev", "scope": scope,
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]
            }
        })
    }

    #[test]
    fn crd_validation_table() {
        let cases = [
            ("widgets.example.dev", "Namespaced", true),
            ("widgets.example.dev", "Cluster", true),
            ("wrong.example.dev", "Namespaced", false),
            ("widgets.example.dev", "Galaxy", false),
        ];
        for (name, scope, ok) in cases {
            assert_eq!(
                crd_resources(&crd(name, scope)).is_ok(),
                ok,
                "{name} {scope}"
            );
        }
    }

    #[test]
    fn registering_a_crd_serves_it() {
        let mut registry = Registry::new();
        registry
            .register_crd(&crd("widgets.example.dev", "Namespaced"))
            .unwrap();
        let info = registry.get("example.dev", "v1", "widgets").unwrap();
        assert!(info.namespaced && info.has_status && info.custom);
        assert_eq!(info.short_names, vec!["wd"]);
        assert!(registry.serves_group_version("example.dev", "v1"));
        registry.unregister("example.dev", "widgets");
        assert!(registry.get("example.dev", "v1", "widgets").is_none());
        assert!(!registry.serves_group_version("example.dev", "v1"));
    }
}
