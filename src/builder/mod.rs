//! The builder: what a build Pod runs (`kiln builder clone|build`) and what `kiln build` runs locally.
//!
//! The pipeline is clone (git or binary archive) → contextDir check → Dockerfile preparation →
//! base image pulls → `buildah bud` → post-commit hook → `buildah push --digestfile` → digest
//! confirmation with an OCI registry client → a JSON report written as the termination message.
//! The Pod needs no API credentials: the Build arrives as JSON (env `BUILD` or a file), source info
//! travels between the two containers through the shared workspace, and the result leaves through
//! the termination message ([`report::BuildReport`]).

pub mod archive;
pub mod auth;
pub mod buildah;
pub mod context;
pub mod dockerfile;
pub mod fetch;
pub mod git_auth;
pub mod heredoc;
pub mod local;
pub mod pipeline;
pub mod plan;
pub mod registry;
pub mod report;
pub mod source;
pub mod url_policy;

/// Where the source secret (basic-auth, ssh-privatekey, known_hosts, ca.crt) is mounted in the Pod.
pub const SOURCE_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/source";
/// Where the push secret (`.dockerconfigjson` or `.dockercfg`) is mounted in the Pod.
pub const PUSH_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/push";
/// Where the pull secret (`.dockerconfigjson` or `.dockercfg`) is mounted in the Pod.
pub const PULL_SECRET_DIR: &str = "/var/run/secrets/kiln.dev/pull";
/// The workspace shared by the clone and build containers.
pub const WORKSPACE_DIR: &str = "/workspace";
/// Where the clone container checks the source out (or extracts a binary archive).
pub const SOURCE_DIR: &str = "/workspace/source";
/// Where the clone container writes the commit, author, committer, date, message and ref.
pub const SOURCE_INFO_PATH: &str = "/workspace/source-info.json";
/// The buildah storage (an emptyDir) in the Pod.
pub const STORAGE_DIR: &str = "/var/lib/containers";
/// Where Kubernetes reads a container's termination message.
pub const TERMINATION_LOG_PATH: &str = "/dev/termination-log";
/// The environment variable carrying the whole Build as JSON (as OpenShift's builder does).
pub const BUILD_ENV: &str = "BUILD";
/// Comma-separated registries (host[:port]) reached over plain HTTP or without TLS verification.
pub const INSECURE_REGISTRIES_ENV: &str = "KILN_INSECURE_REGISTRIES";
/// The most bytes Kubernetes keeps of a termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;
