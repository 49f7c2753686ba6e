//! The checkpoint store, written once over any [`BlobBackend`].
//!
//! Each operation makes the fewest calls that keep blobs compatible with the
//! Azure SDKs (see `docs/format.md` for the exact calls and why):
//!
//! | operation | calls |
//! |---|---|
//! | list ownership / checkpoints | List Blobs under the lower-cased prefix |
//! | claim, no etag | Put Blob with `If-None-Match: *` |
//! | claim with etag | Set Blob Metadata with `If-Match`; on 404, Put Blob with `If-None-Match: *` |
//! | update checkpoint | Set Blob Metadata; on 404, Put Blob |
//! | delete checkpoint | Delete Blob |

use std::sync::Arc;

use futures::StreamExt;

use crate::backend::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, Metadata, WriteCondition,
};
use crate::error::{Operation, StoreError};
use crate::format::{self, BlobKind, SkipReason, SkippedBlob};
use crate::model::{Checkpoint, OwnerId, Ownership, OwnershipClaim, PartitionId, Scope, StoredCheckpoint};

/// Tuning of a [`CheckpointStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many claims of one [`CheckpointStore::claim_ownership`] call run
    /// at once. Default 64.
    pub claim_concurrency: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            claim_concurrency: 64,
        }
    }
}

/// What a listing found: the items read, and the blobs that could not be
/// read (written by a broken peer), which are also logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<T> {
    /// The items, in blob-name order.
    pub items: Vec<T>,
    /// Blobs under the prefix that were skipped, with the reason.
    pub skipped: Vec<SkippedBlob>,
}

/// The result of one ownership claim.
#[derive(Debug)]
pub enum ClaimResult {
    /// The claim was written; the ownership carries the new etag.
    Claimed(Ownership),
    /// Another consumer changed the ownership first (412 or 409).
    Lost,
    /// The claim could not be made; the partition must be treated as not
    /// owned. If the error says its write may have applied, the blob may
    /// name this owner (with an etag nobody holds) until another consumer
    /// takes it over or it expires. Its kind is the write's: a
    /// [`PreconditionFailed`](BackendErrorKind::PreconditionFailed) or
    /// [`AlreadyExists`](BackendErrorKind::AlreadyExists) here means the
    /// blob changed (by this claim or another consumer's) and could not be
    /// read back to tell which: a renewal's etag is stale either way.
    Failed(StoreError),
}

impl ClaimResult {
    /// The new ownership if the claim was written.
    pub fn claimed(&self) -> Option<&Ownership> {
        match self {
            ClaimResult::Claimed(ownership) => Some(ownership),
            _ => None,
        }
    }
}

/// One claim and what became of it.
#[derive(Debug)]
pub struct ClaimOutcome {
    /// The claim as it was made.
    pub claim: OwnershipClaim,
    /// Its result.
    pub result: ClaimResult,
}

/// Checkpoints and partition ownership of Event Hubs consumer groups, stored
/// as blobs through any [`BlobBackend`].
///
/// ```
/// # use std::sync::Arc;
/// # use eventhub_checkpoints::*;
/// # tokio_test_block_on(async {
/// let store = CheckpointStore::new(Arc::new(InMemoryBackend::new()));
/// let scope = Scope::new("ns.servicebus.windows.net", "hub", "$Default")?;
/// let me = OwnerId::new("consumer-1")?;
///
/// let claims = (0..4).map(|p| OwnershipClaim::new(scope.clone(), PartitionId::from(p), me.clone(), None));
/// let outcomes = store.claim_ownership(claims).await;
/// assert!(outcomes.iter().all(|o| o.result.claimed().is_some()));
///
/// let cp = Checkpoint::new(scope.clone(), PartitionId::from(0), Some(Offset::from(1024)), Some(42))?;
/// store.update_checkpoint(&cp).await?;
/// assert_eq!(store.list_checkpoints(&scope).await?.items, vec![cp]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    backend: Arc<dyn BlobBackend>,
    options: StoreOptions,
}

impl CheckpointStore {
    /// A store over `backend` with default options.
    pub fn new(backend: Arc<dyn BlobBackend>) -> Self {
        Self::with_options(backend, StoreOptions::default())
    }

    /// A store over `backend` with `options`.
    pub fn with_options(backend: Arc<dyn BlobBackend>, options: StoreOptions) -> Self {
        Self { backend, options }
    }

    /// The backend the store writes through.
    pub fn backend(&self) -> &Arc<dyn BlobBackend> {
        &self.backend
    }

    /// Every ownership recorded for `scope`; released partitions have no
    /// owner.
    pub async fn list_ownership(&self, scope: &Scope) -> Result<Listing<Ownership>, StoreError> {
        self.list(
            scope,
            BlobKind::Ownership,
            Operation::ListOwnership,
            format::read_ownership,
        )
        .await
    }

