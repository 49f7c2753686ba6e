//! Retries and ambiguous writes against Azurite behind a fault-injecting
//! proxy: which failures are retried and how often, how long the service's
//! `Retry-After` holds a retry back, and that a write whose response was
//! lost is read back instead of being reported as failed or lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhub_checkpoints::{
    BackendErrorKind, BlobBackend, Checkpoint, CheckpointStore, ClaimResult, ETag, Metadata, Offset, OwnerId,
    Ownership, OwnershipClaim, PartitionId, Scope, WriteCondition,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential, RetryOptions};
use eventhub_checkpoints_test_support::fault_proxy::{
    Fault, FaultProxy, Match, ObservedRequest, Outcome, Rule,
};
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, unique_container_name,
};

mod common;

const MAX_RETRIES: u32 = 3;

/// A container on Azurite, reached directly and through a proxy.
struct Setup {
    proxy: FaultProxy,
    /// The backend through the proxy (short retry delays).
    backend: AzureBlobBackend,
    /// A store over [`backend`](Self::backend).
    store: CheckpointStore,
    /// A store straight to Azurite, for setting up and checking state.
    direct: CheckpointStore,
    scope: Scope,
}

async fn setup(name: &str) -> Setup {
    setup_with(name, Duration::from_secs(10)).await
}

async fn setup_with(name: &str, per_try_timeout: Duration) -> Setup {
    let container = unique_container_name(name);
    let direct = common::shared_key_backend_for(&container, AzureBlobOptions::default());
    assert!(direct.create_container().await.unwrap());
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let options = AzureBlobOptions {
        retry: RetryOptions {
            max_retries: MAX_RETRIES,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
        },
        per_try_timeout,
        ..AzureBlobOptions::default()
    };
    let backend = AzureBlobBackend::new(
        &format!("{}/{ACCOUNT_NAME}", proxy.url()),
        &container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
        options,
    )
    .unwrap();
    Setup {
        proxy,
        store: CheckpointStore::new(Arc::new(backend.clone())),
        backend,
        direct: CheckpointStore::new(Arc::new(direct)),
        scope: Scope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap(),
    }
}

fn owner(id: &str) -> OwnerId {
    OwnerId::new(id).unwrap()
}

fn checkpoint(scope: &Scope, sequence_number: i64) -> Checkpoint {
    Checkpoint::new(
        scope.clone(),
        PartitionId::from(0),
        Some(Offset::from(sequence_number * 100)),
        Some(sequence_number),
    )
    .unwrap()
}

fn claim(scope: &Scope, who: &str, etag: Option<ETag>) -> OwnershipClaim {
    OwnershipClaim::new(scope.clone(), PartitionId::from(0), owner(who), etag)
}

fn claimed(result: ClaimResult) -> Ownership {
    match result {
        ClaimResult::Claimed(ownership) => ownership,
        other => panic!("expected Claimed, got {other:?}"),
    }
}

/// Set Blob Metadata of any blob.
fn set_metadata() -> Match {
    Match::method("PUT").path_contains("comp=metadata")
}

/// Put Blob (or Set Blob Metadata) of partition 0's ownership blob.
fn ownership_put() -> Match {
    Match::method("PUT").path_contains("/ownership/0")
}

/// List Blobs.
fn list() -> Match {
    Match::method("GET").path_contains("comp=list")
}

fn outcomes(requests: &[ObservedRequest]) -> Vec<String> {
    requests.iter().map(|r| r.outcome.to_string()).collect()
}

async fn only_ownership(setup: &Setup) -> Ownership {
    let mut listed = setup.direct.list_ownership(&setup.scope).await.unwrap().items;
    assert_eq!(listed.len(), 1, "{listed:?}");
    listed.remove(0)
}

async fn checkpoints(setup: &Setup) -> Vec<Checkpoint> {
    setup.direct.list_checkpoints(&setup.scope).await.unwrap().items
}

// a. One retryable failure, then success.

