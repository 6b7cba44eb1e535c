//! Fields kiln keeps but does not act on: `kiln convert` warns about each, naming its path, so
//! nothing that converts is silently inert. The list is documented in `docs/porting.md`.

use serde_json::Value;

const SECRET_BESIDE_REFERENCE: &str = "ignored while secretReference is set: kiln checks webhook calls against the referenced Secret only (OpenShift accepts either); drop one of the two";
const VALUE_FROM: &str = "valueFrom is not resolved: the build fails with UnresolvableEnvironmentVariable; set value instead";
const BUILD_ARG_VALUE_FROM: &str = "valueFrom is not resolved in build arguments (OpenShift ignores it there too): the build fails with UnresolvableEnvironmentVariable; set value instead";
const TRUSTED_CA: &str = "kiln mounts no cluster trust bundle; mount CA certificates into RUN steps with spec.strategy.dockerStrategy.volumes";
const LOOKUP_LOCAL: &str = "kiln does not resolve the stream's short name in Pods; use the full pull spec from status.dockerImageRepository";
const REPOSITORY: &str = "kiln does not mirror an external repository into the stream";
const TAG_FROM: &str =
    "tags are not imported: the tag gets an image only when a kiln build pushes to it";
const IMPORT_POLICY: &str =
    "tags are not imported, so import policies (scheduled, insecure, importMode) have no effect";
const REFERENCE_POLICY: &str = "kiln has no integrated registry to pull through; consumers pull from where the image was pushed";
const REFERENCE: &str = "tags are not imported, so reference has no effect";

/// The inert fields present in a converted document of `kind`, as (path, reason).
pub(crate) fn fields(kind: &str, doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let mut note = |path: String, why: &str| out.push((path, why.to_string()));
    match kind {
        "BuildConfig" | "Build" => {
            if spec.get("mountTrustedCA") == Some(&Value::Bool(true)) {
                note("spec.mountTrustedCA".into(), TRUSTED_CA);
            }
            let docker = spec.pointer("/strategy/dockerStrategy");
            for (field, why) in [("env", VALUE_FROM), ("buildArgs", BUILD_ARG_VALUE_FROM)] {
                for (i, var) in array(docker.and_then(|d| d.get(field))).iter().enumerate() {
                    if var.get("valueFrom").is_some_and(|v| !v.is_null()) {
                        note(
                            format!("spec.strategy.dockerStrategy.{field}[{i}].valueFrom"),
                            why,
                        );
                    }
                }
            }
            for (i, trigger) in array(spec.get("triggers")).iter().enumerate() {
                for hook in ["github", "generic", "gitlab", "bitbucket"] {
                    let Some(settings) = trigger.get(hook) else {
                        continue;
                    };
                    let has = |f: &str| settings.get(f).is_some_and(|v| !v.is_null());
                    if has("secret") && has("secretReference") {
                        note(
                            format!("spec.triggers[{i}].{hook}.secret"),
                            SECRET_BESIDE_REFERENCE,
                        );
                    }
                }
            }
        }
        "ImageStream" => {
            if spec.pointer("/lookupPolicy/local") == Some(&Value::Bool(true)) {
                note("spec.lookupPolicy.local".into(), LOOKUP_LOCAL);
            }
            if spec
                .get("dockerImageRepository")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty())
            {
                note("spec.dockerImageRepository".into(), REPOSITORY);
            }
            for (i, tag) in array(spec.get("tags")).iter().enumerate() {
                let present = |f: &str| tag.get(f).is_some_and(|v| !v.is_null());
                if present("from") {
                    note(format!("spec.tags[{i}].from"), TAG_FROM);
                }
                if present("importPolicy")
                    && tag["importPolicy"]
                        .as_object()
                        .is_some_and(|m| m.values().any(|v| !v.is_null()))
                {
                    note(format!("spec.tags[{i}].importPolicy"), IMPORT_POLICY);
                }
                if tag
                    .pointer("/referencePolicy/type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
                {
                    note(format!("spec.tags[{i}].referencePolicy"), REFERENCE_POLICY);
                }
                if tag.get("reference") == Some(&Value::Bool(true)) {
                    note(format!("spec.tags[{i}].reference"), REFERENCE);
                }
            }
        }
        _ => {}
    }
    out
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inert_fields_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("ImageStream", json!({"metadata": {"name": "x"}}), vec![]),
            (
                "ImageStream",
                json!({"spec": {"lookupPolicy": {"local": true}, "dockerImageRepository": "quay.io/x",
                       "tags": [{"name": "a"},
                                {"name": "b", "from": {"kind": "DockerImage", "name": "x"},
                                 "importPolicy": {"scheduled": true}, "referencePolicy": {"type": "Source"},
                                 "reference": true}]}}),
                vec![
                    "spec.lookupPolicy.local",
                    "spec.dockerImageRepository",
                    "spec.tags[1].from",
                    "spec.tags[1].importPolicy",
                    "spec.tags[1].referencePolicy",
                    "spec.tags[1].reference",
                ],
            ),
            (
                "ImageStream",
                json!({"spec": {"lookupPolicy": {"local": false},
                       "tags": [{"name": "a", "importPolicy": {}, "referencePolicy": {"type": ""}}]}}),
                vec![],
            ),
            (
                "BuildConfig",
                json!({"spec": {"mountTrustedCA": true,
                       "strategy": {"dockerStrategy": {
                           "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                           "buildArgs": [{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}},
                       "triggers": [{"type": "ConfigChange"}, {"type": "GitHub", "github": {"secret": "s"}},
                                    {"type": "ImageChange", "imageChange": {}},
                                    {"type": "Generic", "generic": {"secret": "s", "secretReference": {"name": "n"}}}]}}),
                vec![
                    "spec.mountTrustedCA",
                    "spec.strategy.dockerStrategy.env[1].valueFrom",
                    "spec.strategy.dockerStrategy.buildArgs[0].valueFrom",
                    "spec.triggers[3].generic.secret",
                ],
            ),
            (
                "BuildConfig",
                json!({"spec": {"mountTrustedCA": false}}),
                vec![],
            ),
            ("Secret", json!({"spec": {"mountTrustedCA": true}}), vec![]),
        ];
        for (kind, doc, want) in cases {
            let got: Vec<String> = fields(kind, &doc).into_iter().map(|(p, _)| p).collect();
            assert_eq!(got, want, "{kind} {doc}");
        }
    }
}
