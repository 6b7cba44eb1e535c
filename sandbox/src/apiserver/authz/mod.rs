//! Authentication and authorization, as kube-apiserver does them with `--authorization-mode=RBAC`
//! (opt-in: `ServerConfig::authorization`, `serve --authorization rbac`).
//!
//! - Authentication: `Authorization: Bearer <token>`. The admin token (what the sandbox's
//!   kubeconfig and in-process clients carry) is the user `kubernetes-admin` in
//!   `system:masters`; tokens from the TokenRequest API (`serviceaccounts/<sa>/token`) are their
//!   ServiceAccount while it exists and until they expire; no token is `system:anonymous`; any
//!   other token is `401 Unauthorized`.
//! - Authorization: `system:masters` is allowed everything (Kubernetes' privileged-group
//!   authorizer); everyone else is decided by [`rbac`] from the stored Roles, ClusterRoles and
//!   bindings (aggregated ClusterRoles filled in by [`aggregate`]). A denial is `403 Forbidden`
//!   with Kubernetes' message.
//!
//! Without RBAC every request is allowed, as before; TokenRequest and the access reviews are
//! served either way.

pub mod aggregate;
pub mod bootstrap;
pub mod rbac;
pub mod reviews;
pub mod tokens;

use axum::http::{HeaderMap, Method};

use super::error::{ApiError, Subject};
use super::http::route::{ResourcePath, Route};
use super::http::Query;
use super::store::Store;
use super::Shared;
pub use rbac::{Attributes, Decision, UserInfo};

/// The bearer token of the built-in admin (the sandbox's kubeconfig hands it out).
pub const ADMIN_TOKEN: &str = "sandbox";

/// How requests are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authorization {
    /// Every request is allowed (the default: fast tests stay permissive).
    #[default]
    AlwaysAllow,
    /// Bearer tokens are required to be valid and RBAC decides.
    Rbac,
}

/// The built-in admin.
pub fn admin() -> UserInfo {
    UserInfo {
        name: "kubernetes-admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        uid: String::new(),
    }
}

/// Who sent a request: `Err(Unauthorized)` for a token that is not valid (with RBAC only;
/// without it an unknown token is anonymous).
pub fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return Ok(UserInfo::anonymous());
    };
    if token == ADMIN_TOKEN {
        return Ok(admin());
    }
    match shared.tokens.user_of(&shared.store(), token) {
        Some(user) => Ok(user),
        None if shared.config.authorization == Authorization::Rbac => Err(ApiError::Unauthorized),
        None => Ok(UserInfo::anonymous()),
    }
}

/// The request attributes of a routed request (Kubernetes' RequestInfo): `None` for a resource
/// request whose method has no verb (answered 405 later).
pub fn attributes(
    user: UserInfo,
    method: &Method,
    uri_path: &str,
    route: &Route,
    query: &Query,
) -> Option<Attributes> {
    let Route::Resource(path) = route else {
        return Some(Attributes {
            user,
            verb: method.as_str().to_ascii_lowercase(),
            resource_request: false,
            path: uri_path.to_string(),
            ..Attributes::default()
        });
    };
    let verb = super::http::verb(method, path, query).ok()?;
    Some(resource_attributes(user, verb, path, query))
}

fn resource_attributes(
    user: UserInfo,
    verb: &str,
    path: &ResourcePath,
    query: &Query,
) -> Attributes {
    let mut name = path.name.clone().unwrap_or_default();
    if matches!(verb, "list" | "watch") && name.is_empty() {
        // `fieldSelector=metadata.name=x` makes a list or watch of one object, and RBAC sees
        // its name (so `resourceNames` rules allow `kubectl get x -w`).
        if let Some(selector) = query.get("fieldSelector") {
            let parts: Vec<&str> = selector.split(',').collect();
            for part in &parts {
                let exact = part
                    .strip_prefix("metadata.name==")
                    .or_else(|| part.strip_prefix("metadata.name="));
                if let Some(exact) = exact {
                    name = exact.to_string();
                }
            }
        }
    }
    let namespace = match (&path.namespace, path.group.as_str(), path.plural.as_str()) {
        (Some(ns), _, _) => ns.clone(),
        // `/api/v1/namespaces/x` is in namespace x, as Kubernetes' RequestInfo has it.
        (None, "", "namespaces") => path.name.clone().unwrap_or_default(),
        (None, _, _) => String::new(),
    };
    Attributes {
        user,
        verb: verb.to_string(),
        resource_request: true,
        namespace,
        api_group: path.group.clone(),
        api_version: path.version.clone(),
        resource: path.plural.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        name,
        path: String::new(),
    }
}

/// The RBAC objects that can apply to a request in `namespace` (all cluster-wide ones, and the
/// Roles and RoleBindings of that namespace).
pub fn policy(store: &Store, namespace: &str) -> rbac::Policy {
    let read = |plural: &str, ns: Option<&str>| -> Vec<serde_json::Value> {
        let id = format!("rbac.authorization.k8s.io/{plural}");
        store
            .range(&id, ns, None)
            .map(|(_, v)| (**v).clone())
            .collect()
    };
    let namespaced = |plural: &str| {
        if namespace.is_empty() {
            Vec::new()
        } else {
            read(plural, Some(namespace))
        }
    };
    rbac::Policy {
        roles: namespaced("roles")
            .iter()
            .map(rbac::Role::from_object)
            .collect(),
        cluster_roles: read("clusterroles", None)
            .iter()
            .map(rbac::Role::from_object)
            .collect(),
        role_bindings: namespaced("rolebindings")
            .iter()
            .map(rbac::Binding::from_object)
            .collect(),
        cluster_role_bindings: read("clusterrolebindings", None)
            .iter()
            .map(rbac::Binding::from_object)
            .collect(),
    }
}

