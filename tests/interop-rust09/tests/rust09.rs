//! Interop with the official Rust crate
//! `azure_messaging_eventhubs_checkpointstore_blob` 0.9 (over
//! `azure_storage_blob` 1.1, bearer tokens) on one Azurite over https: each
//! side reads what the other wrote, claims made with an etag read on one
//! side win (or, stale, lose) on the other, and, for a scope that is not all
//! lower-case, the two write different blobs (azure-sdk-for-rust #5099).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Etag, Transport as HttpTransport, Url};
use azure_core::time::OffsetDateTime;
use azure_messaging_eventhubs::CheckpointStore as _;
use azure_messaging_eventhubs::models::{Checkpoint as SdkCheckpoint, Ownership as SdkOwnership};
use azure_messaging_eventhubs_checkpointstore_blob::BlobCheckpointStore;
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use eventhub_checkpoints::{
    BlobBackend, Checkpoint, CheckpointStore, ClaimResult, ETag, Offset, OwnerId, OwnershipClaim,
    PartitionId, Scope,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_test_support::{Azurite, Transport, test_jwt, unique_container_name};

/// Unsigned JWTs that Azurite's `--oauth basic` accepts; one credential
/// type serves both sides (they share azure_core 1.1).
#[derive(Debug)]
struct JwtCredential;

#[async_trait]
impl TokenCredential for JwtCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        let lifetime = Duration::from_secs(3600);
        Ok(AccessToken::new(
            test_jwt(lifetime),
            OffsetDateTime::now_utc() + lifetime,
        ))
    }
}

/// One container on the https Azurite, seen by both stores.
struct Setup {
    /// Our backend (bearer token, Azurite's certificate trusted).
    backend: AzureBlobBackend,
    /// Our store over `backend`.
    ours: CheckpointStore,
    /// The official crate 0.9 over azure_storage_blob.
    sdk: Arc<BlobCheckpointStore>,
}

async fn setup(prefix: &str) -> Setup {
    let azurite = Azurite::shared(Transport::HttpsOAuth);
    let pem = azurite
        .ca_certificate_pem()
        .expect("https Azurite has a certificate");
    let container = unique_container_name(prefix);

    let mut options = AzureBlobOptions::default();
    options.root_certificates_pem.push(pem.as_bytes().to_vec());
    let backend = AzureBlobBackend::new(
        azurite.blob_endpoint(),
        &container,
        Credential::bearer(Arc::new(JwtCredential)),
        options,
    )
    .unwrap();
    assert!(backend.create_container().await.unwrap());

    // azure_storage_blob builds its own reqwest client, which trusts only
    // the system's roots: hand it one that also trusts Azurite's self-signed
    // certificate, set up as azure_core's default client is.
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .no_deflate()
        .build()
        .unwrap();
    let client_options = ClientOptions {
        transport: Some(HttpTransport::new(Arc::new(http))),
        ..ClientOptions::default()
    };
    let container_url = Url::parse(&format!("{}/{container}", azurite.blob_endpoint())).unwrap();
    let client = BlobContainerClient::new(
        container_url,
        Some(Arc::new(JwtCredential)),
        Some(BlobContainerClientOptions {
            client_options,
            ..BlobContainerClientOptions::default()
        }),
    )
    .unwrap();
    Setup {
        ours: CheckpointStore::new(Arc::new(backend.clone())),
        backend,
        sdk: BlobCheckpointStore::new(client),
    }
}

const NAMESPACE: &str = "ns.servicebus.windows.net";

fn owner(id: &str) -> OwnerId {
    OwnerId::new(id).unwrap()
}

fn sdk_ownership(scope: &Scope, partition: &str, owner: Option<&str>, etag: Option<Etag>) -> SdkOwnership {
    SdkOwnership {
        fully_qualified_namespace: scope.fully_qualified_namespace().to_owned(),
        event_hub_name: scope.event_hub().to_owned(),
        consumer_group: scope.consumer_group().to_owned(),
        partition_id: partition.to_owned(),
        owner_id: owner.map(str::to_owned),
        etag,
        last_modified_time: None,
    }
}

