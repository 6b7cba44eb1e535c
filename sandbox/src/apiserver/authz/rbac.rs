//! The RBAC evaluator: which rules apply to a user in a namespace, and whether one of them allows
//! a request. Pure: it decides from the Roles, ClusterRoles and bindings it is given, the way
//! Kubernetes' RBAC authorizer does (cluster role bindings first, then the role bindings of the
//! request's namespace; the first rule that allows wins; unresolvable role references are reported
//! as the reason of a denial).

use serde::Deserialize;
use serde_json::Value;

/// One `rules[]` entry of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    /// Verbs (`*` = all).
    pub verbs: Vec<String>,
    /// API groups (`""` = core, `*` = all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource` or `*`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names (empty = any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/apis/*`, `*`).
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

/// A binding subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// Name of the user, group or ServiceAccount.
    pub name: String,
    /// The ServiceAccount's namespace (defaults to the binding's).
    pub namespace: String,
}

/// A binding's `roleRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    pub kind: String,
    /// The role's name.
    pub name: String,
}

/// A Role or ClusterRole (namespace empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// Name.
    pub name: String,
    /// Namespace, empty for a ClusterRole.
    pub namespace: String,
    /// Its rules (for an aggregated ClusterRole: the rules the aggregation filled in).
    pub rules: Vec<PolicyRule>,
}

/// A RoleBinding or ClusterRoleBinding (namespace empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// Name.
    pub name: String,
    /// Namespace, empty for a ClusterRoleBinding.
    pub namespace: String,
    /// The role bound.
    pub role_ref: RoleRef,
    /// Who it binds.
    pub subjects: Vec<Subject>,
}

fn name_and_namespace(object: &Value) -> (String, String) {
    let get = |field: &str| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (get("name"), get("namespace"))
}

impl Role {
    /// Reads a stored Role or ClusterRole (malformed rules are skipped, as they cannot allow).
    pub fn from_object(object: &Value) -> Role {
        let (name, namespace) = name_and_namespace(object);
        let rules = object
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|r| PolicyRule::deserialize(r).ok())
                    .collect()
            })
            .unwrap_or_default();
        Role {
            name,
            namespace,
            rules,
        }
    }
}

