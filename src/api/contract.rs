//! The contract between the controller and the build Pod: container names, paths and environment
//! variables of the Pod, and the JSON report a builder container leaves as its termination message
//! (at most [`TERMINATION_MESSAGE_LIMIT`] bytes). Both sides import it from here; neither imports
//! the other.

use serde::{Deserialize, Serialize};

use crate::api::build::StageInfo;
use crate::api::common::GitSourceRevision;
use crate::api::StatusReason;

/// The name of the build Pod's init container that fetches the source.
pub const CLONE_CONTAINER: &str = "clone";
/// The name of the build Pod's main container.
pub const BUILD_CONTAINER: &str = "build";
/// Where the source secret (basic-auth, ssh-privatekey, known_hosts, ca.crt) is mounted in the Pod.
pub const SOURCE_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/source";
/// Where the push secret (`.dockerconfigjson` or `.dockercfg`) is mounted in the Pod.
pub const PUSH_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/push";
/// Where the pull secret (`.dockerconfigjson` or `.dockercfg`) is mounted in the Pod.
pub const PULL_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/pull";
/// Where the build container finds its registry password when kiln is the internal registry's
/// token server: a ServiceAccount token projected for the token server's audience, bound to the
/// Pod and refreshed by the kubelet.
pub const REGISTRY_TOKEN_DIR: &str = "/var/run/secrets/kiln.dev/registry";
/// The file in [`REGISTRY_TOKEN_DIR`] holding the token.
pub const REGISTRY_TOKEN_FILE: &str = "token";
/// The registry (`host[:port]`) the projected token is a password for.
pub const REGISTRY_TOKEN_REGISTRY_ENV: &str = "KILN_REGISTRY_TOKEN_REGISTRY";
/// The user name sent with the token (the token server reads only the password).
pub const REGISTRY_TOKEN_USER: &str = "serviceaccount";
/// The projected token's lifetime (seconds): the kubelet refreshes it at 80 %, and the builder
/// reads it again before its push.
pub const REGISTRY_TOKEN_SECONDS: i64 = 3600;
/// Where build volumes (Secrets, ConfigMaps, CSI) are mounted in the Pod: one directory per volume name.
pub const BUILD_VOLUMES_DIR: &str = "/var/run/kiln.dev/build-volumes";
/// The workspace shared by the clone and build containers.
pub const WORKSPACE_DIR: &str = "/workspace";
/// The buildah storage (an emptyDir holding the run root) in the Pod.
pub const STORAGE_DIR: &str = "/var/lib/containers";
/// buildah's storage root: in [`STORAGE_DIR`], or the BuildConfig's build storage claim mounted
/// here.
pub const GRAPHROOT_DIR: &str = "/var/lib/containers/storage";
/// Where Kubernetes reads a container's termination message.
pub const TERMINATION_LOG_PATH: &str = "/dev/termination-log";
/// The environment variable carrying the whole Build as JSON (as OpenShift's builder does).
pub const BUILD_ENV: &str = "BUILD";
/// Comma-separated registries (host[:port]) reached over plain HTTP or without TLS verification.
pub const INSECURE_REGISTRIES_ENV: &str = "KILN_INSECURE_REGISTRIES";
/// The build container's layer-cache repository (`host[:port]/<namespace>/<config>-cache`), set by
/// the controller only: buildah reads cached layers from it and pushes new ones to it.
pub const LAYER_CACHE_ENV: &str = "KILN_LAYER_CACHE_REPOSITORY";
/// The prefix of the build container's variables that carry the strategy env's `valueFrom`
/// entries, resolved by the kubelet as any container env: `<prefix><index>` holds the value of
/// `dockerStrategy.env[index]`, so a Secret's value never passes through the controller.
pub const VALUE_FROM_ENV_PREFIX: &str = "KILN_VALUE_FROM_";

