//! ServiceAccount tokens: the TokenRequest API (`POST .../serviceaccounts/<sa>/token`, what
//! `kubectl create token` calls) and their authentication.
//!
//! A token is shaped like the apiserver's (a JWT whose claims name the ServiceAccount, so tools
//! that decode it see the usual claims), but the sandbox does not verify signatures: it keeps
//! every token it issued in a table. A token authenticates while its ServiceAccount exists with
//! the same uid and until `status.expirationTimestamp`.

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
    /// The user a token authenticates, if it is one of ours, unexpired, and its ServiceAccount
    /// still exists with the uid it was issued for.
    pub fn user_of(&self, store: &Store, token: &str) -> Option<UserInfo> {
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
        Some(UserInfo::service_account(
            &issued.namespace,
            &issued.name,
            &issued.uid,
        ))
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
