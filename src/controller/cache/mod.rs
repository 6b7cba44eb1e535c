//! What the reconcilers decide from: the watch caches' slim views of Builds and Pods, the
//! indexes over them, and the versions the controller's own writes superseded.

pub mod index;
pub mod superseded;
pub mod views;
