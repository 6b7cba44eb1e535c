//! Versions of objects the controller has already replaced but its watch cache may still show.
//!
//! A reconcile that runs on a cached Build older than the controller's own last write would
//! decide from a stale view: its writes fail with 409 and a retry loop burns API calls until
//! the watch catches up. Instead, every write records the resourceVersion it replaced (or, on
//! 409, the version it was refused for); a reconcile that finds that same version in the cache
//! waits for the watch event that must follow. Only equality is tested, so resourceVersions
//! stay opaque, as the Kubernetes API requires.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use kube::ResourceExt;

/// How many superseded versions are kept per object (a reconcile writes at most two in a row).
const KEPT: usize = 4;

/// (namespace, name) → the resourceVersions known to be superseded, newest last.
#[derive(Default)]
pub struct Superseded {
    inner: Mutex<HashMap<(String, String), Vec<String>>>,
}

fn key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl Superseded {
    /// Records that the server holds a newer version of `object` than the one given.
    pub fn record<K: ResourceExt>(&self, object: &K) {
        let Some(version) = object.resource_version() else {
            return;
        };
        let mut map = self.lock();
        let versions = map.entry(key(object)).or_default();
        if !versions.contains(&version) {
            versions.push(version);
        }
        if versions.len() > KEPT {
            versions.remove(0);
        }
    }

    /// Whether `object` (from the cache) is a version known to be superseded; a newer version
    /// clears the record.
    pub fn is_stale<K: ResourceExt>(&self, object: &K) -> bool {
        let mut map = self.lock();
        let key = key(object);
        let version = object.resource_version();
        match map.get(&key) {
            Some(versions) if version.as_ref().is_some_and(|v| versions.contains(v)) => true,
            Some(_) => {
                map.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Drops the record of a deleted object.
    pub fn forget<K: ResourceExt>(&self, object: &K) {
        self.lock().remove(&key(object));
    }

    /// Number of records (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<String>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn at(version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_replaced_version_is_stale_until_a_newer_one_is_seen() {
        let superseded = Superseded::default();
        assert!(!superseded.is_stale(&at("5")), "nothing recorded");
        superseded.record(&at("5"));
        assert!(superseded.is_stale(&at("5")));
        assert!(
            superseded.is_stale(&at("5")),
            "still stale until the cache moves"
        );
        assert!(!superseded.is_stale(&at("9")), "the cache caught up");
        assert!(superseded.is_empty(), "catching up clears the record");
        assert!(!superseded.is_stale(&at("5")), "the record is gone");
    }

    #[test]
    fn every_version_replaced_in_a_row_is_stale() {
        let superseded = Superseded::default();
        superseded.record(&at("5"));
        superseded.record(&at("6"));
        assert!(
            superseded.is_stale(&at("5")),
            "two writes: the first base is stale"
        );
        assert!(superseded.is_stale(&at("6")), "and so is the second");
        assert!(!superseded.is_stale(&at("7")));
        for v in 10..20 {
            superseded.record(&at(&v.to_string()));
        }
        assert!(superseded.is_stale(&at("19")));
        assert!(superseded.is_stale(&at("16")));
        assert!(
            !superseded.is_stale(&at("15")),
            "only the newest few are kept"
        );
    }

    #[test]
    fn deleting_forgets_and_unversioned_objects_are_never_recorded() {
        let superseded = Superseded::default();
        superseded.record(&at("5"));
        superseded.forget(&at("7"));
        assert!(superseded.is_empty());
        let mut unversioned = at("1");
        unversioned.metadata.resource_version = None;
        superseded.record(&unversioned);
        assert_eq!(superseded.len(), 0);
    }
}
