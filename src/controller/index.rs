//! In-memory indexes the reconcilers decide from: the Builds of each BuildConfig, and the
//! BuildConfigs each ImageStream triggers. Both are fed by watch events, never by API lists.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;

use super::triggers::TagRef;
use crate::api::{Build, BuildConfig};
use crate::naming;

type ConfigKey = (String, String);
type StreamKey = (String, String);

/// The Builds of each BuildConfig, keyed by (namespace, BuildConfig name).
#[derive(Default)]
pub struct BuildIndex {
    inner: Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    live: HashMap<ConfigKey, BTreeMap<String, Arc<Build>>>,
    relisting: Option<HashMap<ConfigKey, BTreeMap<String, Arc<Build>>>>,
}

/// The BuildConfig a Build belongs to: its controller owner of kind BuildConfig, else its label.
pub fn config_of(build: &Build) -> Option<ConfigKey> {
    let namespace = build.namespace()?;
    let owner = build
        .owner_references()
        .iter()
        .find(|o| o.kind == "BuildConfig" && o.controller == Some(true))
        .map(|o| o.name.clone())
        .or_else(|| {
            build
                .annotations()
                .get(naming::BUILD_CONFIG_ANNOTATION)
                .cloned()
        })?;
    Some((namespace, owner))
}

impl BuildIndex {
    /// Applies one watch event; returns the BuildConfig the event concerns, if any.
    pub fn apply(&self, event: &watcher::Event<Build>) -> Option<ObjectRef<BuildConfig>> {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Init => {
                state.relisting = Some(HashMap::new());
                None
            }
            watcher::Event::InitApply(build) => {
                let key = config_of(build)?;
                let relisting = state.relisting.get_or_insert_with(HashMap::new);
                relisting
                    .entry(key.clone())
                    .or_default()
                    .insert(build.name_any(), Arc::new(build.clone()));
                Some(ObjectRef::new(&key.1).within(&key.0))
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = state.relisting.take() {
                    state.live = fresh;
                }
                None
            }
            watcher::Event::Apply(build) => {
                let key = config_of(build)?;
                state
                    .live
                    .entry(key.clone())
                    .or_default()
                    .insert(build.name_any(), Arc::new(build.clone()));
                Some(ObjectRef::new(&key.1).within(&key.0))
            }
            watcher::Event::Delete(build) => {
                let key = config_of(build)?;
                if let Some(builds) = state.live.get_mut(&key) {
                    builds.remove(&build.name_any());
                    if builds.is_empty() {
                        state.live.remove(&key);
                    }
                }
                Some(ObjectRef::new(&key.1).within(&key.0))
            }
        }
    }

    /// The Builds of one BuildConfig, in name order.
    pub fn builds_of(&self, namespace: &str, config: &str) -> Vec<Arc<Build>> {
        let state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .live
            .get(&(namespace.to_string(), config.to_string()))
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Which BuildConfigs each ImageStream's tags trigger, keyed by (namespace, stream).
#[derive(Default)]
pub struct TriggerIndex {
    inner: Mutex<HashMap<StreamKey, HashSet<ObjectRef<BuildConfig>>>>,
}

impl TriggerIndex {
    /// Records the tags `config` watches, replacing what it watched before.
    pub fn set(&self, config: &ObjectRef<BuildConfig>, tags: &[TagRef]) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for configs in map.values_mut() {
            configs.remove(config);
        }
        for tag in tags {
            map.entry((tag.namespace.clone(), tag.stream.clone()))
                .or_default()
                .insert(config.clone());
        }
        map.retain(|_, v| !v.is_empty());
    }

    /// The BuildConfigs watching a tag of ImageStream `namespace/stream`.
    pub fn configs_for(&self, namespace: &str, stream: &str) -> Vec<ObjectRef<BuildConfig>> {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(namespace.to_string(), stream.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(name: &str, config: &str) -> Build {
        serde_json::from_value(json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": name, "namespace": "ns", "ownerReferences": [
                {"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig", "name": config, "uid": "u", "controller": true}]},
            "spec": {"strategy": {"type": "Docker"}}
        }))
        .unwrap()
    }

    fn names(index: &BuildIndex, config: &str) -> Vec<String> {
        index
            .builds_of("ns", config)
            .iter()
            .map(|b| b.name_any())
            .collect()
    }

    #[test]
    fn build_index_follows_watch_events_including_relists() {
        let index = BuildIndex::default();
        index.apply(&watcher::Event::Apply(build("a-1", "a")));
        index.apply(&watcher::Event::Apply(build("a-2", "a")));
        index.apply(&watcher::Event::Apply(build("b-1", "b")));
        assert_eq!(names(&index, "a"), ["a-1", "a-2"]);
        let touched = index.apply(&watcher::Event::Delete(build("a-1", "a")));
        assert_eq!(touched, Some(ObjectRef::new("a").within("ns")));
        assert_eq!(names(&index, "a"), ["a-2"]);
        // A relist replaces the whole index only when it is complete.
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(build("a-3", "a")));
        assert_eq!(names(&index, "a"), ["a-2"], "not replaced before InitDone");
        index.apply(&watcher::Event::InitDone);
        assert_eq!(names(&index, "a"), ["a-3"]);
        assert!(names(&index, "b").is_empty());
    }

    #[test]
    fn trigger_index_replaces_a_configs_tags() {
        let index = TriggerIndex::default();
        let a = ObjectRef::new("a").within("ns");
        let tag = |s: &str| TagRef {
            namespace: "ns".into(),
            stream: s.into(),
            tag: "latest".into(),
        };
        index.set(&a, &[tag("base"), tag("tools")]);
        assert_eq!(index.configs_for("ns", "base"), std::slice::from_ref(&a));
        index.set(&a, &[tag("tools")]);
        assert!(index.configs_for("ns", "base").is_empty());
        assert_eq!(index.configs_for("ns", "tools"), [a]);
    }
}
