//! Delete: preconditions, finalizers, graceful pod deletion, propagation policies, the garbage
//! collector (ownerReferences) and namespace termination. All synchronous.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::super::error::{ApiError, ApiResult};
use super::super::meta;
use super::super::store::{ObjectKey, Store};
use super::WriteContext;

use super::super::store::FOREGROUND_FINALIZER as FOREGROUND;

/// Upper bound for grace periods (ten years), so timestamps never overflow.
const MAX_GRACE_SECONDS: i64 = 315_360_000;

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the owner now; dependents are collected after it.
    #[default]
    Background,
    /// Keep the owner (with `foregroundDeletion`) until its dependents are gone.
    Foreground,
    /// Remove owner references from dependents, then delete the owner.
    Orphan,
}

/// `DeleteOptions` from the body and query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Propagation policy (default Background).
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (missing fields are fine).
    pub fn from_body(body: &Value) -> Result<DeleteOptions, String> {
        let mut options = DeleteOptions::default();
        if body.is_null() {
            return Ok(options);
        }
        if !body.is_object() {
            return Err("DeleteOptions must be an object".into());
        }
        if let Some(policy) = body.get("propagationPolicy").and_then(Value::as_str) {
            options.propagation = Some(parse_propagation(policy)?);
        }
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            options.propagation = Some(Propagation::Orphan);
        }
        options.precondition_uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        options.precondition_resource_version = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
        options.grace_period_seconds = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        options.dry_run = body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "All"));
        Ok(options)
    }
}

/// Parses a `propagationPolicy` value.
pub fn parse_propagation(policy: &str) -> Result<Propagation, String> {
    match policy {
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        "Orphan" => Ok(Propagation::Orphan),
        other => Err(format!("propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\"")),
    }
}

/// Whether a deleting object may now be removed from storage.
pub fn ready_to_remove(object: &Value) -> bool {
    meta::is_deleting(object)
        && meta::finalizers(object).is_empty()
        && object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
}

/// Removes an object and runs the garbage collector for what depended on it.
pub fn remove_and_collect(store: &mut Store, key: &ObjectKey) -> Value {
    let uid = store.get(key).and_then(|o| meta::uid(&o).map(String::from));
    let last = store
        .remove(key)
        .map(|o| (*o).clone())
        .unwrap_or(Value::Null);
    collect_garbage(store, uid.into_iter().collect());
    last
}

