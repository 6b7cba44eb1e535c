//! The committed CRDs match the Rust types, and are structural CRDs with the expected extras.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kiln::crdgen::{all_crds_yaml, drift, drift_of, CHART_CRD_FILE, CRD_FILE};

fn committed() -> String {
    let path = format!("{}/{CRD_FILE}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn crds() -> Vec<CustomResourceDefinition> {
    kiln::yaml::read_documents(&committed())
        .unwrap()
        .into_iter()
        .map(|doc| serde_json::from_value(doc).unwrap())
        .collect()
}

#[test]
fn committed_crds_match_the_types() {
    if let Some(message) = drift(&committed(), &all_crds_yaml().unwrap()) {
        panic!("{message}");
    }
}

#[test]
fn the_chart_carries_the_same_crds() {
    let path = format!("{}/{CHART_CRD_FILE}", env!("CARGO_MANIFEST_DIR"));
    let chart =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    if let Some(message) = drift_of(CHART_CRD_FILE, &chart, &all_crds_yaml().unwrap()) {
        panic!("{message}");
    }
}

#[test]
fn drift_is_detected_when_a_field_is_added_without_regenerating() {
    let generated = all_crds_yaml().unwrap();
    let with_new_field = generated.replacen(
        "              completionDeadlineSeconds:",
        "              newField:\n                type: string\n              completionDeadlineSeconds:",
        1,
    );
    assert_ne!(
        with_new_field, generated,
        "the fixture edit must change the YAML"
    );
    let message = drift(&generated, &with_new_field).expect("drift must be reported");
    assert!(message.contains("make crds"), "{message}");
    assert!(drift(&generated, &generated).is_none());
}

#[test]
fn the_binary_prints_the_committed_crds() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed());
}

#[test]
fn crds_carry_status_short_names_and_printer_columns() {
    let crds = crds();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "buildconfigs.build.kiln.dev",
            "builds.build.kiln.dev",
            "imagestreams.image.kiln.dev"
        ]
    );
    let expect = [
        (
            "BuildConfig",
            Some("bc"),
            vec!["Type", "From", "Latest", "Age"],
        ),
        (
            "Build",
            None,
            vec!["Type", "From", "Status", "Reason", "Started", "Completed"],
        ),
        (
            "ImageStream",
            Some("is"),
            vec!["Image Repository", "Tags", "Updated"],
        ),
    ];
    for (crd, (kind, short, columns)) in crds.iter().zip(expect) {
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .and_then(|s| s.first().cloned())
                .as_deref(),
            short
        );
        let version = &crd.spec.versions[0];
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} status subresource"
        );
        let got: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(got, columns, "{kind} printer columns");
    }
}

/// A structural schema: every node states its type (or is int-or-string / preserves unknown
/// fields), and no node uses the constructs the API server forbids in structural schemas.
fn assert_structural(schema: &JSONSchemaProps, path: &str) {
    let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    assert!(
        schema.type_.is_some() || int_or_string || preserve,
        "{path}: no type"
    );
    assert!(schema.ref_path.is_none(), "{path}: $ref is not allowed");
    for (name, child) in schema.properties.iter().flatten() {
        assert_structural(child, &format!("{path}.{name}"));
    }
    if let Some(items) = &schema.items {
        match items {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => {
                assert_structural(s, &format!("{path}[]"))
            }
            other => panic!("{path}: items must be one schema, got {other:?}"),
        }
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(s)) =
        &schema.additional_properties
    {
        assert_structural(s, &format!("{path}{{}}"));
    }
    for branch in [&schema.any_of, &schema.one_of, &schema.all_of]
        .into_iter()
        .flatten()
        .flatten()
    {
        assert!(
            branch.type_.is_none() || int_or_string,
            "{path}: type inside a logical junctor"
        );
        assert!(
            branch.properties.is_none() || branch.properties.as_ref().is_some_and(|p| p.is_empty()),
            "{path}: properties inside a logical junctor"
        );
    }
}

