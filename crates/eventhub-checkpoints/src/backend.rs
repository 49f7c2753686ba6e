//! The blob-backend trait: the few byte-moving calls a store needs.
//!
//! A backend knows nothing about checkpoints: it lists blobs under a prefix,
//! writes empty blobs with metadata under a condition, and deletes them.
//! Naming, metadata encoding, claim semantics and concurrency live in
//! [`CheckpointStore`](crate::CheckpointStore).
//!
//! Implementors should run the conformance kit (feature `conformance`)
//! against their backend.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::model::ETag;

/// Blob metadata: name/value pairs. Names compare case-insensitively, as
/// Blob Storage treats them; the case they were written with is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

impl Metadata {
    /// No metadata.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Sets `name` to `value`, replacing any entry whose name matches
    /// case-insensitively.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some(entry) => *entry = (name, value),
            None => self.0.push((name, value)),
        }
    }

    /// The value whose name matches `name` case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut metadata = Metadata::new();
        for (n, v) in iter {
            metadata.insert(n, v);
        }
        metadata
    }
}

/// The precondition of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// Write whatever the blob's state (no condition header).
    Unconditional,
    /// Write only if the blob's current etag is this one (`If-Match`).
    IfMatch(ETag),
    /// Write only if the blob does not exist (`If-None-Match: *`).
    IfNotExists,
}

/// What a backend reports about a blob after writing it, or in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobProperties {
    /// The blob's new etag.
    pub etag: ETag,
    /// When the blob was last written.
    pub last_modified: SystemTime,
}

/// One blob of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobItem {
    /// The full blob name.
    pub name: String,
    /// The blob's metadata.
    pub metadata: Metadata,
    /// Etag and last-modified time.
    pub properties: BlobProperties,
}

/// The calls a checkpoint store makes against blob storage.
///
/// Every method acts on one container the backend was configured with. A
/// write whose condition fails must return an error of kind
/// [`BackendErrorKind::PreconditionFailed`] or
/// [`BackendErrorKind::AlreadyExists`] (Blob Storage answers 412 or 409), and
/// a write or delete of a missing blob [`BackendErrorKind::NotFound`] unless
/// the call creates it.
#[async_trait]
pub trait BlobBackend: Send + Sync + fmt::Debug {
    /// Every blob whose name starts with `prefix`, with metadata, in name
    /// order, following all pages.
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError>;

    /// Creates or replaces the blob `name` with an empty body and exactly
    /// this metadata.
    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError>;

    /// Replaces the metadata of the existing blob `name`; fails with
    /// [`BackendErrorKind::NotFound`] if it does not exist.
    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError>;

    /// Deletes the blob `name`; fails with [`BackendErrorKind::NotFound`] if
    /// it does not exist.
    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError>;
}

/// The class of a backend failure; decides what the store does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The blob or container does not exist (404).
    NotFound,
    /// An `If-Match` condition failed (412).
    PreconditionFailed,
    /// An `If-None-Match: *` write found the blob (409, or 412 on Azure).
    AlreadyExists,
    /// The service asked the client to slow down (429, 503 server busy).
    Throttled,
    /// A failure that may pass: timeouts, connection errors, 5xx.
    Transient,
    /// The credential was refused or lacks permission (401, 403).
    Auth,
    /// The request was malformed or refused for another reason.
    Other,
}

impl BackendErrorKind {
    /// Whether a write with this outcome lost a condition race.
    pub fn is_condition_lost(self) -> bool {
        matches!(self, Self::PreconditionFailed | Self::AlreadyExists)
    }
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::PreconditionFailed => "precondition failed",
            Self::AlreadyExists => "already exists",
            Self::Throttled => "throttled",
            Self::Transient => "transient failure",
            Self::Auth => "authentication or authorization failed",
            Self::Other => "request failed",
        })
    }
}

/// A failed backend call.
///
/// Besides its [`kind`](Self::kind), it records the HTTP status and service
/// request id when there was one, how long the service asked to wait, and
/// whether the write may have been applied anyway (an attempt's response
/// was lost and the call was retried or given up on) — the store then reads
/// the blob back instead of reporting a write that landed as failed or lost. Messages never contain credentials.
pub struct BackendError {
    kind: BackendErrorKind,
    message: String,
    status: Option<u16>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    write_may_have_applied: bool,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl BackendError {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            request_id: None,
            retry_after: None,
            write_may_have_applied: false,
            source: None,
        }
    }

    /// The same error in another class (a backend that learns more about a
    /// failure than its transport said); everything else is kept.
    pub fn with_kind(mut self, kind: BackendErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same error with another message; everything else is kept.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Records the HTTP status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records the service's request id (`x-ms-request-id`).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Records how long the service asked the client to wait.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Keeps the underlying cause.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Marks that this write may have been applied despite the error: an
    /// attempt's response was lost (timeout, reset) and it was retried or
    /// given up on.
    pub fn with_write_may_have_applied(mut self) -> Self {
        self.write_may_have_applied = true;
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, if the failure came from a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The service's request id, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How long the service asked the client to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether this write may have been applied despite the error.
    pub fn write_may_have_applied(&self) -> bool {
        self.write_may_have_applied
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackendError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(status) = self.status {
            d.field("status", &status);
        }
        if let Some(id) = &self.request_id {
            d.field("request_id", id);
        }
        if let Some(delay) = self.retry_after {
            d.field("retry_after", &delay);
        }
        if self.write_may_have_applied {
            d.field("write_may_have_applied", &true);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(id) = &self.request_id {
                write!(f, ", request id {id}")?;
            }
            f.write_str(")")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_are_case_insensitive() {
        let mut m = Metadata::new();
        m.insert("OwnerId", "a");
        assert_eq!(m.get("ownerid"), Some("a"));
        m.insert("ownerid", "b");
        assert_eq!(m.len(), 1);
        assert_eq!(m.iter().next(), Some(("ownerid", "b")));
    }

    #[test]
    fn display_includes_status_request_id_and_cause() {
        let err = BackendError::new(BackendErrorKind::Transient, "server busy")
            .with_status(503)
            .with_request_id("abc")
            .with_source(std::io::Error::other("reset"));
        assert_eq!(
            err.to_string(),
            "transient failure: server busy (HTTP 503, request id abc): reset"
        );
        assert!(StdError::source(&err).is_some());
    }
}