fn mark_deleting(object: &mut Value, grace_seconds: i64, extra_finalizer: Option<&str>) {
    let grace_seconds = grace_seconds.clamp(0, MAX_GRACE_SECONDS);
    let when = chrono::Utc::now() + chrono::Duration::seconds(grace_seconds);
    let metadata = meta::metadata_mut(object);
    metadata
        .entry("deletionTimestamp")
        .or_insert_with(|| Value::String(when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    metadata.insert(
        "deletionGracePeriodSeconds".into(),
        Value::from(grace_seconds),
    );
    if let Some(finalizer) = extra_finalizer {
        let mut finalizers = meta::finalizers(object);
        if !finalizers.iter().any(|f| f == finalizer) {
            finalizers.push(finalizer.to_string());
        }
        meta::set_finalizers(object, &finalizers);
    }
}

fn pod_grace_seconds(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .clamp(0, MAX_GRACE_SECONDS)
}

/// Deletes one object; returns its state afterwards (last state if removed).
pub fn delete(
    store: &mut Store,
    ctx: &WriteContext,
    name: &str,
    options: &DeleteOptions,
) -> ApiResult<Value> {
    let key = ObjectKey::new(&ctx.info.storage_id(), &ctx.namespace, name);
    let Some(old) = store.get(&key) else {
        return Err(ApiError::NotFound(ctx.info.subject(name)));
    };
    if let Some(uid) = &options.precondition_uid {
        let live = meta::uid(&old).unwrap_or_default();
        if uid != live {
            return Err(ApiError::Conflict(
                ctx.info.subject(name),
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {live}"
                ),
            ));
        }
    }
    if let Some(rv) = &options.precondition_resource_version {
        let live = meta::str_field(&old, "resourceVersion").unwrap_or_default();
        if rv != live {
            return Err(ApiError::Conflict(
                ctx.info.subject(name),
                format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {live}"),
            ));
        }
    }
    if options.dry_run || ctx.dry_run {
        return Ok((*old).clone());
    }
    let is_pod = !ctx.info.custom && ctx.info.group.is_empty() && ctx.info.plural == "pods";
    let is_namespace =
        !ctx.info.custom && ctx.info.group.is_empty() && ctx.info.plural == "namespaces";
    if is_namespace {
        return Ok(delete_namespace(store, &key, &old));
    }
    let mut object = (*old).clone();
    if meta::is_deleting(&old) {
        // Already terminating: only a pod's final (grace 0) delete can shorten it.
        if is_pod && options.grace_period_seconds == Some(0) {
            meta::metadata_mut(&mut object)
                .insert("deletionGracePeriodSeconds".into(), Value::from(0));
            if ready_to_remove(&object) {
                return Ok(remove_and_collect(store, &key));
            }
            return Ok((*store.put(key, object)).clone());
        }
        return Ok(object);
    }
    let grace = if is_pod {
        pod_grace_seconds(&old, options.grace_period_seconds)
    } else {
        0
    };
    let propagation = options.propagation.unwrap_or_default();
    if propagation == Propagation::Orphan {
        orphan_dependents(store, meta::uid(&old).unwrap_or_default());
    }
    let has_dependents = propagation == Propagation::Foreground
        && meta::uid(&old).is_some_and(|uid| {
            !store
                .dependents_of(&HashSet::from([uid.to_string()]))
                .is_empty()
        });
    let foreground = has_dependents.then_some(FOREGROUND);
    if grace == 0 && meta::finalizers(&old).is_empty() && foreground.is_none() {
        return Ok(remove_and_collect(store, &key));
    }
    mark_deleting(&mut object, grace, foreground);
    let stored = (*store.put(key, object)).clone();
    if foreground.is_some() {
        if let Some(uid) = meta::uid(&stored) {
            delete_dependents(store, &HashSet::from([uid.to_string()]));
            collect_garbage(store, Vec::new());
        }
    }
    Ok(stored)
}

/// Deletes every object of a list selection; returns their states afterwards.
pub fn delete_collection(
    store: &mut Store,
    ctx: &WriteContext,
    names: &[String],
    options: &DeleteOptions,
) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for name in names {
        match delete(store, ctx, name, options) {
            Ok(object) => out.push(object),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn orphan_dependents(store: &mut Store, owner_uid: &str) {
    let owners = HashSet::from([owner_uid.to_string()]);
    for (key, object) in store.dependents_of(&owners) {
        let mut object = (*object).clone();
        strip_owner_refs(&mut object, |uid| uid == owner_uid);
        store.put(key, object);
    }
}

fn strip_owner_refs(object: &mut Value, drop: impl Fn(&str) -> bool) {
    let metadata = meta::metadata_mut(object);
    if let Some(Value::Array(refs)) = metadata.get_mut("ownerReferences") {
        refs.retain(|r| !r.get("uid").and_then(Value::as_str).is_some_and(&drop));
        if refs.is_empty() {
            metadata.remove("ownerReferences");
        }
    }
}

/// Deletes (background) every dependent of the given owners whose owners are all gone or
/// terminating; returns uids removed outright.
fn delete_dependents(store: &mut Store, owners: &HashSet<String>) -> Vec<String> {
    let mut removed = Vec::new();
    for (key, object) in store.dependents_of(owners) {
        let live_owners: Vec<String> = meta::owner_uids(&object)
            .into_iter()
            .filter(|uid| !owners.contains(uid))
            .filter(|uid| {
                store
                    .key_of_uid(uid)
                    .and_then(|k| store.get(k))
                    .is_some_and(|o| !meta::is_deleting(&o))
            })
            .collect();
        let mut object = (*object).clone();
        if !live_owners.is_empty() {
            let present: Vec<String> = meta::owner_uids(&object)
                .into_iter()
                .filter(|uid| store.key_of_uid(uid).is_some())
                .collect();
            strip_owner_refs(&mut object, |uid| !present.iter().any(|p| p == uid));
            if meta::comparable(&object) != meta::comparable(&store.get(&key).unwrap_or_default()) {
                store.put(key, object);
            }
            continue;
        }
        if meta::is_deleting(&object) {
            continue;
        }
        if meta::finalizers(&object).is_empty() {
            if let Some(uid) = meta::uid(&object) {
                removed.push(uid.to_string());
            }
            store.remove(&key);
        } else {
            mark_deleting(&mut object, 0, None);
            store.put(key, object);
        }
    }
    removed
}

/// The garbage collector: cascades removals to dependents, releases foreground owners whose
/// dependents are gone, and finishes terminating namespaces. Runs to a fixpoint.
pub fn collect_garbage(store: &mut Store, mut removed: Vec<String>) {
    loop {
        while !removed.is_empty() {
            let owners: HashSet<String> = removed.drain(..).collect();
            removed = delete_dependents(store, &owners);
        }
        for (key, owner) in store.foreground_deleting() {
            let uid = meta::uid(&owner).unwrap_or_default().to_string();
            if !store
                .dependents_of(&HashSet::from([uid.clone()]))
                .is_empty()
            {
                continue;
            }
            let mut owner = (*owner).clone();
            let finalizers: Vec<String> = meta::finalizers(&owner)
                .into_iter()
                .filter(|f| f != FOREGROUND)
                .collect();
            meta::set_finalizers(&mut owner, &finalizers);
            if ready_to_remove(&owner) {
                store.remove(&key);
                removed.push(uid);
            } else {
                store.put(key, owner);
            }
        }
        let empty_namespaces: Vec<ObjectKey> = store
            .range("/namespaces", Some(""), None)
            .filter(|(_, ns)| meta::is_deleting(ns))
            .filter(|(k, _)| !store.all().any(|(o, _)| o.namespace == k.name))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &empty_namespaces {
            if let Some(ns) = store.remove(key) {
                removed.extend(meta::uid(&ns).map(String::from));
            }
        }
        if removed.is_empty() {
            return;
        }
    }
}

fn delete_namespace(store: &mut Store, key: &ObjectKey, old: &Value) -> Value {
    let mut namespace = old.clone();
    if !meta::is_deleting(old) {
        mark_deleting(&mut namespace, 0, None);
        meta::as_map(&mut namespace).insert("status".into(), json!({"phase": "Terminating"}));
        store.put(key.clone(), namespace.clone());
    }
    let contents: Vec<(ObjectKey, Arc<Value>)> = store
        .all()
        .filter(|(k, _)| k.namespace == key.name)
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect();
    let mut removed = Vec::new();
    for (content_key, object) in contents {
        if meta::is_deleting(&object) {
            continue;
        }
        if meta::finalizers(&object).is_empty() {
            removed.extend(meta::uid(&object).map(String::from));
            store.remove(&content_key);
        } else {
            let mut object = (*object).clone();
            mark_deleting(&mut object, 0, None);
            store.put(content_key, object);
        }
    }
    collect_garbage(store, removed);
    store.get(key).map(|o| (*o).clone()).unwrap_or(namespace)
}

#[cfg(test)]
#[path = "delete_tests.rs"]
mod tests;
