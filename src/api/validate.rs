//! Checks of spec fields that the CRD schema also states (pattern, length, CEL rules), applied
//! again where the values are used: an object can reach kiln without passing an API server
//! (`kiln build -f`, an API server that skips rules), and a bad value there is a host path.

use super::common::BuildVolume;

/// A DNS-1123 label: what a build volume's name must be (it becomes a directory name).
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// The longest DNS-1123 label.
pub const DNS_LABEL_MAX: usize = 63;
/// The longest mount path accepted (Linux's `PATH_MAX`).
pub const MOUNT_PATH_MAX: usize = 4096;
/// The most build volumes a build may have (bounds the cost of the CRD's CEL rules).
pub const MAX_BUILD_VOLUMES: usize = 32;
/// The most mounts of one build volume.
pub const MAX_VOLUME_MOUNTS: usize = 16;

/// Paths that buildah provides to every `RUN` step itself; a build volume may be mounted neither
/// on them nor below them.
pub const RESERVED_MOUNT_PATHS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
];

/// CEL rule: an absolute path of non-empty segments, not `/`, no trailing `/`.
pub const MOUNT_PATH_SHAPE_RULE: &str = "self.matches('^(/[^/]+)+$')";
/// CEL rule: no `.` or `..` segment.
pub const MOUNT_PATH_DOTS_RULE: &str = "!self.matches('/[.][.]?(/|$)')";
/// CEL rule: no `:` (buildah's `--volume` separates its fields with it).
pub const MOUNT_PATH_COLON_RULE: &str = "!self.contains(':')";
/// CEL rule: not on or below a path of [`RESERVED_MOUNT_PATHS`].
pub const MOUNT_PATH_RESERVED_RULE: &str = "!self.matches('^/(dev|proc|sys|etc/hosts|etc/hostname|etc/resolv[.]conf|run/[.]containerenv)(/|$)')";

/// Why `name` is not a DNS-1123 label, if it is not.
pub fn dns_label(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if name.is_empty() || name.len() > DNS_LABEL_MAX {
        return Err(format!(
            "must be 1 to {DNS_LABEL_MAX} characters, got {}",
            name.len()
        ));
    }
    let inner_ok = bytes.iter().all(|b| alnum(b) || *b == b'-');
    let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
    if inner_ok && ends_ok {
        Ok(())
    } else {
        Err("must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit".into())
    }
}

/// Why `name` is not a DNS-1123 subdomain (what object names are), if it is not. Names go into
/// API paths unescaped, so a `/` or `..` must never get that far.
pub fn object_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("must be 1 to 253 characters, got {}", name.len()));
    }
    if name.split('.').all(|part| dns_label(part).is_ok()) {
        Ok(())
    } else {
        Err("must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'".into())
    }
}

/// Why `path` cannot be a build volume's mount path in `RUN` steps, if it cannot.
pub fn mount_path(path: &str) -> Result<(), String> {
    if path.len() > MOUNT_PATH_MAX {
        return Err(format!("must be at most {MOUNT_PATH_MAX} bytes"));
    }
    if !path.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    if path == "/" {
        return Err("must not be the root directory".into());
    }
    if path.chars().any(|c| c.is_control() || c == ':') {
        return Err("must not contain ':' or control characters".into());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err("must not contain empty segments or end with '/'".into());
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err("must not contain '.' or '..' segments".into());
    }
    if let Some(reserved) = RESERVED_MOUNT_PATHS.iter().find(|r| {
        path == **r
            || path
                .strip_prefix(**r)
                .is_some_and(|rest| rest.starts_with('/'))
    }) {
        return Err(format!(
            "must not be on or below {reserved}, which the build container provides"
        ));
    }
    Ok(())
}

