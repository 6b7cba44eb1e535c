//! Image references (`[host[:port]/]path[:tag][@digest]`) parsed by the distribution grammar,
//! without a regular expression.
//!
//! oci-client reads a reference with one large regular expression whose compiled form (its tag
//! class is Unicode's `\w`) holds about 7 MiB for the life of the process, and the controller
//! checks a reference for every build Pod it creates. This parser follows the same grammar
//! (distribution's `reference` package) and normalization (Docker Hub's names), with the same
//! messages, in a few string scans; a table test holds it to oci-client's parser. It is the
//! stricter of the two in one place, as Go's `\w` is: a tag is ASCII.

/// The longest repository path the distribution spec allows.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Docker Hub's registry name, and the legacy one normalized to it.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The tag of a reference that names neither tag nor digest.
const DEFAULT_TAG: &str = "latest";

/// A parsed image reference, normalized as the registry client resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageReference {
    /// `host[:port]` (`docker.io` when the reference names none).
    pub(crate) registry: String,
    /// The repository path (`library/<name>` for Docker Hub's official images).
    pub(crate) repository: String,
    /// The tag (`latest` when neither tag nor digest is given).
    pub(crate) tag: Option<String>,
    /// `algorithm:hex`.
    pub(crate) digest: Option<String>,
}

impl ImageReference {
    /// `registry/repository`.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The reference as the registry client takes it.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                registry,
                repository,
                tag.clone(),
                digest.clone(),
            ),
            (None, Some(digest)) => {
                oci_client::Reference::with_digest(registry, repository, digest.clone())
            }
            (tag, None) => oci_client::Reference::with_tag(
                registry,
                repository,
                tag.clone().unwrap_or_else(|| DEFAULT_TAG.into()),
            ),
        }
    }
}

/// Parses `reference`; the error is the grammar's message (as oci-client words it).
pub(crate) fn parse(reference: &str) -> Result<ImageReference, &'static str> {
    const INVALID: &str = "invalid reference format";
    if reference.is_empty() {
        return Err("repository name must have at least one component");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) if is_digest(digest) => (rest, Some(digest)),
        Some(_) => return Err(INVALID),
        None => (reference, None),
    };
    // A ':' after the last '/' starts the tag; one before it is the registry's port.
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || !is_name(name) {
        return Err(INVALID);
    }
    let (registry, repository) = split_registry(name);
    if repository.len() > NAME_TOTAL_LENGTH_MAX {
        return Err("repository name must not be more than 255 characters");
    }
    if let Some(digest) = digest {
        check_digest_length(digest)?;
    }
    let tag = match (tag, digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (tag, _) => tag.map(str::to_string),
    };
    Ok(ImageReference {
        registry,
        repository,
        tag,
        digest: digest.map(str::to_string),
    })
}

/// `[domain/]path-component[/path-component]*`: the first component may be a registry host.
fn is_name(name: &str) -> bool {
    let mut components = name.split('/');
    let Some(first) = components.next() else {
        return false;
    };
    let rest: Vec<&str> = components.collect();
    if !rest.iter().all(|c| is_path_component(c)) {
        return false;
    }
    is_path_component(first) || (!rest.is_empty() && is_domain(first))
}

/// `[a-z0-9]+` runs joined by one of `.`, `_`, `__` or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut separator = String::new();
    for b in bytes {
        if alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(*b));
        } else {
            return false;
        }
    }
    true
}

/// `label[.label]*[:port]`, each label alphanumeric with inner dashes.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(word)
        && bytes.len() <= 128
        && bytes.iter().all(|b| word(b) || matches!(b, b'.' | b'-'))
}

/// `algorithm:hex`, the algorithm's parts joined by `-_+.`, at least 32 hex digits.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let part_ok = |part: &str| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(part_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The known algorithms' digests are exactly as long as the hash.
fn check_digest_length(digest: &str) -> Result<(), &'static str> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or("invalid checksum digest format")?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() == want {
        Ok(())
    } else {
        Err("invalid checksum digest length")
    }
}

