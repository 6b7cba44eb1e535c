//! GET of one object and LIST with selectors and pagination.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::super::error::{ApiError, ApiResult};
use super::super::resources::ResourceInfo;
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::ObjectKey;
use super::super::Shared;
use super::output::Output;
use super::route::ResourcePath;
use super::{json_response, Query};

/// The object as served at this endpoint's version (`apiVersion` rewritten; no conversion).
pub fn present(info: &ResourceInfo, object: &Value) -> Value {
    present_cow(info, object).into_owned()
}

/// Like `present`, without copying when the stored object already has this version and kind.
pub fn present_cow<'a>(info: &ResourceInfo, object: &'a Value) -> std::borrow::Cow<'a, Value> {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    if api_version == Some(info.api_version().as_str()) && kind == Some(info.kind.as_str()) {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut out = object.clone();
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(info.api_version()));
        map.insert("kind".into(), Value::String(info.kind.clone()));
    }
    std::borrow::Cow::Owned(out)
}

/// GET one object (as a Table or metadata when asked).
pub fn get(
    shared: &Shared,
    info: &ResourceInfo,
    path: &ResourcePath,
    namespace: &str,
    output: Output,
) -> ApiResult<Response> {
    let name = path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(&info.storage_id(), namespace, &name);
    let object = shared
        .store()
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(info.subject(&name)))?;
    let body = output.one(info, present(info, &object));
    Ok(json_response(StatusCode::OK, &body, &[]))
}

/// Both selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Parses the selectors from the query (400 on bad syntax or unsupported fields).
    pub fn from_query(info: &ResourceInfo, query: &Query) -> ApiResult<Selectors> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            query.get("fieldSelector").unwrap_or_default(),
            &info.group,
            &info.plural,
        )
        .map_err(ApiError::BadRequest)?;
        Ok(Selectors { labels, fields })
    }

    /// Whether an object matches both.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

/// A decoded `continue` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// The list's resourceVersion.
    pub resource_version: u64,
    /// The last key returned.
    pub namespace: String,
    /// The last name returned.
    pub name: String,
}

impl ContinueToken {
    /// Encodes the token (opaque to clients).
    pub fn encode(&self) -> String {
        let raw = json!({"v": "meta.k8s.io/v1", "rv": self.resource_version, "ns": self.namespace, "name": self.name});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
    }

    /// Decodes a token (400 when it is not one of ours).
    pub fn decode(token: &str) -> ApiResult<ContinueToken> {
        let invalid = || ApiError::BadRequest(format!("continue key is not valid: {token:?}"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid())?;
        let raw: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        Ok(ContinueToken {
            resource_version: raw.get("rv").and_then(Value::as_u64).ok_or_else(invalid)?,
            namespace: raw
                .get("ns")
                .and_then(Value::as_str)
                .ok_or_else(invalid)?
                .to_string(),
            name: raw
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(invalid)?
                .to_string(),
        })
    }
}

/// LIST with `labelSelector`, `fieldSelector`, `limit` and `continue`.
pub fn list(
    shared: &Shared,
    info: &ResourceInfo,
    namespace: Option<&str>,
    query: &Query,
    output: Output,
) -> ApiResult<Response> {
    let selectors = Selectors::from_query(info, query)?;
    let limit = query
        .number("limit")?
        .filter(|l| *l > 0)
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let token = query
        .get("continue")
        .filter(|t| !t.is_empty())
        .map(ContinueToken::decode)
        .transpose()?;
    let storage_id = info.storage_id();
    let (items, list_rv, next, remaining): (Vec<Arc<Value>>, u64, Option<ContinueToken>, usize) = {
        let store = shared.store();
        if let Some(token) = &token {
            if token.resource_version < store.compacted_through() {
                return Err(ApiError::Expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ));
            }
        }
        let list_rv = token
            .as_ref()
            .map(|t| t.resource_version)
            .unwrap_or_else(|| store.resource_version());
        let after = token
            .as_ref()
            .map(|t| ObjectKey::new(&storage_id, &t.namespace, &t.name));
        let matching = store
            .range_labelled(
                &storage_id,
                namespace,
                after.as_ref(),
                selectors.labels.required_label(),
            )
            .filter(|(_, o)| selectors.matches(o));
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        for (key, object) in matching {
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            items.push(object.clone());
            last_key = Some(key.clone());
        }
        let next = (remaining > 0)
            .then(|| {
                last_key.map(|k| ContinueToken {
                    resource_version: list_rv,
                    namespace: k.namespace,
                    name: k.name,
                })
            })
            .flatten();
        (items, list_rv, next, remaining)
    };
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let (Some(next), Some(map)) = (next, metadata.as_object_mut()) {
        map.insert("continue".into(), Value::String(next.encode()));
        map.insert("remainingItemCount".into(), Value::from(remaining));
    }
    let items: Vec<Value> = items.iter().map(|o| present(info, o)).collect();
    let body = output.list(info, items, metadata);
    Ok(json_response(StatusCode::OK, &body, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = ContinueToken {
            resource_version: 42,
            namespace: "ns".into(),
            name: "a".into(),
        };
        assert_eq!(ContinueToken::decode(&token.encode()).unwrap(), token);
        for bad in ["", "!!", "e30"] {
            assert!(ContinueToken::decode(bad).is_err(), "{bad}");
        }
    }
}
