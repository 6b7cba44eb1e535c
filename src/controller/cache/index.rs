//! In-memory indexes the reconcilers decide from: the Builds of each BuildConfig, and the
//! BuildConfigs each ImageStream triggers. Both are fed by watch events, never by API lists.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;

use crate::api::{config_of, Build, BuildConfig, TagRef};

type ConfigKey = (String, String);
type StreamKey = (String, String);

/// The Builds of each BuildConfig, keyed by (namespace, BuildConfig name). Holds names only:
/// the Builds themselves are read from the watch cache, so each is kept in memory once.
pub(crate) struct BuildIndex {
    store: Store<Build>,
    inner: Mutex<IndexState>,
}

type Names = HashMap<ConfigKey, BTreeSet<String>>;

#[derive(Default)]
struct IndexState {
    live: Names,
    relisting: Option<Names>,
}

impl BuildIndex {
    /// An empty index over the Builds of `store` (the cache the same watch events feed first).
    pub(crate) fn new(store: Store<Build>) -> Self {
        Self {
            store,
            inner: Mutex::default(),
        }
    }

    /// Applies one watch event; returns the BuildConfig the event concerns, if any.
    pub(crate) fn apply(&self, event: &watcher::Event<Build>) -> Option<ObjectRef<BuildConfig>> {
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
                    .insert(build.name_any());
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
                    .insert(build.name_any());
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

    /// Every Build in the cache.
    pub(crate) fn all(&self) -> Vec<Arc<Build>> {
        self.store.state()
    }

    /// The Builds of one BuildConfig, in name order, as the cache holds them now.
    pub(crate) fn builds_of(&self, namespace: &str, config: &str) -> Vec<Arc<Build>> {
        let names: Vec<String> = {
            let state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            state
                .live
                .get(&(namespace.to_string(), config.to_string()))
                .map(|b| b.iter().cloned().collect())
                .unwrap_or_default()
        };
        names
            .iter()
            .filter_map(|name| self.store.get(&ObjectRef::new(name).within(namespace)))
            .collect()
    }
}

/// Which BuildConfigs each ImageStream's tags trigger, keyed by (namespace, stream).
#[derive(Default)]
pub(crate) struct TriggerIndex {
    inner: Mutex<TriggerState>,
}

#[derive(Default)]
struct TriggerState {
    by_stream: HashMap<StreamKey, HashSet<ObjectRef<BuildConfig>>>,
    by_config: HashMap<ObjectRef<BuildConfig>, Vec<StreamKey>>,
}

impl TriggerIndex {
    /// Records the tags `config` watches, replacing what it watched before (cost: the tags of
    /// this BuildConfig, not the size of the index).
    pub(crate) fn set(&self, config: &ObjectRef<BuildConfig>, tags: &[TagRef]) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let streams: Vec<StreamKey> = tags
            .iter()
            .map(|t| (t.namespace.clone(), t.stream.clone()))
            .collect();
        for old in state.by_config.remove(config).unwrap_or_default() {
            if let Some(configs) = state.by_stream.get_mut(&old) {
                configs.remove(config);
                if configs.is_empty() {
                    state.by_stream.remove(&old);
                }
            }
        }
        for stream in &streams {
            state
                .by_stream
                .entry(stream.clone())
                .or_default()
                .insert(config.clone());
        }
        if !streams.is_empty() {
            state.by_config.insert(config.clone(), streams);
        }
    }

    /// The BuildConfigs watching a tag of ImageStream `namespace/stream`.
    pub(crate) fn configs_for(&self, namespace: &str, stream: &str) -> Vec<ObjectRef<BuildConfig>> {
        let state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .by_stream
            .get(&(namespace.to_string(), stream.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::{self, store::Writer};
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

    /// Feeds one event to the cache, then to the index, as the controller's watch does.
    fn feed(writer: &mut Writer<Build>, index: &BuildIndex, event: watcher::Event<Build>) {
        writer.apply_watcher_event(&event);
        index.apply(&event);
    }

    #[test]
    fn build_index_follows_watch_events_including_relists() {
        let (store, mut writer) = reflector::store::<Build>();
        let index = BuildIndex::new(store.clone());
        let mut apply = |e| feed(&mut writer, &index, e);
        apply(watcher::Event::Init);
        apply(watcher::Event::InitDone);
        apply(watcher::Event::Apply(build("a-1", "a")));
        apply(watcher::Event::Apply(build("a-2", "a")));
        apply(watcher::Event::Apply(build("b-1", "b")));
        assert_eq!(names(&index, "a"), ["a-1", "a-2"]);
        let touched = index.apply(&watcher::Event::Delete(build("a-1", "a")));
        assert_eq!(touched, Some(ObjectRef::new("a").within("ns")));
        assert_eq!(names(&index, "a"), ["a-2"]);
        // A relist replaces the whole index only when it is complete.
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(build("a-3", "a")));
        assert_eq!(names(&index, "a"), ["a-2"], "not replaced before InitDone");
        apply(watcher::Event::InitDone);
        assert_eq!(names(&index, "a"), ["a-3"]);
        assert!(names(&index, "b").is_empty());
    }

    #[test]
    fn build_index_shares_the_caches_builds() {
        let (store, mut writer) = reflector::store::<Build>();
        let index = BuildIndex::new(store.clone());
        feed(&mut writer, &index, watcher::Event::Init);
        feed(&mut writer, &index, watcher::Event::InitDone);
        feed(
            &mut writer,
            &index,
            watcher::Event::Apply(build("a-1", "a")),
        );
        let from_index = index.builds_of("ns", "a");
        let from_cache = store
            .get(&ObjectRef::new("a-1").within("ns"))
            .expect("cached");
        assert!(
            Arc::ptr_eq(&from_index[0], &from_cache),
            "one copy in memory"
        );
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
        assert_eq!(index.configs_for("ns", "tools"), std::slice::from_ref(&a));
        let b = ObjectRef::new("b").within("ns");
        index.set(&b, &[tag("tools")]);
        index.set(&a, &[]);
        assert_eq!(index.configs_for("ns", "tools"), [b]);
    }
}
