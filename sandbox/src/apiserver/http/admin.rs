//! `/sandbox/...` admin endpoints: fault injection over HTTP.
//!
//! - `GET /sandbox/faults`: active rules.
//! - `POST /sandbox/faults` with a `FaultRule` JSON body, e.g.
//!   `{"verb":"update","resource":"pods","action":{"fail":409},"count":1}` or `{"action":{"delayMs":500},"count":3}`.
//! - `DELETE /sandbox/faults`: clear rules.
//! - `POST /sandbox/faults/drop-watches`: end every open watch.
//! - `POST /sandbox/faults/compact`: forget event history (old resourceVersions get 410).
//! - `GET /sandbox/metrics`: API requests per client (`User-Agent` product), verb and resource;
//!   `DELETE /sandbox/metrics` resets them.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::super::error::{ApiError, ApiResult};
use super::super::faults::FaultRule;
use super::super::Shared;
use super::json_response;

/// Handles an admin request.
pub fn handle(
    shared: &Shared,
    method: &Method,
    segments: &[String],
    body: &[u8],
) -> ApiResult<Response> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["faults"]) => {
            let rules = serde_json::to_value(shared.faults.list())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(json_response(StatusCode::OK, &json!({"rules": rules}), &[]))
        }
        (Method::POST, ["faults"]) => {
            let rule: FaultRule = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid fault rule: {e}")))?;
            shared.faults.add(rule.clone());
            let rule = serde_json::to_value(rule).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(json_response(StatusCode::CREATED, &rule, &[]))
        }
        (Method::DELETE, ["faults"]) => {
            shared.faults.clear();
            Ok(json_response(StatusCode::OK, &json!({"rules": []}), &[]))
        }
        (Method::POST, ["faults", "drop-watches"]) => {
            shared.watch_epoch.send_modify(|epoch| *epoch += 1);
            Ok(json_response(
                StatusCode::OK,
                &json!({"dropped": true}),
                &[],
            ))
        }
        (Method::POST, ["faults", "compact"]) => {
            let mut store = shared.store();
            store.compact();
            let rv = store.resource_version();
            Ok(json_response(
                StatusCode::OK,
                &json!({"compactedThrough": rv.to_string()}),
                &[],
            ))
        }
        (Method::GET, ["metrics"]) => {
            let requests = serde_json::to_value(shared.requests.snapshot())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"requests": requests}),
                &[],
            ))
        }
        (Method::DELETE, ["metrics"]) => {
            shared.requests.reset();
            Ok(json_response(StatusCode::OK, &json!({"requests": []}), &[]))
        }
        (_, ["faults", ..] | ["metrics"]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::UnknownPath),
    }
}
