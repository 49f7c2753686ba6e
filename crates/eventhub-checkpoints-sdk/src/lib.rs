//! [`azure_messaging_eventhubs::CheckpointStore`] for
//! [`eventhub_checkpoints`]: a drop-in checkpoint store for the official Rust
//! Event Hubs SDK's `EventProcessor` (azure_messaging_eventhubs 0.16), over
//! any [`BlobBackend`]: Azure Blob Storage with a storage connection string,
//! an account key, a SAS or Entra ID (any `azure_identity` credential), the
//! in-memory backend, or your own.
//!
//! ```no_run
//! use std::sync::Arc;
//! use azure_messaging_eventhubs::{ConsumerClient, EventProcessor};
//! use eventhub_checkpoints_sdk::SdkCheckpointStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SdkCheckpointStore::from_connection_string(
//!     &std::env::var("AZURE_STORAGE_CONNECTION_STRING")?,
//!     "checkpoints",
//! )?;
//! let consumer = ConsumerClient::builder()
//!     .open_with_connection_string(&std::env::var("EVENTHUBS_CONNECTION_STRING")?, Some("telemetry"))
//!     .await?;
//! let processor = EventProcessor::builder().build(consumer, Arc::new(store)).await?;
//! # let _ = processor;
//! # Ok(()) }
//! ```
//!
//! # How the SDK's model maps to the store's
//!
//! | SDK | store |
//! |---|---|
//! | namespace, event hub, consumer group | [`Scope`]: validated; blob names lower-cased, as the .NET, Python and JavaScript stores write them; listings report the names as the caller passed them |
//! | `partition_id` | [`PartitionId`] |
//! | `owner_id: None` or `Some("")` | no owner: a claim releases the partition (writes `ownerid` empty); a released blob lists as `None` |
//! | `etag: Option<Etag>` | [`ETag`], quoted or not; `None` (or empty) claims only if the partition has no ownership blob yet; returned etags are unquoted |
//! | `last_modified_time: Option<OffsetDateTime>` | the blob's last-modified [`SystemTime`], always `Some` on what the store returns; ignored on claims |
//! | `offset: Option<String>` | [`Offset`]; `None`, `""`, `"No Offset"` and `"None"` mean no offset |
//! | `sequence_number: Option<i64>` | the same; a checkpoint needs an offset, a sequence number or both |
//!
//! # What each call returns
//!
//! - `claim_ownership` runs the claims concurrently and returns the ones
//!   written, in the order given, with their new etags. A claim another
//!   consumer won (412, 409) is left out, as the official blob store does. A
//!   claim that failed (throttled, timed out, refused) is left out too and
//!   logged, so it is never reported as owned; the call fails only when no
//!   claim was written or lost and a failure will not pass by itself
//!   (authorization, a missing container, a refused request). An invalid
//!   name or owner id fails the call before anything is written.
//! - `list_ownerships` and `list_checkpoints` skip (and log at warn) blobs a
//!   broken peer wrote instead of failing the listing.
//! - Errors are [`azure_core::Error`]s: [`ErrorKind::HttpResponse`] with the
//!   HTTP status when the service answered (404, 409 and 412 also for
//!   backends without HTTP), [`ErrorKind::Credential`] for a credential that
//!   failed before any request, [`ErrorKind::Io`] for timeouts and throttling,
//!   [`ErrorKind::DataConversion`] for invalid input. The store's
//!   [`StoreError`] is the inner error: `error.downcast_ref::<StoreError>()`.

use std::sync::Arc;
use std::time::SystemTime;

use azure_core::error::ErrorKind;
use azure_core::http::{Etag, StatusCode};
use azure_core::time::OffsetDateTime;
use azure_messaging_eventhubs::models::{Checkpoint as SdkCheckpoint, Ownership as SdkOwnership};
use eventhub_checkpoints::format::is_no_offset_placeholder;
use eventhub_checkpoints::{
    BackendErrorKind, BlobBackend, Checkpoint, CheckpointStore, ClaimResult, ETag, InMemoryBackend, Offset,
    OwnerId, Ownership, OwnershipClaim, PartitionId, Scope, StoreError, ValidationError,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, ConfigError, Credential};

mod token_credential;

pub use eventhub_checkpoints;
pub use eventhub_checkpoints_blob;
pub use token_credential::TokenCredentialSource;

