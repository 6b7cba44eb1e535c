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
#[path = "decode_tests.rs"]
mod tests;
