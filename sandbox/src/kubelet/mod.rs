//! The local kubelet: runs Pods as host processes in private mount namespaces.
//!
//! See the "Local kubelet" section of the sandbox README for what it implements.

pub mod config;
pub mod env;
pub mod error;
pub mod logs;
pub mod plan;
pub mod script;
pub mod volumes;

pub use config::{ImageMap, ImageMapping, InstantMode, KubeletConfig};
pub use error::{Error, Result};
pub use logs::{ContainerKey, LogSink, MemoryLogSink};
