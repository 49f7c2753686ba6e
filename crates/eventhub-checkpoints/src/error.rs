//! Errors of the model and of store operations.

use crate::backend::{BackendError, BackendErrorKind};

/// A value was rejected when it was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The value is empty.
    #[error("{what} is empty")]
    Empty {
        /// What was being validated.
        what: &'static str,
    },
    /// The value is longer than allowed.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// What was being validated.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The value has a character or form that is not allowed.
    #[error("{what} {reason}")]
    Invalid {
        /// What was being validated.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A checkpoint with neither an offset nor a sequence number.
    #[error("a checkpoint needs an offset, a sequence number, or both")]
    EmptyCheckpoint,
}

/// What a store operation was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Listing ownership blobs.
    ListOwnership,
    /// Listing checkpoint blobs.
    ListCheckpoints,
    /// Claiming, renewing or releasing ownership.
    ClaimOwnership,
    /// Writing a checkpoint.
    UpdateCheckpoint,
    /// Deleting a checkpoint.
    DeleteCheckpoint,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::ListOwnership => "list ownership",
            Operation::ListCheckpoints => "list checkpoints",
            Operation::ClaimOwnership => "claim ownership",
            Operation::UpdateCheckpoint => "update checkpoint",
            Operation::DeleteCheckpoint => "delete checkpoint",
        })
    }
}

/// A store operation failed; the backend's error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed for blob '{blob}': {source}")]
pub struct StoreError {
    operation: Operation,
    blob: String,
    #[source]
    source: BackendError,
}

impl StoreError {
    pub(crate) fn new(operation: Operation, blob: impl Into<String>, source: BackendError) -> Self {
        Self {
            operation,
            blob: blob.into(),
            source,
        }
    }

    /// What the store was doing.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The blob name (or listing prefix) involved.
    pub fn blob(&self) -> &str {
        &self.blob
    }

    /// The kind of the underlying backend failure.
    pub fn kind(&self) -> BackendErrorKind {
        self.source.kind()
    }

    /// The backend's error.
    pub fn backend_error(&self) -> &BackendError {
        &self.source
    }
}
