//! Writes: POST, PUT, PATCH (JSON, merge, strategic, apply), DELETE, deletecollection, binding.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::super::error::{ApiError, ApiResult, FieldCause};
use super::super::meta;
use super::super::ops::{self, DeleteOptions, FieldValidation, UpdateMode, WriteContext};
use super::super::patch::{self, PatchError, PatchKind, PATCH_CONTENT_TYPES};
use super::super::resources::ResourceInfo;
use super::super::ssa;
use super::super::store::ObjectKey;
use super::super::Shared;
use super::read::{present, Selectors};
use super::route::ResourcePath;
use super::{json_response, Query};

/// Everything a write handler needs.
pub struct WriteRequest<'a> {
    /// Kubernetes verb.
    pub verb: &'static str,
    /// Resource written.
    pub info: ResourceInfo,
    /// The parsed path.
    pub path: ResourcePath,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Query parameters.
    pub query: Query,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Raw body.
    pub body: &'a [u8],
    /// Whether CRD CEL rules are evaluated.
    pub cel_rules: bool,
}

/// Parses a JSON body (or YAML, for apply and for clients sending YAML; or the protobuf envelope
/// kubectl's typed generators send).
pub fn parse_body(body: &[u8], allow_yaml: bool) -> ApiResult<Value> {
    if body.starts_with(b"k8s\0") {
        return super::protobuf::decode(body).map_err(|e| match e {
            super::protobuf::ProtobufError::UnsupportedKind(_) => {
                ApiError::UnsupportedMediaType("application/json, application/yaml".into())
            }
            other => ApiError::BadRequest(other.to_string()),
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_error) if allow_yaml => serde_norway::from_slice::<Value>(body).map_err(|e| {
            ApiError::BadRequest(format!("error decoding YAML: {e}; as JSON: {json_error}"))
        }),
        Err(e) => Err(ApiError::BadRequest(format!(
            "couldn't get version/kind; json parse error: {e}"
        ))),
    }
}

fn manager_from(request: &WriteRequest<'_>) -> Option<String> {
    request
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(String::from)
        .or_else(|| {
            request
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
                .filter(|m| !m.is_empty())
        })
}

fn context(request: &WriteRequest<'_>, apply_config: Option<Value>) -> ApiResult<WriteContext> {
    let validation = FieldValidation::parse(request.query.get("fieldValidation").unwrap_or_default()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "fieldValidation: Unsupported value: {:?}: supported values: \"Ignore\", \"Warn\", \"Strict\"",
            request.query.get("fieldValidation").unwrap_or_default()
        ))
    })?;
    let dry_run = match request.query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )))
        }
    };
    Ok(WriteContext {
        info: request.info.clone(),
        namespace: request.namespace.clone(),
        manager: manager_from(request),
        dry_run,
        validation,
        apply_config,
        cel_rules: request.cel_rules,
    })
}

fn respond(info: &ResourceInfo, code: StatusCode, written: ops::Written) -> Response {
    json_response(code, &present(info, &written.object), &written.warnings)
}