/// The build container's variable holding the value of `dockerStrategy.env[index]`'s `valueFrom`.
pub fn value_from_env(index: usize) -> String {
    format!("{VALUE_FROM_ENV_PREFIX}{index}")
}

/// The most bytes Kubernetes keeps of a termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// The clone step's option bounding the wait for a binary source on its standard input (seconds).
pub const INPUT_TIMEOUT_ARG: &str = "--input-timeout";
/// How long a binary build waits for its input when nothing configures it (ten minutes), before
/// the first byte and between reads.
pub const DEFAULT_INPUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The clone step's variable: seconds a clone may take to connect and list the remote's refs.
pub const CLONE_CONNECT_TIMEOUT_ENV: &str = "KILN_CLONE_CONNECT_TIMEOUT";
/// The clone step's variable: seconds a clone may go without receiving data.
pub const CLONE_IDLE_TIMEOUT_ENV: &str = "KILN_CLONE_IDLE_TIMEOUT";
/// The clone step's variable: the most bytes one fetch of a clone may receive.
pub const CLONE_MAX_BYTES_ENV: &str = "KILN_CLONE_MAX_BYTES";

/// The bounds on one git clone: connect and idle timeouts and the bytes one fetch may receive.
/// The controller passes its own to every build Pod's clone step in the `KILN_CLONE_*` variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneLimits {
    /// How long connecting and listing the remote's refs may take.
    pub connect_timeout: std::time::Duration,
    /// How long receiving may go without data.
    pub idle_timeout: std::time::Duration,
    /// The most bytes one fetch may receive.
    pub max_bytes: u64,
}

impl CloneLimits {
    /// The defaults: one minute to connect, two minutes without data, 8 GiB a fetch.
    pub const DEFAULT: Self = Self {
        connect_timeout: std::time::Duration::from_secs(60),
        idle_timeout: std::time::Duration::from_secs(120),
        max_bytes: 8 << 30,
    };

    /// The clone step's environment variables carrying these limits (seconds and bytes).
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            (
                CLONE_CONNECT_TIMEOUT_ENV,
                self.connect_timeout.as_secs().to_string(),
            ),
            (
                CLONE_IDLE_TIMEOUT_ENV,
                self.idle_timeout.as_secs().to_string(),
            ),
            (CLONE_MAX_BYTES_ENV, self.max_bytes.to_string()),
        ]
    }
}

impl Default for CloneLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What was checked out: written by `kiln builder clone`, read by `kiln builder build`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// Where the source came from (repository URL, or `binary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The branch or tag that was asked for.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// The commit that was checked out: hash, author, committer and message, as the API records it.
    #[serde(flatten)]
    pub revision: GitSourceRevision,
    /// The commit date, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// The termination message of a builder container: success data or the failure reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    /// The pushed manifest digest, `sha256:…`, as confirmed by the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The image reference that was pushed (`host/repo:tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_reference: Option<String>,
    /// The commit that was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// The stages run, each with its start time and duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    /// Why the build failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// A one-line explanation a user can act on; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last lines of the failing step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

impl BuildReport {
    /// Whether the report describes a failed build.
    pub fn is_failure(&self) -> bool {
        self.reason.is_some()
    }

    /// Appends the stages of another report (e.g. the clone container's FetchInputs).
    pub fn prepend_stages(&mut self, earlier: Vec<StageInfo>) {
        let later = std::mem::take(&mut self.stages);
        self.stages = earlier;
        self.stages.extend(later);
    }