#[tokio::test]
async fn retry_after_of_a_503_holds_the_retry_back() {
    let s = setup("f-503").await;
    s.proxy.push(Rule::new(
        list(),
        Fault::storage_error(
            503,
            "ServerBusy",
            "The server is currently unable to receive requests.",
        )
        .header("Retry-After", "1"),
    ));
    let started = Instant::now();
    let listed = s.store.list_checkpoints(&s.scope).await.unwrap();
    let elapsed = started.elapsed();
    assert!(listed.items.is_empty());
    assert_eq!(outcomes(&s.proxy.requests_matching(&list())), ["503", "200"]);
    assert!(elapsed >= Duration::from_millis(900), "retried after {elapsed:?}");
}

#[tokio::test]
async fn a_500_is_retried_and_the_checkpoint_written() {
    let s = setup("f-500").await;
    s.direct
        .update_checkpoint(&checkpoint(&s.scope, 1))
        .await
        .unwrap();
    s.proxy.push(Rule::new(
        set_metadata(),
        Fault::storage_error(500, "InternalError", "The server encountered an internal error."),
    ));
    let cp = checkpoint(&s.scope, 2);
    s.store.update_checkpoint(&cp).await.unwrap();
    assert_eq!(
        outcomes(&s.proxy.requests_matching(&set_metadata())),
        ["500", "200"]
    );
    assert_eq!(checkpoints(&s).await, [cp]);
}

#[tokio::test]
async fn a_429_is_retried_after_x_ms_retry_after_ms_and_the_claim_made() {
    let s = setup("f-429").await;
    s.proxy.push(Rule::new(
        ownership_put(),
        Fault::status(429).header("x-ms-retry-after-ms", "200"),
    ));
    let started = Instant::now();
    let ownership = claimed(s.store.claim(&claim(&s.scope, "me", None)).await);
    let elapsed = started.elapsed();
    assert_eq!(
        outcomes(&s.proxy.requests_matching(&ownership_put())),
        ["429", "201"]
    );
    assert!(elapsed >= Duration::from_millis(180), "retried after {elapsed:?}");
    let listed = only_ownership(&s).await;
    assert_eq!(
        (listed.owner_id, listed.etag),
        (Some(owner("me")), ownership.etag)
    );
}

#[tokio::test]
async fn a_408_is_retried_and_the_checkpoint_deleted() {
    let s = setup("f-408").await;
    s.direct
        .update_checkpoint(&checkpoint(&s.scope, 1))
        .await
        .unwrap();
    let delete = Match::method("DELETE");
    s.proxy.push(Rule::new(delete.clone(), Fault::status(408)));
    assert!(
        s.store
            .delete_checkpoint(&s.scope, &PartitionId::from(0))
            .await
            .unwrap()
    );
    assert_eq!(outcomes(&s.proxy.requests_matching(&delete)), ["408", "202"]);
    assert!(checkpoints(&s).await.is_empty());
}

// b. Persistent failures end after max_retries + 1 attempts.

#[tokio::test]
async fn a_persistent_503_gives_up_after_the_retries_with_a_typed_error() {
    let s = setup("f-503-forever").await;
    s.proxy
        .push(Rule::new(list(), Fault::storage_error(503, "ServerBusy", "Busy.")).times(100));
    let err = s.backend.list_blobs("a/").await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Throttled, "{err:?}");
    assert_eq!(err.status(), Some(503));
    assert!(err.to_string().contains("ServerBusy"), "{err}");
    assert_eq!(s.proxy.requests().len(), MAX_RETRIES as usize + 1);
    assert_eq!(s.proxy.faults_left(), 100 - (MAX_RETRIES as usize + 1));

    // A 503 ServiceUnavailable is transient rather than throttling.
    s.proxy.clear_requests();
    s.proxy.push(
        Rule::new(
            set_metadata(),
            Fault::storage_error(503, "ServiceUnavailable", "Unavailable.")
                .header("x-ms-request-id", "req-1"),
        )
        .times(100),
    );
    let mut m = Metadata::new();
    m.insert("k", "v");
    let err = s
        .backend
        .set_metadata("blob", &m, &WriteCondition::Unconditional)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Transient, "{err:?}");
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.request_id(), Some("req-1"));
    assert!(err.to_string().contains("ServiceUnavailable"), "{err}");
    assert_eq!(s.proxy.requests().len(), MAX_RETRIES as usize + 1);
}

