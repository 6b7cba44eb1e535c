//! Talking to image registries, shared by the builder (confirming a pushed digest) and the
//! controller (importing ImageStream tags): docker-config credentials (`auth`), manifest digests
//! over the OCI distribution API (`digest`), image references (`reference`), and kiln's token
//! server for registries using token authentication (`token`). Imports only `api` and crates,
//! never the layers above.

pub(crate) mod auth;
pub(crate) mod digest;
pub(crate) mod reference;
pub(crate) mod token;