    /// Every checkpoint recorded for `scope`.
    pub async fn list_checkpoints(&self, scope: &Scope) -> Result<Listing<Checkpoint>, StoreError> {
        self.list(
            scope,
            BlobKind::Checkpoint,
            Operation::ListCheckpoints,
            format::read_checkpoint,
        )
        .await
    }

    /// Every checkpoint recorded for `scope`, with when each was written
    /// (for tools that show a checkpoint's age).
    pub async fn list_stored_checkpoints(
        &self,
        scope: &Scope,
    ) -> Result<Listing<StoredCheckpoint>, StoreError> {
        self.list(
            scope,
            BlobKind::Checkpoint,
            Operation::ListCheckpoints,
            |scope, prefix, item| {
                format::read_checkpoint(scope, prefix, item).map(|checkpoint| StoredCheckpoint {
                    checkpoint,
                    etag: item.properties.etag.clone(),
                    last_modified: item.properties.last_modified,
                })
            },
        )
        .await
    }

    async fn list<T>(
        &self,
        scope: &Scope,
        kind: BlobKind,
        operation: Operation,
        read: fn(&Scope, &str, &BlobItem) -> Result<T, SkipReason>,
    ) -> Result<Listing<T>, StoreError> {
        let prefix = format::prefix(scope, kind);
        let blobs = self
            .backend
            .list_blobs(&prefix)
            .await
            .map_err(|e| StoreError::new(operation, &prefix, e))?;
        let mut listing = Listing {
            items: Vec::with_capacity(blobs.len()),
            skipped: Vec::new(),
        };
        for blob in &blobs {
            match read(scope, &prefix, blob) {
                Ok(item) => listing.items.push(item),
                Err(reason) => {
                    tracing::warn!(blob = %blob.name, %reason, "skipping a blob this store cannot read");
                    listing.skipped.push(SkippedBlob {
                        name: blob.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(listing)
    }

    /// Tries every claim, at most [`StoreOptions::claim_concurrency`] at
    /// once, and reports each outcome in the order given.
    pub async fn claim_ownership(
        &self,
        claims: impl IntoIterator<Item = OwnershipClaim>,
    ) -> Vec<ClaimOutcome> {
        futures::stream::iter(claims)
            .map(|claim| async move {
                let result = self.claim(&claim).await;
                ClaimOutcome { claim, result }
            })
            .buffered(self.options.claim_concurrency.max(1))
            .collect()
            .await
    }

    /// Releases a partition: sets its owner id to empty, conditional on
    /// `etag`, so that any consumer may claim it at once.
    pub async fn release_ownership(
        &self,
        scope: &Scope,
        partition_id: &PartitionId,
        etag: crate::ETag,
    ) -> ClaimResult {
        self.claim(&OwnershipClaim::release(
            scope.clone(),
            partition_id.clone(),
            etag,
        ))
        .await
    }

    /// Makes one claim: with an etag, a metadata update conditional on it
    /// (and, if the blob is gone, a create-only write); without one, a
    /// create-only write.
    pub async fn claim(&self, claim: &OwnershipClaim) -> ClaimResult {
        let name = format::blob_name(&claim.scope, BlobKind::Ownership, &claim.partition_id);
        let metadata = format::ownership_metadata(claim.owner_id.as_ref());
        let written = match &claim.etag {
            Some(etag) => {
                let condition = WriteCondition::IfMatch(etag.clone());
                match self.backend.set_metadata(&name, &metadata, &condition).await {
                    Err(e) if e.kind() == BackendErrorKind::NotFound => {
                        self.backend
                            .put_blob(&name, &metadata, &WriteCondition::IfNotExists)
                            .await
                    }
                    other => other,
                }
            }
            None => {
                self.backend
                    .put_blob(&name, &metadata, &WriteCondition::IfNotExists)
                    .await
            }
        };
        let error = match written {
            Ok(properties) => return ClaimResult::Claimed(claimed(claim, properties)),
            Err(error) => error,
        };
        if error.write_may_have_applied() {
            match self.landed_claim(&name, claim).await {
                Ok(Some(properties)) => {
                    tracing::info!(blob = %name, "claim reported {} but had landed", error.kind());
                    return ClaimResult::Claimed(claimed(claim, properties));
                }
                Ok(None) => {}
                // Whether it landed is unknown: a failure that may have
                // applied, never `Lost` (the blob may name this owner).
                Err(read_error) => {
                    let error = unreadable_claim(error, read_error);
                    tracing::warn!(blob = %name, %error, "ownership claim failed");
                    return ClaimResult::Failed(StoreError::new(Operation::ClaimOwnership, name, error));
                }
            }
        }
        if error.kind().is_condition_lost() {
            tracing::debug!(blob = %name, owner = ?claim.owner_id, "ownership claim lost");
            ClaimResult::Lost
        } else {
            tracing::warn!(blob = %name, %error, "ownership claim failed");
            ClaimResult::Failed(StoreError::new(Operation::ClaimOwnership, name, error))
        }
    }

    /// After an ambiguous failure: the blob's properties if it now holds
    /// exactly what this claim wrote, in a version other than the one the
    /// claim was conditional on; an error if it cannot be read.
    async fn landed_claim(
        &self,
        name: &str,
        claim: &OwnershipClaim,
    ) -> Result<Option<BlobProperties>, BackendError> {
        let Some(current) = self.read_blob(name).await? else {
            return Ok(None);
        };
        let owner = current.metadata.get(format::OWNER_ID).unwrap_or("");
        let ours = owner == claim.owner_id.as_ref().map_or("", OwnerId::as_str);
        let new_version = claim.etag.as_ref() != Some(&current.properties.etag);
        Ok((ours && new_version).then_some(current.properties))
    }

    /// Records a checkpoint: updates the blob's metadata, creating the blob
    /// only if it does not exist yet (re-uploading would pile up versions on
    /// accounts with versioning or soft delete).
    pub async fn update_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let name = format::blob_name(
            checkpoint.scope(),
            BlobKind::Checkpoint,
            checkpoint.partition_id(),
        );
        let metadata = format::checkpoint_metadata(checkpoint);
        let condition = WriteCondition::Unconditional;
        let written = match self.backend.set_metadata(&name, &metadata, &condition).await {
            Err(e) if e.kind() == BackendErrorKind::NotFound => {
                self.backend.put_blob(&name, &metadata, &condition).await
            }
            other => other,
        };
        match written {
            Ok(_) => Ok(()),
            Err(error) if error.write_may_have_applied() && self.holds_metadata(&name, &metadata).await => {
                tracing::info!(blob = %name, "checkpoint reported {} but had landed", error.kind());
                Ok(())
            }
            Err(error) => Err(StoreError::new(Operation::UpdateCheckpoint, name, error)),
        }
    }

    /// Whether the blob holds `expected`; `false` if it cannot be read (the
    /// caller then keeps the error it had, which says it may have applied).
    async fn holds_metadata(&self, name: &str, expected: &Metadata) -> bool {
        match self.read_blob(name).await {
            Ok(Some(current)) => expected.iter().all(|(k, v)| current.metadata.get(k) == Some(v)),
            Ok(None) => false,
            Err(read_error) => {
                tracing::warn!(blob = %name, %read_error, "could not read the blob back to check an ambiguous write");
                false
            }
        }
    }

    /// Deletes one partition's checkpoint; `Ok(false)` if there was none.
    pub async fn delete_checkpoint(
        &self,
        scope: &Scope,
        partition_id: &PartitionId,
    ) -> Result<bool, StoreError> {
        let name = format::blob_name(scope, BlobKind::Checkpoint, partition_id);
        match self
            .backend
            .delete_blob(&name, &WriteCondition::Unconditional)
            .await
        {
            Ok(()) => Ok(true),
            // After a lost response, a retry's 404 means the first attempt
            // deleted it.
            Err(e) if e.kind() == BackendErrorKind::NotFound => Ok(e.write_may_have_applied()),
            Err(e) => Err(StoreError::new(Operation::DeleteCheckpoint, name, e)),
        }
    }

    /// Reads one blob back by listing its exact name; `None` if it is absent.
    async fn read_blob(&self, name: &str) -> Result<Option<BlobItem>, BackendError> {
        let items = self.backend.list_blobs(name).await?;
        Ok(items.into_iter().find(|item| item.name == name))
    }
}

/// The failure of a claim whose write may have landed but whose read-back
/// failed: the write's kind, status and request id (a 412 or 409 still says
/// the blob left the claimed version, possibly for this very claim), the
/// read-back's error as the source.
fn unreadable_claim(write_error: BackendError, read_error: BackendError) -> BackendError {
    let mut message = write_error.message().to_owned();
    if let Some(cause) = std::error::Error::source(&write_error) {
        message.push_str(&format!(": {cause}"));
    }
    message.push_str("; the claim may have landed and could not be read back");
    write_error
        .with_message(message)
        .with_source(read_error)
        .with_write_may_have_applied()
}

fn claimed(claim: &OwnershipClaim, properties: BlobProperties) -> Ownership {
    Ownership {
        scope: claim.scope.clone(),
        partition_id: claim.partition_id.clone(),
        owner_id: claim.owner_id.clone(),
        etag: properties.etag,
        last_modified: properties.last_modified,
    }
}
