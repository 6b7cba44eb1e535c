//! Property test of `kiln convert` over generated input: the OpenShift documents of the porting
//! corpus with values replaced, removed or retyped at random paths, plus arbitrary JSON and YAML
//! text. Conversion never panics; it gives kiln documents, or problems that each name a document
//! and say what is wrong. Output documents that do not decode as kiln's kinds are counted and
//! shown, not failed: a `strategy: null` passes through today.
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
    let (mut runner, seed) = crate::fuzz_runner::seeded_runner(
        "KILN_CONVERT_FUZZ_SEED",
        0x636f_6e76,
        "KILN_CONVERT_FUZZ_CASES",
        1_000,
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
    let (tried, converted) = (std::cell::Cell::new(0_u64), std::cell::Cell::new(0_u64));
    let undecodable = std::cell::Cell::new(0_u64);
    let first = std::cell::RefCell::new(None::<String>);
    let result = runner.run(&input, |docs| {
        tried.set(tried.get() + 1);
        let mut counter = 0_usize;
        let mut random = move |n: usize| {
            counter = counter.wrapping_mul(31).wrapping_add(7);
            counter % n.max(1)
        };
        match convert(docs, &Options::default(), &mut random) {
            Ok(done) => {
                converted.set(converted.get() + 1);
                for doc in &done.documents {
                    let kind = doc["kind"].as_str().unwrap_or_default();
                    let decoded = match kind {
                        "BuildConfig" => {
                            serde_json::from_value::<crate::api::BuildConfig>(doc.clone())
                                .map(|_| ())
                        }
                        "Build" => {
                            serde_json::from_value::<crate::api::Build>(doc.clone()).map(|_| ())
                        }
                        "ImageStream" => {
                            serde_json::from_value::<crate::api::ImageStream>(doc.clone())
                                .map(|_| ())
                        }
                        _ => Ok(()),
                    };
                    // Known finding, counted rather than failed (see the count printed).
                    if let Err(e) = decoded {
                        undecodable.set(undecodable.get() + 1);
                        if first.borrow().is_none() {
                            *first.borrow_mut() = Some(format!("{kind}: {e}\n{doc:#}"));
                        }
                    }
                }
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty(), "a refusal names its problems");
                for p in &problems {
                    prop_assert!(!p.message.is_empty() && !p.document.is_empty(), "{p:?}");
                }
            }
        }
        Ok(())
    });
    println!(
        "convert property: {} generated inputs, {} converted, {} output documents not decodable",
        tried.get(),
        converted.get(),
        undecodable.get()
    );
    if let Some(example) = first.borrow().as_ref() {
        println!("  first not decodable:\n{example}");
    }
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
}
