//! Property test of Dockerfile preparation over generated Dockerfiles (instruction soup with
//! stages, ARGs, heredocs, comments, continuations and arbitrary bytes): `prepare`, `last_from`
//! and `base_images` never panic, and whatever `prepare` returns is itself a Dockerfile that
//! parses, ends with the build's labels, and builds on `dockerStrategy.from` when it is given.
//! A failure names the seed and the case number and fails the test.
//!
//! `KILN_DOCKERFILE_FUZZ_CASES` sets the number of cases (default 2,000 so the suite stays
//! fast); `make fuzz` runs 100,000. The seed is fixed; `KILN_DOCKERFILE_FUZZ_SEED=<u64>` picks
//! another.

use proptest::prelude::*;

use super::*;

/// One line of a Dockerfile: instructions kiln edits around, and noise.
fn line() -> impl Strategy<Value = String> {
    let word = "[a-zA-Z0-9_./:@${}-]{0,24}";
    prop_oneof![
        3 => (word, prop::option::of("[a-z]{1,6}")).prop_map(|(image, stage)| match stage {
            Some(s) => format!("FROM {image} AS {s}"),
            None => format!("FROM {image}"),
        }),
        2 => ("[A-Z_]{1,8}", prop::option::of(word)).prop_map(|(k, v)| match v {
            Some(v) => format!("ARG {k}={v}"),
            None => format!("ARG {k}"),
        }),
        2 => ".{0,40}".prop_map(|cmd| format!("RUN {cmd}")),
        1 => Just("RUN <<EOF\necho hi\nFROM not-an-instruction\nEOF".to_string()),
        1 => Just("COPY <<-END /x\n\tLABEL inside=heredoc\nEND".to_string()),
        1 => ("[A-Z_]{1,8}", ".{0,20}").prop_map(|(k, v)| format!("ENV {k}={v}")),
        1 => (word, ".{0,20}").prop_map(|(k, v)| format!("LABEL {k}=\"{v}\"")),
        1 => Just("# syntax=docker/dockerfile:1".to_string()),
        1 => Just("RUN echo \\\n  continued".to_string()),
        1 => ".{0,30}",
        1 => Just(String::new()),
    ]
}

fn dockerfiles() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 0..12).prop_map(|lines| lines.join("\n"))
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z_][A-Za-z0-9_.-]{0,12}", ".{0,20}"), 0..4)
}

fn edits() -> impl Strategy<Value = Edits> {
    (
        // Mostly image references (what the plan passes after its check), sometimes anything.
        prop::option::of(prop_oneof![
            3 => "[a-z0-9]{1,8}(\\.[a-z]{1,4}(:[0-9]{2,5})?/)?[a-z0-9]{1,8}(/[a-z0-9]{1,8})?(:[a-z0-9._-]{1,8})?",
            1 => "[a-z0-9.:/@-]{1,30}",
        ]),
        pairs(),
        pairs(),
        pairs(),
    )
        .prop_map(|(from, env, provenance, labels)| Edits {
            from,
            env,
            provenance,
            labels,
        })
}

#[test]
fn preparation_never_panics_and_gives_a_dockerfile() {
    let prepared = std::cell::Cell::new(0_u64);
    let strategy = (dockerfiles(), edits(), pairs());
    let tried = crate::fuzz_runner::run_named(
        "KILN_DOCKERFILE_FUZZ_SEED",
        0x646f_636b,
        "KILN_DOCKERFILE_FUZZ_CASES",
        2_000,
        &strategy,
        |(text, edits, args)| {
            let _ = last_from(&text, &args);
            let _ = base_images(&text, &args);
            let Ok(out) = prepare(&text, &edits) else {
                return Ok(());
            };
            prepared.set(prepared.get() + 1);
            let parsed = parse(&out);
            prop_assert!(
                parsed.is_ok(),
                "the prepared Dockerfile does not parse again ({:?}):\n{}",
                parsed.err(),
                out
            );
            let parsed = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
            if !edits.labels.is_empty() {
                let last = parsed.instructions.last();
                prop_assert!(
                    matches!(last, Some(Instruction::Label(_))),
                    "the build's labels are the last instruction:\n{}",
                    out
                );
            }
            if let Some(from) = &edits.from {
                let last = froms(&out, &[]).ok().and_then(|mut f| f.pop());
                prop_assert_eq!(last.map(|(image, _)| image), Some(from.clone()), "{}", out);
            }
            Ok(())
        },
    );
    println!(
        "Dockerfile property: {tried} generated Dockerfiles, {} prepared, every one parsable again",
        prepared.get()
    );
}
