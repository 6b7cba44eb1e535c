//! The builder: what a build Pod runs (`kiln builder clone|build`) and what `kiln build` runs locally.
//!
//! The pipeline is clone (git or binary archive) → contextDir check → Dockerfile preparation →
//! base image pulls → `buildah bud` → post-commit hook → `buildah push --digestfile` → digest
//! confirmation with an OCI registry client → a JSON report written as the termination message.
//! The Pod needs no API credentials: the Build arrives as JSON (env `BUILD` or a file), source info
//! travels between the two containers through the shared workspace, and the result leaves through
//! the termination message ([`crate::api::contract::BuildReport`]). The Pod's paths, container
//! names and environment variables are part of that contract, in [`crate::api::contract`].

pub mod archive;
pub mod auth;
pub mod buildah;
pub mod context_dir;
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
