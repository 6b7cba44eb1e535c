//! Configuration of the local kubelet, including the image → host command table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, Result};
use super::runc::RuncRuntime;

/// Annotation holding the termination message an instant-mode Pod completes with.
pub const INSTANT_MESSAGE_ANNOTATION: &str = "sandbox.kiln.dev/termination-message";
/// Annotation holding the exit code an instant-mode Pod's containers end with.
pub const INSTANT_EXIT_CODE_ANNOTATION: &str = "sandbox.kiln.dev/exit-code";

/// How the local kubelet runs Pods.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The node name: Pods bound to this node, and unscheduled Pods, are run.
    pub node_name: String,
    /// Directory under which each Pod gets `<root>/pods/<uid>` (volumes, logs, mount points).
    pub root_dir: PathBuf,
    /// Which host binary stands for which image.
    pub image_map: ImageMap,
    /// When set, Pods are completed without running anything.
    pub instant: Option<InstantMode>,
    /// Upper bound on `terminationGracePeriodSeconds` before SIGKILL.
    pub max_grace: Duration,
    /// Field manager name recorded on status writes.
    pub field_manager: String,
    /// What runs containers.
    pub runtime: Runtime,
}

/// The container runtime of the local kubelet.
#[derive(Debug, Clone, Default)]
pub enum Runtime {
    /// Host processes in private namespaces (fast; images are not pulled).
    #[default]
    Host,
    /// runc, with images pulled from their registries.
    Runc(Arc<RuncRuntime>),
}

impl KubeletConfig {
    /// A configuration with the defaults and the given root directory.
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        KubeletConfig {
            node_name: "sandbox-node".to_string(),
            root_dir: root_dir.into(),
            image_map: ImageMap::with_defaults(),
            instant: None,
            max_grace: Duration::from_secs(2),
            field_manager: "kubelet".to_string(),
            runtime: Runtime::Host,
        }
    }
}

/// Instant mode: every container "runs" at once and exits with this result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstantMode {
    /// Termination message used when the Pod has no message annotation.
    pub default_message: String,
}

/// Placeholder in an instant-mode message replaced by a digest unique to the Pod.
pub const UID_DIGEST_PLACEHOLDER: &str = "{{uid-digest}}";

impl InstantMode {
    /// The termination message of a Pod: its annotation, else the default, with
    /// [`UID_DIGEST_PLACEHOLDER`] replaced by `sha256:<64 hex>` derived from the Pod's uid.
    pub fn message_for(&self, annotation: Option<&str>, uid: &str) -> String {
        let message = annotation.unwrap_or(&self.default_message);
        if !message.contains(UID_DIGEST_PLACEHOLDER) {
            return message.to_string();
        }
        message.replace(UID_DIGEST_PLACEHOLDER, &uid_digest(uid))
    }
}

/// `sha256:` and 64 hex digits made from a uid's hex digits (a UUID has 32: written twice).
/// Distinct uids give distinct digests; it is not a hash of any content.
pub fn uid_digest(uid: &str) -> String {
    let hex: String = uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let hex = if hex.is_empty() { "0".to_string() } else { hex };
    let digits: String = hex.chars().cycle().take(64).collect();
    format!("sha256:{digits}")
}

/// One row of the image table: images matching `pattern` run `host_path` as entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMapping {
    /// An image reference, a repository (any tag or digest), or a prefix ending in `*`.
    pub pattern: String,
    /// The host binary used as the image's entrypoint.
    pub host_path: String,
}

/// The image → host command table (images are never pulled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMap {
    /// Rows, searched in order; the first match wins.
    pub rows: Vec<ImageMapping>,
}

impl ImageMap {
    /// The built-in table: `busybox` → `/bin/busybox`.
    pub fn with_defaults() -> Self {
        ImageMap {
            rows: vec![ImageMapping {
                pattern: "busybox".to_string(),
                host_path: "/bin/busybox".to_string(),
            }],
        }
    }

    /// Adds a row in front of the existing ones (so user rows override defaults).
    pub fn prepend(&mut self, row: ImageMapping) {
        self.rows.insert(0, row);
    }

    /// The host entrypoint for an image, if a row matches.
    pub fn lookup(&self, image: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|row| image_matches(&row.pattern, image))
            .map(|row| row.host_path.as_str())
    }
}

