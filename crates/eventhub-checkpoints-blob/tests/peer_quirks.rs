//! What other SDKs' blob checkpoint stores have written, read by this store
//! against Azurite: the blobs are written as the peers write them (through
//! the backend's `put_blob`, or a raw request where the backend would
//! normalise what a peer sends), then listed with our `CheckpointStore`.
//! Also pins how a lost create-only claim reads, whether the service answers
//! 409 (Azurite) or 412 (Azure). `docs/format.md` ("What each SDK writes
//! and reads") records the peers these blobs come from.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use eventhub_checkpoints::{
    BlobBackend, CheckpointStore, ClaimResult, Metadata, OwnerId, OwnershipClaim, PartitionId, Scope,
    WriteCondition,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential, RetryOptions};
use eventhub_checkpoints_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, unique_container_name,
};

mod common;

const NAMESPACE: &str = "ns.servicebus.windows.net";

/// A fresh container, a backend on it and our store over that backend.
async fn setup(prefix: &str) -> (String, AzureBlobBackend, CheckpointStore) {
    let container = unique_container_name(prefix);
    let backend = common::shared_key_backend_for(&container, AzureBlobOptions::default());
    assert!(backend.create_container().await.unwrap());
    let store = CheckpointStore::new(Arc::new(backend.clone()));
    (container, backend, store)
}

fn scope() -> Scope {
    Scope::new(NAMESPACE, "hub", "$Default").unwrap()
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().copied().collect()
}

/// Writes a blob as a peer does: an empty block blob with this metadata,
/// unconditionally.
async fn put(backend: &AzureBlobBackend, name: &str, pairs: &[(&str, &str)]) {
    backend
        .put_blob(name, &metadata(pairs), &WriteCondition::Unconditional)
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e}"));
}

/// Put Blob sent by hand over HTTP/1.1 with a container SAS, so that the
/// metadata header names keep the case given (the backend, like every
/// `http`-crate client, sends them lower-case). Returns the status.
fn raw_put_blob(container: &str, name: &str, headers: &[(&str, &str)]) -> u16 {
    raw_request("PUT", container, name, "", headers).0
}