/// Dispatches a write verb.
pub fn handle(shared: &Shared, request: WriteRequest<'_>) -> ApiResult<Response> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/cbor") {
        return Err(ApiError::UnsupportedMediaType(
            "application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
        ));
    }
    match (request.verb, request.path.subresource.as_deref()) {
        ("create", Some("binding")) => bind(shared, &request),
        ("create", Some(_)) => Err(ApiError::MethodNotAllowed),
        ("create", None) => {
            let body = parse_body(request.body, true)?;
            let ctx = context(&request, None)?;
            let written = ops::create(&mut shared.store(), &ctx, body, "Update")?;
            Ok(respond(&request.info, StatusCode::CREATED, written))
        }
        ("update", sub) => {
            let body = parse_body(request.body, true)?;
            let ctx = context(&request, None)?;
            let name = request.path.name.clone().unwrap_or_default();
            let written =
                ops::update(&mut shared.store(), &ctx, &name, body, sub, UpdateMode::Put)?;
            Ok(respond(&request.info, StatusCode::OK, written))
        }
        ("patch", sub) => patch_object(shared, &request, sub),
        ("delete", None) => delete_object(shared, &request),
        ("deletecollection", None) => delete_collection(shared, &request),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn patch_error(info: &ResourceInfo, name: &str, error: PatchError) -> ApiError {
    match error {
        PatchError::Malformed(m) => ApiError::BadRequest(m),
        PatchError::Failed(m) => ApiError::Invalid(
            info.subject(name),
            vec![FieldCause::new("FieldValueInvalid", "", m)],
        ),
    }
}

fn patch_object(
    shared: &Shared,
    request: &WriteRequest<'_>,
    subresource: Option<&str>,
) -> ApiResult<Response> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = PatchKind::from_content_type(content_type)
        .ok_or_else(|| ApiError::UnsupportedMediaType(PATCH_CONTENT_TYPES.into()))?;
    if kind == PatchKind::Strategic && request.info.custom {
        return Err(ApiError::UnsupportedMediaType(
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
        ));
    }
    let name = request.path.name.clone().unwrap_or_default();
    let body = parse_body(request.body, kind == PatchKind::Apply)?;
    let ctx = context(request, (kind == PatchKind::Apply).then(|| body.clone()))?;
    if kind == PatchKind::Apply {
        if request.query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::Invalid(
                request.info.subject(&name),
                vec![FieldCause::new(
                    "FieldValueRequired",
                    "fieldManager",
                    "Required value: is required for apply patch",
                )],
            ));
        }
        if !body.is_object() {
            return Err(ApiError::BadRequest("apply patch must be an object".into()));
        }
    }
    if !matches!(kind, PatchKind::Json) && !body.is_object() {
        return Err(ApiError::BadRequest(
            "patch body must be a JSON object".into(),
        ));
    }
    let mut store = shared.store();
    let key = ObjectKey::new(&request.info.storage_id(), &request.namespace, &name);
    let live = store.get(&key);
    let Some(live) = live else {
        if kind == PatchKind::Apply && subresource.is_none() {
            let mut object = body;
            meta::metadata_mut(&mut object).insert("name".into(), Value::String(name.clone()));
            let written = ops::create(&mut store, &ctx, object, "Apply")?;
            return Ok(respond(&request.info, StatusCode::CREATED, written));
        }
        return Err(ApiError::NotFound(request.info.subject(&name)));
    };
    let live = if kind == PatchKind::Apply {
        let manager = ctx.manager.clone().unwrap_or_default();
        let scope = ssa::Scope {
            subresource,
            has_status: request.info.has_status,
        };
        let force = request.query.flag("force");
        let base = ssa::prepare_apply(&live, &body, &manager, scope, force)
            .map_err(|c| ApiError::ApplyConflict(request.info.subject(&name), c))?;
        std::sync::Arc::new(base)
    } else {
        live
    };
    let patched = match kind {
        PatchKind::Json => {
            patch::json(&live, &body).map_err(|e| patch_error(&request.info, &name, e))?
        }
        PatchKind::Merge => patch::merge(&live, &body),
        PatchKind::Strategic => {
            patch::strategic(&live, &body).map_err(|e| patch_error(&request.info, &name, e))?
        }
        PatchKind::Apply if request.info.custom => patch::merge(&live, &body),
        PatchKind::Apply => {
            patch::strategic(&live, &body).map_err(|e| patch_error(&request.info, &name, e))?
        }
    };
    let mode = if kind == PatchKind::Apply {
        UpdateMode::Apply
    } else {
        UpdateMode::Patch
    };
    let written = ops::update(&mut store, &ctx, &name, patched, subresource, mode)?;
    Ok(respond(&request.info, StatusCode::OK, written))
}

