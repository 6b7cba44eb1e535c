//! `kiln controller`: the operator. One module per kind it reconciles (`build`, `build_config`),
//! the caches they decide from (`cache`), the one writer of Build status (`status`), and the
//! preamble and error policy every reconcile shares (`reconcile`). Pure decisions live in the
//! submodules named for them; the reconcilers that do I/O call them.

pub mod build;
pub mod build_config;
pub mod cache;
pub mod context;
pub mod events;
pub mod image_stream;
pub mod reconcile;
pub mod run;
pub mod server;
pub mod status;

pub use build::pod::{PodSettings, SecurityProfile};
pub use context::Settings;
pub use run::{run, Running};