/// Decides a request: `system:masters` always, everyone else by RBAC.
pub fn decide(store: &Store, attributes: &Attributes) -> Decision {
    if attributes.user.groups.iter().any(|g| g == "system:masters") {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    policy(store, &attributes.namespace).authorize(attributes)
}

/// Kubernetes' 403 for a denied request.
pub fn forbidden(attributes: &Attributes, reason: &str) -> ApiError {
    let user = &attributes.user.name;
    let mut message = if !attributes.resource_request {
        format!(
            "User {user:?} cannot {} path {:?}",
            attributes.verb, attributes.path
        )
    } else {
        let resource = if attributes.subresource.is_empty() {
            attributes.resource.clone()
        } else {
            format!("{}/{}", attributes.resource, attributes.subresource)
        };
        let scope = if attributes.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", attributes.namespace)
        };
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            attributes.verb, attributes.api_group
        )
    };
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let subject = Subject {
        group: attributes.api_group.clone(),
        resource: attributes.resource.clone(),
        kind: String::new(),
        name: attributes.name.clone(),
    };
    let full = if !attributes.resource_request || attributes.resource.is_empty() {
        format!("forbidden: {message}")
    } else if attributes.name.is_empty() {
        format!("{} is forbidden: {message}", subject.qualified_resource())
    } else {
        format!(
            "{} {:?} is forbidden: {message}",
            subject.qualified_resource(),
            attributes.name
        )
    };
    ApiError::Forbidden(subject, full)
}

/// Whether a request is a WebSocket upgrade of a Pod's streaming subresource made with `get`.
fn upgrade_needs_create(attributes: &Attributes, headers: &HeaderMap) -> bool {
    attributes.verb == "get"
        && attributes.api_group.is_empty()
        && attributes.resource == "pods"
        && matches!(
            attributes.subresource.as_str(),
            "attach" | "exec" | "portforward"
        )
        && super::http::attach::is_websocket(headers)
}

/// Authenticates and authorizes a request; returns the user for handlers that need it
/// (self reviews, TokenRequest).
pub fn check(
    shared: &Shared,
    method: &Method,
    uri_path: &str,
    headers: &HeaderMap,
    route: &Route,
    query: &Query,
) -> Result<UserInfo, ApiError> {
    let user = authenticate(shared, headers)?;
    if shared.config.authorization != Authorization::Rbac {
        return Ok(user);
    }
    let Some(attributes) = attributes(user.clone(), method, uri_path, route, query) else {
        return Ok(user);
    };
    let mut decision = decide(&shared.store(), &attributes);
    let mut attributes = attributes;
    if decision.allowed && upgrade_needs_create(&attributes, headers) {
        // As kube-apiserver since 1.31 (AuthorizePodWebsocketUpgradeCreatePermission): a
        // WebSocket `get` of pods/attach, exec or portforward must also be allowed `create`,
        // the verb the same request has over SPDY.
        attributes.verb = "create".into();
        decision = decide(&shared.store(), &attributes);
    }
    if decision.allowed {
        return Ok(user);
    }
    let error = forbidden(&attributes, &decision.reason);
    shared.refusals.record(&attributes);
    // One line per refusal, so a run shows every request a client was refused.
    tracing::info!(
        user = %attributes.user.name,
        verb = %attributes.verb,
        resource = %attributes.resource,
        subresource = %attributes.subresource,
        namespace = %attributes.namespace,
        name = %attributes.name,
        path = %attributes.path,
        "forbidden: {error}"
    );
    Err(error)
}

/// Every request RBAC refused, in order (an audit log's `Forbidden` entries, kept in memory for
/// tests: `ApiServer::refusals`).
#[derive(Debug, Default)]
pub struct Refusals {
    list: std::sync::Mutex<Vec<Refusal>>,
}

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The user's name (`system:serviceaccount:<ns>:<name>` for a token).
    pub user: String,
    /// The verb asked.
    pub verb: String,
    /// API group (empty for core).
    pub api_group: String,
    /// Plural resource, with `/subresource` when there is one.
    pub resource: String,
    /// Namespace (empty for cluster-scoped requests).
    pub namespace: String,
}

impl Refusals {
    fn record(&self, attributes: &Attributes) {
        let resource = if attributes.subresource.is_empty() {
            attributes.resource.clone()
        } else {
            format!("{}/{}", attributes.resource, attributes.subresource)
        };
        let refusal = Refusal {
            user: attributes.user.name.clone(),
            verb: attributes.verb.clone(),
            api_group: attributes.api_group.clone(),
            resource,
            namespace: attributes.namespace.clone(),
        };
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(refusal);
    }

    /// The refusals so far.
    pub fn snapshot(&self) -> Vec<Refusal> {
        self.list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests;
