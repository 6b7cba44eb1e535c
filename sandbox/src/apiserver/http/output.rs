//! The representation a client asked for in its `Accept` header: the object itself, a
//! `meta.k8s.io/v1` Table, or `PartialObjectMetadata`.

use serde_json::{json, Value};

use super::super::resources::ResourceInfo;
use super::table::{self, IncludeObject};
use super::Query;

/// How objects are rendered in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The objects themselves.
    Object,
    /// A Table (`as=Table`), with rows embedding objects per `includeObject`.
    Table(IncludeObject),
    /// `PartialObjectMetadata` / `PartialObjectMetadataList` (`as=PartialObjectMetadata`).
    Metadata,
}

impl Output {
    /// Chooses from the Accept header's first (preferred) media type.
    pub fn from_request(accept: &str, query: &Query) -> Output {
        let first = accept.split(',').next().unwrap_or_default();
        if first.contains("as=Table") {
            Output::Table(IncludeObject::parse(query.get("includeObject")))
        } else if first.contains("as=PartialObjectMetadata") {
            Output::Metadata
        } else {
            Output::Object
        }
    }

    /// One object (get, and each watch event).
    pub fn one(self, info: &ResourceInfo, object: Value) -> Value {
        match self {
            Output::Object => object,
            Output::Metadata => partial(&object),
            Output::Table(include) => {
                let rv = object
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                table::table(info, &[object], json!({"resourceVersion": rv}), include)
            }
        }
    }

    /// A list with its metadata.
    pub fn list(self, info: &ResourceInfo, items: Vec<Value>, metadata: Value) -> Value {
        match self {
            Output::Object => {
                json!({"kind": info.list_kind, "apiVersion": info.api_version(), "metadata": metadata, "items": items})
            }
            Output::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items.iter().map(partial).collect::<Vec<_>>(),
            }),
            Output::Table(include) => table::table(info, &items, metadata, include),
        }
    }
}

fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;

    #[test]
    fn outputs_table() {
        let q = Query::default();
        let cases = [
            ("application/json", Output::Object),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                Output::Table(IncludeObject::Metadata),
            ),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                Output::Metadata,
            ),
            (
                "application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
                Output::Object,
            ),
        ];
        for (accept, expected) in cases {
            assert_eq!(Output::from_request(accept, &q), expected, "{accept}");
        }
        let registry = Registry::new();
        let info = registry.get("", "v1", "configmaps").unwrap();
        let object = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
        assert_eq!(
            Output::Metadata.one(info, object.clone())["kind"],
            "PartialObjectMetadata"
        );
        assert!(Output::Metadata
            .one(info, object.clone())
            .get("data")
            .is_none());
        let list = Output::Metadata.list(info, vec![object], json!({}));
        assert_eq!(list["kind"], "PartialObjectMetadataList");
        assert_eq!(list["items"][0]["metadata"]["name"], "a");
    }
}
