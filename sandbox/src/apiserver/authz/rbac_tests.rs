use serde_json::json;

use super::*;

fn rule(value: serde_json::Value) -> PolicyRule {
    PolicyRule::deserialize(&value).unwrap()
}

fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str, ns: &str) -> Attributes {
    Attributes {
        user: UserInfo::service_account("ns", "sa", "u"),
        verb: verb.into(),
        resource_request: true,
        namespace: ns.into(),
        api_group: group.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        subresource: sub.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn url(verb: &str, path: &str) -> Attributes {
    Attributes {
        user: UserInfo::anonymous(),
        verb: verb.into(),
        path: path.into(),
        ..Attributes::default()
    }
}

#[test]
fn rule_allows_table() {
    let builds =
        json!({"verbs": ["get", "list"], "apiGroups": ["build.kiln.dev"], "resources": ["builds"]});
    let cases = [
        (
            builds.clone(),
            request("get", "build.kiln.dev", "builds", "", "b", "ns"),
            true,
        ),
        (
            builds.clone(),
            request("list", "build.kiln.dev", "builds", "", "", "ns"),
            true,
        ),
        (
            builds.clone(),
            request("update", "build.kiln.dev", "builds", "", "b", "ns"),
            false,
        ),
        (
            builds.clone(),
            request("get", "", "builds", "", "b", "ns"),
            false,
        ),
        (
            builds.clone(),
            request("get", "build.kiln.dev", "builds", "status", "b", "ns"),
            false,
        ),
        (
            builds.clone(),
            request("get", "build.kiln.dev", "buildconfigs", "", "b", "ns"),
            false,
        ),
        // Wildcards.
        (
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
            request("deletecollection", "x.dev", "things", "status", "", ""),
            true,
        ),
        (
            json!({"verbs": ["update"], "apiGroups": ["build.kiln.dev"], "resources": ["builds/status"]}),
            request("update", "build.kiln.dev", "builds", "status", "b", "ns"),
            true,
        ),
        (
            json!({"verbs": ["update"], "apiGroups": ["build.kiln.dev"], "resources": ["builds/status"]}),
            request("update", "build.kiln.dev", "builds", "", "b", "ns"),
            false,
        ),
        (
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}),
            request("get", "", "pods", "log", "p", "ns"),
            true,
        ),
        (
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}),
            request("get", "", "pods", "", "p", "ns"),
            false,
        ),
        (
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}),
            request("get", "", "pods", "logs", "p", "ns"),
            false,
        ),
        // A rule for the parent resource does not cover a subresource.
        (
            json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}),
            request("get", "", "pods", "log", "p", "ns"),
            false,
        ),
        // resourceNames.
        (
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["push"]}),
            request("get", "", "secrets", "", "push", "ns"),
            true,
        ),
        (
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["push"]}),
            request("get", "", "secrets", "", "other", "ns"),
            false,
        ),
        (
            json!({"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["push"]}),
            request("list", "", "secrets", "", "", "ns"),
            false,
        ),
        // Rules without apiGroups allow no resource.
        (
            json!({"verbs": ["get"], "resources": ["pods"]}),
            request("get", "", "pods", "", "p", "ns"),
            false,
        ),
        // Non-resource URLs.
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
            url("get", "/healthz"),
            true,
        ),
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
            url("get", "/healthz/ping"),
            false,
        ),
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
            url("get", "/apis/build.kiln.dev/v1alpha1"),
            true,
        ),
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
            url("get", "/apis"),
            false,
        ),
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["*"]}),
            url("get", "/anything"),
            true,
        ),
        (
            json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
            url("post", "/healthz"),
            false,
        ),
        // A resource rule never allows a URL, and a URL rule never a resource.
        (
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
            url("get", "/healthz"),
            false,
        ),
        (
            json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
            request("get", "", "pods", "", "p", "ns"),
            false,
        ),
    ];
    for (r, attributes, expected) in cases {
        assert_eq!(
            rule_allows(&attributes, &rule(r.clone())),
            expected,
            "{r} {attributes:?}"
        );
    }
}

fn binding(name: &str, ns: &str, kind: &str, role: &str, subjects: serde_json::Value) -> Binding {
    Binding::from_object(&json!({
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    }))
}

fn role(name: &str, ns: &str, rules: serde_json::Value) -> Role {
    Role::from_object(&json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}))
}