/// One request sent by hand over HTTP/1.1 with a container SAS; the status
/// and the whole response.
fn raw_request(
    method: &str,
    container: &str,
    name: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let endpoint = Azurite::shared(Transport::Http).blob_endpoint();
    let authority = endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let target = format!(
        "/{ACCOUNT_NAME}/{container}{}{name}?{query}{}",
        if name.is_empty() { "" } else { "/" },
        common::container_sas(container)
    );
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nx-ms-version: 2019-07-07\r\n\
         x-ms-blob-type: BlockBlob\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (header, value) in headers {
        request.push_str(&format!("{header}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    (status, response)
}

fn owner(id: &str) -> OwnerId {
    OwnerId::new(id).unwrap()
}

/// The metadata names of the blob `name` as the listing returns them.
async fn listed_names(backend: &AzureBlobBackend, name: &str) -> Vec<String> {
    let blobs = backend.list_blobs(name).await.unwrap();
    let blob = blobs.iter().find(|b| b.name == name).unwrap();
    blob.metadata.iter().map(|(n, _)| n.to_owned()).collect()
}

#[tokio::test]
async fn camel_case_metadata_names_of_early_java_read_as_lower_case() {
    let (container, backend, store) = setup("q-camel").await;
    let s = scope();
    // As early Java sent them: the names keep their case on the wire, and
    // Azurite (like Azure) returns them as written.
    let checkpoint = format!("{NAMESPACE}/hub/$default/checkpoint/0");
    let ownership = format!("{NAMESPACE}/hub/$default/ownership/0");
    let sent = [("x-ms-meta-Offset", "4096"), ("x-ms-meta-SequenceNumber", "17")];
    assert_eq!(raw_put_blob(&container, &checkpoint, &sent), 201);
    assert_eq!(
        raw_put_blob(&container, &ownership, &[("x-ms-meta-OwnerId", "java-1")]),
        201
    );
    assert_eq!(
        listed_names(&backend, &checkpoint).await,
        ["Offset", "SequenceNumber"]
    );
    assert_eq!(listed_names(&backend, &ownership).await, ["OwnerId"]);

    let checkpoints = store.list_checkpoints(&s).await.unwrap();
    assert!(checkpoints.skipped.is_empty(), "{:?}", checkpoints.skipped);
    let [cp] = &checkpoints.items[..] else {
        panic!("{checkpoints:?}")
    };
    assert_eq!(cp.offset().map(|o| o.as_str()), Some("4096"));
    assert_eq!(cp.sequence_number(), Some(17));
    let ownerships = store.list_ownership(&s).await.unwrap().items;
    assert_eq!(ownerships.len(), 1);
    assert_eq!(ownerships[0].owner_id, Some(owner("java-1")));

    // The same names through the backend's put_blob reach the service
    // lower-cased: the backend never writes CamelCase names.
    let checkpoint_1 = format!("{NAMESPACE}/hub/$default/checkpoint/1");
    put(
        &backend,
        &checkpoint_1,
        &[("Offset", "8192"), ("SequenceNumber", "18")],
    )
    .await;
    assert_eq!(
        listed_names(&backend, &checkpoint_1).await,
        ["offset", "sequencenumber"]
    );
    let items = store.list_checkpoints(&s).await.unwrap().items;
    assert_eq!(items[1].offset().map(|o| o.as_str()), Some("8192"));
    assert_eq!(items[1].sequence_number(), Some(18));
}

#[tokio::test]
async fn dotnet_offset_placeholders_read_as_no_offset() {
    let (_, backend, store) = setup("q-dotnet").await;
    let prefix = format!("{NAMESPACE}/hub/$default/checkpoint/");
    // .NET 5.11 wrote "" or "no offset" when it had no offset.
    put(
        &backend,
        &format!("{prefix}0"),
        &[("offset", ""), ("sequencenumber", "5")],
    )
    .await;
    put(
        &backend,
        &format!("{prefix}1"),
        &[("offset", "no offset"), ("sequencenumber", "6")],
    )
    .await;
    let listing = store.list_checkpoints(&scope()).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let read: Vec<_> = listing
        .items
        .iter()
        .map(|c| {
            (
                c.partition_id().as_str(),
                c.offset().is_some(),
                c.sequence_number(),
            )
        })
        .collect();
    assert_eq!(read, [("0", false, Some(5)), ("1", false, Some(6))]);
}

#[tokio::test]
async fn a_dotnet_checkpoint_with_an_empty_sequence_number_reads_by_offset() {
    let (container, backend, store) = setup("q-dotnet-seq").await;
    let prefix = format!("{NAMESPACE}/hub/$default/checkpoint/");
    // .NET (BlobCheckpointStoreInternal.UpdateCheckpointInternalAsync)
    // writes `sequencenumber` "" for a position without a sequence number,
    // and a `clientidentifier`; it reads such a blob by its offset.
    put(
        &backend,
        &format!("{prefix}0"),
        &[
            ("offset", "4096"),
            ("sequencenumber", ""),
            ("clientidentifier", "dotnet-1"),
        ],
    )
    .await;
    // Azurite lists an empty value as a self-closing element, which the
    // backend's listing reader leaves out: the key reads as absent.
    let (status, xml) = raw_request(
        "GET",
        &container,
        "",
        "restype=container&comp=list&include=metadata&",
        &[],
    );
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.contains("<offset>4096</offset><sequencenumber/><clientidentifier>dotnet-1</clientidentifier>"),
        "{xml}"
    );
    assert_eq!(
        listed_names(&backend, &format!("{prefix}0")).await,
        ["offset", "clientidentifier"]
    );
    let listing = store.list_checkpoints(&scope()).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let [cp] = &listing.items[..] else {
        panic!("{listing:?}")
    };
    assert_eq!(cp.offset().map(|o| o.as_str()), Some("4096"));
    assert_eq!(cp.sequence_number(), None);
}

#[tokio::test]
async fn a_checkpoint_without_an_offset_key_reads_by_sequence_number() {
    let (_, backend, store) = setup("q-no-offset").await;
    // Go and Java leave `offset` out when they have none.
    put(
        &backend,
        &format!("{NAMESPACE}/hub/$default/checkpoint/3"),
        &[("sequencenumber", "42")],
    )
    .await;
    let listing = store.list_checkpoints(&scope()).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let [cp] = &listing.items[..] else {
        panic!("{listing:?}")
    };
    assert_eq!(
        (cp.partition_id().as_str(), cp.offset(), cp.sequence_number()),
        ("3", None, Some(42))
    );
}

#[tokio::test]
async fn a_non_numeric_geo_replication_offset_is_kept_opaque() {
    let (_, backend, store) = setup("q-geo").await;
    let name = format!("{NAMESPACE}/hub/$default/checkpoint/0");
    put(
        &backend,
        &name,
        &[("offset", "g1:4096:7"), ("sequencenumber", "9")],
    )
    .await;
    let listing = store.list_checkpoints(&scope()).await.unwrap();
    let [cp] = &listing.items[..] else {
        panic!("{listing:?}")
    };
    assert_eq!(cp.offset().map(|o| o.as_str()), Some("g1:4096:7"));
    assert_eq!(cp.sequence_number(), Some(9));
}

#[tokio::test]
async fn an_empty_or_missing_owner_id_is_released_and_claimable_with_its_etag() {
    let (_, backend, store) = setup("q-released").await;
    let s = scope();
    let prefix = format!("{NAMESPACE}/hub/$default/ownership/");
    // `ownerid` "" is how JavaScript's processor (and this store) release;
    // the official Rust crate 0.9 releases by clearing the metadata.
    put(&backend, &format!("{prefix}0"), &[("ownerid", "")]).await;
    put(&backend, &format!("{prefix}1"), &[]).await;
    let listing = store.list_ownership(&s).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    assert_eq!(listing.items.len(), 2);
    for released in &listing.items {
        assert_eq!(released.owner_id, None, "{released:?}");
        let claim = OwnershipClaim::from_listed(released, owner("rust-1"));
        let result = store.claim(&claim).await;
        let claimed = result.claimed().unwrap_or_else(|| panic!("{result:?}"));
        assert_ne!(claimed.etag, released.etag);
    }
    let owners: Vec<_> = store
        .list_ownership(&s)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.owner_id)
        .collect();
    assert_eq!(owners, [Some(owner("rust-1")), Some(owner("rust-1"))]);
}

#[tokio::test]
async fn blobs_under_the_as_given_case_prefix_are_not_listed() {
    let (_, backend, store) = setup("q-case").await;
    let s = scope();
    // Go and Java (and the Rust crate 0.9) name blobs with the scope as
    // given: `$Default` keeps its capital.
    let theirs_checkpoint = format!("{NAMESPACE}/hub/$Default/checkpoint/0");
    let theirs_ownership = format!("{NAMESPACE}/hub/$Default/ownership/0");
    put(
        &backend,
        &theirs_checkpoint,
        &[("offset", "100"), ("sequencenumber", "1")],
    )
    .await;
    put(&backend, &theirs_ownership, &[("ownerid", "go-1")]).await;

    // Blob names are case-sensitive: the lower-cased prefix does not find
    // them, and nothing is skipped either (they are never listed).
    let checkpoints = store.list_checkpoints(&s).await.unwrap();
    assert!(
        checkpoints.items.is_empty() && checkpoints.skipped.is_empty(),
        "{checkpoints:?}"
    );
    let ownerships = store.list_ownership(&s).await.unwrap();
    assert!(
        ownerships.items.is_empty() && ownerships.skipped.is_empty(),
        "{ownerships:?}"
    );

    // So a claim of ours is create-only on another blob and wins beside
    // theirs: both consumers own partition 0.
    let ours = store
        .claim(&OwnershipClaim::new(
            s.clone(),
            PartitionId::from(0),
            owner("rust-1"),
            None,
        ))
        .await;
    assert!(ours.claimed().is_some(), "{ours:?}");
    let names: Vec<_> = backend
        .list_blobs(&format!("{NAMESPACE}/hub/"))
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(
        names,
        [
            theirs_checkpoint.as_str(),
            theirs_ownership.as_str(),
            &format!("{NAMESPACE}/hub/$default/ownership/0"),
        ]
    );

    // A peer given lower-case names writes where we read.
    put(
        &backend,
        &format!("{NAMESPACE}/hub/$default/checkpoint/0"),
        &[("offset", "200"), ("sequencenumber", "2")],
    )
    .await;
    let items = store.list_checkpoints(&s).await.unwrap().items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].sequence_number(), Some(2));
}

