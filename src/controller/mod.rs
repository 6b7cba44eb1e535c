//! `kiln controller`: the operator. Pure decisions live in the submodules named for them; the
//! reconcilers that do I/O call them.

pub mod build;
pub mod build_config;
pub mod cached;
pub mod context;
pub mod events;
pub mod history;
pub mod image_stream;
pub mod index;
pub mod phase;
pub mod pod;
pub mod policy;
pub mod run;
pub mod server;
pub mod superseded;
pub mod triggers;
