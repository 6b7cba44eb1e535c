//! Names that become segments of API and registry paths. kube-rs puts an object's name and
//! namespace into the request path as they are, and a registry repository is
//! `<namespace>/<stream>`: every name that comes from a user (a reference in a spec, a flag) is
//! checked here before it is used, so `..`, `/`, `%`, `?` and overlong names never reach a path.

use super::validate::object_name;

/// The longest image tag (the distribution spec's).
const TAG_MAX: usize = 128;

/// Why `tag` is not an image tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), if it is not.
pub fn image_tag(tag: &str) -> Result<(), String> {
    let first_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= TAG_MAX {
        Ok(())
    } else {
        Err(format!(
            "must be an image tag: 1 to {TAG_MAX} letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    }
}

/// Why `digest` is not a content digest (`<algorithm>:<encoded>`), if it is not.
pub fn digest(digest: &str) -> Result<(), String> {
    let valid = digest.split_once(':').is_some_and(|(algorithm, encoded)| {
        !algorithm.is_empty()
            && algorithm.len() <= 32
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && !encoded.is_empty()
            && encoded.len() <= 256
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err("must be a digest such as sha256:<hex>".into())
    }
}

/// A check of one kind of name: why the name is not one, if it is not.
pub type NameCheck = fn(&str) -> Result<(), String>;

/// Checks each (what, value, check) and names the first that fails: `namespace "a/b" must be …`.
pub fn check(names: &[(&str, &str, NameCheck)]) -> Result<(), String> {
    for (what, value, check) in names {
        check(value).map_err(|reason| format!("{what} {value:?} {reason}"))?;
    }
    Ok(())
}

/// Checks a namespace and an object name before they go into an API path.
pub fn object(namespace: &str, name: &str) -> Result<(), String> {
    check(&[
        ("namespace", namespace, object_name),
        ("name", name, object_name),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ImageRef, TagRef};
    use k8s_openapi::api::core::v1::ObjectReference;

    /// Names an attacker would write to leave the path segment they are put in; none of them is
    /// an object name, an image tag or a digest's encoded part.
    fn hostile() -> Vec<String> {
        let mut names: Vec<String> = [
            "../x",
            "..",
            ".",
            "a/b",
            "/x",
            "x/",
            "%2e%2e",
            "%2F",
            "a%2fb",
            "?x=y",
            "x?watch=1",
            "#x",
            "a b",
            "a\nb",
            "a\\b",
            "",
            "a:b",
            "a@b",
            "\u{e9}",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        names.push("a".repeat(300));
        names
    }

    /// The path kube-rs requests for a GET of `name` in `namespace` (Secrets, say).
    fn get_path(namespace: &str, name: &str) -> String {
        let collection = format!("/api/v1/namespaces/{namespace}/secrets");
        let request = kube::core::Request::new(collection)
            .get(name, &kube::api::GetParams::default())
            .unwrap();
        request.uri().path().to_string()
    }

    #[test]
    fn hostile_names_never_reach_a_path() {
        let reference = |kind: &str, name: &str, namespace: Option<&str>| ObjectReference {
            kind: Some(kind.into()),
            name: Some(name.into()),
            namespace: namespace.map(Into::into),
            ..ObjectReference::default()
        };
        for name in hostile() {
            assert!(object("ns", &name).is_err(), "name {name:?}");
            assert!(object(&name, "x").is_err(), "namespace {name:?}");
            assert!(image_tag(&name).is_err(), "tag {name:?}");
            assert!(
                digest(&format!("sha256:{name}")).is_err(),
                "digest {name:?}"
            );
            for written in [format!("{name}:latest"), format!("app:{name}")] {
                let r = reference("ImageStreamTag", &written, None);
                assert!(TagRef::parse(&r, "ns").is_err(), "{written:?}");
            }
            for written in [format!("{name}@sha256:ab"), format!("app@sha256:{name}")] {
                let r = reference("ImageStreamImage", &written, None);
                assert!(ImageRef::parse(&r, "ns").is_err(), "{written:?}");
            }
            if !name.is_empty() {
                // An empty namespace means the object's own.
                let r = reference("ImageStreamTag", "app:v1", Some(&name));
                assert!(TagRef::parse(&r, "ns").is_err(), "namespace {name:?}");
                let r = reference("ImageStreamImage", "app@sha256:ab", Some(&name));
                assert!(ImageRef::parse(&r, "ns").is_err(), "namespace {name:?}");
            }
        }
    }

    #[test]
    fn accepted_names_stay_one_segment_of_the_path() {
        let accepted = ["x", "a.b", "a-b", "0", &"a".repeat(63), "a.b.c-d"];
        for name in accepted {
            assert_eq!(object("ns", name), Ok(()), "{name:?}");
            assert_eq!(
                get_path("ns", name),
                format!("/api/v1/namespaces/ns/secrets/{name}"),
                "{name:?}"
            );
        }
        // Why the check is needed: kube-rs itself passes a hostile name into the path as written.
        assert_eq!(get_path("ns", "../x"), "/api/v1/namespaces/ns/secrets/../x");
    }

    #[test]
    fn tags_and_digests_table() {
        for (tag, ok) in [
            ("latest", true),
            ("v1.2_3-rc", true),
            ("_x", true),
            (".x", false),
            ("-x", false),
            ("", false),
            ("a/b", false),
            (&"t".repeat(128), true),
            (&"t".repeat(129), false),
        ] {
            assert_eq!(image_tag(tag).is_ok(), ok, "{tag:?}");
        }
        for (d, ok) in [
            ("sha256:ab", true),
            (&format!("sha256:{}", "a".repeat(64)), true),
            ("sha256+b64u:a_b-c=", true),
            ("sha256", false),
            (":ab", false),
            ("sha256:", false),
            ("sha256:../x", false),
            ("SHA256:ab", false),
        ] {
            assert_eq!(digest(d).is_ok(), ok, "{d:?}");
        }
    }
}