    /// Serializes the report as JSON of at most `limit` bytes, shortening the log tail first, then
    /// the commit message and failure message, then dropping steps.
    pub fn to_message(&self, limit: usize) -> String {
        let mut report = self.clone();
        let mut json = encode(&report);
        while json.len() > limit {
            if let Some(tail) = report.log_tail.as_mut().filter(|t| !t.is_empty()) {
                *tail = drop_first_line_or_half(tail);
            } else if let Some(msg) = report
                .source
                .as_mut()
                .and_then(|s| s.revision.message.as_mut())
                .filter(|m| m.len() > 80)
            {
                *msg = truncate_chars(msg, msg.len() / 2);
            } else if let Some(msg) = report.message.as_mut().filter(|m| m.len() > 200) {
                *msg = truncate_chars(msg, msg.len() / 2);
            } else if report.stages.iter().any(|s| !s.steps.is_empty()) {
                report.stages.iter_mut().for_each(|s| s.steps.clear());
            } else if report.source.is_some() {
                report.source = None;
            } else {
                // Only huge message/reference fields remain: cut the message hard.
                let msg = report.message.get_or_insert_with(String::new);
                *msg = truncate_chars(msg, msg.len().saturating_sub(json.len() - limit + 8));
                if msg.is_empty() {
                    return encode(&BuildReport {
                        reason: report.reason,
                        ..Default::default()
                    });
                }
            }
            json = encode(&report);
        }
        json
    }
}

fn encode(report: &BuildReport) -> String {
    // Serializing plain strings, numbers and enums cannot fail; fall back to an empty object anyway.
    serde_json::to_string(report).unwrap_or_else(|_| "{}".to_string())
}

fn drop_first_line_or_half(text: &str) -> String {
    match text.split_once('\n') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => {
            let keep = text.len() / 2;
            let start = (text.len() - keep..=text.len()).find(|i| text.is_char_boundary(*i));
            start.map(|s| text[s..].to_string()).unwrap_or_default()
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut with `…`.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::build::StageName;

    fn big_report(log_lines: usize, msg_len: usize) -> BuildReport {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let stages = [
            StageName::FetchInputs,
            StageName::PullImages,
            StageName::Build,
        ]
        .into_iter()
        .map(|name| StageInfo {
            name,
            start_time: Some(now.clone()),
            duration_milliseconds: 1,
            steps: vec![crate::api::build::StepInfo {
                name: format!("{name:?}"),
                start_time: Some(now.clone()),
                duration_milliseconds: 1,
            }],
        })
        .collect();
        BuildReport {
            output_reference: Some("registry.example:5000/ns/app:latest".into()),
            source: Some(SourceInfo {
                revision: GitSourceRevision {
                    commit: Some("a".repeat(40)),
                    message: Some("m".repeat(msg_len)),
                    ..Default::default()
                },
                ..Default::default()
            }),
            stages,
            reason: Some(StatusReason::DockerBuildFailed),
            message: Some("building at STEP \"RUN false\": exit status 1".into()),
            log_tail: Some(
                (0..log_lines)
                    .map(|i| format!("log line {i} é"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn termination_message_fits_and_round_trips() {
        for (lines, msg_len, limit) in [
            (0, 10, 4096),
            (30, 100, 4096),
            (5000, 10, 4096),
            (10, 20_000, 4096),
            (5000, 20_000, 600),
        ] {
            let report = big_report(lines, msg_len);
            let json = report.to_message(limit);
            assert!(
                json.len() <= limit,
                "{lines} {msg_len}: {} bytes",
                json.len()
            );
            let back: BuildReport = serde_json::from_str(&json).unwrap();
            assert_eq!(back.reason, Some(StatusReason::DockerBuildFailed));
            assert_eq!(back.message, report.message);
            if let (Some(tail), Some(original)) = (back.log_tail, &report.log_tail) {
                assert!(original.ends_with(&tail), "keeps the newest lines");
            }
        }
    }

    #[test]
    fn small_report_is_unchanged() {
        let report = big_report(3, 10);
        let back: BuildReport = serde_json::from_str(&report.to_message(4096)).unwrap();
        // Kubernetes times keep whole seconds, so compare the JSON forms.
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
    }

    #[test]
    fn truncation() {
        for (input, max, want) in [
            ("abcdef", 10, "abcdef"),
            ("abcdef", 4, "a…"),
            ("ééé", 5, "é…"),
        ] {
            assert_eq!(truncate_chars(input, max), want);
        }
    }
}
