//! Fields kiln keeps but does not act on: `kiln convert` warns about each, naming its path, so
//! nothing that converts is silently inert. The list is documented in `docs/porting.md`.

use serde_json::Value;

const SECRET_BESIDE_REFERENCE: &str = "ignored while secretReference is set: kiln checks webhook calls against the referenced Secret only (OpenShift accepts either); drop one of the two";
const BUILD_ARG_VALUE_FROM: &str = "valueFrom is not resolved in build arguments (OpenShift ignores it there too): the build fails with UnresolvableEnvironmentVariable; set value instead";
const TRUSTED_CA: &str = "kiln mounts no cluster trust bundle; mount CA certificates into RUN steps with spec.strategy.dockerStrategy.volumes";
const LOOKUP_LOCAL: &str = "kiln does not resolve the stream's short name in Pods; use the full pull spec from status.dockerImageRepository";
const REPOSITORY: &str = "kiln does not mirror an external repository into the stream";
const IMPORT_MODE_LEGACY: &str = "kiln records the digest the registry serves for the reference (a manifest list stays a manifest list, as with PreserveOriginal); no single-platform manifest is picked";
const SPEC_LAST_TRIGGERED: &str = "deprecated in OpenShift too: kiln reads and writes the last image in status.imageChangeTriggers only, so a tag's current image starts a build unless the status names it";
const ALLOW_ENV: &str =
    "only the Generic webhook takes env from its payload (as in OpenShift); drop it here";
const REFERENCE_POLICY_LOCAL: &str = "kiln has no integrated registry to pull through; consumers pull from the image's source, as with Source";

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
            for (field, why) in [("buildArgs", BUILD_ARG_VALUE_FROM)] {
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
                if trigger
                    .pointer("/imageChange/lastTriggeredImageID")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !id.is_empty())
                {
                    note(
                        format!("spec.triggers[{i}].imageChange.lastTriggeredImageID"),
                        SPEC_LAST_TRIGGERED,
                    );
                }
                for hook in ["github", "generic", "gitlab", "bitbucket"] {
                    let Some(settings) = trigger.get(hook) else {
                        continue;
                    };
                    let has = |f: &str| settings.get(f).is_some_and(|v| !v.is_null());
                    if hook != "generic" && settings.get("allowEnv") == Some(&Value::Bool(true)) {
                        note(format!("spec.triggers[{i}].{hook}.allowEnv"), ALLOW_ENV);
                    }
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
                if tag
                    .pointer("/importPolicy/importMode")
                    .and_then(Value::as_str)
                    == Some("Legacy")
                {
                    note(
                        format!("spec.tags[{i}].importPolicy.importMode"),
                        IMPORT_MODE_LEGACY,
                    );
                }
                if tag.pointer("/referencePolicy/type").and_then(Value::as_str) == Some("Local") {
                    note(
                        format!("spec.tags[{i}].referencePolicy"),
                        REFERENCE_POLICY_LOCAL,
                    );
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
                                 "importPolicy": {"scheduled": true, "importMode": "Legacy"},
                                 "referencePolicy": {"type": "Local"}, "reference": true},
                                {"name": "c", "from": {"kind": "DockerImage", "name": "x"},
                                 "importPolicy": {"scheduled": true, "insecure": true, "importMode": "PreserveOriginal"},
                                 "referencePolicy": {"type": "Source"}}]}}),
                vec![
                    "spec.lookupPolicy.local",
                    "spec.dockerImageRepository",
                    "spec.tags[1].importPolicy.importMode",
                    "spec.tags[1].referencePolicy",
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
                       "triggers": [{"type": "ConfigChange"}, {"type": "GitHub", "github": {"secret": "s", "allowEnv": true}},
                                    {"type": "ImageChange", "imageChange": {"lastTriggeredImageID": "r/ns/base@sha256:ab"}},
                                    {"type": "Generic", "generic": {"secret": "s", "secretReference": {"name": "n"}, "allowEnv": true}},
                                    {"type": "ImageChange", "imageChange": {"lastTriggeredImageID": ""}}]}}),
                vec![
                    "spec.mountTrustedCA",
                    "spec.strategy.dockerStrategy.buildArgs[0].valueFrom",
                    "spec.triggers[1].github.allowEnv",
                    "spec.triggers[2].imageChange.lastTriggeredImageID",
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
