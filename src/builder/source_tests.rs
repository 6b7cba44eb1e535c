use super::submodules::submodule_url;
use super::*;

#[test]
fn submodule_url_table() {
    for (parent, url, want) in [
        ("git://h:9/r.git", "../lib.git", "git://h:9/lib.git"),
        ("git://h:9/r.git/", "../lib.git", "git://h:9/lib.git"),
        (
            "https://h/org/r.git",
            "../../other/lib",
            "https://h/other/lib",
        ),
        ("https://h/org/r", "./lib", "https://h/org/r/lib"),
        ("git@h:org/r.git", "../lib.git", "git@h:org/lib.git"),
        ("git@h:r.git", "../lib.git", "git@h:lib.git"),
        ("/srv/git/r.git", "../lib.git", "/srv/git/lib.git"),
        ("https://h/r", "https://x/y.git", "https://x/y.git"),
        ("https://h/r", "git@x:y.git", "git@x:y.git"),
    ] {
        assert_eq!(submodule_url(parent, url), want, "{parent} + {url}");
    }
}

#[test]
fn resolve_ref_table() {
    let oid = Oid::ZERO_SHA1;
    let heads: Vec<(String, Oid)> = [
        "HEAD",
        "refs/heads/main",
        "refs/heads/v1",
        "refs/tags/v1",
        "refs/tags/v2",
        "refs/pull/1/head",
    ]
    .iter()
    .map(|n| (n.to_string(), oid))
    .collect();
    for (wanted, want) in [
        ("main", Some("refs/heads/main")),
        ("v1", Some("refs/heads/v1")),
        ("v2", Some("refs/tags/v2")),
        ("refs/pull/1/head", Some("refs/pull/1/head")),
        ("nope", None),
        ("HEAD", None),
    ] {
        assert_eq!(resolve_ref(wanted, &heads).as_deref(), want, "{wanted}");
    }
}