/// Docker's normalization: the first component is the registry when it has a `.` or `:` or is
/// `localhost`; otherwise the registry is Docker Hub, where a one-component name is an official
/// image under `library/`.
fn split_registry(name: &str) -> (String, String) {
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if registry == DOCKER_HUB_LEGACY {
        registry = DOCKER_HUB.into();
    }
    if registry == DOCKER_HUB && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    (registry, repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// References across the grammar, good and bad; each is also read by oci-client.
    fn cases() -> Vec<String> {
        let long_path = format!("quay.io/{}", "a".repeat(255));
        let longest_path = format!("quay.io/{}", "a".repeat(256));
        let mut cases: Vec<String> = [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "docker.io/busybox",
            "index.docker.io/busybox",
            "index.docker.io/team/app:v1",
            "quay.io/x/y",
            "quay.io/x/y:1",
            "localhost/app",
            "localhost:5000/app:dev",
            "localhost:5000",
            "127.0.0.1:5000/a/b:c",
            "registry.example.com:443/team-a/app_1.x__y--z:v1.2-rc_3",
            "test.com:tag",
            "test.com:5000",
            "foo_bar.com:8080",
            "Foo/bar",
            "a.b-c.d/e",
            "lowercase:Uppercase",
            "UPPER/case",
            "upper/Case",
            "a..b",
            "a._b",
            "a___b",
            "a__b",
            "a-----b",
            "-a",
            "a-",
            "a/",
            "/a",
            "a//b",
            "host:/a",
            "host:port/a",
            "-host.com/a",
            "host-.com/a",
            "ho_st.com/a",
            "a:",
            "a:.tag",
            "a:_tag",
            "a:-tag",
            "a b",
            "x@sha256:short",
            "x@sha256:0123456789abcdef0123456789abcdef",
            "x@md5:0123456789abcdef0123456789abcdef",
            "x@sha512:0123456789abcdef0123456789abcdef",
            "x@SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "x@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "x@sha256+b64:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "x@@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "x@",
            "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ":tag",
            "a:b:c",
            "a:b/c",
            "ab:c/d:e",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cases.extend([
            format!("x@{SHA}"),
            format!("x:t@{SHA}"),
            format!("quay.io:5000/x/y:t@{SHA}"),
            format!("a:{}", "t".repeat(128)),
            format!("a:{}", "t".repeat(129)),
            long_path,
            longest_path,
        ]);
        cases
    }

    #[test]
    fn the_grammar_reads_every_reference_as_oci_client_does() {
        for reference in cases() {
            let ours = parse(&reference);
            let theirs = reference.parse::<oci_client::Reference>();
            match (&ours, &theirs) {
                (Ok(ours), Ok(theirs)) => {
                    assert_eq!(ours.registry, theirs.registry(), "{reference}");
                    assert_eq!(ours.repository, theirs.repository(), "{reference}");
                    assert_eq!(ours.tag.as_deref(), theirs.tag(), "{reference}");
                    assert_eq!(ours.digest.as_deref(), theirs.digest(), "{reference}");
                    assert_eq!(ours.to_oci().whole(), theirs.whole(), "{reference}");
                }
                (Err(ours), Err(theirs)) => assert_eq!(*ours, theirs.to_string(), "{reference}"),
                _ => panic!("{reference}: ours {ours:?}, oci-client {theirs:?}"),
            }
        }
    }

    #[test]
    fn a_tag_is_ascii() {
        // Go's `\w` (and so docker's and buildah's grammar) is ASCII; oci-client's is Unicode's.
        assert_eq!(parse("app:é"), Err("invalid reference format"));
        assert!("app:é".parse::<oci_client::Reference>().is_ok());
    }

    #[test]
    fn a_reference_is_normalized_as_the_client_resolves_it() {
        let cases = [
            ("golang:1.22", "docker.io/library/golang", Some("1.22"), None),
            ("team/app", "docker.io/team/app", Some("latest"), None),
            ("quay.io/x/y", "quay.io/x/y", Some("latest"), None),
            (
                "127.0.0.1:5000/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "127.0.0.1:5000/a/b",
                None,
                Some(SHA),
            ),
        ];
        for (reference, name, tag, digest) in cases {
            let parsed = parse(reference).unwrap();
            assert_eq!(parsed.name(), name, "{reference}");
            assert_eq!(parsed.tag.as_deref(), tag, "{reference}");
            assert_eq!(parsed.digest.as_deref(), digest, "{reference}");
        }
    }
}
