//! The object store: JSON objects keyed by (resource, namespace, name), a global resourceVersion,
//! an event log for watch replay and a broadcast channel for live watchers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::meta;
use super::resources::Registry;

/// Identity of a stored object: storage id (`group/plural`), namespace (empty if cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `group/plural`.
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change in the event log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// resourceVersion of the change.
    pub resource_version: u64,
    /// The key of the changed object.
    pub key: ObjectKey,
    /// What happened.
    pub event_type: EventType,
    /// The object after the change (for DELETED: the last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the change, if any.
    pub previous: Option<Arc<Value>>,
}

/// The finalizer that holds an owner until its dependents are gone (foreground deletion).
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Default number of events kept for watch replay before the oldest are compacted.
pub const DEFAULT_EVENT_CAPACITY: usize = 200_000;

/// All mutable server state, guarded by one mutex.
pub struct Store {
    /// Served resources (built-ins and CRDs).
    pub registry: Registry,
    /// Reject Pods whose ServiceAccount does not exist (the ServiceAccount admission plugin).
    pub service_account_admission: bool,
    /// Enforce Pod Security admission from namespace labels.
    pub pod_security: bool,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    uids: HashMap<String, ObjectKey>,
    /// Owner uid → the objects whose ownerReferences name it (the garbage collector's graph).
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
    /// Objects being deleted in the foreground, waiting for their dependents.
    foreground: BTreeSet<ObjectKey>,
    /// (resource, label key, label value) → the objects carrying that label, in key order: a
    /// LIST or WATCH with an equality label selector reads its candidates here instead of
    /// scanning every object of the resource under the lock (results and order are the same).
    labelled: HashMap<LabelIndexKey, BTreeSet<ObjectKey>>,
    resource_version: u64,
    events: VecDeque<Arc<StoredEvent>>,
    compacted_through: u64,
    event_capacity: usize,
    sender: broadcast::Sender<Arc<StoredEvent>>,
}

impl Store {
    /// An empty store with the built-in registry.
    pub fn new(event_capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(65_536);
        Store {
            registry: Registry::new(),
            service_account_admission: false,
            pod_security: false,
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            foreground: BTreeSet::new(),
            labelled: HashMap::new(),
            resource_version: 1,
            events: VecDeque::new(),
            compacted_through: 0,
            event_capacity,
            sender,
        }
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// The highest resourceVersion no longer replayable (watches from below it get 410).
    pub fn compacted_through(&self) -> u64 {
        self.compacted_through
    }

    /// Reads one object.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.objects.get(key).cloned()
    }

    /// The key of the live object with this uid.
    pub fn key_of_uid(&self, uid: &str) -> Option<&ObjectKey> {
        self.uids.get(uid)
    }