/// An [`azure_messaging_eventhubs::CheckpointStore`] over an
/// [`eventhub_checkpoints::CheckpointStore`]: hand it to
/// `EventProcessor::builder().build(consumer, Arc::new(store))`.
///
/// Cloning is cheap; clones share the backend.
///
/// ```
/// use azure_messaging_eventhubs::{CheckpointStore as _, models::Ownership};
/// use eventhub_checkpoints_sdk::SdkCheckpointStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = SdkCheckpointStore::in_memory();
/// let claim = Ownership {
///     fully_qualified_namespace: "contoso.servicebus.windows.net".into(),
///     event_hub_name: "telemetry".into(),
///     consumer_group: "$Default".into(),
///     partition_id: "0".into(),
///     owner_id: Some("consumer-1".into()),
///     ..Default::default()
/// };
/// let claimed = store.claim_ownership(&[claim.clone()]).await?;
/// assert_eq!(claimed.len(), 1);
/// assert!(claimed[0].etag.is_some());
///
/// // A second first-time claim of the same partition loses: it is left out.
/// assert!(store.claim_ownership(&[claim]).await?.is_empty());
///
/// let listed = store.list_ownerships("contoso.servicebus.windows.net", "telemetry", "$Default").await?;
/// assert_eq!(listed[0].owner_id.as_deref(), Some("consumer-1"));
/// # Ok::<(), azure_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct SdkCheckpointStore {
    store: CheckpointStore,
}

impl SdkCheckpointStore {
    /// Wraps a store.
    pub fn new(store: CheckpointStore) -> Self {
        Self { store }
    }

    /// A store over `backend` with default options.
    pub fn from_backend(backend: Arc<dyn BlobBackend>) -> Self {
        Self::new(CheckpointStore::new(backend))
    }

    /// A store over a new, empty [`InMemoryBackend`] (tests, development).
    pub fn in_memory() -> Self {
        Self::from_backend(Arc::new(InMemoryBackend::new()))
    }

    /// A store in the blob container `container` of the storage account a
    /// storage connection string names (`AccountName` and `AccountKey`,
    /// `SharedAccessSignature`, `BlobEndpoint`, `EndpointSuffix`,
    /// `UseDevelopmentStorage=true`), with default [`AzureBlobOptions`].
    ///
    /// The container must exist; see [`AzureBlobBackend::create_container`].
    pub fn from_connection_string(connection_string: &str, container: &str) -> Result<Self, ConfigError> {
        Self::from_connection_string_with_options(connection_string, container, AzureBlobOptions::default())
    }

    /// [`from_connection_string`](Self::from_connection_string) with options:
    /// a pinned storage API version, retries, timeouts, extra trusted CAs.
    pub fn from_connection_string_with_options(
        connection_string: &str,
        container: &str,
        options: AzureBlobOptions,
    ) -> Result<Self, ConfigError> {
        let backend = AzureBlobBackend::from_connection_string(connection_string, container, options)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// A store in the blob container `container` of the account at
    /// `account_url` (`https://<account>.blob.core.windows.net`), authorized
    /// with Entra ID tokens from `credential`: any `TokenCredential` of the
    /// `azure_core` that `azure_messaging_eventhubs` uses, such as the
    /// `azure_identity` credential the `ConsumerClient` is given. The
    /// identity needs a data role on the container (Storage Blob Data
    /// Contributor); the URL must be `https` unless
    /// [`AzureBlobOptions::allow_bearer_over_http`] is set.
    ///
    /// ```no_run
    /// use eventhub_checkpoints_sdk::SdkCheckpointStore;
    /// use eventhub_checkpoints_sdk::eventhub_checkpoints_blob::AzureBlobOptions;
    ///
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let credential = azure_identity::DeveloperToolsCredential::new(None)?;
    /// let store = SdkCheckpointStore::from_token_credential(
    ///     "https://contoso.blob.core.windows.net",
    ///     "checkpoints",
    ///     credential,
    ///     AzureBlobOptions::default(),
    /// )?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub fn from_token_credential(
        account_url: &str,
        container: &str,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
        options: AzureBlobOptions,
    ) -> Result<Self, ConfigError> {
        let source = Arc::new(TokenCredentialSource::new(credential));
        let backend =
            AzureBlobBackend::new(account_url, container, Credential::token_source(source), options)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// The wrapped store, for what the SDK's trait does not cover (releasing
    /// a partition explicitly, deleting checkpoints, listing skipped blobs).
    pub fn store(&self) -> &CheckpointStore {
        &self.store
    }

    /// Unwraps the store.
    pub fn into_inner(self) -> CheckpointStore {
        self.store
    }
}

impl From<CheckpointStore> for SdkCheckpointStore {
    fn from(store: CheckpointStore) -> Self {
        Self::new(store)
    }
}

#[async_trait::async_trait]
impl azure_messaging_eventhubs::CheckpointStore for SdkCheckpointStore {
    async fn claim_ownership(&self, ownerships: &[SdkOwnership]) -> azure_core::Result<Vec<SdkOwnership>> {
        let claims = ownerships
            .iter()
            .map(to_claim)
            .collect::<azure_core::Result<Vec<_>>>()?;
        let outcomes = self.store.claim_ownership(claims).await;
        let mut claimed = Vec::with_capacity(outcomes.len());
        let mut settled = false;
        let mut lasting_failure = None;
        for (requested, outcome) in ownerships.iter().zip(outcomes) {
            match outcome.result {
                ClaimResult::Claimed(ownership) => {
                    settled = true;
                    claimed.push(from_claimed(requested, ownership));
                }
                ClaimResult::Lost => settled = true,
                // The store logged it at warn. Not owned: left out.
                ClaimResult::Failed(error) => {
                    if lasting_failure.is_none() && !passes_by_itself(error.kind()) {
                        lasting_failure = Some(error);
                    }
                }
            }
        }
        match lasting_failure {
            Some(error) if !settled => Err(from_store_error(error)),
            _ => Ok(claimed),
        }
    }

