//! Named regression cases of the convert property (`fuzz_tests`): each input once made
//! `kiln convert` emit a document kiln's own types refuse. Each must now convert to documents
//! that decode, or be refused with a problem naming the field.

use serde_json::{json, Value};

use super::*;

/// The outcome a case expects: converted (and decodable), or refused at this path.
enum Want {
    Decodes,
    Refused(&'static str, &'static str),
}

fn bc(spec: Value) -> Value {
    json!({"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig",
           "metadata": {"name": "app"}, "spec": spec})
}

fn decodes(doc: &Value) -> Result<(), String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    match kind {
        "BuildConfig" => serde_json::from_value::<BuildConfig>(doc.clone()).map(drop),
        "Build" => serde_json::from_value::<Build>(doc.clone()).map(drop),
        "ImageStream" => serde_json::from_value::<ImageStream>(doc.clone()).map(drop),
        _ => Ok(()),
    }
    .map_err(|e| format!("{kind}: {e}"))
}

#[test]
fn documents_kiln_once_emitted_undecodable() {
    use Want::*;
    let docker = json!({"type": "Docker"});
    let cases: Vec<(&str, Value, Want)> = vec![
        (
            "a non-string apiVersion passed through as a foreign kind",
            json!({"apiVersion": 5, "kind": "BuildConfig", "metadata": {"name": "a"}, "spec": {"strategy": docker}}),
            Refused("apiVersion", "must be a non-empty string"),
        ),
        (
            "a null apiVersion",
            json!({"apiVersion": null, "kind": "Build", "metadata": {"name": "a"}}),
            Refused("apiVersion", "missing"),
        ),
        (
            "no apiVersion",
            json!({"kind": "ImageStream", "metadata": {"name": "a"}}),
            Refused("apiVersion", "missing"),
        ),
        (
            "a list as the kind",
            json!({"apiVersion": "build.openshift.io/v1", "kind": ["BuildConfig"], "metadata": {"name": "a"}}),
            Refused("kind", "not a list"),
        ),
        (
            "an empty kind",
            json!({"apiVersion": "build.openshift.io/v1", "kind": "", "metadata": {"name": "a"}}),
            Refused("kind", "not an empty string"),
        ),
        (
            "a scalar document",
            json!(true),
            Refused("(document)", "not a boolean"),
        ),
        (
            "an ImageStream without spec (OpenShift's usual output)",
            json!({"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "a"}}),
            Decodes,
        ),
        (
            "an ImageStream with a null spec",
            json!({"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "a"}, "spec": null}),
            Decodes,
        ),
        (
            "a BuildConfig with a Docker strategy",
            bc(json!({"strategy": docker})),
            Decodes,
        ),
        (
            "a null strategy",
            bc(json!({"strategy": null})),
            Refused("spec.strategy", "null"),
        ),
        (
            "a null spec",
            json!({"apiVersion": "build.openshift.io/v1", "kind": "Build", "metadata": {"name": "a"}, "spec": null}),
            Refused("spec", "null"),
        ),
    ];
    for (name, doc, want) in cases {
        let got = convert(vec![doc], &Options::default(), &mut |_| 0);
        match (got, want) {
            (Ok(done), Decodes) => {
                for doc in &done.documents {
                    assert_eq!(decodes(doc), Ok(()), "{name}");
                }
            }
            (Err(problems), Refused(path, message)) => {
                assert!(
                    problems
                        .iter()
                        .any(|p| p.path == path && p.message.contains(message)),
                    "{name}: want {path}: …{message}…, got {problems:?}"
                );
            }
            (Ok(done), Refused(path, _)) => {
                panic!(
                    "{name}: converted, want refused at {path}: {:?}",
                    done.documents
                )
            }
            (Err(problems), Decodes) => panic!("{name}: refused: {problems:?}"),
        }
    }
}
