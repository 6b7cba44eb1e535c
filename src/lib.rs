//! kiln: OpenShift-style `BuildConfig` builds for any Kubernetes cluster.
//!
//! The library holds all logic; `src/main.rs` only parses the command line and dispatches.
#![forbid(unsafe_code)]

pub mod api;
pub mod builder;
pub mod cli;
pub mod controller;
pub mod convert;
pub mod crdgen;
#[cfg(test)]
mod fuzz_runner;
pub mod instantiate;
pub mod local;
pub mod naming;
pub(crate) mod registry;
pub mod template;
pub mod webhook;
pub mod yaml;
