//! Kubernetes `Status`-shaped errors returned by every API handler.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One cause of an `Invalid` error: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// Kubernetes cause reason, e.g. `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// Dotted field path, e.g. `spec.runPolicy`.
    pub field: String,
    /// Human message without the field path, e.g. `Required value`.
    pub message: String,
}

impl FieldCause {
    /// A cause with the given reason, field path and message.
    pub fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `Required value` for a missing field.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new("FieldValueRequired", field, "Required value")
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", value_text(value)),
        )
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }
}

/// Renders a value the way apiserver messages quote them (strings quoted, others as JSON).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".to_string(),
        Value::Array(_) => "\"array\"".to_string(),
        other => other.to_string(),
    }
}

/// Identifies the object an error is about: `<resource>.<group>` and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name, e.g. `pods`.
    pub resource: String,
    /// Kind, e.g. `Pod` (used by `Invalid`).
    pub kind: String,
    /// Object name.
    pub name: String,
}

impl Subject {
    /// `pods` or `buildconfigs.kiln.dev`, as the apiserver qualifies resources in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `Pod` or `BuildConfig.kiln.dev`, as used in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn details(&self) -> Value {
        json!({"name": self.name, "group": self.group, "kind": self.resource})
    }
}

/// Every error the API server returns; each maps to a Kubernetes `Status`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// 404 for a missing object.
    #[error("{} {:?} not found", .0.qualified_resource(), .0.name)]
    NotFound(Subject),
    /// 404 for an unknown path or resource.
    #[error("the server could not find the requested resource")]
    UnknownPath,
    /// 409 on create of an existing object.
    #[error("{} {:?} already exists", .0.qualified_resource(), .0.name)]
    AlreadyExists(Subject),
    /// 409 on a stale resourceVersion or failed precondition.
    #[error("Operation cannot be fulfilled on {} {:?}: {}", .0.qualified_resource(), .0.name, .1)]
    Conflict(Subject, String),
    /// 409 from server-side apply: fields owned by other managers.
    #[error("Apply failed with {} conflict{}: {}", .1.len(), if .1.len() == 1 { "" } else { "s" }, join_conflicts(.1))]
    ApplyConflict(Subject, Vec<crate::apiserver::ssa::Conflict>),
    /// 422 with field causes.
    #[error("{} {:?} is invalid: {}", .0.qualified_kind(), .0.name, join_causes(.1))]
    Invalid(Subject, Vec<FieldCause>),
    /// 400 for a malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// 401 for a bearer token that authenticates nobody.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403, e.g. creating in a terminating namespace.
    #[error("{1}")]
    Forbidden(Subject, String),
    /// 405 for a verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 410 Gone for a compacted resourceVersion (watch) or too old continue token.
    #[error("{0}")]
    Expired(String),
    /// 413 for a body over the limit.
    #[error("the request body is too large (limit {0} bytes)")]
    TooLarge(usize),
    /// 415 for an unsupported patch or body content type.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {0}"
    )]
    UnsupportedMediaType(String),
    /// 429, returned only through fault injection.
    #[error("Too many requests, please try again later.")]
    TooManyRequests,
    /// 500.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// Any other code injected by a fault rule.
    #[error("injected fault: {1}")]
    Injected(u16, String),
}

fn join_conflicts(conflicts: &[crate::apiserver::ssa::Conflict]) -> String {
    let parts: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with {:?}: {}", c.manager, c.field))
        .collect();
    parts.join(", ")
}

fn join_causes(causes: &[FieldCause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownPath => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict(..) | ApiError::ApplyConflict(..) => {
                409
            }
            ApiError::Invalid(..) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(..) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::Expired(_) => 410,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooManyRequests => 429,
            ApiError::Internal(_) => 500,
            ApiError::Injected(code, _) => *code,
        }
    }

    /// Kubernetes `StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownPath => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(..) | ApiError::ApplyConflict(..) => "Conflict",
            ApiError::Invalid(..) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(..) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Expired(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooManyRequests => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::Injected(code, _) => reason_for_code(*code),
        }
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(s)
            | ApiError::AlreadyExists(s)
            | ApiError::Conflict(s, _)
            | ApiError::Forbidden(s, _) => Some(s.details()),
            ApiError::Invalid(s, causes) => Some(json!({
                "name": s.name,
                "group": s.group,
                "kind": s.kind,
                "causes": causes.iter().map(|c| json!({
                    "reason": c.reason,
                    "message": c.message,
                    "field": c.field,
                })).collect::<Vec<_>>(),
            })),
            ApiError::ApplyConflict(s, conflicts) => Some(json!({
                "name": s.name,
                "group": s.group,
                "kind": s.resource,
                "causes": conflicts.iter().map(|c| json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {:?}", c.manager),
                    "field": c.field,
                })).collect::<Vec<_>>(),
            })),
            ApiError::TooManyRequests => Some(json!({"retryAfterSeconds": 1})),
            _ => None,
        };
        if let (Some(details), Some(map)) = (details, status.as_object_mut()) {
            map.insert("details".into(), details);
        }
        status
    }
}

/// The `StatusReason` the apiserver uses for an HTTP code.
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.to_status())).into_response();
        if code == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
        }
        response
    }
}

/// Result type of the API server.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            group: "kiln.dev".into(),
            resource: "builds".into(),
            kind: "Build".into(),
            name: "b-1".into(),
        }
    }

    #[test]
    fn status_shapes() {
        let cases: Vec<(ApiError, u16, &str, &str)> = vec![
            (
                ApiError::NotFound(subject()),
                404,
                "NotFound",
                "builds.kiln.dev \"b-1\" not found",
            ),
            (
                ApiError::AlreadyExists(subject()),
                409,
                "AlreadyExists",
                "builds.kiln.dev \"b-1\" already exists",
            ),
            (
                ApiError::Invalid(
                    subject(),
                    vec![FieldCause::new(
                        "FieldValueNotSupported",
                        "spec.runPolicy",
                        "Unsupported value: \"X\"",
                    )],
                ),
                422,
                "Invalid",
                "Build.kiln.dev \"b-1\" is invalid: spec.runPolicy: Unsupported value: \"X\"",
            ),
            (
                ApiError::Injected(503, "x".into()),
                503,
                "ServiceUnavailable",
                "injected fault: x",
            ),
        ];
        for (error, code, reason, message) in cases {
            let status = error.to_status();
            assert_eq!(status["kind"], "Status");
            assert_eq!(status["code"], code);
            assert_eq!(status["reason"], reason);
            assert_eq!(status["message"], message);
        }
    }
}