#[tokio::test]
async fn lost_responses_give_up_as_possibly_applied_writes() {
    let s = setup("f-lost").await;
    let attempts = MAX_RETRIES as usize + 1;
    let mut m = Metadata::new();
    m.insert("k", "v");
    s.proxy
        .push(Rule::new(Match::method("PUT"), Fault::ResetBeforeForwarding).times(attempts));
    let err = s
        .backend
        .put_blob("blob", &m, &WriteCondition::Unconditional)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Transient, "{err:?}");
    assert_eq!(err.status(), None);
    assert!(err.write_may_have_applied(), "{err:?}");
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert_eq!(outcomes(&s.proxy.requests()), vec!["reset"; attempts]);

    // A read is never reported as a write that may have applied.
    s.proxy.clear_requests();
    s.proxy
        .push(Rule::new(list(), Fault::ResetBeforeForwarding).times(attempts));
    let err = s.backend.list_blobs("a/").await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Transient, "{err:?}");
    assert!(!err.write_may_have_applied(), "{err:?}");
    assert_eq!(s.proxy.requests().len(), attempts);
}

// c. Answers that retrying cannot change are not retried.

#[tokio::test]
async fn condition_not_found_and_auth_failures_are_not_retried() {
    let s = setup("f-final").await;
    let mut m = Metadata::new();
    m.insert("k", "v");
    let etag = ETag::new("\"0x8D0000000000000\"").unwrap();
    let cases = [
        (
            Fault::storage_error(404, "BlobNotFound", "No blob."),
            BackendErrorKind::NotFound,
        ),
        (
            Fault::storage_error(409, "LeaseIdMissing", "Leased."),
            BackendErrorKind::Other,
        ),
        (
            Fault::storage_error(412, "ConditionNotMet", "Not met."),
            BackendErrorKind::PreconditionFailed,
        ),
        (
            Fault::storage_error(403, "AuthorizationFailure", "Refused."),
            BackendErrorKind::Auth,
        ),
    ];
    for (fault, kind) in cases {
        s.proxy.clear_requests();
        s.proxy.push(Rule::new(set_metadata(), fault.clone()));
        let err = s
            .backend
            .set_metadata("blob", &m, &WriteCondition::IfMatch(etag.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{fault:?}: {err:?}");
        assert!(!err.write_may_have_applied(), "{err:?}");
        assert_eq!(s.proxy.requests().len(), 1, "{fault:?} was retried");
    }
    // A real 409 from Azurite: the create-only write of an existing blob.
    s.backend
        .put_blob("blob", &m, &WriteCondition::IfNotExists)
        .await
        .unwrap();
    s.proxy.clear_requests();
    let err = s
        .backend
        .put_blob("blob", &m, &WriteCondition::IfNotExists)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::AlreadyExists, "{err:?}");
    assert_eq!(outcomes(&s.proxy.requests()), ["409"]);
}

// d. A claim whose response was lost, retried into a condition failure.

#[tokio::test]
async fn a_create_only_claim_whose_response_was_lost_is_claimed() {
    let s = setup("f-claim-new").await;
    s.proxy.push(Rule::new(ownership_put(), Fault::ForwardThenReset));
    let ownership = claimed(s.store.claim(&claim(&s.scope, "me", None)).await);
    let puts = s.proxy.requests_matching(&ownership_put());
    assert_eq!(outcomes(&puts), ["reset", "409"]);
    assert_eq!(
        puts[0].upstream_status,
        Some(201),
        "the first attempt created the blob"
    );
    let listed = only_ownership(&s).await;
    assert_eq!(listed.owner_id, Some(owner("me")));
    assert_eq!(listed.etag, ownership.etag);
}

#[tokio::test]
async fn a_renewal_whose_response_was_lost_is_claimed() {
    let s = setup("f-claim-renew").await;
    let first = claimed(s.store.claim(&claim(&s.scope, "me", None)).await);
    s.proxy.clear_requests();
    s.proxy.push(Rule::new(set_metadata(), Fault::ForwardThenReset));
    let renewed = claimed(
        s.store
            .claim(&claim(&s.scope, "me", Some(first.etag.clone())))
            .await,
    );
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(outcomes(&puts), ["reset", "412"]);
    assert_eq!(puts[0].upstream_status, Some(200), "the first attempt renewed");
    assert_ne!(renewed.etag, first.etag);
    let listed = only_ownership(&s).await;
    assert_eq!(listed.owner_id, Some(owner("me")));
    assert_eq!(listed.etag, renewed.etag);
}

// e. A checkpoint whose response was lost.

#[tokio::test]
async fn a_checkpoint_whose_response_was_lost_once_is_written() {
    let s = setup("f-cp-once").await;
    s.store.update_checkpoint(&checkpoint(&s.scope, 1)).await.unwrap();
    s.proxy.clear_requests();
    s.proxy.push(Rule::new(set_metadata(), Fault::ForwardThenReset));
    let cp = checkpoint(&s.scope, 2);
    s.store.update_checkpoint(&cp).await.unwrap();
    assert_eq!(
        outcomes(&s.proxy.requests_matching(&set_metadata())),
        ["reset", "200"]
    );
    assert_eq!(checkpoints(&s).await, [cp]);
}

#[tokio::test]
async fn a_checkpoint_whose_responses_were_all_lost_is_read_back_and_acknowledged() {
    let s = setup("f-cp-always").await;
    s.store.update_checkpoint(&checkpoint(&s.scope, 1)).await.unwrap();
    s.proxy.clear_requests();
    let attempts = MAX_RETRIES as usize + 1;
    s.proxy
        .push(Rule::new(set_metadata(), Fault::ForwardThenReset).times(attempts));
    let cp = checkpoint(&s.scope, 2);
    s.store.update_checkpoint(&cp).await.unwrap();
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(outcomes(&puts), vec!["reset"; attempts]);
    assert!(puts.iter().all(|r| r.upstream_status == Some(200)), "{puts:?}");
    assert_eq!(s.proxy.requests_matching(&list()).len(), 1, "one read-back");
    assert_eq!(checkpoints(&s).await, [cp]);
}

#[tokio::test]
async fn a_delete_whose_response_was_lost_deletes() {
    let s = setup("f-delete-lost").await;
    s.direct
        .update_checkpoint(&checkpoint(&s.scope, 1))
        .await
        .unwrap();
    let delete = Match::method("DELETE");
    s.proxy.push(Rule::new(delete.clone(), Fault::ForwardThenReset));
    // The retry finds nothing to delete because the first attempt deleted
    // it: the call reports that it deleted a checkpoint.
    let deleted = s
        .store
        .delete_checkpoint(&s.scope, &PartitionId::from(0))
        .await
        .unwrap();
    assert!(deleted, "the lost response's delete was this call's");
    let deletes = s.proxy.requests_matching(&delete);
    assert_eq!(outcomes(&deletes), ["reset", "404"]);
    assert_eq!(deletes[0].upstream_status, Some(202));
    assert!(checkpoints(&s).await.is_empty());
}

// f. A retried claim that lost to another owner is lost, not claimed.

#[tokio::test]
async fn a_retried_claim_against_another_owner_is_lost() {
    let s = setup("f-claim-lost").await;
    let theirs = claimed(s.direct.claim(&claim(&s.scope, "other", None)).await);
    let renewed = claimed(
        s.direct
            .claim(&claim(&s.scope, "other", Some(theirs.etag.clone())))
            .await,
    );
    s.proxy
        .push(Rule::new(set_metadata(), Fault::ResetBeforeForwarding));
    let result = s
        .store
        .claim(&claim(&s.scope, "me", Some(theirs.etag.clone())))
        .await;
    assert!(matches!(result, ClaimResult::Lost), "{result:?}");
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(outcomes(&puts), ["reset", "412"]);
    assert_eq!(puts[0].upstream_status, None);
    assert_eq!(
        s.proxy.requests_matching(&list()).len(),
        1,
        "the claim was read back"
    );
    let listed = only_ownership(&s).await;
    assert_eq!(
        (listed.owner_id, listed.etag),
        (Some(owner("other")), renewed.etag)
    );
}

// g. A slow answer: the attempt times out, the request still lands.

#[tokio::test]
async fn a_timed_out_checkpoint_is_retried_and_ends_correct() {
    let s = setup_with("f-slow-cp", Duration::from_millis(700)).await;
    s.direct
        .update_checkpoint(&checkpoint(&s.scope, 1))
        .await
        .unwrap();
    s.proxy.push(Rule::new(
        set_metadata(),
        Fault::Delay(Duration::from_millis(1500)),
    ));
    let cp = checkpoint(&s.scope, 2);
    s.store.update_checkpoint(&cp).await.unwrap();
    s.proxy.settled().await;
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(
        puts.iter().all(|r| r.upstream_status == Some(200)),
        "applied twice: {puts:?}"
    );
    assert_eq!(checkpoints(&s).await, [cp]);
}

#[tokio::test]
async fn a_timed_out_renewal_is_retried_and_ends_correct() {
    let s = setup_with("f-slow-claim", Duration::from_millis(700)).await;
    let first = claimed(s.direct.claim(&claim(&s.scope, "me", None)).await);
    s.proxy.push(Rule::new(
        set_metadata(),
        Fault::Delay(Duration::from_millis(1500)),
    ));
    let renewed = claimed(
        s.store
            .claim(&claim(&s.scope, "me", Some(first.etag.clone())))
            .await,
    );
    s.proxy.settled().await;
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(puts.len(), 2, "{puts:?}");
    let mut statuses: Vec<_> = puts.iter().map(|r| r.upstream_status).collect();
    statuses.sort();
    assert_eq!(statuses, [Some(200), Some(412)], "applied once: {puts:?}");
    let listed = only_ownership(&s).await;
    assert_eq!(listed.owner_id, Some(owner("me")));
    assert_eq!(listed.etag, renewed.etag);
}

// h. Every attempt is signed afresh.

#[tokio::test]
async fn each_attempt_is_signed_afresh() {
    let s = setup("f-fresh").await;
    s.direct
        .update_checkpoint(&checkpoint(&s.scope, 1))
        .await
        .unwrap();
    s.proxy.push(Rule::new(
        set_metadata(),
        Fault::storage_error(503, "ServerBusy", "Busy.").header("Retry-After", "1"),
    ));
    s.store.update_checkpoint(&checkpoint(&s.scope, 2)).await.unwrap();
    let puts = s.proxy.requests_matching(&set_metadata());
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[1].outcome, Outcome::Status(200));
    let header = |i: usize, name: &str| {
        puts[i]
            .header(name)
            .unwrap_or_else(|| panic!("attempt {i} has no {name}"))
            .to_owned()
    };
    for name in ["x-ms-client-request-id", "x-ms-date", "authorization"] {
        assert_ne!(header(0, name), header(1, name), "{name} was reused");
    }
}

/// A redirect comes from something between us and the service (the Blob
/// service never sends one): it is reported, not followed, and the write is
/// neither retried nor sent anywhere else.
#[tokio::test]
async fn a_redirect_is_reported_not_followed() {
    let setup = setup("redirect").await;
    let elsewhere = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    // The same request on another origin, and on this one.
    let path = setup
        .backend
        .container_url()
        .strip_prefix(&setup.proxy.url())
        .unwrap()
        .to_owned();
    for location in [format!("{}{path}", elsewhere.url()), path.clone()] {
        setup
            .proxy
            .push(Rule::new(Match::any(), Fault::status(307).header("location", &location)).times(1));
        let error = setup
            .store
            .update_checkpoint(&checkpoint(&setup.scope, 1))
            .await
            .expect_err("a redirect is not a success");
        assert_eq!(error.kind(), BackendErrorKind::Other, "{error}");
        assert_eq!(error.backend_error().status(), Some(307), "{error}");
        assert!(error.to_string().contains("not followed"), "{error}");
        assert_eq!(outcomes(&setup.proxy.requests()), ["307"], "{location}");
        setup.proxy.clear_requests();
    }
    assert!(elsewhere.requests().is_empty());
    assert!(checkpoints(&setup).await.is_empty());
}