    /// Objects of one resource, optionally in one namespace, in key order, starting after `after`.
    pub fn range<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
        after: Option<&ObjectKey>,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)> + 'a {
        self.objects
            .range(span_start(resource, namespace, after))
            .take_while(move |(k, _)| in_span(k, resource, namespace))
    }

    /// Like [`Store::range`], restricted to objects labelled `label` (`key`, `value`) when one
    /// is given (from the label index), in the same key order.
    pub fn range_labelled<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
        after: Option<&ObjectKey>,
        label: Option<(&str, &str)>,
    ) -> Box<dyn Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)> + 'a> {
        // A continue key from another namespace (only a forged one) keeps the scan's answer.
        let foreign_after = after.is_some_and(|a| namespace.is_some_and(|ns| a.namespace != ns));
        let Some((key, value)) = label.filter(|_| !foreign_after) else {
            return Box::new(self.range(resource, namespace, after));
        };
        let index_key = (resource.to_string(), key.to_string(), value.to_string());
        let Some(keys) = self.labelled.get(&index_key) else {
            return Box::new(std::iter::empty());
        };
        Box::new(
            keys.range(span_start(resource, namespace, after))
                .take_while(move |k| in_span(k, resource, namespace))
                .filter_map(|k| self.objects.get_key_value(k)),
        )
    }

    /// Every object (used by garbage collection and namespace cleanup).
    pub fn all(&self) -> impl Iterator<Item = (&ObjectKey, &Arc<Value>)> {
        self.objects.iter()
    }

    /// Stores an object under a new resourceVersion and records the event.
    pub fn put(&mut self, key: ObjectKey, mut object: Value) -> Arc<Value> {
        self.resource_version += 1;
        meta::set_resource_version(&mut object, self.resource_version);
        let object = Arc::new(object);
        if let Some(uid) = meta::uid(&object) {
            self.uids.insert(uid.to_string(), key.clone());
        }
        let previous = self.objects.insert(key.clone(), object.clone());
        self.unindex(&key, previous.as_deref());
        self.index(&key, &object);
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(key, event_type, object.clone(), previous);
        object
    }

    /// Removes an object, recording a DELETED event; returns its last state.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Arc<Value>> {
        let previous = self.objects.remove(key)?;
        if let Some(uid) = meta::uid(&previous) {
            self.uids.remove(uid);
        }
        self.unindex(key, Some(&previous));
        self.resource_version += 1;
        let mut last = (*previous).clone();
        meta::set_resource_version(&mut last, self.resource_version);
        let last = Arc::new(last);
        self.record(
            key.clone(),
            EventType::Deleted,
            last.clone(),
            Some(previous),
        );
        Some(last)
    }

    fn index(&mut self, key: &ObjectKey, object: &Value) {
        for owner in meta::owner_uids(object) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert(key.clone());
        }
        if is_foreground_deleting(object) {
            self.foreground.insert(key.clone());
        }
        for label in label_index_keys(key, object) {
            self.labelled.entry(label).or_default().insert(key.clone());
        }
    }

    fn unindex(&mut self, key: &ObjectKey, object: Option<&Value>) {
        let Some(object) = object else { return };
        for owner in meta::owner_uids(object) {
            if let Some(keys) = self.dependents.get_mut(&owner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
        self.foreground.remove(key);
        for label in label_index_keys(key, object) {
            if let Some(keys) = self.labelled.get_mut(&label) {
                keys.remove(key);
                if keys.is_empty() {
                    self.labelled.remove(&label);
                }
            }
        }
    }

    /// The objects whose ownerReferences name any of `owners`, in key order.
    pub fn dependents_of(&self, owners: &HashSet<String>) -> Vec<(ObjectKey, Arc<Value>)> {
        let keys: BTreeSet<&ObjectKey> = owners
            .iter()
            .filter_map(|uid| self.dependents.get(uid))
            .flatten()
            .collect();
        keys.into_iter()
            .filter_map(|k| Some((k.clone(), self.objects.get(k)?.clone())))
            .collect()
    }

    /// Objects being deleted in the foreground (carrying [`FOREGROUND_FINALIZER`]).
    pub fn foreground_deleting(&self) -> Vec<(ObjectKey, Arc<Value>)> {
        self.foreground
            .iter()
            .filter_map(|k| Some((k.clone(), self.objects.get(k)?.clone())))
            .collect()
    }

    fn record(
        &mut self,
        key: ObjectKey,
        event_type: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let event = Arc::new(StoredEvent {
            resource_version: self.resource_version,
            key,
            event_type,
            object,
            previous,
        });
        self.events.push_back(event.clone());
        while self.events.len() > self.event_capacity {
            if let Some(old) = self.events.pop_front() {
                self.compacted_through = old.resource_version;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// Events after `resource_version`, or None if some of them were compacted.
    pub fn events_since(&self, resource_version: u64) -> Option<Vec<Arc<StoredEvent>>> {
        if resource_version < self.compacted_through {
            return None;
        }
        let start = self
            .events
            .partition_point(|e| e.resource_version <= resource_version);
        Some(self.events.range(start..).cloned().collect())
    }

    /// A receiver of every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.sender.subscribe()
    }

    /// Drops the whole event log: watches from any older resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.events.clear();
        self.compacted_through = self.resource_version;
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store holds no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Where a listing of `resource` (in `namespace`) starts in key order: at its first key, or just
/// after `after` (a continue key).
fn span_start(
    resource: &str,
    namespace: Option<&str>,
    after: Option<&ObjectKey>,
) -> (Bound<ObjectKey>, Bound<ObjectKey>) {
    let start = match after {
        Some(after) => Bound::Excluded(after.clone()),
        None => Bound::Included(ObjectKey::new(resource, namespace.unwrap_or(""), "")),
    };
    (start, Bound::Unbounded)
}

/// Whether `key` is still within a listing of `resource` (in `namespace`).
fn in_span(key: &ObjectKey, resource: &str, namespace: Option<&str>) -> bool {
    key.resource == resource && namespace.is_none_or(|ns| key.namespace == ns)
}

/// (resource, label key, label value).
type LabelIndexKey = (String, String, String);

/// The label index entries of one object (its string-valued labels).
fn label_index_keys<'a>(
    key: &'a ObjectKey,
    object: &'a Value,
) -> impl Iterator<Item = LabelIndexKey> + 'a {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(move |(k, v)| Some((key.resource.clone(), k.clone(), v.as_str()?.to_string())))
}

fn is_foreground_deleting(object: &Value) -> bool {
    meta::is_deleting(object)
        && meta::finalizers(object)
            .iter()
            .any(|f| f == FOREGROUND_FINALIZER)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
