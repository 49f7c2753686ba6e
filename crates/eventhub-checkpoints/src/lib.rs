//! Event Hubs checkpoints and partition ownership, stored as blobs in the
//! format every Azure SDK's blob checkpoint store shares.
//!
//! - [`model`]: validated scopes, partition ids, owner ids, offsets, etags,
//!   [`Checkpoint`] and [`Ownership`].
//! - [`format`](mod@format): blob names and metadata, identical to
//!   azure-eventhub-checkpointstoreblob-aio 1.2.0 and the .NET and JavaScript
//!   stores.
//! - [`backend`]: the [`BlobBackend`] trait a storage backend implements
//!   (list, conditional put, set metadata, delete).
//! - [`store`]: [`CheckpointStore`], the store logic written once over any
//!   backend.
//! - [`memory`]: the [`InMemoryBackend`].
//! - `conformance` (feature `conformance`): the cases every backend must
//!   pass.
//!
//! ```
//! use std::sync::Arc;
//! use eventhub_checkpoints::{Checkpoint, CheckpointStore, InMemoryBackend, Offset, PartitionId, Scope};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = CheckpointStore::new(Arc::new(InMemoryBackend::new()));
//! let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
//! let checkpoint = Checkpoint::new(scope.clone(), PartitionId::from(0), Some(Offset::from(4096)), Some(17))?;
//! store.update_checkpoint(&checkpoint).await?;
//! for cp in store.list_checkpoints(&scope).await?.items {
//!     println!("partition {}: sequence number {:?}", cp.partition_id(), cp.sequence_number());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod backend;
pub mod balancer;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod format;
pub mod memory;
pub mod model;
pub mod store;

pub use backend::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, Metadata, WriteCondition,
};
pub use balancer::{
    BalancerEvent, Changes, FairShare, LoadBalancer, LoadBalancerOptions, LoadBalancingStrategy,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Operation, StoreError, ValidationError};
pub use format::{SkipReason, SkippedBlob};
pub use memory::InMemoryBackend;
pub use model::{
    Checkpoint, ETag, Offset, OwnerId, Ownership, OwnershipClaim, PartitionId, Scope, StoredCheckpoint,
};
pub use store::{CheckpointStore, ClaimOutcome, ClaimResult, Listing, StoreOptions};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
