//! The scopes of the Docker Registry v2 token protocol (`repository:<name>:<action>[,<action>]`)
//! and what kiln grants for them (pure).
//!
//! Kubernetes namespaces are the tenants: a repository `<namespace>/<rest>` belongs to that
//! namespace. A ServiceAccount may push to and pull from its own namespace's repositories; in
//! another namespace it gets what RBAC allows it on `imagestreams/layers` there (`update` for a
//! push, `get` for a pull, what the chart's `kiln-image-pusher` and `kiln-image-puller` grant),
//! as OpenShift's integrated registry decides. Nothing else (catalog listing, deletes, repositories
//! outside any namespace) is ever granted.

use std::collections::BTreeSet;

use serde::Serialize;

/// One requested or granted access: a resource and the actions on it (a JWT `access` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Access {
    /// The resource type (`repository`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The repository name (`namespace/image`).
    pub(crate) name: String,
    /// The actions (`pull`, `push`).
    pub(crate) actions: Vec<String>,
}

/// Why a scope could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {0:?}: expected <type>:<name>:<actions>, as repository:team/app:pull,push")]
pub(crate) struct ScopeError(pub(crate) String);

/// Parses the `scope` parameters of a token request; one parameter may hold several scopes
/// separated by spaces (as the OAuth 2 form does).
pub(crate) fn parse_scopes<'a>(
    params: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Access>, ScopeError> {
    let mut scopes = Vec::new();
    for param in params {
        for text in param.split(' ').filter(|s| !s.is_empty()) {
            scopes.push(parse_scope(text)?);
        }
    }
    Ok(scopes)
}

/// Parses one scope: the type runs to the first colon, the actions follow the last one.
pub(crate) fn parse_scope(text: &str) -> Result<Access, ScopeError> {
    let invalid = || ScopeError(text.to_string());
    let (kind, rest) = text.split_once(':').ok_or_else(invalid)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(invalid)?;
    if kind.is_empty() || name.is_empty() {
        return Err(invalid());
    }
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    Ok(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions,
    })
}

/// The namespace a ServiceAccount user name (`system:serviceaccount:<ns>:<name>`) belongs to.
pub(crate) fn service_account_namespace(username: &str) -> Option<&str> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty()).then_some(namespace)
}

/// The namespace owning a repository: its first path component, when there is at least one more
/// and every component is a valid repository path component.
pub(crate) fn repository_namespace(repository: &str) -> Option<&str> {
    let mut parts = repository.split('/');
    let first = parts.next()?;
    let mut rest = 0;
    for part in parts {
        if !valid_component(part) {
            return None;
        }
        rest += 1;
    }
    (rest > 0 && valid_component(first)).then_some(first)
}

/// A path component of distribution's reference grammar: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn valid_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A check the token server must ask the API server about: may the caller `verb`
/// `imagestreams/layers` in `namespace`?
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Check {
    /// The namespace owning the repository.
    pub(crate) namespace: String,
    /// `update` (push) or `get` (pull).
    pub(crate) verb: &'static str,
}

/// The RBAC verb on `imagestreams/layers` an action needs (`None`: never granted).
fn verb_of(action: &str) -> Option<&'static str> {
    match action {
        "pull" => Some("get"),
        "push" => Some("update"),
        _ => None,
    }
}

/// The checks to ask before deciding `requested` for a caller in `own` namespace (none for the
/// caller's own namespace, which is always allowed push and pull).
pub(crate) fn checks(own: Option<&str>, requested: &[Access]) -> BTreeSet<Check> {
    let mut out = BTreeSet::new();
    for access in requested.iter().filter(|a| a.kind == "repository") {
        let Some(namespace) = repository_namespace(&access.name) else {
            continue;
        };
        if Some(namespace) == own {
            continue;
        }
        for verb in access.actions.iter().filter_map(|a| verb_of(a)) {
            out.insert(Check {
                namespace: namespace.to_string(),
                verb,
            });
        }
    }
    out
}

