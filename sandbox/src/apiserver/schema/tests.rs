//! Tests of `schema`.
use super::*;
use serde_json::json;

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["source"],
                "properties": {
                    "runPolicy": {"type": "string", "enum": ["Serial", "Parallel"], "default": "Serial"},
                    "source": {"type": "object", "properties": {"uri": {"type": "string", "minLength": 1}}},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                    "port": {"x-kubernetes-int-or-string": true,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "env": {"type": "array", "maxItems": 2,
                            "items": {"type": "object", "required": ["name"],
                                      "properties": {"name": {"type": "string", "pattern": "^[A-Z_]+$"}}}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "note": {"type": "string", "nullable": true}
                }
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    })
}

fn run(mut object: Value) -> (Value, SchemaReport) {
    let report = process(&schema(), &mut object);
    (object, report)
}

#[test]
fn defaults_and_pruning() {
    let (object, report) = run(json!({
        "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
        "spec": {"source": {"uri": "u", "junk": 1}, "free": {"anything": [1]}, "labels": {"a": "b"}},
        "extra": true
    }));
    assert!(report.causes.is_empty(), "{:?}", report.causes);
    assert_eq!(report.pruned, vec!["spec.source.junk", "extra"]);
    assert_eq!(object["spec"]["runPolicy"], "Serial");
    assert_eq!(object["spec"]["free"]["anything"], json!([1]));
    assert_eq!(object["metadata"]["name"], "a");
}

#[test]
fn validation_table() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "spec", "Required value"),
        (json!({"spec": {}}), "spec.source", "Required value"),
        (json!({"spec": {"source": {}, "runPolicy": "Foo"}}), "spec.runPolicy",
         "Unsupported value: \"Foo\": supported values: \"Serial\", \"Parallel\""),
        (json!({"spec": {"source": {}, "limit": "3"}}), "spec.limit",
         "Invalid value: \"string\": spec.limit in body must be of type integer: \"string\""),
        (json!({"spec": {"source": {}, "limit": 0}}), "spec.limit",
         "Invalid value: 0: spec.limit in body should be greater than or equal to 1"),
        (json!({"spec": {"source": {}, "limit": 11}}), "spec.limit",
         "Invalid value: 11: spec.limit in body should be less than or equal to 10"),
        (json!({"spec": {"source": {"uri": ""}}}), "spec.source.uri",
         "Invalid value: \"\": spec.source.uri in body should be at least 1 chars long"),
        (json!({"spec": {"source": {}, "port": true}}), "spec.port",
         "Invalid value: \"boolean\": spec.port in body must be of type integer-or-string: \"boolean\""),
        (json!({"spec": {"source": {}, "env": [{"name": "a"}]}}), "spec.env[0].name",
         "Invalid value: \"a\": spec.env[0].name in body should match '^[A-Z_]+$'"),
        (json!({"spec": {"source": {}, "env": [{}]}}), "spec.env[0].name", "Required value"),
        (json!({"spec": {"source": {}, "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}}), "spec.env",
         "Too many: 3: must have at most 2 items"),
        (json!({"spec": {"source": {}, "labels": {"a": 1}}}), "spec.labels.a",
         "Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""),
    ];
    for (object, field, message) in cases {
        let (_, report) = run(object.clone());
        assert_eq!(report.causes.len(), 1, "{object}: {:?}", report.causes);
        assert_eq!(report.causes[0].field, field, "{object}");
        assert_eq!(report.causes[0].message, message, "{object}");
    }
}

#[test]
fn valid_values_pass() {
    for object in [
        json!({"spec": {"source": {}, "port": 8080, "note": null}}),
        json!({"spec": {"source": {}, "port": "http", "limit": 10}}),
    ] {
        let (_, report) = run(object.clone());
        assert!(report.causes.is_empty(), "{object}: {:?}", report.causes);
    }
}
