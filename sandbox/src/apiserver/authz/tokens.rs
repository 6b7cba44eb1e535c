//! ServiceAccount tokens: the TokenRequest API (`POST .../serviceaccounts/<sa>/token`, what
//! `kubectl create token` calls) and their authentication.
//!
//! A token is shaped like the apiserver's (a JWT whose claims name the ServiceAccount, so tools
//! that decode it see the usual claims), but the sandbox does not verify signatures: it keeps
//! every token it issued in a table. A token authenticates while its ServiceAccount exists with
//! the same uid, while the Pod it is bound to (`spec.boundObjectRef`) exists with the same uid,
//! and until `status.expirationTimestamp`. Requests to the API server need a token whose
//! audiences include the API server's ([`ISSUER`]); a TokenReview (what a token server or webhook
//! asks) checks the audiences it names instead, as kube-apiserver does.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::super::error::{ApiError, ApiResult, FieldCause, Subject};
use super::super::store::{ObjectKey, Store};
use super::UserInfo;

/// The issuer and default audience of the tokens (a cluster's usual value).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: DateTime<Utc>,
    audiences: Vec<String>,
    /// The Pod the token is bound to: (name, uid).
    pod: Option<(String, String)>,
}

/// Every token issued.
#[derive(Debug, Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Tokens {
    /// The user a token authenticates to the API server, if it is one of ours, unexpired, meant
    /// for the API server, and its ServiceAccount (and bound Pod) still exist with the uids it was
    /// issued for.
    pub fn user_of(&self, store: &Store, token: &str) -> Option<UserInfo> {
        let issued = self.valid(store, token)?;
        if !issued.audiences.iter().any(|a| a == ISSUER) {
            return None;
        }
        Some(UserInfo::service_account(
            &issued.namespace,
            &issued.name,
            &issued.uid,
        ))
    }

    /// The record of a token that still authenticates someone (any audience).
    fn valid(&self, store: &Store, token: &str) -> Option<Issued> {
        let issued = self
            .issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()?;
        if issued.expires <= Utc::now() {
            return None;
        }
        let account = store.get(&ObjectKey::new(
            "/serviceaccounts",
            &issued.namespace,
            &issued.name,
        ))?;
        if super::super::meta::uid(&account) != Some(issued.uid.as_str()) {
            return None;
        }
        if let Some((pod, uid)) = &issued.pod {
            let bound = store.get(&ObjectKey::new("/pods", &issued.namespace, pod))?;
            if super::super::meta::uid(&bound) != Some(uid.as_str()) {
                return None;
            }
        }
        Some(issued)
    }

    /// Answers a TokenReview: whether `spec.token` authenticates for one of `spec.audiences`
    /// (the API server's when none are named), and as whom.
    pub fn review(&self, store: &Store, body: &Value) -> ApiResult<Value> {
        let spec = body.get("spec").cloned().unwrap_or(json!({}));
        let token = spec
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(ApiError::BadRequest(
                "token is required for TokenReview in authentication".into(),
            ));
        }
        let wanted: Vec<String> = match spec.get("audiences").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![ISSUER.to_string()],
        };
        let status = match self.valid(store, token) {
            None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
            Some(issued) => {
                let common: Vec<&String> = wanted
                    .iter()
                    .filter(|a| issued.audiences.contains(a))
                    .collect();
                if common.is_empty() {
                    json!({
                        "user": {},
                        "error": format!(
                            "[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]",
                            issued.audiences, wanted
                        ),
                    })
                } else {
                    let user =
                        UserInfo::service_account(&issued.namespace, &issued.name, &issued.uid);
                    let mut info = json!({
                        "username": user.name,
                        "uid": user.uid,
                        "groups": user.groups,
                    });
                    if let Some((pod, uid)) = &issued.pod {
                        info["extra"] = json!({
                            "authentication.kubernetes.io/pod-name": [pod],
                            "authentication.kubernetes.io/pod-uid": [uid],
                        });
                    }
                    json!({"authenticated": true, "user": info, "audiences": common})
                }
            }
        };
        let mut metadata = body
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        metadata.insert("creationTimestamp".into(), Value::Null);
        Ok(json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }))
    }

    /// Answers a TokenRequest for ServiceAccount `namespace/name` (the request body is a
    /// `TokenRequest`; `spec.expirationSeconds` defaults to 3600 and must be at least 600).
    pub fn request(
        &self,
        store: &Store,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> ApiResult<Value> {
        let subject = Subject {
            group: "authentication.k8s.io".into(),
            resource: "serviceaccounts".into(),
            kind: "TokenRequest".into(),
            name: name.to_string(),
        };
        let account = store
            .get(&ObjectKey::new("/serviceaccounts", namespace, name))
            .ok_or_else(|| {
                ApiError::NotFound(Subject {
                    group: String::new(),
                    kind: "ServiceAccount".into(),
                    ..subject.clone()
                })
            })?;
        let uid = super::super::meta::uid(&account)
            .unwrap_or_default()
            .to_string();
        let spec = body.get("spec").cloned().unwrap_or(json!({}));
        let seconds = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => 3600,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::BadRequest(
                    "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.expirationSeconds: expected an integer".into(),
                )
            })?,
        };
        if seconds < 600 {
            return Err(ApiError::Invalid(
                subject,
                vec![FieldCause::invalid(
                    "spec.expirationSeconds",
                    &Value::from(seconds),
                    "may not specify a duration less than 10 minutes",
                )],
            ));
        }
        if seconds > 1 << 32 {
            return Err(ApiError::Invalid(
                subject,
                vec![FieldCause::invalid(
                    "spec.expirationSeconds",
                    &Value::from(seconds),
                    "may not specify a duration larger than 2^32 seconds",
                )],
            ));
        }
        let audiences = match spec.get("audiences").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => Value::Array(a.clone()),
            _ => json!([ISSUER]),
        };
        let pod = bound_pod(store, namespace, &subject, &spec)?;
        let now = Utc::now();
        let expires = now + chrono::Duration::seconds(seconds);
        let claims = json!({
            "aud": audiences,
            "exp": expires.timestamp(),
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uid},
            },
        });
        let mut claims = claims;
        if let Some((pod, pod_uid)) = &pod {
            claims["kubernetes.io"]["pod"] = json!({"name": pod, "uid": pod_uid});
        }
        let token = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":"kiln-sandbox"}"#),
            b64(claims.to_string().as_bytes()),
            b64(uuid::Uuid::new_v4().simple().to_string().as_bytes()),
        );
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                token.clone(),
                Issued {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    uid,
                    expires,
                    audiences: audiences
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(String::from))
                        .collect(),
                    pod,
                },
            );
        let expiration = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut spec = spec;
        if let Some(map) = spec.as_object_mut() {
            map.insert("audiences".into(), audiences);
            map.insert("expirationSeconds".into(), Value::from(seconds));
            map.entry("boundObjectRef").or_insert(Value::Null);
        }
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": Value::Null},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expiration},
        }))
    }
}

