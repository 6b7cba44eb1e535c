//! Versions of objects the controller has already replaced but its watch cache may still show.
//!
//! A reconcile that runs on a cached Build older than the controller's own last write would
//! decide from a stale view: its writes fail with 409 and a retry loop burns API calls until
//! the watch catches up. Instead, every write records the resourceVersion it replaced (or, on
//! 409, the version it was refused for); a reconcile that finds that same version in the cache
//! waits for the watch event that must follow. Only equality is tested, so resourceVersions
//! stay opaque, as the Kubernetes API requires.
//!
//! A record expires after [`WAIT_AT_MOST`]: an event that never comes (a 409 that was not a
//! real conflict, a lost watch) costs that much latency, never a stuck build.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::ResourceExt;

/// How many superseded versions are kept per object (a reconcile writes at most two in a row).
const KEPT: usize = 4;

/// How long a reconcile waits for the cache to show a newer version before deciding anyway.
pub(crate) const WAIT_AT_MOST: Duration = Duration::from_secs(2);

/// The superseded versions of one object, newest last, and when the last was recorded.
struct Record {
    versions: Vec<String>,
    at: Instant,
}

/// (namespace, name) → the resourceVersions known to be superseded.
#[derive(Default)]
pub(crate) struct Superseded {
    inner: Mutex<HashMap<(String, String), Record>>,
}

fn key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl Superseded {
    /// Records that the server holds a newer version of `object` than the one given.
    pub(crate) fn record<K: ResourceExt>(&self, object: &K) {
        let Some(version) = object.resource_version() else {
            return;
        };
        let mut map = self.lock();
        let record = map.entry(key(object)).or_insert_with(|| Record {
            versions: Vec::new(),
            at: Instant::now(),
        });
        record.at = Instant::now();
        if !record.versions.contains(&version) {
            record.versions.push(version);
        }
        if record.versions.len() > KEPT {
            record.versions.remove(0);
        }
    }

    /// If `object` (from the cache) is a version known to be superseded, how much longer to wait
    /// for the newer one; a newer version, or waiting past [`WAIT_AT_MOST`], clears the record.
    pub(crate) fn stale_for<K: ResourceExt>(&self, object: &K) -> Option<Duration> {
        let mut map = self.lock();
        let key = key(object);
        let version = object.resource_version();
        let record = map.get(&key)?;
        let waited = record.at.elapsed();
        if waited < WAIT_AT_MOST && version.is_some_and(|v| record.versions.contains(&v)) {
            return Some(WAIT_AT_MOST - waited);
        }
        map.remove(&key);
        None
    }

    /// Drops the record of a deleted object.
    pub(crate) fn forget<K: ResourceExt>(&self, object: &K) {
        self.lock().remove(&key(object));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Record>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn is_stale(superseded: &Superseded, object: &ConfigMap) -> bool {
        superseded.stale_for(object).is_some()
    }

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
        assert!(!is_stale(&superseded, &at("5")), "nothing recorded");
        superseded.record(&at("5"));
        assert!(is_stale(&superseded, &at("5")));
        assert!(
            is_stale(&superseded, &at("5")),
            "still stale until the cache moves"
        );
        assert!(!is_stale(&superseded, &at("9")), "the cache caught up");
        assert!(
            superseded.lock().is_empty(),
            "catching up clears the record"
        );
        assert!(!is_stale(&superseded, &at("5")), "the record is gone");
    }

    #[test]
    fn every_version_replaced_in_a_row_is_stale() {
        let superseded = Superseded::default();
        superseded.record(&at("5"));
        superseded.record(&at("6"));
        assert!(
            is_stale(&superseded, &at("5")),
            "two writes: the first base is stale"
        );
        assert!(is_stale(&superseded, &at("6")), "and so is the second");
        assert!(!is_stale(&superseded, &at("7")));
        for v in 10..20 {
            superseded.record(&at(&v.to_string()));
        }
        assert!(is_stale(&superseded, &at("19")));
        assert!(is_stale(&superseded, &at("16")));
        assert!(
            !is_stale(&superseded, &at("15")),
            "only the newest few are kept"
        );
    }

    #[test]
    fn a_record_expires_so_a_missing_event_never_stalls() {
        let superseded = Superseded::default();
        superseded.record(&at("5"));
        let wait = superseded.stale_for(&at("5")).expect("stale");
        assert!(wait <= WAIT_AT_MOST && wait > WAIT_AT_MOST / 2);
        if let Some(record) = superseded.lock().get_mut(&("ns".into(), "a".into())) {
            record.at -= WAIT_AT_MOST;
        }
        assert_eq!(superseded.stale_for(&at("5")), None, "waited long enough");
        assert!(superseded.lock().is_empty());
    }

    #[test]
    fn deleting_forgets_and_unversioned_objects_are_never_recorded() {
        let superseded = Superseded::default();
        superseded.record(&at("5"));
        superseded.forget(&at("7"));
        assert!(superseded.lock().is_empty());
        let mut unversioned = at("1");
        unversioned.metadata.resource_version = None;
        superseded.record(&unversioned);
        assert!(superseded.lock().is_empty());
    }
}
