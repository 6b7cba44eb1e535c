//! HTTP front end: routing, verbs, bodies, fault injection, responses.

mod admin;
pub mod attach;
mod output;
mod pod_log;
mod protobuf;
mod query;
mod read;
pub mod route;
pub mod table;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use super::discovery;
use super::error::{ApiError, ApiResult};
use super::faults::FaultAction;
use super::resources::ResourceInfo;
use super::Shared;
pub use query::Query;
use route::{ResourcePath, Route};

/// Builds the router serving every path through one dispatcher.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A JSON response with a status code and `Warning` headers.
pub fn json_response(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let query = match Query::parse(parts.uri.query().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let route = route::parse(parts.uri.path());
    let user = match super::authz::check(
        &shared,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        &route,
        &query,
    ) {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let result = match route {
        Route::Version => Ok(json_response(StatusCode::OK, &discovery::version(), &[])),
        Route::OpenApiRoot => Ok(json_response(
            StatusCode::OK,
            &super::openapi::root(&shared.store().registry),
            &[],
        )),
        Route::OpenApiGroupVersion(group, version) => {
            super::openapi::document(&shared.store().registry, &group, &version)
                .map(|v| json_response(StatusCode::OK, &v, &[]))
                .ok_or(ApiError::UnknownPath)
        }
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::CoreVersions => Ok(json_response(
            StatusCode::OK,
            &discovery::core_versions(),
            &[],
        )),
        Route::Groups => Ok(json_response(
            StatusCode::OK,
            &discovery::groups(&shared.store().registry),
            &[],
        )),
        Route::Group(group) => discovery::group(&shared.store().registry, &group)
            .map(|v| json_response(StatusCode::OK, &v, &[])),
        Route::GroupVersion(group, version) => {
            discovery::resource_list(&shared.store().registry, &group, &version)
                .map(|v| json_response(StatusCode::OK, &v, &[]))
        }
        Route::Admin(segments) => {
            let bytes = read_body(&shared, body).await;
            match bytes {
                Ok(bytes) => admin::handle(&shared, &parts.method, &segments, &bytes),
                Err(e) => Err(e),
            }
        }
        Route::Resource(path) => {
            let request = Incoming {
                method: &parts.method,
                headers: &parts.headers,
                user: &user,
                upgrade,
            };
            resource(&shared, request, path, query, body).await
        }
        Route::Unknown => Err(ApiError::UnknownPath),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Reads a request body up to the configured limit (413 beyond it).
async fn read_body(shared: &Shared, body: Body) -> ApiResult<Bytes> {
    let limit = shared.config.max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))
}

/// The Kubernetes verb of a request.
pub fn verb(method: &Method, path: &ResourcePath, query: &Query) -> ApiResult<&'static str> {
    let named = path.name.is_some();
    Ok(match *method {
        Method::GET if named => "get",
        Method::GET if query.flag("watch") => "watch",
        Method::GET => "list",
        Method::POST if !named => "create",
        Method::POST if path.subresource.is_some() => "create",
        Method::PUT if named => "update",
        Method::PATCH if named => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

fn resolve(shared: &Shared, path: &ResourcePath) -> ApiResult<ResourceInfo> {
    let store = shared.store();
    let info = store
        .registry
        .get(&path.group, &path.version, &path.plural)
        .cloned()
        .ok_or(ApiError::UnknownPath)?;
    if path.namespace.is_some() && !info.namespaced {
        return Err(ApiError::UnknownPath);
    }
    if let Some(sub) = &path.subresource {
        let known = (sub == "status" && info.has_status)
            || info.extra_subresources.iter().any(|s| s == sub);
        if !known {
            return Err(ApiError::UnknownPath);
        }
    }
    Ok(info)
}

/// Who sent a resource request, and how.
struct Incoming<'a> {
    method: &'a Method,
    headers: &'a axum::http::HeaderMap,
    user: &'a super::authz::UserInfo,
    /// The connection's pending protocol switch (`pods/attach`).
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// Whether a request is for a resource that is answered, never stored: the access reviews and
/// TokenRequest (`serviceaccounts/<sa>/token`).
fn unstored(info: &ResourceInfo, path: &ResourcePath) -> bool {
    super::resources::REVIEW_GROUPS.contains(&info.group.as_str())
        || (info.group.is_empty()
            && info.plural == "serviceaccounts"
            && path.subresource.as_deref() == Some("token"))
}

/// Answers an access review, a TokenReview or a TokenRequest (create only).
fn answer_unstored(
    shared: &Shared,
    info: &ResourceInfo,
    path: &ResourcePath,
    user: &super::authz::UserInfo,
    bytes: &[u8],
) -> ApiResult<Response> {
    let object = write::parse_body(bytes, true)?;
    let namespace = path.namespace.clone().unwrap_or_default();
    let store = shared.store();
    let answer = if info.plural == "serviceaccounts" {
        let name = path.name.clone().unwrap_or_default();
        shared.tokens.request(&store, &namespace, &name, &object)?
    } else if info.group == "authentication.k8s.io" && info.plural == "tokenreviews" {
        shared.tokens.review(&store, &object)?
    } else {
        super::authz::reviews::review(
            &store,
            shared.config.authorization,
            user,
            &info.group,
            &info.plural,
            &namespace,
            &object,
        )?
    };
    Ok(json_response(StatusCode::CREATED, &answer, &[]))
}

async fn resource(
    shared: &Arc<Shared>,
    request: Incoming<'_>,
    path: ResourcePath,
    query: Query,
    body: Body,
) -> ApiResult<Response> {
    let Incoming {
        method,
        headers,
        user,
        upgrade,
    } = request;
    let info = resolve(shared, &path)?;
    let verb = verb(method, &path, &query)?;
    let label = match &path.subresource {
        Some(sub) => format!("{}/{}", path.plural, sub),
        None => path.plural.clone(),
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    shared.requests.record(user_agent, verb, &label);
    if let Some(action) = shared.faults.take(verb, &label) {
        match action {
            FaultAction::Fail(code) => return Err(injected(&info, &path, code)),
            FaultAction::DelayMs(ms) => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await
            }
        }
    }
    let namespace = path.namespace.clone().unwrap_or_default();
    if info.namespaced && namespace.is_empty() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::UnknownPath);
    }
    if unstored(&info, &path) {
        if verb != "create" {
            return Err(ApiError::MethodNotAllowed);
        }
        let bytes = read_body(shared, body).await?;
        return answer_unstored(shared, &info, &path, user, &bytes);
    }
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let output = output::Output::from_request(accept, &query);
    if path.subresource.as_deref() == Some("attach") && matches!(verb, "get" | "create") {
        let request = attach::AttachRequest { headers, upgrade };
        return attach::serve(shared, &info, &path, &query, request);
    }
    let ns = path.namespace.as_deref();
    match verb {
        "get" if path.subresource.as_deref() == Some("log") => {
            pod_log::serve(shared, &info, &path, &query)
        }
        "get" => read::get(shared, &info, &path, &namespace, output),
        "list" => read::list(shared, &info, ns, &query, output),
        "watch" => watch::serve(shared, &info, ns, &query, output),
        _ => {
            let bytes = read_body(shared, body).await?;
            let aggregating = !info.custom
                && info.group == "rbac.authorization.k8s.io"
                && info.plural == "clusterroles";
            let response = write::handle(
                shared,
                write::WriteRequest {
                    verb,
                    info,
                    path,
                    namespace,
                    query,
                    headers,
                    body: &bytes,
                    cel_rules: shared.config.cel_rules,
                },
            )?;
            if aggregating {
                // The clusterrole-aggregation controller's job, done synchronously.
                if let Err(e) = super::authz::aggregate::reconcile(&mut shared.store()) {
                    tracing::warn!(error = %e, "aggregating ClusterRoles");
                }
            }
            Ok(response)
        }
    }
}

fn injected(info: &ResourceInfo, path: &ResourcePath, code: u16) -> ApiError {
    let name = path.name.clone().unwrap_or_default();
    match code {
        409 => ApiError::Conflict(
            info.subject(&name),
            "the object has been modified; please apply your changes to the latest version and try again".into(),
        ),
        429 => ApiError::TooManyRequests,
        500 => ApiError::Internal("injected fault".into()),
        410 => ApiError::Expired("too old resource version (injected)".into()),
        other => ApiError::Injected(other, format!("HTTP {other}")),
    }
}