fn sdk_checkpoint(
    scope: &Scope,
    partition: &str,
    offset: Option<&str>,
    sequence_number: i64,
) -> SdkCheckpoint {
    SdkCheckpoint {
        fully_qualified_namespace: scope.fully_qualified_namespace().to_owned(),
        event_hub_name: scope.event_hub().to_owned(),
        consumer_group: scope.consumer_group().to_owned(),
        partition_id: partition.to_owned(),
        offset: offset.map(str::to_owned),
        sequence_number: Some(sequence_number),
    }
}

async fn sdk_list_ownerships(s: &Setup, scope: &Scope) -> Vec<SdkOwnership> {
    s.sdk
        .list_ownerships(
            scope.fully_qualified_namespace(),
            scope.event_hub(),
            scope.consumer_group(),
        )
        .await
        .unwrap()
}

async fn sdk_list_checkpoints(s: &Setup, scope: &Scope) -> Vec<SdkCheckpoint> {
    s.sdk
        .list_checkpoints(
            scope.fully_qualified_namespace(),
            scope.event_hub(),
            scope.consumer_group(),
        )
        .await
        .unwrap()
}

/// Every blob name in the container under `prefix`.
async fn blob_names(s: &Setup, prefix: &str) -> Vec<String> {
    s.backend
        .list_blobs(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}

fn etag(sdk: &Etag) -> ETag {
    ETag::new(sdk.as_ref()).unwrap()
}

#[tokio::test]
async fn what_the_rust_crate_writes_we_read() {
    let s = setup("r09-theirs").await;
    let scope = Scope::new(NAMESPACE, "hub", "$default").unwrap();

    // Claims without an etag: Put Blob with If-None-Match: *.
    let claimed = s
        .sdk
        .claim_ownership(&[
            sdk_ownership(&scope, "0", Some("sdk-1"), None),
            sdk_ownership(&scope, "1", Some("sdk-1"), None),
        ])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    s.sdk
        .update_checkpoint(sdk_checkpoint(&scope, "0", Some("4096"), 17))
        .await
        .unwrap();
    // No offset: the crate leaves the `offset` key out.
    s.sdk
        .update_checkpoint(sdk_checkpoint(&scope, "1", None, 18))
        .await
        .unwrap();

    // Names and metadata as our format has them.
    assert_eq!(
        blob_names(&s, &format!("{NAMESPACE}/")).await,
        [
            format!("{NAMESPACE}/hub/$default/checkpoint/0"),
            format!("{NAMESPACE}/hub/$default/checkpoint/1"),
            format!("{NAMESPACE}/hub/$default/ownership/0"),
            format!("{NAMESPACE}/hub/$default/ownership/1"),
        ]
    );
    let raw = s
        .backend
        .list_blobs(&format!("{NAMESPACE}/hub/$default/checkpoint/1"))
        .await
        .unwrap();
    assert_eq!(
        raw[0].metadata.iter().collect::<Vec<_>>(),
        [("sequencenumber", "18")]
    );

    let ownerships = s.ours.list_ownership(&scope).await.unwrap();
    assert!(ownerships.skipped.is_empty(), "{:?}", ownerships.skipped);
    let read: Vec<_> = ownerships
        .items
        .iter()
        .map(|o| (o.partition_id.as_str(), o.owner_id.clone()))
        .collect();
    assert_eq!(read, [("0", Some(owner("sdk-1"))), ("1", Some(owner("sdk-1")))]);
    for (ours, theirs) in ownerships.items.iter().zip(&claimed) {
        assert_eq!(ours.etag, etag(theirs.etag.as_ref().unwrap()), "same version");
    }
    let checkpoints = s.ours.list_checkpoints(&scope).await.unwrap();
    assert!(checkpoints.skipped.is_empty(), "{:?}", checkpoints.skipped);
    let read: Vec<_> = checkpoints
        .items
        .iter()
        .map(|c| {
            (
                c.partition_id().as_str(),
                c.offset().map(Offset::as_str),
                c.sequence_number(),
            )
        })
        .collect();
    assert_eq!(read, [("0", Some("4096"), Some(17)), ("1", None, Some(18))]);

    // We steal partition 0 with the etag we listed; the crate's renewal
    // with its now stale etag is lost (left out of its result).
    let stolen = s
        .ours
        .claim(&OwnershipClaim::from_listed(&ownerships.items[0], owner("ours")))
        .await;
    assert!(stolen.claimed().is_some(), "{stolen:?}");
    let renewed = s
        .sdk
        .claim_ownership(&[sdk_ownership(&scope, "0", Some("sdk-1"), claimed[0].etag.clone())])
        .await
        .unwrap();
    assert!(renewed.is_empty(), "{renewed:?}");

    // The crate releases partition 1 by clearing the metadata (owner_id
    // None, conditional on its etag): we read it as released.
    let released = s
        .sdk
        .claim_ownership(&[sdk_ownership(&scope, "1", None, claimed[1].etag.clone())])
        .await
        .unwrap();
    assert_eq!(released.len(), 1, "{released:?}");
    let listed = s.ours.list_ownership(&scope).await.unwrap().items;
    assert_eq!(listed[0].owner_id, Some(owner("ours")));
    assert_eq!(listed[1].owner_id, None);
    assert_eq!(listed[1].etag, etag(released[0].etag.as_ref().unwrap()));
    let claim = s
        .ours
        .claim(&OwnershipClaim::from_listed(&listed[1], owner("ours")))
        .await;
    assert!(claim.claimed().is_some(), "{claim:?}");
}

#[tokio::test]
async fn what_we_write_the_rust_crate_reads() {
    let s = setup("r09-ours").await;
    let scope = Scope::new(NAMESPACE, "hub", "$default").unwrap();
    let claims =
        (0..2).map(|p| OwnershipClaim::new(scope.clone(), PartitionId::from(p), owner("ours"), None));
    let outcomes = s.ours.claim_ownership(claims).await;
    let ours: Vec<_> = outcomes
        .iter()
        .map(|o| o.result.claimed().unwrap().clone())
        .collect();
    let with_offset = Checkpoint::new(
        scope.clone(),
        PartitionId::from(0),
        Some(Offset::from(4096)),
        Some(17),
    )
    .unwrap();
    s.ours.update_checkpoint(&with_offset).await.unwrap();
    let without_offset = Checkpoint::new(scope.clone(), PartitionId::from(1), None, Some(18)).unwrap();
    s.ours.update_checkpoint(&without_offset).await.unwrap();

    let checkpoints = sdk_list_checkpoints(&s, &scope).await;
    let read: Vec<_> = checkpoints
        .iter()
        .map(|c| (c.partition_id.as_str(), c.offset.as_deref(), c.sequence_number))
        .collect();
    // Trap: our "no offset" placeholder (`offset` = "", kept for the
    // Python store) reads as the offset "" in the crate, and its processor
    // would start from StartLocation::Offset("") rather than from the
    // sequence number.
    assert_eq!(read, [("0", Some("4096"), Some(17)), ("1", Some(""), Some(18))]);

    let ownerships = sdk_list_ownerships(&s, &scope).await;
    let read: Vec<_> = ownerships
        .iter()
        .map(|o| (o.partition_id.as_str(), o.owner_id.as_deref()))
        .collect();
    assert_eq!(read, [("0", Some("ours")), ("1", Some("ours"))]);
    for (theirs, ours) in ownerships.iter().zip(&ours) {
        assert_eq!(etag(theirs.etag.as_ref().unwrap()), ours.etag, "same version");
    }

    // A create-only claim of the crate on a partition we own: Azurite's 409
    // (Azure's 412) reads as lost there too, left out of the result.
    let lost = s
        .sdk
        .claim_ownership(&[sdk_ownership(&scope, "0", Some("sdk-1"), None)])
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");

    // The crate steals partition 0 with the etag it listed (Set Blob
    // Metadata, If-Match, unquoted as listed); our renewal with the stale
    // etag is lost.
    let stolen = s
        .sdk
        .claim_ownership(&[sdk_ownership(
            &scope,
            "0",
            Some("sdk-1"),
            ownerships[0].etag.clone(),
        )])
        .await
        .unwrap();
    assert_eq!(stolen.len(), 1, "{stolen:?}");
    let renewal = s
        .ours
        .claim(&OwnershipClaim::new(
            scope.clone(),
            PartitionId::from(0),
            owner("ours"),
            Some(ours[0].etag.clone()),
        ))
        .await;
    assert!(matches!(renewal, ClaimResult::Lost), "{renewal:?}");

    // We release partition 1 (`ownerid` ""). Trap: the crate lists it as
    // owned by "" (Some("")), and its load balancer treats only None as
    // unowned, so it waits for the ownership to expire; a claim with the
    // listed etag does succeed.
    let released = s
        .ours
        .release_ownership(&scope, &PartitionId::from(1), ours[1].etag.clone())
        .await;
    assert!(released.claimed().is_some(), "{released:?}");
    let ownerships = sdk_list_ownerships(&s, &scope).await;
    assert_eq!(ownerships[0].owner_id.as_deref(), Some("sdk-1"));
    assert_eq!(ownerships[1].owner_id.as_deref(), Some(""));
    let claimed = s
        .sdk
        .claim_ownership(&[sdk_ownership(
            &scope,
            "1",
            Some("sdk-1"),
            ownerships[1].etag.clone(),
        )])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let listed = s.ours.list_ownership(&scope).await.unwrap().items;
    assert!(
        listed.iter().all(|o| o.owner_id == Some(owner("sdk-1"))),
        "{listed:?}"
    );
}

#[tokio::test]
async fn a_mixed_case_scope_splits_the_two_stores() {
    let s = setup("r09-case").await;
    // `$Default`, as most applications pass it.
    let scope = Scope::new(NAMESPACE, "Hub", "$Default").unwrap();

    let theirs = s
        .sdk
        .claim_ownership(&[sdk_ownership(&scope, "0", Some("sdk-1"), None)])
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    s.sdk
        .update_checkpoint(sdk_checkpoint(&scope, "0", Some("100"), 1))
        .await
        .unwrap();
    // Ours are lower-cased, theirs are not: we see none of theirs ...
    let listed = s.ours.list_ownership(&scope).await.unwrap();
    assert!(listed.items.is_empty() && listed.skipped.is_empty(), "{listed:?}");
    assert!(s.ours.list_checkpoints(&scope).await.unwrap().items.is_empty());
    // ... so our create-only claim of the same partition wins too, and the
    // partition has two owners.
    let ours = s
        .ours
        .claim(&OwnershipClaim::new(
            scope.clone(),
            PartitionId::from(0),
            owner("ours"),
            None,
        ))
        .await;
    assert!(ours.claimed().is_some(), "{ours:?}");
    let checkpoint = Checkpoint::new(
        scope.clone(),
        PartitionId::from(0),
        Some(Offset::from(200)),
        Some(2),
    )
    .unwrap();
    s.ours.update_checkpoint(&checkpoint).await.unwrap();
    assert_eq!(
        blob_names(&s, &format!("{NAMESPACE}/")).await,
        [
            format!("{NAMESPACE}/Hub/$Default/checkpoint/0"),
            format!("{NAMESPACE}/Hub/$Default/ownership/0"),
            format!("{NAMESPACE}/hub/$default/checkpoint/0"),
            format!("{NAMESPACE}/hub/$default/ownership/0"),
        ]
    );
    // And the crate sees only its own.
    let ownerships = sdk_list_ownerships(&s, &scope).await;
    assert_eq!(ownerships.len(), 1);
    assert_eq!(ownerships[0].owner_id.as_deref(), Some("sdk-1"));
    let checkpoints = sdk_list_checkpoints(&s, &scope).await;
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].offset.as_deref(), Some("100"));

    // Given the lower-cased scope, the crate names its blobs as we do and
    // sees ours.
    let lower = Scope::new(NAMESPACE, "hub", "$default").unwrap();
    let ownerships = sdk_list_ownerships(&s, &lower).await;
    assert_eq!(ownerships.len(), 1);
    assert_eq!(ownerships[0].owner_id.as_deref(), Some("ours"));
    assert_eq!(
        sdk_list_checkpoints(&s, &lower).await[0].offset.as_deref(),
        Some("200")
    );
}