/// Parses `IMAGE=HOSTPATH` (the `--image-map` flag).
pub fn parse_image_mapping(text: &str) -> Result<ImageMapping> {
    let (pattern, host_path) = text
        .split_once('=')
        .ok_or_else(|| Error::InvalidConfig(format!("image map {text:?} is not IMAGE=HOSTPATH")))?;
    if pattern.is_empty() || !host_path.starts_with('/') {
        return Err(Error::InvalidConfig(format!(
            "image map {text:?}: need a non-empty image and an absolute host path"
        )));
    }
    Ok(ImageMapping {
        pattern: pattern.to_string(),
        host_path: host_path.to_string(),
    })
}

/// Drops `docker.io/` and `library/` so `busybox` and `docker.io/library/busybox` compare equal.
fn normalize(image: &str) -> &str {
    let image = image.strip_prefix("docker.io/").unwrap_or(image);
    image.strip_prefix("library/").unwrap_or(image)
}

/// The repository part of an image reference (without tag or digest).
pub fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[name_start..].find(':') {
        Some(colon) => &without_digest[..name_start + colon],
        None => without_digest,
    }
}

/// Whether an image-map pattern matches an image reference.
pub fn image_matches(pattern: &str, image: &str) -> bool {
    let pattern = normalize(pattern);
    let image = normalize(image);
    if let Some(prefix) = pattern.strip_suffix('*') {
        return image.starts_with(prefix);
    }
    pattern == image || pattern == repository(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_patterns() {
        let cases = [
            ("busybox", "busybox", true),
            ("busybox", "busybox:1.36", true),
            ("busybox", "docker.io/library/busybox:1.36", true),
            ("busybox", "busybox@sha256:abc", true),
            ("busybox", "busyboxx", false),
            ("busybox", "example.com/busybox", false),
            ("example.com:5000/kiln", "example.com:5000/kiln:v1", true),
            ("example.com:5000/kiln", "example.com:5000/kiln", true),
            ("example.com:5000/kiln", "example.com:5000/kilnx:v1", false),
            ("example.com/kiln:v1", "example.com/kiln:v2", false),
            ("example.com/kiln:v1", "example.com/kiln:v1", true),
            ("quay.io/kiln/*", "quay.io/kiln/builder:latest", true),
            ("quay.io/kiln/*", "quay.io/other/builder", false),
        ];
        for (pattern, image, want) in cases {
            assert_eq!(image_matches(pattern, image), want, "{pattern} vs {image}");
        }
    }

    #[test]
    fn repositories() {
        let cases = [
            ("a", "a"),
            ("a:1", "a"),
            ("h:5000/a", "h:5000/a"),
            ("h:5000/a:1", "h:5000/a"),
            ("h/a@sha256:00", "h/a"),
            ("h/a:1@sha256:00", "h/a"),
        ];
        for (image, want) in cases {
            assert_eq!(repository(image), want, "{image}");
        }
    }

    #[test]
    fn parse_mappings() {
        assert_eq!(
            parse_image_mapping("kiln/builder=/usr/bin/kiln").unwrap(),
            ImageMapping {
                pattern: "kiln/builder".into(),
                host_path: "/usr/bin/kiln".into()
            }
        );
        for bad in ["nope", "=/bin/x", "img=relative", "img="] {
            assert!(parse_image_mapping(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_rows_override_defaults() {
        let mut map = ImageMap::with_defaults();
        assert_eq!(map.lookup("busybox:1"), Some("/bin/busybox"));
        map.prepend(parse_image_mapping("busybox=/opt/bb").unwrap());
        assert_eq!(map.lookup("busybox:1"), Some("/opt/bb"));
        assert_eq!(map.lookup("alpine"), None);
    }

    #[test]
    fn instant_messages_with_uid_digests() {
        let instant = InstantMode {
            default_message: r#"{"imageDigest":"{{uid-digest}}"}"#.into(),
        };
        let uid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let message = instant.message_for(None, uid);
        assert_eq!(
            message,
            r#"{"imageDigest":"sha256:0f8fad5bd9cb469fa16570867728950e0f8fad5bd9cb469fa16570867728950e"}"#
        );
        assert_ne!(
            message,
            instant.message_for(None, "1f8fad5b-d9cb-469f-a165-70867728950e")
        );
        assert_eq!(instant.message_for(Some("plain"), uid), "plain");
        let plain = InstantMode {
            default_message: "done".into(),
        };
        assert_eq!(plain.message_for(None, uid), "done");
        assert_eq!(uid_digest("").len(), "sha256:".len() + 64);
    }
}
