//! The builder: what a build Pod runs (`kiln builder clone|build`) and what `kiln build` runs locally.
//!
//! The pipeline is clone (git or binary archive) → contextDir check → Dockerfile preparation →
//! base image pulls → `buildah bud` → post-commit hook → `buildah push --digestfile` → digest
//! confirmation with an OCI registry client → a JSON report written as the termination message.
//! The Pod needs no API credentials: the Build arrives as JSON (env `BUILD` or a file), source info
//! travels between the two containers through the shared workspace, and the result leaves through
//! the termination message ([`crate::api::contract::BuildReport`]). The Pod's paths, container
//! names and environment variables are part of that contract, in [`crate::api::contract`].

pub(crate) mod archive;
pub(crate) use crate::registry::auth;
pub(crate) mod buildah;
pub(crate) mod clone_watch;
pub(crate) mod context_dir;
pub(crate) mod dockerfile;
pub(crate) mod fetch;
pub(crate) mod git_auth;
pub(crate) mod heredoc;
pub(crate) mod input;
pub(crate) mod layer_cache;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod registry;
pub(crate) mod report;
pub mod source;
pub(crate) mod storage_lock;
pub(crate) mod url_policy;