/// Checks the build volumes of a Docker strategy: names, mount paths, and that neither repeats.
/// `field` is the list's path, e.g. `spec.strategy.dockerStrategy.volumes`.
pub fn build_volumes(volumes: &[BuildVolume], field: &str) -> Result<(), String> {
    if volumes.len() > MAX_BUILD_VOLUMES {
        return Err(format!(
            "{field}: at most {MAX_BUILD_VOLUMES} build volumes, got {}",
            volumes.len()
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut paths = std::collections::BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let at = format!("{field}[{i}]");
        dns_label(&v.name).map_err(|e| format!("{at}.name {:?}: {e}", v.name))?;
        if !names.insert(v.name.as_str()) {
            return Err(format!("{at}.name {:?}: used by two volumes", v.name));
        }
        if v.mounts.is_empty() {
            return Err(format!("{at}.mounts: at least one mount is required"));
        }
        if v.mounts.len() > MAX_VOLUME_MOUNTS {
            return Err(format!(
                "{at}.mounts: at most {MAX_VOLUME_MOUNTS} mounts, got {}",
                v.mounts.len()
            ));
        }
        for (j, m) in v.mounts.iter().enumerate() {
            let path = &m.destination_path;
            let at = format!("{at}.mounts[{j}].destinationPath");
            mount_path(path).map_err(|e| format!("{at} {path:?}: {e}"))?;
            if !paths.insert(path.as_str()) {
                return Err(format!("{at} {path:?}: mounted twice"));
            }
        }
    }
    Ok(())
}

/// A commit as a build may name it: a hex object name, abbreviated to no fewer than 4 digits
/// (empty means none).
pub const COMMIT_PATTERN: &str = "^([0-9a-fA-F]{4,64})?$";

/// Why `commit` is not a hex object name, if it is not (empty is allowed: no commit).
pub fn commit(commit: &str) -> Result<(), String> {
    let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if commit.is_empty() || (hex && (4..=64).contains(&commit.len())) {
        Ok(())
    } else {
        Err("must be a commit hash (4 to 64 hexadecimal digits), not a revision expression".into())
    }
}

/// The kinds OpenShift accepts for `dockerStrategy.from` and an ImageStream tag's `from`.
pub const FROM_KINDS: &[&str] = &["DockerImage", "ImageStreamTag", "ImageStreamImage"];
/// The kinds OpenShift accepts for `output.to`.
pub const OUTPUT_KINDS: &[&str] = &["ImageStreamTag", "DockerImage"];
/// The kind OpenShift accepts for an ImageChange trigger's `from`.
pub const TRIGGER_FROM_KINDS: &[&str] = &["ImageStreamTag"];
/// CEL rule on a struct with an optional reference `from`: its kind is one of [`FROM_KINDS`].
pub const FROM_KIND_RULE: &str = "!has(self.from) || !has(self.from.kind) || self.from.kind in ['DockerImage', 'ImageStreamTag', 'ImageStreamImage']";
/// The message of [`FROM_KIND_RULE`].
pub const FROM_KIND_MESSAGE: &str =
    "from.kind must be DockerImage, ImageStreamTag or ImageStreamImage";
/// CEL rule on an ImageChange trigger: its `from` kind is [`TRIGGER_FROM_KINDS`].
pub const TRIGGER_FROM_KIND_RULE: &str =
    "!has(self.from) || !has(self.from.kind) || self.from.kind == 'ImageStreamTag'";
/// The message of [`TRIGGER_FROM_KIND_RULE`].
pub const TRIGGER_FROM_KIND_MESSAGE: &str = "imageChange.from.kind must be ImageStreamTag";

/// Checks an image reference's `kind` against the kinds `allowed` there (an empty or absent kind
/// is left to the field's default); the message names the kinds and, for `ImageStream`, how to
/// name a stream's image.
pub fn reference_kind(kind: Option<&str>, allowed: &[&str]) -> Result<(), String> {
    let Some(kind) = kind.filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    if allowed.contains(&kind) {
        return Ok(());
    }
    let hint = if kind == "ImageStream" {
        " (an ImageStream is referred to through one of its tags: kind ImageStreamTag, name <stream>:<tag>)"
    } else {
        ""
    };
    Err(format!(
        "kind {kind:?} is not supported here; use {}{hint}",
        allowed.join(" or ")
    ))
}

/// CEL rule: no password in a URL's user part.
pub const URL_PASSWORD_RULE: &str = "!self.matches('^[A-Za-z][-A-Za-z0-9+.]*://[^/?#@]*:[^/?#]*@')";
/// CEL rule: no user part at all in an http(s) URL (a lone user name there is usually a token).
pub const URL_HTTP_USER_RULE: &str = "!self.matches('^(?i)https?://[^/?#]*@')";
/// What to say when a repository URL carries credentials.
pub const URL_CREDENTIALS_MESSAGE: &str = "the repository URL carries credentials in its user part; remove them and put them in a source secret (spec.source.sourceSecret)";

/// The byte range of a URL's user part when it carries a credential: a password
/// (`user:password@`), or any user part over http(s), where a lone user name is usually a token.
/// An ssh user name (`ssh://git@host/…`) is not a credential.
pub fn url_credentials(url: &str) -> Option<std::ops::Range<usize>> {
    let (scheme, rest) = url.split_once("://")?;
    let start = scheme.len() + 3;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let user = &authority[..at];
    let http = matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https");
    (user.contains(':') || (http && !user.is_empty())).then_some(start..start + at)
}

/// Why a build's source is refused when its repository URL carries credentials (naming the
/// field), or None.
pub fn source_url_credentials(spec: &super::common::CommonSpec) -> Option<String> {
    let uri = &spec.source.as_ref()?.git.as_ref()?.uri;
    url_credentials(uri).map(|_| format!("spec.source.git.uri: {URL_CREDENTIALS_MESSAGE}"))
}

/// The URL with its credential (see [`url_credentials`]) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url_credentials(url) {
        Some(r) => format!("{}***{}", &url[..r.start], &url[r.end..]),
        None => url.to_string(),
    }
}

