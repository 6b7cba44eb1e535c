//! Tests of `resources`.
use super::*;
use serde_json::json;

fn crd(name: &str, scope: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "group": "example.dev", "scope": scope,
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object"}}}]
        }
    })
}

#[test]
fn crd_validation_table() {
    let cases = [
        ("widgets.example.dev", "Namespaced", true),
        ("widgets.example.dev", "Cluster", true),
        ("wrong.example.dev", "Namespaced", false),
        ("widgets.example.dev", "Galaxy", false),
    ];
    for (name, scope, ok) in cases {
        assert_eq!(
            crd_resources(&crd(name, scope)).is_ok(),
            ok,
            "{name} {scope}"
        );
    }
}

#[test]
fn registering_a_crd_serves_it() {
    let mut registry = Registry::new();
    registry
        .register_crd(&crd("widgets.example.dev", "Namespaced"))
        .unwrap();
    let info = registry.get("example.dev", "v1", "widgets").unwrap();
    assert!(info.namespaced && info.has_status && info.custom);
    assert_eq!(info.short_names, vec!["wd"]);
    assert!(registry.serves_group_version("example.dev", "v1"));
    registry.unregister("example.dev", "widgets");
    assert!(registry.get("example.dev", "v1", "widgets").is_none());
    assert!(!registry.serves_group_version("example.dev", "v1"));
}
