//! Talking to image registries, shared by the builder (confirming a pushed digest) and the
//! controller (importing ImageStream tags): docker-config credentials (`auth`) and manifest
//! digests over the OCI distribution API (`digest`). Imports only `api`-level crates, never the
//! layers above.

pub(crate) mod auth;
pub(crate) mod digest;
