//! `kiln controller`: the operator. Pure decisions live in the submodules named for them; the
//! reconcilers that do I/O call them.

pub mod history;
pub mod phase;
pub mod pod;
pub mod policy;
pub mod triggers;
