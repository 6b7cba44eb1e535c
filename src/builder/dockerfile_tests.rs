use super::*;

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const SEED: &str = "ARG REGISTRY=localhost:5000\nFROM ${REGISTRY}/library/golang:1.19 AS builder\nRUN go build\nFROM ${REGISTRY}/library/busybox\nCOPY --from=builder /a /a\n";

#[test]
fn prepare_edits_by_span() {
    let pinned = format!("reg/img@sha256:{}", "1".repeat(64));
    let pinned_want = format!("FROM a AS b\nFROM {pinned}\nRUN x");
    let cases: Vec<(&str, Edits, &str)> = vec![
            ("FROM a\nRUN x\n", Edits::default(), "FROM a\nRUN x\n"),
            (
                "FROM a AS b\nFROM c\nRUN x",
                Edits { from: Some(pinned.clone()), ..Default::default() },
                &pinned_want,
            ),
            (
                "FROM a AS b\nFROM c\n",
                Edits { env: kv(&[("A", "1 2"), ("B", "$x\"")]), ..Default::default() },
                "FROM a AS b\nENV A=\"1 2\" B=\"\\$x\\\"\"\nFROM c\nENV A=\"1 2\" B=\"\\$x\\\"\"\n",
            ),
            (
                "FROM a",
                Edits {
                    provenance: kv(&[("KILN_BUILD_NAME", "app-1")]),
                    labels: kv(&[("io.kiln.build.name", "app-1"), ("x", "1"), ("io.kiln.build.name", "mine")]),
                    ..Default::default()
                },
                "FROM a\nENV KILN_BUILD_NAME=\"app-1\"\nLABEL \"io.kiln.build.name\"=\"mine\" \"x\"=\"1\"\n",
            ),
            (
                "# syntax=docker/dockerfile:1.4\nFROM a\nRUN <<EOF\nFROM evil\necho hi\nEOF\n",
                Edits { from: Some("b".into()), env: kv(&[("E", "1")]), ..Default::default() },
                "# syntax=docker/dockerfile:1.4\nFROM b\nENV E=\"1\"\nRUN <<EOF\nFROM evil\necho hi\nEOF\n",
            ),
            (
                "FROM --platform=linux/amd64 a AS x\n",
                Edits { from: Some("b".into()), ..Default::default() },
                "FROM --platform=linux/amd64 b AS x\n",
            ),
        ];
    for (input, edits, want) in cases {
        assert_eq!(
            prepare(input, &edits),
            Ok(want.to_string()),
            "input {input:?}"
        );
    }
}

#[test]
fn prepare_rejects_bad_dockerfiles() {
    let bad_env = Edits {
        env: kv(&[("A B", "1")]),
        ..Default::default()
    };
    let none = Edits::default();
    type Case<'a> = (&'a str, &'a Edits, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        ("FROM a\nFORM b\n", &none, |e| {
            matches!(e, Error::UnknownInstruction { line: 2, .. })
        }),
        ("RUN x\n", &none, |e| matches!(e, Error::NoFrom)),
        ("", &none, |e| matches!(e, Error::NoFrom)),
        ("FROM a\nCOPY\n", &none, |e| {
            matches!(e, Error::Syntax { line: 2, .. })
        }),
        ("FROM a\n", &bad_env, |e| {
            matches!(e, Error::InvalidEnvName(_))
        }),
    ];
    for (input, edits, check) in cases {
        let err = prepare(input, edits).unwrap_err();
        assert!(check(&err), "input {input:?} gave {err:?}");
    }
}

#[test]
fn base_images_expand_args_and_skip_stages() {
    type Case<'a> = (&'a str, Vec<(String, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            SEED,
            vec![],
            vec![
                "localhost:5000/library/golang:1.19",
                "localhost:5000/library/busybox",
            ],
        ),
        (
            SEED,
            kv(&[("REGISTRY", "r:1")]),
            vec!["r:1/library/golang:1.19", "r:1/library/busybox"],
        ),
        (
            "FROM scratch\nFROM a AS b\nFROM B\nFROM $X/y\n",
            vec![],
            vec!["a"],
        ),
        (
            "ARG T=\"1.2\"\nFROM img:${T}\nFROM img:${T}\n",
            vec![],
            vec!["img:1.2"],
        ),
        ("ARG R\nFROM ${R:-dflt}/x\n", vec![], vec!["dflt/x"]),
    ];
    for (input, args, want) in cases {
        assert_eq!(base_images(input, &args).unwrap(), want, "input {input:?}");
    }
}

#[test]
fn last_from_table() {
    use LastFrom::*;
    type Case<'a> = (&'a str, Vec<(String, String)>, Result<LastFrom, Error>);
    let cases: Vec<Case> = vec![
        (
            SEED,
            vec![],
            Ok(Image("localhost:5000/library/busybox".into())),
        ),
        (
            SEED,
            kv(&[("REGISTRY", "127.0.0.1:5000")]),
            Ok(Image("127.0.0.1:5000/library/busybox".into())),
        ),
        (
            "FROM a AS build\nFROM build\n",
            vec![],
            Ok(Stage("build".into())),
        ),
        (
            "FROM a AS Build\nFROM BUILD\n",
            vec![],
            Ok(Stage("BUILD".into())),
        ),
        ("FROM a\nFROM scratch\n", vec![], Ok(Scratch)),
        ("FROM $BASE\n", vec![], Ok(Unresolved("$BASE".into()))),
        (
            "FROM --platform=linux/amd64 img:1 AS x\n",
            vec![],
            Ok(Image("img:1".into())),
        ),
        ("# only a comment\n", vec![], Err(Error::NoFrom)),
    ];
    for (input, args, want) in cases {
        assert_eq!(last_from(input, &args), want, "input {input:?}");
    }
    assert!(matches!(
        last_from("FROM a\nBOGUS x\n", &[]),
        Err(Error::UnknownInstruction { line: 2, .. })
    ));
}

#[test]
fn expand_table() {
    let args: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into_iter().collect();
    for (input, want) in [
        ("$A/x", "1/x"),
        ("${A}x", "1x"),
        ("${B:-d}", "d"),
        ("${A:+y}${B:+z}", "y"),
        ("$B", "$B"),
        ("${B}", "${B}"),
        ("${A", "${A"),
        ("a$", "a$"),
    ] {
        assert_eq!(expand(input, &args), want, "{input}");
    }
}

#[test]
fn quote_escapes() {
    for (input, want) in [
        ("a", "\"a\""),
        ("a\"b", "\"a\\\"b\""),
        ("x\ny", "\"x y\""),
        ("\\$", "\"\\\\\\$\""),
    ] {
        assert_eq!(quote(input), want);
    }
}
