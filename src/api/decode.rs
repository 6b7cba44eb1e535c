//! Watches decoded one object at a time. Each object a list or watch event carries is decoded as
//! its kind on its own: an object that does not decode (a value stored past the schema's bounds
//! by an older CRD, a skipped check or a direct etcd write) is reported and skipped, never the
//! whole list — so one tenant's object cannot stop a watch every tenant depends on.
//!
//! The watch reads [`Lenient`] objects: each is kept as its raw JSON text while the watch event
//! is read and decoded straight from that text as its kind (one pass, as a typed watch would);
//! only an object that fails is read again as an untyped object, to name it and the field.

use std::borrow::Cow;

use futures::{future, Stream, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// An object a watch delivered that does not decode as its kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    /// The object: kind, namespace, name, uid and resourceVersion.
    pub object: ObjectReference,
    /// Why it does not decode: the field's path and serde's message.
    pub error: String,
}

impl Undecodable {
    /// `kind namespace/name` (or `kind name` for a cluster-scoped object).
    pub fn subject(&self) -> String {
        let kind = self.object.kind.as_deref().unwrap_or("object");
        let name = self.object.name.as_deref().unwrap_or("");
        match self.object.namespace.as_deref().filter(|n| !n.is_empty()) {
            Some(namespace) => format!("{kind} {namespace}/{name}"),
            None => format!("{kind} {name}"),
        }
    }
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cannot be read and is skipped until it is fixed: {}",
            self.subject(),
            self.error
        )
    }
}

/// Decodes one untyped object as `K`, naming the field that fails.
pub fn decode<K>(object: DynamicObject) -> Result<K, Box<Undecodable>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let reference = ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        namespace: object.metadata.namespace.clone(),
        name: object.metadata.name.clone(),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        ..ObjectReference::default()
    };
    let fail = |error: String| {
        Box::new(Undecodable {
            object: reference.clone(),
            error,
        })
    };
    let DynamicObject { metadata, data, .. } = object;
    let mut fields = match data {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        other => return Err(fail(format!("the object is a JSON {}", json_type(&other)))),
    };
    let metadata = serde_json::to_value(metadata).map_err(|e| fail(format!("metadata: {e}")))?;
    fields.insert("metadata".into(), metadata);
    fields.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
    fields.insert("kind".into(), K::kind(&()).into_owned().into());
    let object = Value::Object(fields);
    // The common case decodes without tracking paths; only a failure is decoded again with them,
    // to name the field.
    if let Ok(decoded) = K::deserialize(&object) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(&object).map_err(|e| {
        let path = e.path().to_string();
        fail(if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        })
    })
}

/// One object of a watched kind as the API server sent it: decoded as `K`, or, when it does not
/// decode, what names it (its metadata, for the watch's bookkeeping) and why.
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    /// The object, decoded.
    Decoded(K),
    /// The object's metadata as far as it reads, and why it does not decode.
    Undecodable(Box<ObjectMeta>, Box<Undecodable>),
}

impl<'de, K> Deserialize<'de> for Lenient<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self::from_raw(&raw))
    }
}