    async fn list_checkpoints(
        &self,
        namespace: &str,
        event_hub_name: &str,
        consumer_group: &str,
    ) -> azure_core::Result<Vec<SdkCheckpoint>> {
        let scope = to_scope(namespace, event_hub_name, consumer_group)?;
        let listing = self
            .store
            .list_checkpoints(&scope)
            .await
            .map_err(from_store_error)?;
        Ok(listing
            .items
            .into_iter()
            .map(|checkpoint| SdkCheckpoint {
                fully_qualified_namespace: namespace.to_owned(),
                event_hub_name: event_hub_name.to_owned(),
                consumer_group: consumer_group.to_owned(),
                partition_id: checkpoint.partition_id().as_str().to_owned(),
                offset: checkpoint.offset().map(|offset| offset.as_str().to_owned()),
                sequence_number: checkpoint.sequence_number(),
            })
            .collect())
    }

    async fn list_ownerships(
        &self,
        namespace: &str,
        event_hub_name: &str,
        consumer_group: &str,
    ) -> azure_core::Result<Vec<SdkOwnership>> {
        let scope = to_scope(namespace, event_hub_name, consumer_group)?;
        let listing = self
            .store
            .list_ownership(&scope)
            .await
            .map_err(from_store_error)?;
        Ok(listing
            .items
            .into_iter()
            .map(|ownership| SdkOwnership {
                fully_qualified_namespace: namespace.to_owned(),
                event_hub_name: event_hub_name.to_owned(),
                consumer_group: consumer_group.to_owned(),
                partition_id: ownership.partition_id.as_str().to_owned(),
                owner_id: ownership.owner_id.map(|owner| owner.as_str().to_owned()),
                etag: Some(Etag::from(ownership.etag.as_str())),
                last_modified_time: Some(to_time(ownership.last_modified)),
            })
            .collect())
    }

