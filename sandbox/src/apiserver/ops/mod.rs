//! Object lifecycle operations on the store: create, update (and patch), delete, garbage
//! collection. Everything here runs under the store lock and is synchronous.

mod admission;
mod builtin;
mod create;
mod delete;
pub mod pod_security;
mod typed;
mod update;

pub use create::create;
pub use delete::{delete, delete_collection, parse_propagation, DeleteOptions, Propagation};
pub use update::{update, UpdateMode};

use serde_json::Value;

use super::resources::ResourceInfo;

/// How unknown fields are reported (`fieldValidation` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop silently.
    Ignore,
    /// Drop and return a `Warning` header (the server default).
    #[default]
    Warn,
    /// Reject with 400 BadRequest.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter (case-sensitive like the apiserver; unknown → None).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Ignore" => Some(Self::Ignore),
            "Warn" | "" => Some(Self::Warn),
            "Strict" => Some(Self::Strict),
            _ => None,
        }
    }
}

/// Who is writing and how: everything about a write that is not the object itself.
#[derive(Debug, Clone)]
pub struct WriteContext {
    /// The resource written.
    pub info: ResourceInfo,
    /// Namespace from the path ("" for cluster-scoped).
    pub namespace: String,
    /// Field manager (query `fieldManager`, or derived from the User-Agent).
    pub manager: Option<String>,
    /// `dryRun=All`: validate but do not persist.
    pub dry_run: bool,
    /// Unknown field handling.
    pub validation: FieldValidation,
    /// The applied configuration, for server-side apply (field ownership).
    pub apply_config: Option<Value>,
    /// Evaluate CRD `x-kubernetes-validations` (CEL) rules.
    pub cel_rules: bool,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The stored object (or what would have been stored, for dry runs).
    pub object: Value,
    /// Whether it was created (201) rather than updated (200).
    pub created: bool,
    /// `Warning` header texts.
    pub warnings: Vec<String>,
}
