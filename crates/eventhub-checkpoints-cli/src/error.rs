//! The CLI's errors and exit codes.

use eventhub_checkpoints::{BackendError, StoreError, ValidationError};
use eventhub_checkpoints_blob::ConfigError;

/// Why a command failed. Messages never contain a key, signature or token.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is incomplete or inconsistent.
    #[error("{0}")]
    Usage(String),
    /// A name, id or value is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The Azure options are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The storage backend failed outside a store operation.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Reading or writing a file or stream failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Another consumer changed the ownership first.
    #[error("{0}")]
    ClaimLost(String),
    /// The user declined a destructive change, or could not be asked.
    #[error("{0}")]
    NotConfirmed(String),
    /// The command ran but did not reach its goal.
    #[error("{0}")]
    Unfinished(String),
}

impl CliError {
    /// The process exit code: 1 for failures, 2 for usage, 3 for a lost claim.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Invalid(_) | CliError::Config(_) | CliError::NotConfirmed(_) => 2,
            CliError::ClaimLost(_) => 3,
            CliError::Store(_) | CliError::Backend(_) | CliError::Io { .. } | CliError::Unfinished(_) => 1,
        }
    }
}
