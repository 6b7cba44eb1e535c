//! Property test of `kiln convert` over generated input: the OpenShift documents of the porting
//! corpus with values replaced, removed or retyped at random paths, plus arbitrary JSON and YAML
//! text. Conversion never panics; it gives kiln documents, or problems that each name a document
//! and say what is wrong. Every output document of kiln's API groups decodes as its kiln kind; a
//! failure names the seed and the case number and fails the test.
//!
//! `KILN_CONVERT_FUZZ_CASES` sets the number of cases (default 1,000 so the suite stays fast);
//! `make fuzz` runs 50,000. The seed is fixed; `KILN_CONVERT_FUZZ_SEED=<u64>` picks another.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// Every document of the porting corpus and the conversion fixtures.
fn corpus() -> Vec<Value> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openshift");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in [root.to_string(), format!("{root}/corpus")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| crate::yaml::read_documents(&text).ok())
        .flatten()
        .collect()
}

/// Every path to a value in `doc`, as object keys and array indexes.
fn paths(doc: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(at.clone());
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(Value::String(k.clone()));
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Value::from(i));
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(doc: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, step| match step {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(n) => v.get_mut(usize::try_from(n.as_u64()?).ok()?),
        _ => None,
    })
}

/// A value of any JSON type, shaped like what the fields hold.
fn values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(serde_json::json!(3_000_000_000u64)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1e300)),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from("https://u:tok@h/r.git")),
        Just(Value::from("../../etc")),
        Just(Value::from("Docker")),
        Just(Value::from("Source")),
        Just(Value::from("ImageStreamTag")),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What to do at a path: replace the value, remove it, or leave it.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Value),
    Remove,
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, Edit)>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                3 => values().prop_map(Edit::Replace),
                1 => Just(Edit::Remove),
            ],
        ),
        1..5,
    )
}

fn mutate(mut doc: Value, edits: &[(prop::sample::Index, Edit)]) -> Value {
    for (at, edit) in edits {
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let path = &all[at.index(all.len())];
        match edit {
            Edit::Replace(value) => {
                if let Some(slot) = at_path(&mut doc, path) {
                    *slot = value.clone();
                }
            }
            Edit::Remove => {
                if let Some((Value::String(key), parent)) = path.split_last() {
                    if let Some(Value::Object(map)) = at_path(&mut doc, parent) {
                        map.remove(key);
                    }
                }
            }
        }
    }
    doc
}

#[test]
fn conversion_never_panics_and_answers_with_documents_or_problems() {
    let corpus = corpus();
    assert!(
        corpus.len() > 10,
        "the corpus is read: {} documents",
        corpus.len()
    );
    let input = prop_oneof![
        4 => (prop::collection::vec((any::<prop::sample::Index>(), edits()), 1..3)).prop_map({
            let corpus = corpus.clone();
            move |picks| {
                let docs: Vec<Value> = picks
                    .iter()
                    .map(|(i, e)| mutate(corpus[i.index(corpus.len())].clone(), e))
                    .collect();
                docs
            }
        }),
        1 => ".{0,200}".prop_map(|text| crate::yaml::read_documents(&text).unwrap_or_default()),
        1 => prop::collection::vec(values(), 0..3),
    ];
    let (converted, refused) = (std::cell::Cell::new(0_u64), std::cell::Cell::new(0_u64));
    let tried = crate::fuzz_runner::run_named(
        "KILN_CONVERT_FUZZ_SEED",
        0x636f_6e76,
        "KILN_CONVERT_FUZZ_CASES",
        1_000,
        &input,
        |docs| {
            let mut counter = 0_usize;
            let mut random = move |n: usize| {
                counter = counter.wrapping_mul(31).wrapping_add(7);
                counter % n.max(1)
            };
            match convert(docs, &Options::default(), &mut random) {
                Ok(done) => {
                    converted.set(converted.get() + 1);
                    for doc in &done.documents {
                        if let Err(e) = decodes_as_kiln(doc) {
                            prop_assert!(
                                false,
                                "converted output kiln does not decode: {e}\n{doc:#}"
                            );
                        }
                    }
                }
                Err(problems) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(!problems.is_empty(), "a refusal names its problems");
                    for p in &problems {
                        prop_assert!(
                            !p.message.is_empty() && !p.document.is_empty() && !p.path.is_empty(),
                            "{:?}",
                            p
                        );
                    }
                }
            }
            Ok(())
        },
    );
    println!(
        "convert property: {tried} generated inputs, {} converted (every output document decodes \
         as kiln's kinds), {} refused naming their problems",
        converted.get(),
        refused.get()
    );
}

/// Whether an output document is a manifest (an object with a string `apiVersion` and `kind`)
/// and, when it is of kiln's API groups, decodes as its kiln kind (what the controller and
/// `kubectl apply` of the output need).
fn decodes_as_kiln(doc: &Value) -> Result<(), String> {
    let field = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Err("not a manifest with a string apiVersion and kind".into());
    };
    if !is_kiln_api_version(api_version) {
        return Ok(());
    }
    let decoded = match kind {
        "BuildConfig" => serde_json::from_value::<crate::api::BuildConfig>(doc.clone()).map(drop),
        "Build" => serde_json::from_value::<crate::api::Build>(doc.clone()).map(drop),
        "ImageStream" => serde_json::from_value::<crate::api::ImageStream>(doc.clone()).map(drop),
        other => return Err(format!("kind {other:?} is not one of kiln's")),
    };
    decoded.map_err(|e| format!("{kind}: {e}"))
}
