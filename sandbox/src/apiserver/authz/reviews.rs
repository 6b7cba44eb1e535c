//! `authorization.k8s.io/v1` access reviews (SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview, SelfSubjectRulesReview) and `authentication.k8s.io/v1`
//! SelfSubjectReview (`kubectl auth whoami`). Each is create-only and answered with the request
//! object and its `status`, nothing is stored.

use serde_json::{json, Map, Value};

use super::super::error::{ApiError, ApiResult, FieldCause, Subject};
use super::super::store::Store;
use super::rbac::{Attributes, PolicyRule, UserInfo};
use super::{decide, policy, Authorization};

fn subject(kind: &str, group: &str, plural: &str) -> Subject {
    Subject {
        group: group.into(),
        resource: plural.into(),
        kind: kind.into(),
        name: String::new(),
    }
}

fn string(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    super::super::meta::strings_at(value, &format!("/{field}"))
}

/// The attributes a review's `spec` asks about, for `user`.
fn spec_attributes(review: &Subject, spec: &Value, user: UserInfo) -> ApiResult<Attributes> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (None, None) => Err(ApiError::Invalid(
            review.clone(),
            vec![FieldCause::new(
                "FieldValueRequired",
                "spec.resourceAttributes",
                "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        )),
        (Some(_), Some(n)) => Err(ApiError::Invalid(
            review.clone(),
            vec![FieldCause::invalid(
                "spec.nonResourceAttributes",
                n,
                "cannot be specified in combination with resourceAttributes",
            )],
        )),
        (Some(r), None) => Ok(Attributes {
            user,
            verb: string(r, "verb"),
            resource_request: true,
            namespace: string(r, "namespace"),
            api_group: string(r, "group"),
            api_version: string(r, "version"),
            resource: string(r, "resource"),
            subresource: string(r, "subresource"),
            name: string(r, "name"),
            path: String::new(),
        }),
        (None, Some(n)) => Ok(Attributes {
            user,
            verb: string(n, "verb"),
            resource_request: false,
            path: string(n, "path"),
            ..Attributes::default()
        }),
    }
}

fn answer(kind: &str, group: &str, body: &Value, spec: Value, status: Value) -> Value {
    let mut metadata = body
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata.insert("creationTimestamp".into(), Value::Null);
    json!({
        "kind": kind,
        "apiVersion": format!("{group}/v1"),
        "metadata": metadata,
        "spec": spec,
        "status": status,
    })
}

fn access_status(store: &Store, mode: Authorization, attributes: &Attributes) -> Value {
    let decision = match mode {
        Authorization::AlwaysAllow => super::Decision {
            allowed: true,
            reason: String::new(),
        },
        Authorization::Rbac => decide(store, attributes),
    };
    let mut status = Map::new();
    status.insert("allowed".into(), Value::Bool(decision.allowed));
    if !decision.reason.is_empty() {
        status.insert("reason".into(), Value::String(decision.reason));
    }
    Value::Object(status)
}

fn rule_infos(rules: &[PolicyRule]) -> (Vec<Value>, Vec<Value>) {
    let mut resource = Vec::new();
    let mut non_resource = Vec::new();
    for rule in rules {
        if !rule.resources.is_empty() {
            let mut info = json!({
                "verbs": rule.verbs,
                "apiGroups": rule.api_groups,
                "resources": rule.resources,
            });
            if !rule.resource_names.is_empty() {
                info["resourceNames"] = json!(rule.resource_names);
            }
            resource.push(info);
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    (resource, non_resource)
}

/// Answers a create of one of the review resources (`plural` in `group`) by `user`;
/// `namespace` is the path's (LocalSubjectAccessReview).
pub fn review(
    store: &Store,
    mode: Authorization,
    user: &UserInfo,
    group: &str,
    plural: &str,
    namespace: &str,
    body: &Value,
) -> ApiResult<Value> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    match (group, plural) {
        ("authorization.k8s.io", "subjectaccessreviews" | "localsubjectaccessreviews") => {
            let kind = if plural == "subjectaccessreviews" {
                "SubjectAccessReview"
            } else {
                "LocalSubjectAccessReview"
            };
            let review = subject(kind, group, plural);
            let subject_user = UserInfo {
                name: string(&spec, "user"),
                groups: strings(&spec, "groups"),
                uid: string(&spec, "uid"),
            };
            if subject_user.name.is_empty() && subject_user.groups.is_empty() {
                return Err(ApiError::Invalid(
                    review,
                    vec![FieldCause::invalid(
                        "spec.user",
                        &json!(""),
                        "at least one of user or group must be specified",
                    )],
                ));
            }
            let mut attributes = spec_attributes(&review, &spec, subject_user)?;
            let mut spec = spec;
            if plural == "localsubjectaccessreviews" {
                if !attributes.resource_request {
                    return Err(ApiError::Invalid(
                        review,
                        vec![FieldCause::invalid(
                            "spec.nonResourceAttributes",
                            spec.get("nonResourceAttributes").unwrap_or(&Value::Null),
                            "disallowed on this kind of request",
                        )],
                    ));
                }
                if attributes.namespace.is_empty() {
                    attributes.namespace = namespace.to_string();
                    spec["resourceAttributes"]["namespace"] = json!(namespace);
                } else if attributes.namespace != namespace {
                    return Err(ApiError::Invalid(
                        review,
                        vec![FieldCause::invalid(
                            "spec.resourceAttributes.namespace",
                            &json!(attributes.namespace),
                            "must match metadata.namespace",
                        )],
                    ));
                }
            }
            let status = access_status(store, mode, &attributes);
            Ok(answer(kind, group, body, spec, status))
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            let review = subject("SelfSubjectAccessReview", group, plural);
            let attributes = spec_attributes(&review, &spec, user.clone())?;
            let status = access_status(store, mode, &attributes);
            Ok(answer("SelfSubjectAccessReview", group, body, spec, status))
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            let namespace = string(&spec, "namespace");
            let everything = PolicyRule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..PolicyRule::default()
            };
            let every_url = PolicyRule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..PolicyRule::default()
            };
            let (mut rules, errors) = match mode {
                Authorization::AlwaysAllow => (Vec::new(), Vec::new()),
                Authorization::Rbac => policy(store, &namespace).rules_for(user, &namespace),
            };
            if mode == Authorization::AlwaysAllow
                || user.groups.iter().any(|g| g == "system:masters")
            {
                rules.insert(0, every_url);
                rules.insert(0, everything);
            }
            let (resource_rules, non_resource_rules) = rule_infos(&rules);
            let mut status = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": !errors.is_empty(),
            });
            if !errors.is_empty() {
                status["evaluationError"] = json!(errors.join(", "));
            }
            Ok(answer("SelfSubjectRulesReview", group, body, spec, status))
        }
        ("authentication.k8s.io", "selfsubjectreviews") => {
            let mut info = json!({"username": user.name, "groups": user.groups});
            if !user.uid.is_empty() {
                info["uid"] = json!(user.uid);
            }
            let mut metadata = body
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            metadata.insert("creationTimestamp".into(), Value::Null);
            Ok(json!({
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": metadata,
                "status": {"userInfo": info},
            }))
        }
        _ => Err(ApiError::UnknownPath),
    }
}
