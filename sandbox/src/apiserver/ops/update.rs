//! Update (PUT) and the common path of every patch: preconditions, status subresource,
//! generation, finalizers, no-op detection.

use serde_json::Value;

use super::super::error::{ApiError, ApiResult, FieldCause};
use super::super::store::{ObjectKey, Store};
use super::super::{meta, ssa};
use super::{admission, builtin, delete, WriteContext, Written};

/// What kind of write reached `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// PUT: a full object; resourceVersion precondition required for custom resources.
    Put,
    /// A JSON/merge/strategic patch already applied to the live object.
    Patch,
    /// Server-side apply already merged into the live object.
    Apply,
}

/// Registers a CRD's resources when the object written is a CRD.
pub fn register_if_crd(store: &mut Store, ctx: &WriteContext, object: &Value) -> ApiResult<()> {
    if !ctx.info.custom
        && ctx.info.group == "apiextensions.k8s.io"
        && ctx.info.plural == "customresourcedefinitions"
    {
        store.registry.register_crd(object)?;
    }
    Ok(())
}

const SYSTEM_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

/// Merges the write into the live object according to the subresource.
fn merge_with_live(
    ctx: &WriteContext,
    old: &Value,
    new: Value,
    subresource: Option<&str>,
) -> Value {
    if subresource == Some("status") {
        let mut merged = old.clone();
        let map = meta::as_map(&mut merged);
        match new.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
        return merged;
    }
    let mut merged = new;
    let old_metadata = old
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let metadata = meta::metadata_mut(&mut merged);
    for field in SYSTEM_METADATA {
        match old_metadata.get(*field) {
            Some(v) => metadata.insert((*field).to_string(), v.clone()),
            None => metadata.remove(*field),
        };
    }
    if ctx.info.has_status {
        let map = meta::as_map(&mut merged);
        match old.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    merged
}

/// Applies a write to an existing object (`mode` says how it was produced).
pub fn update(
    store: &mut Store,
    ctx: &WriteContext,
    name: &str,
    mut object: Value,
    subresource: Option<&str>,
    mode: UpdateMode,
) -> ApiResult<Written> {
    admission::check_shape(ctx, &object)?;
    admission::check_kind(ctx, &mut object)?;
    let key = ObjectKey::new(&ctx.info.storage_id(), &ctx.namespace, name);
    let Some(old) = store.get(&key) else {
        return Err(ApiError::NotFound(ctx.info.subject(name)));
    };
    let metadata = meta::metadata_mut(&mut object);
    match metadata.get("name").and_then(Value::as_str) {
        Some(body_name) if !body_name.is_empty() && body_name != name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        _ => {
            metadata.insert("name".into(), Value::String(name.to_string()));
        }
    }
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
    }
    let requested_rv = meta::str_field(&object, "resourceVersion")
        .unwrap_or_default()
        .to_string();
    let live_rv = meta::str_field(&old, "resourceVersion")
        .unwrap_or_default()
        .to_string();
    if requested_rv.is_empty() {
        if mode == UpdateMode::Put && !ctx.info.allow_unconditional_update {
            return Err(ApiError::Invalid(
                ctx.info.subject(name),
                vec![FieldCause::invalid(
                    "metadata.resourceVersion",
                    &Value::from(0),
                    "must be specified for an update",
                )],
            ));
        }
    } else if requested_rv != live_rv {
        return Err(ApiError::Conflict(
            ctx.info.subject(name),
            "the object has been modified; please apply your changes to the latest version and try again".into(),
        ));
    }
    admission::check_names(ctx, &object)?;
    // A client may replace managedFields explicitly (kubectl does, to migrate client-side apply
    // ownership to server-side apply); an empty list clears them.
    let requested_managed = object.pointer("/metadata/managedFields").cloned();
    let mut merged = merge_with_live(ctx, &old, object, subresource);
    if let Some(requested) =
        requested_managed.filter(|m| Some(m) != old.pointer("/metadata/managedFields"))
    {
        let metadata = meta::metadata_mut(&mut merged);
        match requested {
            Value::Array(list) if !list.is_empty() => {
                metadata.insert("managedFields".into(), Value::Array(list))
            }
            _ => metadata.remove("managedFields"),
        };
    }
    if subresource.is_none() {
        builtin::prepare_write(&ctx.info, &mut merged);
    }
    if meta::is_deleting(&old) {
        let before = meta::finalizers(&old);
        let added: Vec<String> = meta::finalizers(&merged)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::Invalid(
                ctx.info.subject(name),
                vec![FieldCause::forbidden(
                    "metadata.finalizers",
                    &format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                )],
            ));
        }
    }
    if ctx.info.tracks_generation && meta::spec_part(&old) != meta::spec_part(&merged) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta::metadata_mut(&mut merged).insert("generation".into(), Value::from(generation));
    }
    let warnings = admission::admit(ctx, &mut merged, Some(&old))?;
    let same_managers =
        merged.pointer("/metadata/managedFields") == old.pointer("/metadata/managedFields");
    if same_managers && meta::comparable(&merged) == meta::comparable(&old) {
        return Ok(Written {
            object: (*old).clone(),
            created: false,
            warnings,
        });
    }
    if let Some(manager) = &ctx.manager {
        let operation = if mode == UpdateMode::Apply {
            "Apply"
        } else {
            "Update"
        };
        let scope = ssa::Scope {
            subresource,
            has_status: ctx.info.has_status,
        };
        let api_version = ctx.info.api_version();
        let applied = ctx
            .apply_config
            .as_ref()
            .filter(|_| mode == UpdateMode::Apply);
        ssa::record(
            &mut merged,
            &old,
            manager,
            operation,
            &api_version,
            scope,
            applied,
        );
    }
    if ctx.dry_run {
        return Ok(Written {
            object: merged,
            created: false,
            warnings,
        });
    }
    if delete::ready_to_remove(&merged) {
        let last = delete::remove_and_collect(store, &key);
        return Ok(Written {
            object: last,
            created: false,
            warnings,
        });
    }
    register_if_crd(store, ctx, &merged)?;
    let is_dependent = !meta::owner_uids(&merged).is_empty();
    let stored = store.put(key, merged);
    if is_dependent {
        delete::collect_garbage(store, Vec::new());
    }
    Ok(Written {
        object: (*stored).clone(),
        created: false,
        warnings,
    })
}