fn policy() -> Policy {
    let read_builds = json!([{"verbs": ["get", "list", "watch"], "apiGroups": ["build.kiln.dev"], "resources": ["builds"]}]);
    let edit_builds = json!([{"verbs": ["*"], "apiGroups": ["build.kiln.dev"], "resources": ["builds", "builds/status"]}]);
    Policy {
        roles: vec![
            role("editor", "a", edit_builds.clone()),
            role("editor", "b", json!([])),
        ],
        cluster_roles: vec![
            role("reader", "", read_builds),
            role("editor", "", edit_builds),
        ],
        role_bindings: vec![
            binding(
                "sa-edits",
                "a",
                "Role",
                "editor",
                json!([{"kind": "ServiceAccount", "name": "builder"}]),
            ),
            binding(
                "group-edits",
                "b",
                "ClusterRole",
                "editor",
                json!([{"kind": "Group", "name": "system:serviceaccounts:c"}]),
            ),
            binding(
                "dangling",
                "d",
                "Role",
                "missing",
                json!([{"kind": "Group", "name": "system:authenticated"}]),
            ),
            binding(
                "other-ns-sa",
                "e",
                "ClusterRole",
                "editor",
                json!([{"kind": "ServiceAccount", "name": "builder", "namespace": "a"}]),
            ),
        ],
        cluster_role_bindings: vec![
            binding(
                "readers",
                "",
                "ClusterRole",
                "reader",
                json!([{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "system:serviceaccounts"}]),
            ),
            binding(
                "no-ns-sa",
                "",
                "ClusterRole",
                "editor",
                json!([{"kind": "ServiceAccount", "name": "builder"}]),
            ),
        ],
    }
}

#[test]
fn authorize_table() {
    let sa = |ns: &str, name: &str| UserInfo::service_account(ns, name, "");
    let alice = UserInfo {
        name: "alice".into(),
        groups: vec!["system:authenticated".into()],
        uid: String::new(),
    };
    let ask = |user: UserInfo, verb: &str, sub: &str, ns: &str| Attributes {
        user,
        ..request(verb, "build.kiln.dev", "builds", sub, "x", ns)
    };
    let cases = [
        // A ClusterRoleBinding to a group every ServiceAccount is in.
        (
            ask(sa("z", "any"), "list", "", "z"),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "system:serviceaccounts""#,
        ),
        (ask(sa("z", "any"), "update", "", "z"), false, ""),
        (
            ask(alice.clone(), "get", "", ""),
            true,
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to User "alice""#,
        ),
        // A RoleBinding subject without namespace means the binding's namespace.
        (
            ask(sa("a", "builder"), "update", "status", "a"),
            true,
            r#"RBAC: allowed by RoleBinding "sa-edits/a" of Role "editor" to ServiceAccount "builder/a""#,
        ),
        (ask(sa("b", "builder"), "update", "", "b"), false, ""),
        // Bindings apply in their namespace only.
        (ask(sa("a", "builder"), "update", "", "z"), false, ""),
        (
            ask(sa("a", "builder"), "delete", "", "e"),
            true,
            r#"RBAC: allowed by RoleBinding "other-ns-sa/e" of ClusterRole "editor" to ServiceAccount "builder/a""#,
        ),
        // A namespaced group.
        (
            ask(sa("c", "x"), "create", "", "b"),
            true,
            r#"RBAC: allowed by RoleBinding "group-edits/b" of ClusterRole "editor" to Group "system:serviceaccounts:c""#,
        ),
        (ask(sa("cc", "x"), "create", "", "b"), false, ""),
        // A ServiceAccount subject of a ClusterRoleBinding needs a namespace.
        (ask(sa("", "builder"), "create", "", ""), false, ""),
        // An unresolvable role is the reason of a denial.
        (
            ask(alice.clone(), "update", "", "d"),
            false,
            r#"RBAC: role.rbac.authorization.k8s.io "missing" not found"#,
        ),
        (ask(UserInfo::anonymous(), "get", "", "a"), false, ""),
    ];
    let policy = policy();
    for (attributes, allowed, reason) in cases {
        let decision = policy.authorize(&attributes);
        assert_eq!(decision.allowed, allowed, "{attributes:?}");
        assert_eq!(decision.reason, reason, "{attributes:?}");
    }
}

#[test]
fn rules_for_lists_cluster_then_namespace_rules() {
    let (rules, errors) = policy().rules_for(&UserInfo::service_account("a", "builder", ""), "a");
    let resources: Vec<Vec<String>> = rules.iter().map(|r| r.resources.clone()).collect();
    assert_eq!(
        resources,
        vec![
            vec!["builds".to_string()],
            vec!["builds".to_string(), "builds/status".to_string()],
        ]
    );
    assert!(errors.is_empty());
    let (_, errors) = policy().rules_for(&UserInfo::anonymous(), "d");
    assert!(
        errors.is_empty(),
        "anonymous is not in system:authenticated"
    );
}