impl Binding {
    /// Reads a stored RoleBinding or ClusterRoleBinding.
    pub fn from_object(object: &Value) -> Binding {
        let (name, namespace) = name_and_namespace(object);
        let role_ref = object
            .get("roleRef")
            .and_then(|r| RoleRef::deserialize(r).ok())
            .unwrap_or_default();
        let subjects = object
            .get("subjects")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| Subject::deserialize(s).ok())
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            name,
            namespace,
            role_ref,
            subjects,
        }
    }
}

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:ns:sa`.
    pub name: String,
    /// Groups, e.g. `system:serviceaccounts`, `system:authenticated`.
    pub groups: Vec<String>,
    /// Unique id (a ServiceAccount's uid), may be empty.
    pub uid: String,
}

impl UserInfo {
    /// The user a ServiceAccount token authenticates as, with the groups Kubernetes gives it.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            uid: uid.to_string(),
        }
    }

    /// The anonymous user of a request without credentials.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            uid: String::new(),
        }
    }
}

/// What a request asks to do, as Kubernetes' authorizers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lower-case HTTP method for non-resource requests.
    pub verb: String,
    /// A request for a resource (else for a non-resource URL).
    pub resource_request: bool,
    /// Namespace (empty for cluster-scoped requests).
    pub namespace: String,
    /// API group (empty for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Object name (empty for collections).
    pub name: String,
    /// The URL path (non-resource requests).
    pub path: String,
}

/// Whether one rule allows a request (Kubernetes' `RuleAllows`).
pub fn rule_allows(attributes: &Attributes, rule: &PolicyRule) -> bool {
    let verb = rule.verbs.iter().any(|v| v == "*" || *v == attributes.verb);
    if !attributes.resource_request {
        return verb && non_resource_url_matches(rule, &attributes.path);
    }
    let combined = if attributes.subresource.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}/{}", attributes.resource, attributes.subresource)
    };
    verb && rule
        .api_groups
        .iter()
        .any(|g| g == "*" || *g == attributes.api_group)
        && resource_matches(rule, &combined, &attributes.subresource)
        && (rule.resource_names.is_empty() || rule.resource_names.contains(&attributes.name))
}

fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|url| {
        url == "*"
            || url == path
            || url
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
    })
}

/// A rule that applies (with its source) or a role reference that did not resolve.
pub type VisitedRule<'a> = Result<(&'a str, &'a PolicyRule), &'a str>;

/// Called with each [`VisitedRule`]; returns `false` to stop.
pub type RuleVisitor<'v> = dyn for<'a> FnMut(VisitedRule<'a>) -> bool + 'v;

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// `RBAC: allowed by ...` when allowed; on a denial, the role references that could not be
    /// resolved (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), else empty.
    pub reason: String,
}

/// Everything RBAC decides from: roles and bindings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Roles (namespaced).
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<Role>,
    /// RoleBindings.
    pub role_bindings: Vec<Binding>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Binding>,
}

/// Where a rule came from, as Kubernetes describes it in an allow reason.
fn describe(binding: &Binding, subject: &Subject) -> String {
    let subject = match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                &binding.namespace
            } else {
                &subject.namespace
            };
            format!("{} {:?}", subject.kind, format!("{}/{ns}", subject.name))
        }
        _ => format!("{} {:?}", subject.kind, subject.name),
    };
    let (kind, name) = if binding.namespace.is_empty() {
        ("ClusterRoleBinding", binding.name.clone())
    } else {
        (
            "RoleBinding",
            format!("{}/{}", binding.name, binding.namespace),
        )
    };
    format!(
        "{kind} {name:?} of {} {:?} to {subject}",
        binding.role_ref.kind, binding.role_ref.name
    )
}

/// Whether a binding subject names the user (`namespace`: the binding's, for ServiceAccounts).
pub fn applies_to(user: &UserInfo, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                namespace
            } else {
                &subject.namespace
            };
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

impl Policy {
    fn role_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        let (roles, singular, ns) = match role_ref.kind.as_str() {
            "Role" => (&self.roles, "role", namespace),
            "ClusterRole" => (&self.cluster_roles, "clusterrole", ""),
            other => return Err(format!("unsupported role reference kind: {other:?}")),
        };
        roles
            .iter()
            .find(|r| r.name == role_ref.name && r.namespace == ns)
            .map(|r| r.rules.as_slice())
            .ok_or_else(|| {
                format!(
                    "{singular}.rbac.authorization.k8s.io {:?} not found",
                    role_ref.name
                )
            })
    }

    /// Visits every rule that applies to `user` in `namespace` (cluster role bindings first),
    /// with a description of its source; errors are role references that did not resolve.
    /// The visitor returns `false` to stop.
    pub fn visit_rules(&self, user: &UserInfo, namespace: &str, visitor: &mut RuleVisitor<'_>) {
        let namespaced = self
            .role_bindings
            .iter()
            .filter(|b| !namespace.is_empty() && b.namespace == namespace);
        for binding in self.cluster_role_bindings.iter().chain(namespaced) {
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| applies_to(user, s, &binding.namespace))
            else {
                continue;
            };
            match self.role_rules(&binding.role_ref, &binding.namespace) {
                Err(error) => {
                    if !visitor(Err(&error)) {
                        return;
                    }
                }
                Ok(rules) => {
                    let source = describe(binding, subject);
                    for rule in rules {
                        if !visitor(Ok((&source, rule))) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Decides a request (Kubernetes' RBAC authorizer).
    pub fn authorize(&self, attributes: &Attributes) -> Decision {
        let mut allowed_by = None;
        let mut errors = Vec::new();
        self.visit_rules(&attributes.user, &attributes.namespace, &mut |item| {
            match item {
                Ok((source, rule)) if rule_allows(attributes, rule) => {
                    allowed_by = Some(format!("RBAC: allowed by {source}"));
                    return false;
                }
                Ok(_) => {}
                Err(error) => errors.push(error.to_string()),
            }
            true
        });
        match allowed_by {
            Some(reason) => Decision {
                allowed: true,
                reason,
            },
            None => Decision {
                allowed: false,
                reason: aggregate_reason(&errors),
            },
        }
    }

    /// Every rule that applies to `user` in `namespace`, and the resolution errors.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit_rules(user, namespace, &mut |item| {
            match item {
                Ok((_, rule)) => rules.push(rule.clone()),
                Err(error) => errors.push(error.to_string()),
            }
            true
        });
        (rules, errors)
    }
}

/// `RBAC: <error>` or `RBAC: [<e1>, <e2>]`, as Kubernetes aggregates errors; empty without errors.
fn aggregate_reason(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    }
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;