#[test]
fn crds_are_structural() {
    for crd in crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        assert_structural(schema, &crd.spec.names.kind);
    }
}

#[test]
fn spec_struct_docs_do_not_leak_into_the_root_description() {
    for crd in crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        let root = schema.description.as_deref().unwrap_or_default();
        assert!(
            !root.contains("Auto-generated") && !root.contains("Spec"),
            "{root}"
        );
    }
}

#[test]
fn cel_rules_guard_what_the_api_server_can_reject_early() {
    let yaml = committed();
    for rule in [
        "self.to.kind in [''ImageStreamTag'', ''DockerImage'']",
        "self.to.name.matches(''^[^:@/]+:[^:@/]+$'')",
        "spec.revision may be set once",
        "a Build's spec is immutable",
    ] {
        assert!(yaml.contains(rule), "missing rule {rule}");
    }
}

/// The openAPIV3Schema of the committed CRD for `kind`, as JSON.
fn schema_of(kind: &str) -> serde_json::Value {
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap())
        .unwrap()
        .get("openAPIV3Schema")
        .cloned()
        .unwrap()
}

/// What an API server with the committed schema says about `object`: the causes of a 422.
fn api_verdict(schema: &serde_json::Value, mut object: serde_json::Value) -> Vec<String> {
    use kiln_sandbox::apiserver::schema;
    let mut report = schema::process(schema, &mut object);
    schema::cel::check_rules(schema, &object, None, "", &mut report.causes);
    report
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn the_crd_refuses_build_volumes_that_would_bind_host_paths() {
    let long = "v".repeat(64);
    let cases = [
        ("secret", "/run/secrets/app", true),
        ("ca-1", "/etc/pki/ca-trust/source/anchors", true),
        ("/", "/run/s", false),
        ("/dev", "/run/s", false),
        ("..", "/run/s", false),
        ("../../usr/bin", "/run/s", false),
        (long.as_str(), "/run/s", false),
        ("s", "/", false),
        ("s", "/dev", false),
        ("s", "/dev/shm", false),
        ("s", "/proc/self", false),
        ("s", "/sys", false),
        ("s", "/etc/resolv.conf", false),
        ("s", "/a/../../usr/bin", false),
        ("s", "/a/..", false),
        ("s", "/a/./b", false),
        ("s", "relative", false),
        ("s", "/a:/b", false),
        ("s", "/a/", false),
    ];
    for kind in ["BuildConfig", "Build"] {
        let schema = schema_of(kind);
        for (name, path, ok) in cases {
            let volumes = serde_json::json!([{
                "name": name,
                "source": {"type": "Secret", "secret": {"secretName": "s"}},
                "mounts": [{"destinationPath": path}]
            }]);
            let object = serde_json::json!({
                "apiVersion": "build.kiln.dev/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns"},
                "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"volumes": volumes.clone()}}}
            });
            let causes = api_verdict(&schema, object);
            assert_eq!(
                causes.is_empty(),
                ok,
                "{kind} {name:?} {path:?}: {causes:?}"
            );
            // the check at use gives the same verdict
            let volumes: Vec<kiln::api::common::BuildVolume> =
                serde_json::from_value(volumes).unwrap();
            assert_eq!(
                kiln::api::validate::build_volumes(&volumes, "volumes").is_ok(),
                ok,
                "{name:?} {path:?} at use"
            );
        }
    }
}

#[test]
fn the_crds_cel_rules_parse() {
    // The sandbox skips rules it cannot parse; a rule it skips would make the test above vacuous.
    fn walk(schema: &serde_json::Value, rules: &mut Vec<String>) {
        if let Some(list) = schema
            .get("x-kubernetes-validations")
            .and_then(|v| v.as_array())
        {
            rules.extend(
                list.iter()
                    .filter_map(|r| r.get("rule")?.as_str().map(String::from)),
            );
        }
        match schema {
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, rules)),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, rules)),
            _ => {}
        }
    }
    let mut rules = Vec::new();
    for kind in ["BuildConfig", "Build", "ImageStream"] {
        walk(&schema_of(kind), &mut rules);
    }
    assert!(rules.len() >= 4, "{rules:?}");
    for rule in rules {
        assert!(
            kiln_sandbox::apiserver::schema::cel::parse(&rule).is_ok(),
            "{rule}"
        );
    }
}

