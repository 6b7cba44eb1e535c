//! Named regression cases of the preparation property (`fuzz_tests`): each input once made
//! `prepare` emit a Dockerfile that does not parse again, or lose an edit. Each must now give a
//! Dockerfile that parses with the edits in place, or be refused with a reason.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Edits {
    Edits {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Edits::default()
    }
}

#[test]
fn inputs_that_once_broke_preparation() {
    type Check = fn(&Result<String, Error>) -> bool;
    let from = |image: &str| Edits {
        from: Some(image.into()),
        ..Edits::default()
    };
    let cases: Vec<(&str, &str, Edits, Check)> = vec![
        (
            "a `$` in a label, written `\\$`, which the parser refused as an unknown escape",
            "FROM a",
            labels(&[("a", "$")]),
            |r| r.as_deref() == Ok("FROM a\nLABEL \"a\"=\"\\$\"\n"),
        ),
        (
            "a `\\$` the user wrote in an ENV value",
            "FROM a\nENV HOME_COPY=\"\\$HOME\"\n",
            labels(&[("b", "1")]),
            |r| r.is_ok(),
        ),
        (
            "NUL and U+001F in a label value, which the parser refuses inside quotes",
            "FROM a",
            labels(&[("a", "x\u{0}y\u{1f}z\u{7f}\tw")]),
            |r| r.as_deref() == Ok("FROM a\nLABEL \"a\"=\"x y z \tw\"\n"),
        ),
        (
            "a dockerStrategy.from that is not an image reference",
            "FROM 0",
            from("@"),
            |r| matches!(r, Err(Error::InvalidFrom { .. })),
        ),
        (
            "a double quote left open, which the parser ran on into the build's LABEL",
            "ENV _=\"\nFROM A",
            labels(&[("_", "")]),
            |r| matches!(r, Err(Error::Unedited(_))),
        ),
        (
            "a line continuation at the end, which swallowed the build's LABEL into the RUN",
            "FROM a\nRUN echo \\",
            labels(&[("a", "1")]),
            |r| matches!(r, Err(Error::Unedited(_))),
        ),
    ];
    for (name, text, edits, check) in cases {
        let got = prepare(text, &edits);
        assert!(check(&got), "{name}: {got:?}");
        if let Ok(out) = &got {
            assert!(parse(out).is_ok(), "{name}: does not parse again:\n{out}");
        }
    }
}

#[test]
fn dollar_escapes_are_masked_in_pairs() {
    for (text, want) in [
        ("a\\$b", "a\\\\b"),
        ("a\\\\$b", "a\\\\$b"),
        ("\\\\\\$", "\\\\\\\\"),
        ("\\\n", "\\\n"),
        ("x\\", "x\\"),
        ("\u{e9}\\$", "\u{e9}\\\\"),
    ] {
        let masked = mask_dollar_escapes(text);
        assert_eq!(masked, want, "{text:?}");
        assert_eq!(masked.len(), text.len(), "{text:?} keeps its length");
    }
}
