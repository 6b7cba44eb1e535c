//! Watches decoded one object at a time. A list or watch event is read as untyped objects and
//! each is then decoded as its kind on its own: an object that does not decode (a value stored
//! past the schema's bounds by an older CRD, a skipped check or a direct etcd write) is reported
//! and skipped, never the whole list — so one tenant's object cannot stop a watch every tenant
//! depends on.

use futures::{future, Stream, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::Resource;
use serde::de::DeserializeOwned;
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

/// One watch event decoded: the typed event to pass on (if any) and the object that failed.
///
/// An added or modified object that does not decode is skipped (a cache keeps the version it
/// last decoded until the next list replaces it). A deleted one that does not decode is deleted
/// as the version `last` knows, so no cache keeps an object the API server no longer has.
pub fn decode_event<K>(
    event: watcher::Event<DynamicObject>,
    last: impl Fn(&ObjectRef<K>) -> Option<K>,
) -> (Option<watcher::Event<K>>, Option<Undecodable>)
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    use watcher::Event;
    let (object, wrap, deleted): (DynamicObject, fn(K) -> Event<K>, bool) = match event {
        Event::Init => return (Some(Event::Init), None),
        Event::InitDone => return (Some(Event::InitDone), None),
        Event::Apply(object) => (object, Event::Apply, false),
        Event::InitApply(object) => (object, Event::InitApply, false),
        Event::Delete(object) => (object, Event::Delete, true),
    };
    let mut key = ObjectRef::<K>::new(object.metadata.name.as_deref().unwrap_or_default());
    if let Some(namespace) = object.metadata.namespace.as_deref() {
        key = key.within(namespace);
    }
    match decode::<K>(object) {
        Ok(decoded) => (Some(wrap(decoded)), None),
        Err(bad) if deleted => (last(&key).map(Event::Delete), Some(*bad)),
        Err(bad) => (None, Some(*bad)),
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
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let api = Api::<DynamicObject>::all_with(client, &ApiResource::erase::<K>(&()));
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

    #[test]
    fn events_skip_bad_objects_and_delete_what_the_cache_knows() {
        use watcher::Event;
        let bad = || dynamic(json!({"strategy": 1}));
        let good = || dynamic(json!({"strategy": {"type": "Docker"}}));
        let known: BuildConfig = decode(good()).unwrap();
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
}
