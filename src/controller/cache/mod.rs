//! What the reconcilers decide from: the watch caches' slim views of Builds and Pods, the
//! indexes over them, and the versions the controller's own writes superseded.

pub(crate) mod index;
pub(crate) mod superseded;
pub(crate) mod views;
