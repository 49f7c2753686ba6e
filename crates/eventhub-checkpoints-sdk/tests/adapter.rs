//! What the adapter adds over the SDK's contract: broken blobs skipped,
//! failed claims never reported as owned, released partitions without an
//! owner, errors the SDK can read, invalid input refused before writing.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_messaging_eventhubs::CheckpointStore as _;
use azure_messaging_eventhubs::models::{Checkpoint, Ownership};
use eventhub_checkpoints::format::{self, BlobKind};
use eventhub_checkpoints::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, InMemoryBackend, Metadata,
    PartitionId, Scope, StoreError, WriteCondition,
};
use eventhub_checkpoints_sdk::SdkCheckpointStore;

const NS: &str = "contoso.servicebus.windows.net";
const HUB: &str = "telemetry";
const CG: &str = "$Default";

fn scope() -> Scope {
    Scope::new(NS, HUB, CG).unwrap()
}

fn claim(partition: &str, owner: &str) -> Ownership {
    Ownership {
        fully_qualified_namespace: NS.into(),
        event_hub_name: HUB.into(),
        consumer_group: CG.into(),
        partition_id: partition.into(),
        owner_id: Some(owner.into()),
        ..Default::default()
    }
}

fn checkpoint(partition: &str, offset: Option<&str>, sequence_number: Option<i64>) -> Checkpoint {
    Checkpoint {
        fully_qualified_namespace: NS.into(),
        event_hub_name: HUB.into(),
        consumer_group: CG.into(),
        partition_id: partition.into(),
        offset: offset.map(Into::into),
        sequence_number,
    }
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

async fn put(backend: &dyn BlobBackend, name: &str, pairs: &[(&str, &str)]) {
    backend
        .put_blob(name, &metadata(pairs), &WriteCondition::Unconditional)
        .await
        .unwrap();
}

/// An in-memory backend whose writes to chosen blobs fail with a chosen
/// error.
#[derive(Debug, Default)]
struct FailingBackend {
    inner: InMemoryBackend,
    /// (blob name suffix, kind, HTTP status)
    failures: Mutex<Vec<(String, BackendErrorKind, Option<u16>)>>,
}

impl FailingBackend {
    fn fail(&self, suffix: &str, kind: BackendErrorKind, status: Option<u16>) {
        self.failures.lock().unwrap().push((suffix.into(), kind, status));
    }

    fn failure(&self, name: &str) -> Result<(), BackendError> {
        let failures = self.failures.lock().unwrap();
        match failures
            .iter()
            .find(|(suffix, _, _)| name.ends_with(suffix.as_str()))
        {
            Some((_, kind, status)) => {
                let error = BackendError::new(*kind, "injected");
                Err(match status {
                    Some(status) => error.with_status(*status),
                    None => error,
                })
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BlobBackend for FailingBackend {
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        self.inner.list_blobs(prefix).await
    }

    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        self.failure(name)?;
        self.inner.put_blob(name, metadata, condition).await
    }

    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        self.failure(name)?;
        self.inner.set_metadata(name, metadata, condition).await
    }

    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        self.failure(name)?;
        self.inner.delete_blob(name, condition).await
    }
}

#[tokio::test]
async fn listings_skip_blobs_a_broken_peer_wrote() {
    let store = SdkCheckpointStore::in_memory();
    let backend = store.store().backend().clone();
    let checkpoint_prefix = format::prefix(&scope(), BlobKind::Checkpoint);
    let ownership_prefix = format::prefix(&scope(), BlobKind::Ownership);
    put(
        &*backend,
        &format!("{checkpoint_prefix}0"),
        &[("offset", "10"), ("sequencenumber", "1")],
    )
    .await;
    put(
        &*backend,
        &format!("{checkpoint_prefix}1"),
        &[("sequencenumber", "not a number")],
    )
    .await;
    put(&*backend, &format!("{checkpoint_prefix}2"), &[]).await;
    put(
        &*backend,
        &format!("{checkpoint_prefix}3/nested"),
        &[("sequencenumber", "3")],
    )
    .await;
    put(&*backend, &format!("{ownership_prefix}0"), &[("ownerid", "a")]).await;
    put(
        &*backend,
        &format!("{ownership_prefix}1/nested"),
        &[("ownerid", "b")],
    )
    .await;

    let checkpoints = store.list_checkpoints(NS, HUB, CG).await.unwrap();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert_eq!(checkpoints[0].partition_id, "0");
    assert_eq!(checkpoints[0].offset.as_deref(), Some("10"));
    assert_eq!(checkpoints[0].sequence_number, Some(1));

    let ownerships = store.list_ownerships(NS, HUB, CG).await.unwrap();
    assert_eq!(ownerships.len(), 1, "{ownerships:?}");
    assert_eq!(ownerships[0].owner_id.as_deref(), Some("a"));

    // The wrapped store still tells what it skipped.
    let listing = store.store().list_checkpoints(&scope()).await.unwrap();
    assert_eq!(listing.skipped.len(), 3);
}

#[tokio::test]
async fn released_partitions_list_without_owner() {
    let store = SdkCheckpointStore::in_memory();
    let backend = store.store().backend().clone();
    let prefix = format::prefix(&scope(), BlobKind::Ownership);
    // .NET, Python and JavaScript release with an empty ownerid; some
    // writers leave it out.
    put(&*backend, &format!("{prefix}0"), &[("ownerid", "")]).await;
    put(&*backend, &format!("{prefix}1"), &[]).await;
    put(&*backend, &format!("{prefix}2"), &[("OwnerId", "java-consumer")]).await;

    let listed = store.list_ownerships(NS, HUB, CG).await.unwrap();
    let owners: Vec<_> = listed.iter().map(|o| o.owner_id.as_deref()).collect();
    assert_eq!(owners, [None, None, Some("java-consumer")]);

    // A released partition is claimed with its listed etag.
    let mut reclaim = listed[0].clone();
    reclaim.owner_id = Some("me".into());
    let claimed = store.claim_ownership(&[reclaim]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].owner_id.as_deref(), Some("me"));
}

