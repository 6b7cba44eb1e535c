//! Name validation (RFC 1123 / RFC 1035), as the apiserver applies it to `metadata.name`.

/// Which naming rule a resource's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: most resources.
    Subdomain,
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label: services.
    Dns1035Label,
    /// Any valid path segment: RBAC roles and bindings (`system:discovery`).
    PathSegment,
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

impl NameRule {
    /// The rule for a resource (by group and plural).
    pub fn for_resource(group: &str, plural: &str) -> NameRule {
        match (group, plural) {
            ("", "namespaces") => NameRule::Label,
            ("", "services") => NameRule::Dns1035Label,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }

    fn max_len(self) -> usize {
        match self {
            NameRule::Subdomain | NameRule::PathSegment => 253,
            NameRule::Label | NameRule::Dns1035Label => 63,
        }
    }
}

fn is_label(part: &str, first_alpha: bool) -> bool {
    let bytes = part.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let first_ok = if first_alpha {
        first.is_ascii_lowercase()
    } else {
        alnum(first)
    };
    first_ok && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// Validates a full name; returns the apiserver's messages for each violation.
pub fn validate_name(name: &str, rule: NameRule) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > rule.max_len() {
        errors.push(format!(
            "must be no more than {} characters",
            rule.max_len()
        ));
    }
    let ok = match rule {
        NameRule::Subdomain => name.split('.').all(|p| is_label(p, false)),
        NameRule::Label => is_label(name, false),
        NameRule::Dns1035Label => is_label(name, true),
        NameRule::PathSegment => true,
    };
    if !ok {
        errors.push(
            match rule {
                NameRule::Subdomain => SUBDOMAIN_MSG,
                NameRule::Label => LABEL_MSG,
                NameRule::Dns1035Label => DNS1035_MSG,
                NameRule::PathSegment => "",
            }
            .to_string(),
        );
    }
    errors
}

/// Validates a `generateName` prefix: like a name once a suffix is appended.
pub fn validate_generate_name(prefix: &str, rule: NameRule) -> Vec<String> {
    let candidate = format!("{}a", prefix.trim_end_matches('-'));
    validate_name(&candidate, rule)
}

/// Path segment rules every name must also satisfy (`.`/`..`, `/`, `%`).
pub fn validate_path_segment(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ["/", "%"]
        .iter()
        .find(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let long = "a".repeat(64);
        let cases: &[(&str, NameRule, bool)] = &[
            ("foo", NameRule::Subdomain, true),
            ("foo.bar-1", NameRule::Subdomain, true),
            ("Foo", NameRule::Subdomain, false),
            ("foo_bar", NameRule::Subdomain, false),
            ("-foo", NameRule::Subdomain, false),
            ("foo.", NameRule::Subdomain, false),
            ("", NameRule::Subdomain, false),
            ("foo.bar", NameRule::Label, false),
            ("123-abc", NameRule::Label, true),
            (&long, NameRule::Label, false),
            (&long, NameRule::Subdomain, true),
            ("1abc", NameRule::Dns1035Label, false),
            ("abc-1", NameRule::Dns1035Label, true),
            ("system:discovery", NameRule::PathSegment, true),
        ];
        for (name, rule, ok) in cases {
            assert_eq!(
                validate_name(name, *rule).is_empty(),
                *ok,
                "{name:?} {rule:?}"
            );
        }
    }

    #[test]
    fn generate_name_prefixes() {
        assert!(validate_generate_name("build-", NameRule::Subdomain).is_empty());
        assert!(!validate_generate_name("Build-", NameRule::Subdomain).is_empty());
    }

    #[test]
    fn path_segments() {
        assert!(validate_path_segment("a/b").is_some());
        assert!(validate_path_segment("..").is_some());
        assert!(validate_path_segment("ok").is_none());
    }
}
