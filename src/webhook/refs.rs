//! Which pushed refs build: OpenShift's exact match against `source.git.ref`, and kiln's branch
//! and tag globs.
//!
//! The glob matcher is written here rather than taken from a crate: it needs three operators
//! (`*`, `**`, `?`) over short strings, and the crates that offer them (globset) bring a regex
//! engine along. It runs in O(pattern × ref) time, so no pattern can make it backtrack.

/// A ref named by a push, classified by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushedRef<'a> {
    /// `refs/heads/<name>`, or a bare name (generic callers often send one).
    Branch(&'a str),
    /// `refs/tags/<name>`.
    Tag(&'a str),
}

impl<'a> PushedRef<'a> {
    /// Classifies a ref as sent by a provider.
    pub(crate) fn parse(full: &'a str) -> Self {
        if let Some(tag) = full.strip_prefix("refs/tags/") {
            Self::Tag(tag)
        } else {
            Self::Branch(full.strip_prefix("refs/heads/").unwrap_or(full))
        }
    }
}

/// What a webhook trigger builds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefFilter<'a> {
    /// `source.git.ref` of the BuildConfig (empty or absent: the default branch).
    pub(crate) config_ref: Option<&'a str>,
    /// kiln extension: branch globs; when set they replace the exact match on `config_ref`.
    pub(crate) branches: &'a [String],
    /// kiln extension: tag globs; pushes of matching tags build.
    pub(crate) tags: &'a [String],
}

/// How a pushed ref matched a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefMatch {
    /// It is the BuildConfig's own ref: the Build keeps `source.git.ref`.
    ConfigRef,
    /// It matched a branch or tag glob: the Build's `source.git.ref` becomes the pushed ref.
    Glob,
}

/// The branch an empty `source.git.ref` stands for: the payload's default branch when it names
/// one, else `master` (OpenShift's `DefaultConfigRef`).
fn effective_config_ref<'a>(
    config_ref: Option<&'a str>,
    default_branch: Option<&'a str>,
) -> &'a str {
    match config_ref.filter(|r| !r.is_empty()) {
        Some(r) => r.strip_prefix("refs/heads/").unwrap_or(r),
        None => default_branch.filter(|b| !b.is_empty()).unwrap_or("master"),
    }
}

/// Whether a push of `pushed` builds under `filter`, and how it matched.
pub(crate) fn matches(
    pushed: &str,
    default_branch: Option<&str>,
    filter: &RefFilter<'_>,
) -> Option<RefMatch> {
    let wanted = effective_config_ref(filter.config_ref, default_branch);
    match PushedRef::parse(pushed) {
        PushedRef::Branch(name) if filter.branches.is_empty() => {
            (name == wanted).then_some(RefMatch::ConfigRef)
        }
        PushedRef::Branch(name) => {
            if filter.branches.iter().any(|g| glob_matches(g, name)) {
                Some(if name == wanted {
                    RefMatch::ConfigRef
                } else {
                    RefMatch::Glob
                })
            } else {
                None
            }
        }
        PushedRef::Tag(name) => {
            if pushed == wanted
                || name == wanted
                    && filter
                        .config_ref
                        .is_some_and(|r| r.starts_with("refs/tags/"))
            {
                Some(RefMatch::ConfigRef)
            } else if filter.tags.iter().any(|g| glob_matches(g, name)) {
                Some(RefMatch::Glob)
            } else {
                None
            }
        }
    }
}

/// Whether `text` matches `pattern`: `*` is any run of characters but `/`, `**` any run at all,
/// `?` one character but `/`; everything else stands for itself.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Char(char),
        One,
        Star,
        DoubleStar,
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                Tok::DoubleStar
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // reach[j]: the first i tokens can match the first j characters.
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for tok in toks {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            match tok {
                Tok::Star | Tok::DoubleStar => {
                    next[j] = reach[j]
                        || (j > 0 && next[j - 1] && (tok == Tok::DoubleStar || text[j - 1] != '/'));
                }
                Tok::One => next[j] = j > 0 && reach[j - 1] && text[j - 1] != '/',
                Tok::Char(c) => next[j] = j > 0 && reach[j - 1] && text[j - 1] == c,
            }
        }
        reach = next;
    }
    reach[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_table() {
        let cases = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("release/*", "release/1.0", true),
            ("release/*", "release/1.0/hotfix", false),
            ("release/**", "release/1.0/hotfix", true),
            ("**", "a/b/c", true),
            ("*", "", true),
            ("v?.*", "v1.2", true),
            ("v?.*", "v10.2", false),
            ("?", "/", false),
            ("feature-*-x", "feature-abc-x", true),
            ("feature-*-x", "feature-abc-y", false),
            ("", "", true),
            ("", "a", false),
            ("a*b*c*d", "aXbXcXd", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_matches(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn a_pathological_glob_is_decided_without_backtracking() {
        // Backtracking matchers take exponential time here; this one is linear per token.
        let pattern = "*a".repeat(30) + "b";
        assert!(!glob_matches(&pattern, &"a".repeat(1000)));
    }

    #[test]
    fn ref_matching_table() {
        fn m<'a>(config_ref: Option<&'a str>, b: &'a [String], t: &'a [String]) -> RefFilter<'a> {
            RefFilter {
                config_ref,
                branches: b,
                tags: t,
            }
        }
        let none: &[String] = &[];
        let rel = &["release/*".to_string()][..];
        let tags = &["v*".to_string()][..];
        let cases = [
            // (pushed, default branch, filter, expected)
            (
                "refs/heads/main",
                None,
                m(Some("main"), none, none),
                Some(RefMatch::ConfigRef),
            ),
            (
                "refs/heads/main",
                None,
                m(Some("refs/heads/main"), none, none),
                Some(RefMatch::ConfigRef),
            ),
            ("refs/heads/dev", None, m(Some("main"), none, none), None),
            (
                "main",
                None,
                m(Some("main"), none, none),
                Some(RefMatch::ConfigRef),
            ),
            // An empty ref means the payload's default branch, else master.
            (
                "refs/heads/master",
                None,
                m(None, none, none),
                Some(RefMatch::ConfigRef),
            ),
            ("refs/heads/main", None, m(None, none, none), None),
            (
                "refs/heads/main",
                Some("main"),
                m(None, none, none),
                Some(RefMatch::ConfigRef),
            ),
            (
                "refs/heads/master",
                Some("main"),
                m(Some(""), none, none),
                None,
            ),
            // Branch globs replace the exact match.
            (
                "refs/heads/release/2",
                None,
                m(Some("main"), rel, none),
                Some(RefMatch::Glob),
            ),
            ("refs/heads/main", None, m(Some("main"), rel, none), None),
            // Tags build only with tag globs (or when the config ref names that tag).
            ("refs/tags/v1.0", None, m(Some("main"), none, none), None),
            (
                "refs/tags/v1.0",
                None,
                m(Some("main"), none, tags),
                Some(RefMatch::Glob),
            ),
            ("refs/tags/x1.0", None, m(Some("main"), none, tags), None),
            (
                "refs/tags/v1.0",
                None,
                m(Some("refs/tags/v1.0"), none, none),
                Some(RefMatch::ConfigRef),
            ),
            ("refs/tags/main", None, m(Some("main"), none, none), None),
        ];
        for (pushed, default, filter, want) in cases {
            assert_eq!(
                matches(pushed, default, &filter),
                want,
                "{pushed} {default:?} {filter:?}"
            );
        }
    }
}