impl<K> Lenient<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    /// Decodes one object's JSON text: straight as `K` first; when that fails, as an untyped
    /// object that [`decode`] reads (it supplies a missing apiVersion and kind, or names the
    /// field that fails).
    fn from_raw(raw: &RawValue) -> Self {
        if let Ok(decoded) = serde_json::from_str::<K>(raw.get()) {
            return Self::Decoded(decoded);
        }
        let object = match serde_json::from_str::<Value>(raw.get()) {
            Ok(value @ Value::Object(_)) => {
                serde_json::from_value::<DynamicObject>(value).map_err(|e| format!("metadata: {e}"))
            }
            Ok(other) => Err(format!("the object is a JSON {}", json_type(&other))),
            Err(e) => Err(e.to_string()),
        };
        let object = match object {
            Ok(object) => object,
            Err(error) => {
                // No readable metadata: nothing names the object but its kind.
                let bad = Undecodable {
                    object: ObjectReference {
                        api_version: Some(K::api_version(&()).into_owned()),
                        kind: Some(K::kind(&()).into_owned()),
                        ..ObjectReference::default()
                    },
                    error,
                };
                return Self::Undecodable(Box::default(), Box::new(bad));
            }
        };
        let meta = object.metadata.clone();
        match decode::<K>(object) {
            Ok(decoded) => Self::Decoded(decoded),
            Err(bad) => Self::Undecodable(Box::new(meta), bad),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Decoded(object) => object.meta(),
            Self::Undecodable(meta, _) => meta,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Decoded(object) => object.meta_mut(),
            Self::Undecodable(meta, _) => meta,
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How a decoded object becomes its watch event again.
type Wrap<K> = fn(K) -> watcher::Event<K>;

/// One watch event decoded: the typed event to pass on (if any) and the object that failed.
///
/// An added or modified object that does not decode is skipped (a cache keeps the version it
/// last decoded until the next list replaces it). A deleted one that does not decode is deleted
/// as the version `last` knows, so no cache keeps an object the API server no longer has.
pub fn decode_event<K>(
    event: watcher::Event<Lenient<K>>,
    last: impl Fn(&ObjectRef<K>) -> Option<K>,
) -> (Option<watcher::Event<K>>, Option<Undecodable>)
where
    K: Resource<DynamicType = ()>,
{
    use watcher::Event;
    let (object, wrap, deleted): (Lenient<K>, Wrap<K>, bool) = match event {
        Event::Init => return (Some(Event::Init), None),
        Event::InitDone => return (Some(Event::InitDone), None),
        Event::Apply(object) => (object, Event::Apply, false),
        Event::InitApply(object) => (object, Event::InitApply, false),
        Event::Delete(object) => (object, Event::Delete, true),
    };
    match object {
        Lenient::Decoded(decoded) => (Some(wrap(decoded)), None),
        Lenient::Undecodable(meta, bad) if deleted => {
            let mut key = ObjectRef::<K>::new(meta.name.as_deref().unwrap_or_default());
            if let Some(namespace) = meta.namespace.as_deref() {
                key = key.within(namespace);
            }
            (last(&key).map(Event::Delete), Some(*bad))
        }
        Lenient::Undecodable(_, bad) => (None, Some(*bad)),
    }
}

/// A watch of every `K` decoded per object: each object that does not decode goes to
/// `undecodable` and is skipped; the watch goes on. `last` is the cache the stream feeds (for
/// deletions of objects that no longer decode).
pub fn watch<K>(
    client: kube::Client,
    config: watcher::Config,
    last: Option<Store<K>>,
    undecodable: impl Fn(Undecodable) + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api = Api::<Lenient<K>>::all(client);
    watcher(api, config).filter_map(move |item| {
        let item = item.map(|event| {
            let (event, bad) = decode_event(event, |key| {
                last.as_ref()
                    .and_then(|store| store.get(key))
                    .map(|o| o.as_ref().clone())
            });
            if let Some(bad) = bad {
                undecodable(bad);
            }
            event
        });
        future::ready(item.transpose())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Build, BuildConfig, ImageStream};
    use kube::ResourceExt;
    use serde_json::json;

    fn dynamic(spec: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "x", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn each_object_decodes_on_its_own() {
        let good = json!({"strategy": {"type": "Docker"}});
        let cases: Vec<(Value, Option<&str>)> = vec![
            (good.clone(), None),
            (
                json!({"strategy": {"type": "Docker"}, "completionDeadlineSeconds": 1e300}),
                // A flattened struct (the common spec) is named by its parent.
                Some("spec: invalid type: floating point `1e+300`, expected i64"),
            ),
            (
                json!({"strategy": {"type": "Docker"}, "runPolicy": 7}),
                Some("spec.runPolicy: invalid type: integer `7`"),
            ),
            (
                json!({"strategy": "Docker"}),
                Some("spec: invalid type: string \"Docker\", expected struct BuildStrategy"),
            ),
            (
                json!({"strategy": {"type": "Docker"}, "triggers": [{"type": "ImageChange", "imageChange": "latest"}]}),
                Some("spec.triggers[0].imageChange"),
            ),
        ];
        for (spec, want) in cases {
            let got = decode::<BuildConfig>(dynamic(spec.clone()));
            match (got, want) {
                (Ok(bc), None) => assert_eq!(bc.metadata.name.as_deref(), Some("x")),
                (Err(bad), Some(want)) => {
                    assert!(bad.error.starts_with(want), "{spec}: {}", bad.error);
                    assert_eq!(bad.object.kind.as_deref(), Some("BuildConfig"));
                    assert_eq!(bad.object.namespace.as_deref(), Some("ns"));
                    assert_eq!(bad.object.name.as_deref(), Some("x"));
                    assert_eq!(bad.object.uid.as_deref(), Some("u1"));
                    assert_eq!(bad.subject(), "BuildConfig ns/x");
                }
                (got, want) => panic!("{spec}: {got:?}, want {want:?}"),
            }
        }
        // The kind comes from the watch, whatever the object says (list items may omit it).
        let bare: DynamicObject =
            serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": {}})).unwrap();
        assert!(decode::<ImageStream>(bare).is_ok());
        let not_an_object = DynamicObject {
            types: None,
            metadata: Default::default(),
            data: json!([1]),
        };
        let bad = decode::<Build>(not_an_object).unwrap_err();
        assert_eq!(bad.error, "the object is a JSON array");
    }

    /// A watched object as the watch reads it: from its JSON text.
    fn lenient(spec: Value) -> Lenient<BuildConfig> {
        let text = serde_json::to_string(&dynamic(spec)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn events_skip_bad_objects_and_delete_what_the_cache_knows() {
        use watcher::Event;
        let bad = || lenient(json!({"strategy": 1}));
        let good = || lenient(json!({"strategy": {"type": "Docker"}}));
        let known: BuildConfig = decode(dynamic(json!({"strategy": {"type": "Docker"}}))).unwrap();
        let none = |_: &ObjectRef<BuildConfig>| None;
        let cached = |key: &ObjectRef<BuildConfig>| {
            assert_eq!(
                (key.name.as_str(), key.namespace.as_deref()),
                ("x", Some("ns"))
            );
            Some(known.clone())
        };
        let name = |e: &Option<Event<BuildConfig>>| match e {
            Some(Event::Apply(o) | Event::InitApply(o) | Event::Delete(o)) => {
                o.metadata.name.clone()
            }
            _ => None,
        };
        let (e, f) = decode_event(Event::Apply(good()), none);
        assert!(matches!(e, Some(Event::Apply(_))) && f.is_none());
        let (e, f) = decode_event(Event::InitApply(good()), none);
        assert!(matches!(e, Some(Event::InitApply(_))) && f.is_none());
        let (e, f) = decode_event(Event::Apply(bad()), cached);
        assert!(e.is_none() && f.is_some());
        let (e, f) = decode_event(Event::InitApply(bad()), cached);
        assert!(e.is_none() && f.is_some());
        let (e, f) = decode_event(Event::Delete(bad()), cached);
        assert!(matches!(e, Some(Event::Delete(_))) && f.is_some());
        assert_eq!(name(&e).as_deref(), Some("x"));
        let (e, f) = decode_event(Event::Delete(bad()), none);
        assert!(e.is_none() && f.is_some());
        assert!(matches!(
            decode_event::<BuildConfig>(Event::Init, none),
            (Some(Event::Init), None)
        ));
        assert!(matches!(
            decode_event::<BuildConfig>(Event::InitDone, none),
            (Some(Event::InitDone), None)
        ));
    }

    #[test]
    fn lists_and_watch_events_read_each_object_on_its_own() {
        use kube::core::{ObjectList, WatchEvent};
        let good = serde_json::to_value(dynamic(json!({"strategy": {"type": "Docker"}}))).unwrap();
        let mut bad = serde_json::to_value(dynamic(json!({"strategy": 1}))).unwrap();
        bad["metadata"]["name"] = json!("y");
        bad["metadata"]["resourceVersion"] = json!("8");
        let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "9"},
            "items": [good, bad, [1]]});
        // As the client reads a list: from its text.
        let list: ObjectList<Lenient<BuildConfig>> =
            serde_json::from_str(&list.to_string()).unwrap();
        let read: Vec<(Option<String>, Option<String>, Option<String>)> = list
            .items
            .iter()
            .map(|o| match o {
                Lenient::Decoded(bc) => (bc.metadata.name.clone(), None, bc.resource_version()),
                Lenient::Undecodable(meta, bad) => (
                    meta.name.clone(),
                    Some(bad.error.clone()),
                    o.resource_version(),
                ),
            })
            .collect();
        assert_eq!(
            read,
            [
                (Some("x".into()), None, Some("7".into())),
                (
                    Some("y".into()),
                    Some("spec: invalid type: integer `1`, expected struct BuildStrategy".into()),
                    Some("8".into())
                ),
                (None, Some("the object is a JSON array".into()), None),
            ]
        );
        let line = format!(r#"{{"type":"MODIFIED","object":{bad}}}"#);
        match serde_json::from_str::<WatchEvent<Lenient<BuildConfig>>>(&line).unwrap() {
            WatchEvent::Modified(Lenient::Undecodable(meta, bad)) => {
                assert_eq!(meta.name.as_deref(), Some("y"));
                assert_eq!(bad.subject(), "BuildConfig ns/y");
            }
            other => panic!("{other:?}"),
        }
        // A list item without apiVersion and kind (as lists of built-in kinds send them) decodes
        // as the watched kind.
        let bare = r#"{"metadata": {"name": "b"}, "spec": {}}"#;
        assert!(matches!(
            serde_json::from_str::<Lenient<ImageStream>>(bare).unwrap(),
            Lenient::Decoded(_)
        ));
    }
}