#[test]
fn every_int32_field_has_the_int32_range() {
    fn walk(schema: &JSONSchemaProps, path: &str, found: &mut usize) {
        if schema.format.as_deref() == Some("int32") {
            *found += 1;
            let (min, max) = (schema.minimum, schema.maximum);
            assert!(
                min.is_some_and(|m| m >= f64::from(i32::MIN))
                    && max.is_some_and(|m| m <= f64::from(i32::MAX)),
                "{path}: {min:?}..{max:?}"
            );
        }
        for (name, child) in schema.properties.iter().flatten() {
            walk(child, &format!("{path}.{name}"), found);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s)) = &schema.items {
            walk(s, &format!("{path}[]"), found);
        }
    }
    let mut found = 0;
    for crd in crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        walk(schema, &crd.spec.names.kind, &mut found);
    }
    assert!(found >= 2, "no int32 fields found");
}

#[test]
fn the_crd_refuses_counts_outside_their_range() {
    let schema = schema_of("BuildConfig");
    for (field, value, ok) in [
        ("successfulBuildsHistoryLimit", json_number(5), true),
        (
            "successfulBuildsHistoryLimit",
            json_number(3_000_000_000),
            false,
        ),
        ("successfulBuildsHistoryLimit", json_number(-1), false),
        (
            "failedBuildsHistoryLimit",
            json_number(i64::from(i32::MAX)),
            true,
        ),
        (
            "failedBuildsHistoryLimit",
            json_number(i64::from(i32::MAX) + 1),
            false,
        ),
    ] {
        let object = serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"strategy": {"type": "Docker"}, field: value}
        });
        let causes = api_verdict(&schema, object);
        assert_eq!(causes.is_empty(), ok, "{field}={value}: {causes:?}");
    }
    let mode = serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"volumes": [{
            "name": "s",
            "source": {"type": "Secret", "secret": {"secretName": "s", "defaultMode": 4_294_967_296u64}},
            "mounts": [{"destinationPath": "/run/s"}]
        }]}}}
    });
    assert!(
        !api_verdict(&schema, mode).is_empty(),
        "defaultMode past int32"
    );
}

fn json_number(n: i64) -> serde_json::Value {
    serde_json::Value::from(n)
}

#[test]
fn the_crd_refuses_credentials_in_git_urls_and_revision_expressions() {
    for kind in ["BuildConfig", "Build"] {
        let schema = schema_of(kind);
        for (uri, commit, ok) in [
            ("https://git.example/app.git", "0123abcd", true),
            ("ssh://git@git.example/app.git", "", true),
            ("git@git.example:app.git", "0123abcd", true),
            ("https://user:tok@git.example/app.git", "0123abcd", false),
            ("https://tok@git.example/app.git", "0123abcd", false),
            ("HTTPS://tok@git.example/app.git", "0123abcd", false),
            ("ssh://git:pw@git.example/app.git", "0123abcd", false),
            ("https://git.example/app.git", "HEAD~1", false),
            ("https://git.example/app.git", "abc", false),
        ] {
            let object = serde_json::json!({
                "apiVersion": "build.kiln.dev/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns"},
                "spec": {"source": {"type": "Git", "git": {"uri": uri}},
                         "revision": {"type": "Git", "git": {"commit": commit}},
                         "strategy": {"type": "Docker"}}
            });
            let causes = api_verdict(&schema, object);
            assert_eq!(causes.is_empty(), ok, "{kind} {uri} {commit}: {causes:?}");
            assert!(causes.iter().all(|c| !c.contains("tok@")), "{causes:?}");
        }
    }
}
