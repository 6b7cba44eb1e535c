//! Create: names, generateName, namespace checks, server-set metadata.

use serde_json::Value;

use super::super::error::{ApiError, ApiResult};
use super::super::store::{ObjectKey, Store};
use super::super::{meta, ssa};
use super::{admission, builtin, WriteContext, Written};

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| GENERATE_ALPHABET[usize::from(*b) % GENERATE_ALPHABET.len()] as char)
        .collect()
}

/// Checks the path namespace exists and is not terminating (namespaced resources only).
pub fn check_namespace(store: &Store, ctx: &WriteContext) -> ApiResult<()> {
    if !ctx.info.namespaced {
        return Ok(());
    }
    let key = ObjectKey::new("/namespaces", "", &ctx.namespace);
    let namespaces = || {
        let mut subject = ctx.info.subject(&ctx.namespace);
        subject.resource = "namespaces".into();
        subject.group = String::new();
        subject
    };
    match store.get(&key) {
        None => Err(ApiError::NotFound(namespaces())),
        Some(ns) if meta::is_deleting(&ns) => Err(ApiError::Forbidden(
            namespaces(),
            format!(
                "unable to create new content in namespace {} because it is being terminated",
                ctx.namespace
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn is_kind(ctx: &WriteContext, group: &str, plural: &str) -> bool {
    !ctx.info.custom && ctx.info.group == group && ctx.info.plural == plural
}

/// With ServiceAccount admission on, a Pod's ServiceAccount must exist.
fn check_service_account(store: &Store, ctx: &WriteContext, pod: &Value) -> ApiResult<()> {
    if !store.service_account_admission || !is_kind(ctx, "", "pods") {
        return Ok(());
    }
    let account = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    if store
        .get(&ObjectKey::new("/serviceaccounts", &ctx.namespace, account))
        .is_some()
    {
        return Ok(());
    }
    let name = meta::name(pod)
        .or_else(|| meta::str_field(pod, "generateName"))
        .unwrap_or_default();
    Err(ApiError::Forbidden(
        ctx.info.subject(name),
        format!(
            "pods {name:?} is forbidden: error looking up service account {}/{account}: serviceaccount {account:?} not found",
            ctx.namespace
        ),
    ))
}

/// With Pod Security admission on, a Pod must meet its namespace's enforced level.
fn check_pod_security(store: &Store, ctx: &WriteContext, pod: &Value) -> ApiResult<()> {
    if !store.pod_security || !is_kind(ctx, "", "pods") {
        return Ok(());
    }
    let Some(namespace) = store.get(&ObjectKey::new("/namespaces", "", &ctx.namespace)) else {
        return Ok(());
    };
    let Some(denial) = super::pod_security::denial(&namespace, pod) else {
        return Ok(());
    };
    let name = meta::name(pod).unwrap_or_default();
    Err(ApiError::Forbidden(
        ctx.info.subject(name),
        format!("pods {name:?} is forbidden: {denial}"),
    ))
}

/// The ServiceAccount controller's job: every namespace gets a `default` ServiceAccount.
fn create_default_service_account(store: &mut Store, ctx: &WriteContext, namespace: &str) {
    let Some(info) = store.registry.get("", "v1", "serviceaccounts").cloned() else {
        return;
    };
    let sa_ctx = WriteContext {
        info,
        namespace: namespace.to_string(),
        manager: None,
        apply_config: None,
        ..ctx.clone()
    };
    // A namespace that was just created has no `default` ServiceAccount yet.
    let _ = create(
        store,
        &sa_ctx,
        serde_json::json!({"metadata": {"name": "default"}}),
        "Update",
    );
}

/// Creates an object (POST, or server-side apply of a missing object).
pub fn create(
    store: &mut Store,
    ctx: &WriteContext,
    mut object: Value,
    operation: &str,
) -> ApiResult<Written> {
    admission::check_shape(ctx, &object)?;
    admission::check_kind(ctx, &mut object)?;
    let metadata = meta::metadata_mut(&mut object);
    if ctx.info.namespaced {
        match metadata
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(ns) if ns != ctx.namespace => {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            _ => {
                metadata.insert("namespace".into(), Value::String(ctx.namespace.clone()));
            }
        }
    } else {
        metadata.remove("namespace");
    }
    admission::check_names(ctx, &object)?;
    let metadata = meta::metadata_mut(&mut object);
    let has_name = metadata
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        let prefix = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        metadata.insert(
            "name".into(),
            Value::String(format!("{prefix}{}", random_suffix())),
        );
    }
    check_namespace(store, ctx)?;
    check_service_account(store, ctx, &object)?;
    check_pod_security(store, ctx, &object)?;
    let name = meta::name(&object).unwrap_or_default().to_string();
    let key = ObjectKey::new(&ctx.info.storage_id(), &ctx.namespace, &name);
    if store.get(&key).is_some() {
        return Err(ApiError::AlreadyExists(ctx.info.subject(&name)));
    }
    let metadata = meta::metadata_mut(&mut object);
    for field in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "managedFields",
        "selfLink",
    ] {
        metadata.remove(field);
    }
    metadata.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    metadata.insert("creationTimestamp".into(), Value::String(meta::now()));
    if ctx.info.tracks_generation {
        metadata.insert("generation".into(), Value::from(1));
    } else {
        metadata.remove("generation");
    }
    builtin::prepare_create(&ctx.info, &mut object);
    let warnings = admission::admit(ctx, &mut object, None)?;
    if let Some(manager) = &ctx.manager {
        let scope = ssa::Scope {
            subresource: None,
            has_status: ctx.info.has_status,
        };
        let api_version = ctx.info.api_version();
        let applied = ctx.apply_config.as_ref().filter(|_| operation == "Apply");
        ssa::record(
            &mut object,
            &Value::Null,
            manager,
            operation,
            &api_version,
            scope,
            applied,
        );
    }
    if ctx.dry_run {
        return Ok(Written {
            object,
            created: true,
            warnings,
        });
    }
    super::update::register_if_crd(store, ctx, &object)?;
    let stored = store.put(key, object);
    if is_kind(ctx, "", "namespaces") {
        create_default_service_account(store, ctx, meta::name(&stored).unwrap_or_default());
    }
    Ok(Written {
        object: (*stored).clone(),
        created: true,
        warnings,
    })
}
