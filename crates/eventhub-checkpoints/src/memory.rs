//! A [`BlobBackend`] held in memory that behaves like Blob Storage: a new
//! etag on every write, last-modified times, and conditions honoured the way
//! the service honours them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::backend::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, Metadata, WriteCondition,
};
use crate::clock::{Clock, SystemClock};
use crate::model::ETag;

/// An in-memory container; for tests, tools and simulations.
///
/// Cloning a store that wraps it (through `Arc`) shares the same blobs.
/// Last-modified times come from the [`SystemClock`], or from the clock given
/// to [`InMemoryBackend::with_clock`].
#[derive(Debug)]
pub struct InMemoryBackend {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

#[derive(Debug, Default)]
struct State {
    blobs: BTreeMap<String, Stored>,
    writes: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    metadata: Metadata,
    properties: BlobProperties,
}

impl InMemoryBackend {
    /// An empty container.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty container whose writes take their last-modified time from
    /// `clock`, e.g. a [`ManualClock`](crate::ManualClock) shared with the
    /// [`LoadBalancer`](crate::LoadBalancer)s of a simulation.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    /// Number of blobs in the container.
    pub fn len(&self) -> usize {
        self.lock().blobs.len()
    }

    /// Whether the container has no blobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written blob:
        // every mutation is a single map operation.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn check(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        let current = self.blobs.get(name);
        match (condition, current) {
            (WriteCondition::Unconditional, _) => Ok(()),
            (WriteCondition::IfMatch(etag), Some(blob)) if &blob.properties.etag == etag => Ok(()),
            (WriteCondition::IfMatch(_), _) => Err(BackendError::new(
                BackendErrorKind::PreconditionFailed,
                format!("etag of '{name}' does not match"),
            )
            .with_status(412)),
            (WriteCondition::IfNotExists, None) => Ok(()),
            (WriteCondition::IfNotExists, Some(_)) => Err(BackendError::new(
                BackendErrorKind::AlreadyExists,
                format!("'{name}' already exists"),
            )
            .with_status(409)),
        }
    }

    fn write(&mut self, name: &str, metadata: &Metadata, now: SystemTime) -> BlobProperties {
        self.writes += 1;
        let properties = BlobProperties {
            etag: ETag::new(format!("0x8D{:014X}", self.writes)).expect("generated etags are valid"),
            last_modified: now,
        };
        self.blobs.insert(
            name.to_owned(),
            Stored {
                metadata: metadata.clone(),
                properties: properties.clone(),
            },
        );
        properties
    }
}

fn not_found(name: &str) -> BackendError {
    BackendError::new(BackendErrorKind::NotFound, format!("'{name}' does not exist")).with_status(404)
}

#[async_trait]
impl BlobBackend for InMemoryBackend {
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        let state = self.lock();
        Ok(state
            .blobs
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, blob)| BlobItem {
                name: name.clone(),
                metadata: blob.metadata.clone(),
                properties: blob.properties.clone(),
            })
            .collect())
    }

    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let mut state = self.lock();
        state.check(name, condition)?;
        Ok(state.write(name, metadata, self.clock.now()))
    }

    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let mut state = self.lock();
        if !state.blobs.contains_key(name) {
            return Err(not_found(name));
        }
        state.check(name, condition)?;
        Ok(state.write(name, metadata, self.clock.now()))
    }

    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        let mut state = self.lock();
        if !state.blobs.contains_key(name) {
            return Err(not_found(name));
        }
        state.check(name, condition)?;
        state.blobs.remove(name);
        Ok(())
    }
}