#[tokio::test]
async fn a_failed_claim_is_left_out_and_the_others_are_returned() {
    let backend = Arc::new(FailingBackend::default());
    backend.fail("/ownership/1", BackendErrorKind::Transient, Some(503));
    backend.fail("/ownership/2", BackendErrorKind::Auth, Some(403));
    let store = SdkCheckpointStore::from_backend(backend.clone());

    let claimed = store
        .claim_ownership(&[claim("0", "a"), claim("1", "a"), claim("2", "a")])
        .await
        .expect("one claim was written, so the call succeeds");
    let partitions: Vec<_> = claimed.iter().map(|o| o.partition_id.as_str()).collect();
    assert_eq!(partitions, ["0"]);

    let listed = store.list_ownerships(NS, HUB, CG).await.unwrap();
    assert_eq!(listed.len(), 1, "nothing was written for the failed claims");
}

#[tokio::test]
async fn claims_that_only_failed_for_a_passing_reason_return_an_empty_list() {
    let backend = Arc::new(FailingBackend::default());
    backend.fail("/ownership/0", BackendErrorKind::Throttled, Some(429));
    backend.fail("/ownership/1", BackendErrorKind::Transient, None);
    let store = SdkCheckpointStore::from_backend(backend);
    let claimed = store
        .claim_ownership(&[claim("0", "a"), claim("1", "a")])
        .await
        .expect("throttling and timeouts leave the processor running: it retries next round");
    assert!(claimed.is_empty());
}

#[tokio::test]
async fn claims_that_all_failed_for_a_lasting_reason_fail_the_call() {
    let backend = Arc::new(FailingBackend::default());
    backend.fail("/ownership/0", BackendErrorKind::Transient, Some(500));
    backend.fail("/ownership/1", BackendErrorKind::Auth, Some(403));
    let store = SdkCheckpointStore::from_backend(backend);
    let error = store
        .claim_ownership(&[claim("0", "a"), claim("1", "a")])
        .await
        .expect_err("a refused credential will not pass by itself");
    assert_eq!(error.http_status(), Some(StatusCode::Forbidden));
    let inner = error
        .downcast_ref::<StoreError>()
        .expect("the store's error is inside");
    assert_eq!(inner.kind(), BackendErrorKind::Auth);
    assert!(inner.blob().ends_with("/ownership/1"));
}