fn delete_options(request: &WriteRequest<'_>) -> ApiResult<DeleteOptions> {
    let body = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        parse_body(request.body, false)?
    };
    let mut options = DeleteOptions::from_body(&body).map_err(ApiError::BadRequest)?;
    if let Some(policy) = request
        .query
        .get("propagationPolicy")
        .filter(|p| !p.is_empty())
    {
        options.propagation = Some(ops::parse_propagation(policy).map_err(ApiError::BadRequest)?);
    }
    if request.query.flag("orphanDependents") {
        options.propagation = Some(ops::Propagation::Orphan);
    }
    if let Some(grace) = request
        .query
        .get("gracePeriodSeconds")
        .filter(|g| !g.is_empty())
    {
        options.grace_period_seconds =
            Some(grace.parse().map_err(|_| {
                ApiError::BadRequest(format!("invalid gracePeriodSeconds: {grace:?}"))
            })?);
    }
    Ok(options)
}

fn delete_object(shared: &Shared, request: &WriteRequest<'_>) -> ApiResult<Response> {
    let options = delete_options(request)?;
    let ctx = context(request, None)?;
    let name = request.path.name.clone().unwrap_or_default();
    let object = ops::delete(&mut shared.store(), &ctx, &name, &options)?;
    let is_pod =
        !request.info.custom && request.info.group.is_empty() && request.info.plural == "pods";
    if is_pod && store_lacks(shared, &ctx, &name) {
        shared.logs.remove_pod(&request.namespace, &name);
    }
    Ok(json_response(
        StatusCode::OK,
        &present(&request.info, &object),
        &[],
    ))
}

fn store_lacks(shared: &Shared, ctx: &WriteContext, name: &str) -> bool {
    shared
        .store()
        .get(&ObjectKey::new(
            &ctx.info.storage_id(),
            &ctx.namespace,
            name,
        ))
        .is_none()
}

fn delete_collection(shared: &Shared, request: &WriteRequest<'_>) -> ApiResult<Response> {
    let options = delete_options(request)?;
    let ctx = context(request, None)?;
    let selectors = Selectors::from_query(&request.info, &request.query)?;
    let mut store = shared.store();
    let names: Vec<String> = store
        .range(
            &request.info.storage_id(),
            Some(&request.namespace)
                .filter(|n| !n.is_empty())
                .map(|s| s.as_str()),
            None,
        )
        .filter(|(_, o)| selectors.matches(o))
        .map(|(k, _)| k.name.clone())
        .collect();
    let deleted = ops::delete_collection(&mut store, &ctx, &names, &options)?;
    let items: Vec<Value> = deleted.iter().map(|o| present(&request.info, o)).collect();
    let body = json!({"kind": request.info.list_kind, "apiVersion": request.info.api_version(),
                      "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items});
    Ok(json_response(StatusCode::OK, &body, &[]))
}

/// `pods/<name>/binding`: sets `spec.nodeName` (once), as the scheduler does.
fn bind(shared: &Shared, request: &WriteRequest<'_>) -> ApiResult<Response> {
    let body = parse_body(request.body, false)?;
    let name = request.path.name.clone().unwrap_or_default();
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::Invalid(
            request.info.subject(&name),
            vec![FieldCause::required("target.name")],
        ));
    }
    let ctx = context(request, None)?;
    let mut store = shared.store();
    let key = ObjectKey::new(&request.info.storage_id(), &request.namespace, &name);
    let live = store
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(request.info.subject(&name)))?;
    if live
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::Conflict(
            request.info.subject(&name),
            "pod is already assigned to a node".into(),
        ));
    }
    let mut bound = (*live).clone();
    meta::as_map(
        meta::as_map(&mut bound)
            .entry("spec")
            .or_insert_with(|| json!({})),
    )
    .insert("nodeName".into(), json!(node));
    ops::update(&mut store, &ctx, &name, bound, None, UpdateMode::Patch)?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(StatusCode::CREATED, &status, &[]))
}
