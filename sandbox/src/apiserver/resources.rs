//! The resource registry: built-in kinds and the resources registered by CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::crd::crd_resources;
use super::error::{ApiResult, Subject};

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
        extra: &["log", "binding", "attach"],
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
        plural: "persistentvolumeclaims",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        short: &["pvc"],
        status: true,
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
        extra: &["token"],
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
        group: "apps",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        status: true,
        generation: true,
        extra: &[],
    },
    Builtin {
        group: "apps",
        plural: "daemonsets",
        kind: "DaemonSet",
        namespaced: true,
        short: &["ds"],
        status: true,
        generation: true,
        extra: &[],
    },
    Builtin {
        group: "policy",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short: &["pdb"],
        status: true,
        generation: true,
        extra: &[],
    },
    Builtin {
        group: "networking.k8s.io",
        plural: "ingresses",
        kind: "Ingress",
        namespaced: true,
        short: &["ing"],
        status: true,
        generation: true,
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
    Builtin {
        group: "authorization.k8s.io",
        plural: "subjectaccessreviews",
        kind: "SubjectAccessReview",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "authorization.k8s.io",
        plural: "localsubjectaccessreviews",
        kind: "LocalSubjectAccessReview",
        namespaced: true,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "authorization.k8s.io",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "authorization.k8s.io",
        plural: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "authentication.k8s.io",
        plural: "tokenreviews",
        kind: "TokenReview",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
    Builtin {
        group: "authentication.k8s.io",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
        short: &[],
        status: false,
        generation: false,
        extra: &[],
    },
];

/// Groups whose resources are create-only reviews, answered and never stored.
pub const REVIEW_GROUPS: &[&str] = &["authorization.k8s.io", "authentication.k8s.io"];

/// The default singular name of a kind.
pub fn singular_of(kind: &str) -> String {
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

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
