//! kiln-sandbox: a stand-in for kube-apiserver and a kubelet (tests and demo only).
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod kubelet;
pub mod serve;
pub mod tls;

pub use apiserver::authz::Authorization;
pub use apiserver::{ApiServer, LogStore, ServerConfig, StdinHub};
