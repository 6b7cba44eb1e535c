//! `kiln controller`: the operator. One module per kind it reconciles (`build`, `build_config`),
//! the caches they decide from (`cache`), the one writer of Build status (`status`), and the
//! preamble and error policy every reconcile shares (`reconcile`). Pure decisions live in the
//! submodules named for them; the reconcilers that do I/O call them.

pub(crate) mod build;
pub(crate) mod build_config;
pub(crate) mod cache;
pub(crate) mod context;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod image_stream;
pub(crate) mod imports;
pub(crate) mod leader;
pub(crate) mod metrics;
pub(crate) mod reconcile;
pub mod run;
pub(crate) mod server;
pub(crate) mod status;

pub use crate::registry::token::RegistryTokens;
pub use build::pod::{PodSettings, RegistryToken, SecurityProfile, DEFAULT_SECCOMP_PROFILE};
pub use build::storage::{StorageMode, StorageSettings};
pub use context::Settings;
pub use leader::LeaseConfig;
pub use run::{run, Running};