#[tokio::test]
async fn claims_lost_to_another_consumer_are_left_out_without_error() {
    let store = SdkCheckpointStore::in_memory();
    store.claim_ownership(&[claim("0", "a")]).await.unwrap();
    let claimed = store
        .claim_ownership(&[claim("0", "b"), claim("1", "b")])
        .await
        .unwrap();
    let partitions: Vec<_> = claimed.iter().map(|o| o.partition_id.as_str()).collect();
    assert_eq!(partitions, ["1"]);
}

#[tokio::test]
async fn errors_carry_the_status_and_the_store_error() {
    let backend = Arc::new(FailingBackend::default());
    backend.fail("/checkpoint/0", BackendErrorKind::Throttled, Some(503));
    backend.fail("/checkpoint/1", BackendErrorKind::Transient, None);
    backend.fail("/checkpoint/2", BackendErrorKind::Auth, None);
    backend.fail("/checkpoint/3", BackendErrorKind::PreconditionFailed, None);
    let store = SdkCheckpointStore::from_backend(backend);

    let error = store
        .update_checkpoint(checkpoint("0", Some("1"), Some(1)))
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(StatusCode::ServiceUnavailable));
    assert_eq!(
        error.downcast_ref::<StoreError>().unwrap().kind(),
        BackendErrorKind::Throttled
    );

    let error = store
        .update_checkpoint(checkpoint("1", Some("1"), Some(1)))
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Io), "{error:?}");

    let error = store
        .update_checkpoint(checkpoint("2", Some("1"), Some(1)))
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Credential), "{error:?}");

    let error = store
        .update_checkpoint(checkpoint("3", Some("1"), Some(1)))
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(StatusCode::PreconditionFailed));
}

#[tokio::test]
async fn invalid_input_fails_before_anything_is_written() {
    let store = SdkCheckpointStore::in_memory();
    let error = store
        .claim_ownership(&[claim("0", "a"), claim("1", "zoë")])
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::DataConversion), "{error:?}");
    assert!(store.list_ownerships(NS, HUB, CG).await.unwrap().is_empty());

    let error = store.claim_ownership(&[claim("a/b", "a")]).await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::DataConversion), "{error:?}");

    let error = store.list_checkpoints(NS, "", CG).await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::DataConversion), "{error:?}");

    let error = store
        .update_checkpoint(checkpoint("0", None, None))
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::DataConversion), "{error:?}");
    assert!(store.list_checkpoints(NS, HUB, CG).await.unwrap().is_empty());
}

#[tokio::test]
async fn no_offset_placeholders_are_stored_as_no_offset() {
    let store = SdkCheckpointStore::in_memory();
    store
        .update_checkpoint(checkpoint("0", Some(""), Some(5)))
        .await
        .unwrap();
    store
        .update_checkpoint(checkpoint("1", Some("No Offset"), Some(6)))
        .await
        .unwrap();
    let listed = store.list_checkpoints(NS, HUB, CG).await.unwrap();
    assert!(listed.iter().all(|c| c.offset.is_none()), "{listed:?}");
    assert_eq!(
        listed.iter().map(|c| c.sequence_number).collect::<Vec<_>>(),
        [Some(5), Some(6)]
    );
}

#[tokio::test]
async fn checkpoints_are_written_where_the_other_languages_read_them() {
    let store = SdkCheckpointStore::in_memory();
    let mut cp = checkpoint("0", Some("4096"), Some(17));
    cp.event_hub_name = "Telemetry".into();
    store.update_checkpoint(cp).await.unwrap();
    let blobs = store
        .store()
        .backend()
        .list_blobs("contoso.servicebus.windows.net/telemetry/$default/checkpoint/")
        .await
        .unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].metadata.get("offset"), Some("4096"));
    assert_eq!(blobs[0].metadata.get("sequencenumber"), Some("17"));
    let _ = PartitionId::from(0);
}

#[tokio::test]
async fn many_claims_in_one_call_keep_their_order() {
    let store = SdkCheckpointStore::in_memory();
    let claims: Vec<_> = (0..32).map(|p| claim(&p.to_string(), "a")).collect();
    let claimed = store.claim_ownership(&claims).await.unwrap();
    let requested: Vec<_> = claims.iter().map(|o| o.partition_id.clone()).collect();
    let returned: Vec<_> = claimed.iter().map(|o| o.partition_id.clone()).collect();
    assert_eq!(returned, requested);
}