/// `text` with the credential of `url`, and its password alone, replaced by `***` wherever they
/// appear (for messages of libraries that quote the URL).
pub fn scrub(text: &str, url: &str) -> String {
    let Some(r) = url_credentials(url) else {
        return text.to_string();
    };
    let user = &url[r];
    let mut out = text.replace(user, "***");
    if let Some((_, password)) = user.split_once(':').filter(|(_, p)| p.len() >= 4) {
        out = out.replace(password, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::BuildVolumeMount;

    #[test]
    fn object_names() {
        for (name, ok) in [
            ("app", true),
            ("app.v2", true),
            ("a-1.b-2", true),
            ("", false),
            ("..", false),
            ("../secrets", false),
            ("a/b", false),
            ("App", false),
            ("a..b", false),
            ("a%2fb", false),
        ] {
            assert_eq!(object_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn commits() {
        for (c, ok) in [
            ("", true),
            ("abcd", true),
            ("0123456789abcdef0123456789abcdef01234567", true),
            (&"a".repeat(64) as &str, true),
            (&"a".repeat(65) as &str, false),
            ("abc", false),
            ("HEAD", false),
            ("main~1", false),
            ("abcd^{tree}", false),
            ("@{-1}", false),
            (":/fix", false),
        ] {
            assert_eq!(commit(c).is_ok(), ok, "{c:?}");
        }
    }

    #[test]
    fn url_credentials_are_found_and_redacted() {
        for (url, redacted) in [
            ("https://github.com/o/r.git", "https://github.com/o/r.git"),
            (
                "https://user:tok3n@github.com/o/r.git",
                "https://***@github.com/o/r.git",
            ),
            (
                "https://ghp_tok3n@github.com/o/r.git",
                "https://***@github.com/o/r.git",
            ),
            ("HTTP://u:p@h/r", "HTTP://***@h/r"),
            ("ssh://git@host/r.git", "ssh://git@host/r.git"),
            ("ssh://git:pw@host/r.git", "ssh://***@host/r.git"),
            ("git://host/r@x", "git://host/r@x"),
            ("https://host/r?u=a@b", "https://host/r?u=a@b"),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("https://u:p@ss@host/r", "https://***@host/r"),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
            assert_eq!(url_credentials(url).is_some(), url != redacted, "{url}");
        }
        let url = "https://user:s3cr3t-token@git.example/r.git";
        assert_eq!(
            scrub("failed to connect to https://user:s3cr3t-token@git.example/r.git: password s3cr3t-token", url),
            "failed to connect to https://***@git.example/r.git: password ***"
        );
        let spec = |uri: &str| -> crate::api::CommonSpec {
            serde_json::from_value(serde_json::json!({
                "source": {"git": {"uri": uri}}, "strategy": {"type": "Docker"}
            }))
            .unwrap()
        };
        assert_eq!(
            source_url_credentials(&spec("https://u:tok@h/r.git")).as_deref(),
            Some(&*format!("spec.source.git.uri: {URL_CREDENTIALS_MESSAGE}"))
        );
        assert_eq!(source_url_credentials(&spec("https://h/r.git")), None);
        assert_eq!(source_url_credentials(&Default::default()), None);
    }

    #[test]
    fn volume_names() {
        let long = "a".repeat(64);
        for (name, ok) in [
            ("secret-1", true),
            ("a", true),
            (&"a".repeat(63) as &str, true),
            ("", false),
            (&long, false),
            ("/", false),
            ("/dev", false),
            ("..", false),
            ("../../usr/bin", false),
            ("a/b", false),
            ("Upper", false),
            ("-lead", false),
            ("trail-", false),
            ("dot.ted", false),
        ] {
            assert_eq!(dns_label(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn mount_paths() {
        let long = format!("/{}", "a".repeat(MOUNT_PATH_MAX));
        for (path, ok) in [
            ("/run/secrets/app", true),
            ("/etc/pki/ca-trust/source/anchors", true),
            ("/devices", true),
            ("/var/run/secrets/x", true),
            ("/", false),
            ("//", false),
            ("", false),
            ("relative/path", false),
            ("/dev", false),
            ("/dev/shm", false),
            ("/proc/self", false),
            ("/sys", false),
            ("/etc/hosts", false),
            ("/etc/resolv.conf", false),
            ("/a/../etc", false),
            ("/a/..", false),
            ("/a/./b", false),
            ("/a//b", false),
            ("/a/", false),
            ("/a:/b", false),
            ("/a\nb", false),
            (&long, false),
        ] {
            assert_eq!(mount_path(path).is_ok(), ok, "{path:?}");
        }
    }

    fn volume(name: &str, paths: &[&str]) -> BuildVolume {
        BuildVolume {
            name: name.into(),
            mounts: paths
                .iter()
                .map(|p| BuildVolumeMount {
                    destination_path: p.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn volume_lists_name_the_field() {
        let f = "spec.strategy.dockerStrategy.volumes";
        assert!(build_volumes(&[volume("a", &["/x"]), volume("b", &["/y"])], f).is_ok());
        for (volumes, want) in [
            (vec![volume("..", &["/x"])], "volumes[0].name \"..\""),
            (
                vec![volume("a", &["/x"]), volume("b", &["/dev"])],
                "volumes[1].mounts[0].destinationPath \"/dev\"",
            ),
            (
                vec![volume("a", &["/x"]), volume("a", &["/y"])],
                "used by two volumes",
            ),
            (
                vec![volume("a", &["/x"]), volume("b", &["/x"])],
                "mounted twice",
            ),
            (vec![volume("a", &[])], "at least one mount"),
        ] {
            let err = build_volumes(&volumes, f).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let many: Vec<_> = (0..=MAX_BUILD_VOLUMES)
            .map(|i| volume(&format!("v{i}"), &[&format!("/v{i}")]))
            .collect();
        assert!(build_volumes(&many, f).unwrap_err().contains("at most"));
    }
}
