//! Errors of the local kubelet.

/// Everything that can go wrong while the local kubelet runs a Pod.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Api(#[from] kube::Error),
    /// A host file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the kubelet was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Pod asks for something the container configuration cannot satisfy
    /// (a missing Secret key, an unsupported field reference...). Reported as
    /// `CreateContainerConfigError`, like a real kubelet does.
    #[error("{0}")]
    Config(String),
    /// The Pod uses a feature the local kubelet does not implement.
    #[error("unsupported by the sandbox kubelet: {0}")]
    Unsupported(String),
    /// A command-line or configuration value is malformed.
    #[error("invalid kubelet configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// Wraps an I/O error with what the kubelet was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The local kubelet's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