/// What is granted of `requested` to a caller in `own` namespace, given the checks RBAC allowed:
/// each repository keeps the requested actions that are allowed (in the order asked); entries
/// left with none are dropped, as the protocol asks (the registry then refuses the request).
pub(crate) fn grant(
    own: Option<&str>,
    requested: &[Access],
    allowed: &BTreeSet<Check>,
) -> Vec<Access> {
    let mut granted: Vec<Access> = Vec::new();
    for access in requested.iter().filter(|a| a.kind == "repository") {
        let Some(namespace) = repository_namespace(&access.name) else {
            continue;
        };
        let mut actions: Vec<String> = Vec::new();
        for action in &access.actions {
            let Some(verb) = verb_of(action) else {
                continue;
            };
            let ok = Some(namespace) == own
                || allowed.contains(&Check {
                    namespace: namespace.to_string(),
                    verb,
                });
            if ok && !actions.contains(action) {
                actions.push(action.clone());
            }
        }
        if actions.is_empty() {
            continue;
        }
        match granted.iter_mut().find(|g| g.name == access.name) {
            Some(g) => {
                for a in actions {
                    if !g.actions.contains(&a) {
                        g.actions.push(a);
                    }
                }
            }
            None => granted.push(Access {
                kind: access.kind.clone(),
                name: access.name.clone(),
                actions,
            }),
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, actions: &[&str]) -> Access {
        Access {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn scopes_parse() {
        let ok = [
            (
                "repository:a/app:pull,push",
                repo("a/app", &["pull", "push"]),
            ),
            ("repository:a/b/c:pull", repo("a/b/c", &["pull"])),
            ("repository:a/app:", repo("a/app", &[])),
            (
                "registry:catalog:*",
                Access {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                },
            ),
            (
                "repository(plugin):a/p:pull",
                Access {
                    kind: "repository(plugin)".into(),
                    name: "a/p".into(),
                    actions: vec!["pull".into()],
                },
            ),
        ];
        for (text, want) in ok {
            assert_eq!(parse_scope(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "repository",
            "repository:a",
            ":a:pull",
            "repository::pull",
        ] {
            assert!(parse_scope(bad).is_err(), "{bad}");
        }
        let many = parse_scopes([
            "repository:a/x:pull repository:a/y:push",
            "repository:b/z:pull",
        ])
        .unwrap();
        assert_eq!(
            many,
            vec![
                repo("a/x", &["pull"]),
                repo("a/y", &["push"]),
                repo("b/z", &["pull"])
            ]
        );
    }

    #[test]
    fn namespaces() {
        let cases = [
            ("a/app", Some("a")),
            ("team-a/x/y", Some("team-a")),
            ("app", None),
            ("a/", None),
            ("/app", None),
            ("A/app", None),
            ("a/App", None),
            ("a/x..y", None),
            ("a/x__y", Some("a")),
            ("a/x--y", Some("a")),
            ("a/-x", None),
        ];
        for (name, want) in cases {
            assert_eq!(repository_namespace(name), want, "{name}");
        }
        assert_eq!(
            service_account_namespace("system:serviceaccount:a:builder"),
            Some("a")
        );
        for user in [
            "alice",
            "system:serviceaccount:a",
            "system:serviceaccount::b",
        ] {
            assert_eq!(service_account_namespace(user), None, "{user}");
        }
    }

    #[test]
    fn grants() {
        let allowed_pull_b = BTreeSet::from([Check {
            namespace: "b".into(),
            verb: "get",
        }]);
        let none = BTreeSet::new();
        /// (caller's namespace, requested, allowed by RBAC, granted)
        type Case<'a> = (
            Option<&'a str>,
            Vec<Access>,
            &'a BTreeSet<Check>,
            Vec<Access>,
        );
        let cases: Vec<Case> = vec![
            // Own namespace: push and pull, nothing else.
            (
                Some("a"),
                vec![repo("a/app", &["pull", "push", "delete", "*"])],
                &none,
                vec![repo("a/app", &["pull", "push"])],
            ),
            // Another namespace without RBAC: nothing.
            (
                Some("a"),
                vec![repo("b/app", &["pull", "push"])],
                &none,
                vec![],
            ),
            // Another namespace whose layers RBAC lets the caller get: pull only.
            (
                Some("a"),
                vec![repo("b/app", &["push", "pull"])],
                &allowed_pull_b,
                vec![repo("b/app", &["pull"])],
            ),
            // A prefix is not a namespace; repositories outside namespaces and other types never.
            (
                Some("a"),
                vec![
                    repo("ab/app", &["pull"]),
                    repo("a", &["pull"]),
                    Access {
                        kind: "registry".into(),
                        name: "catalog".into(),
                        actions: vec!["*".into()],
                    },
                ],
                &none,
                vec![],
            ),
            // Not a ServiceAccount: RBAC only.
            (
                None,
                vec![repo("a/app", &["pull"]), repo("b/app", &["pull"])],
                &allowed_pull_b,
                vec![repo("b/app", &["pull"])],
            ),
            // Repeated scopes merge.
            (
                Some("a"),
                vec![repo("a/app", &["pull"]), repo("a/app", &["push", "pull"])],
                &none,
                vec![repo("a/app", &["pull", "push"])],
            ),
        ];
        for (own, requested, allowed, want) in cases {
            assert_eq!(
                grant(own, &requested, allowed),
                want,
                "{own:?} {requested:?}"
            );
        }
        let asked = checks(
            Some("a"),
            &[
                repo("a/app", &["pull", "push"]),
                repo("b/app", &["pull", "push", "delete"]),
                repo("c", &["pull"]),
            ],
        );
        assert_eq!(
            asked.into_iter().collect::<Vec<_>>(),
            vec![
                Check {
                    namespace: "b".into(),
                    verb: "get"
                },
                Check {
                    namespace: "b".into(),
                    verb: "update"
                },
            ]
        );
    }
}