/// The Pod a TokenRequest binds its token to (`spec.boundObjectRef` of kind Pod): it must exist in
/// the ServiceAccount's namespace, with the uid given if one is.
fn bound_pod(
    store: &Store,
    namespace: &str,
    subject: &Subject,
    spec: &Value,
) -> ApiResult<Option<(String, String)>> {
    let Some(reference) = spec.get("boundObjectRef").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let field = |f: &str| {
        reference
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (kind, name, uid) = (field("kind"), field("name"), field("uid"));
    if kind != "Pod" {
        return Err(ApiError::Invalid(
            subject.clone(),
            vec![FieldCause::new(
                "FieldValueNotSupported",
                "spec.boundObjectRef.kind",
                format!("Unsupported value: {kind:?}: supported values: \"Pod\""),
            )],
        ));
    }
    let pod = store
        .get(&ObjectKey::new("/pods", namespace, &name))
        .ok_or_else(|| {
            ApiError::NotFound(Subject {
                group: String::new(),
                resource: "pods".into(),
                kind: "Pod".into(),
                name: name.clone(),
            })
        })?;
    let actual = super::super::meta::uid(&pod)
        .unwrap_or_default()
        .to_string();
    if !uid.is_empty() && uid != actual {
        return Err(ApiError::Conflict(subject.clone(), format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    Ok(Some((name, actual)))
}