    async fn update_checkpoint(&self, checkpoint: SdkCheckpoint) -> azure_core::Result<()> {
        let scope = to_scope(
            &checkpoint.fully_qualified_namespace,
            &checkpoint.event_hub_name,
            &checkpoint.consumer_group,
        )?;
        let partition_id = to_partition_id(&checkpoint.partition_id)?;
        let offset = match checkpoint.offset.as_deref() {
            Some(offset) if !is_no_offset_placeholder(offset) => {
                Some(Offset::new(offset).map_err(|e| invalid("offset", e))?)
            }
            _ => None,
        };
        let checkpoint = Checkpoint::new(scope, partition_id, offset, checkpoint.sequence_number)
            .map_err(|e| invalid("checkpoint", e))?;
        self.store
            .update_checkpoint(&checkpoint)
            .await
            .map_err(from_store_error)
    }
}

fn to_scope(namespace: &str, event_hub_name: &str, consumer_group: &str) -> azure_core::Result<Scope> {
    Scope::new(namespace, event_hub_name, consumer_group).map_err(|e| invalid("event hub scope", e))
}

fn to_partition_id(partition_id: &str) -> azure_core::Result<PartitionId> {
    PartitionId::new(partition_id).map_err(|e| invalid("partition id", e))
}

fn to_claim(ownership: &SdkOwnership) -> azure_core::Result<OwnershipClaim> {
    let scope = to_scope(
        &ownership.fully_qualified_namespace,
        &ownership.event_hub_name,
        &ownership.consumer_group,
    )?;
    let partition_id = to_partition_id(&ownership.partition_id)?;
    let owner_id = match ownership.owner_id.as_deref() {
        None | Some("") => None,
        Some(owner) => Some(OwnerId::new(owner).map_err(|e| invalid("owner id", e))?),
    };
    let etag = match ownership.etag.as_ref().map(AsRef::as_ref) {
        None | Some("") => None,
        Some(etag) => Some(ETag::new(etag).map_err(|e| invalid("etag", e))?),
    };
    Ok(OwnershipClaim {
        scope,
        partition_id,
        owner_id,
        etag,
    })
}

/// The claim as the caller made it, with the owner as written (`None` for a
/// release) and the blob's new etag and last-modified time.
fn from_claimed(requested: &SdkOwnership, ownership: Ownership) -> SdkOwnership {
    SdkOwnership {
        owner_id: ownership.owner_id.map(|owner| owner.as_str().to_owned()),
        etag: Some(Etag::from(ownership.etag.as_str())),
        last_modified_time: Some(to_time(ownership.last_modified)),
        ..requested.clone()
    }
}

fn to_time(time: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(time)
}

/// Whether a failed claim may succeed on the processor's next round without
/// anyone doing anything.
fn passes_by_itself(kind: BackendErrorKind) -> bool {
    matches!(
        kind,
        BackendErrorKind::Throttled
            | BackendErrorKind::Transient
            | BackendErrorKind::PreconditionFailed
            | BackendErrorKind::AlreadyExists
    )
}

fn invalid(what: &str, error: ValidationError) -> azure_core::Error {
    azure_core::Error::with_error(ErrorKind::DataConversion, error, format!("invalid {what}"))
}

/// The SDK's error for a failed store operation, with the store's error
/// inside.
fn from_store_error(error: StoreError) -> azure_core::Error {
    let http = |status: u16| ErrorKind::HttpResponse {
        status: StatusCode::from(status),
        error_code: Some(error.kind().to_string()),
        raw_response: None,
    };
    let kind = match (error.backend_error().status(), error.kind()) {
        (Some(status), _) => http(status),
        (None, BackendErrorKind::NotFound) => http(404),
        (None, BackendErrorKind::AlreadyExists) => http(409),
        (None, BackendErrorKind::PreconditionFailed) => http(412),
        (None, BackendErrorKind::Auth) => ErrorKind::Credential,
        (None, BackendErrorKind::Throttled | BackendErrorKind::Transient) => ErrorKind::Io,
        (None, _) => ErrorKind::Other,
    };
    azure_core::Error::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_owner_and_empty_etag_mean_none() {
        let ownership = SdkOwnership {
            fully_qualified_namespace: "ns".into(),
            event_hub_name: "hub".into(),
            consumer_group: "$Default".into(),
            partition_id: "0".into(),
            owner_id: Some(String::new()),
            etag: Some(Etag::from("")),
            last_modified_time: None,
        };
        let claim = to_claim(&ownership).unwrap();
        assert_eq!(claim.owner_id, None);
        assert_eq!(claim.etag, None);
    }

    #[test]
    fn quoted_etags_are_accepted() {
        let ownership = SdkOwnership {
            fully_qualified_namespace: "ns".into(),
            event_hub_name: "hub".into(),
            consumer_group: "$Default".into(),
            partition_id: "0".into(),
            owner_id: Some("me".into()),
            etag: Some(Etag::from("\"0x8DC1\"")),
            last_modified_time: None,
        };
        assert_eq!(
            to_claim(&ownership).unwrap().etag,
            Some(ETag::new("0x8DC1").unwrap())
        );
    }

    #[test]
    fn invalid_names_are_data_conversion_errors() {
        let error = to_scope("ns", "a/b", "$Default").unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::DataConversion));
        assert!(error.downcast_ref::<ValidationError>().is_some());
    }

    #[test]
    fn system_time_converts_exactly() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(SystemTime::from(to_time(time)), time);
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