/// Our store through a fault proxy in front of Azurite, no retries.
fn proxied_store(container: &str, proxy: &FaultProxy) -> CheckpointStore {
    let options = AzureBlobOptions {
        retry: RetryOptions {
            max_retries: 0,
            ..RetryOptions::default()
        },
        ..AzureBlobOptions::default()
    };
    let backend = AzureBlobBackend::new(
        &format!("{}/{ACCOUNT_NAME}", proxy.url()),
        container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
        options,
    )
    .unwrap();
    CheckpointStore::new(Arc::new(backend))
}

fn ownership_put() -> Match {
    Match::method("PUT").path_contains("/ownership/0")
}

#[tokio::test]
async fn azures_412_to_a_create_only_claim_is_lost() {
    let (container, _, _) = setup("q-412").await;
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let store = proxied_store(&container, &proxy);
    // What Azure answers a Put Blob with `If-None-Match: *` on an existing
    // blob.
    proxy.push(Rule::new(
        ownership_put(),
        Fault::storage_error(
            412,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        ),
    ));
    let claim = OwnershipClaim::new(scope(), PartitionId::from(0), owner("rust-1"), None);
    let result = store.claim(&claim).await;
    assert!(matches!(result, ClaimResult::Lost), "{result:?}");
    let puts = proxy.requests_matching(&ownership_put());
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].header("if-none-match"), Some("*"));
    assert_eq!(puts[0].header("if-match"), None);
    assert_eq!(puts[0].outcome.to_string(), "412");
    assert_eq!(puts[0].upstream_status, None, "answered by the proxy");
}

#[tokio::test]
async fn azurites_409_to_a_create_only_claim_is_lost() {
    let (container, _, direct) = setup("q-409").await;
    let first = direct
        .claim(&OwnershipClaim::new(
            scope(),
            PartitionId::from(0),
            owner("other"),
            None,
        ))
        .await;
    assert!(first.claimed().is_some(), "{first:?}");
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let store = proxied_store(&container, &proxy);
    let claim = OwnershipClaim::new(scope(), PartitionId::from(0), owner("rust-1"), None);
    let result = store.claim(&claim).await;
    assert!(matches!(result, ClaimResult::Lost), "{result:?}");
    let puts = proxy.requests_matching(&ownership_put());
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].header("if-none-match"), Some("*"));
    assert_eq!(puts[0].upstream_status, Some(409), "Azurite's own answer");
    let listed = direct.list_ownership(&scope()).await.unwrap().items;
    assert_eq!(listed[0].owner_id, Some(owner("other")));
}
