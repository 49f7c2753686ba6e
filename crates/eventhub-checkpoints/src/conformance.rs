//! A conformance kit for [`BlobBackend`] implementations (feature
//! `conformance`).
//!
//! Run every case against your backend from one test:
//!
//! ```
//! # use std::sync::Arc;
//! # use eventhub_checkpoints::{conformance, InMemoryBackend};
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let report = conformance::run_all(Arc::new(InMemoryBackend::new())).await;
//! assert!(report.passed(), "{report}");
//! # });
//! ```
//!
//! Each case works in a scope of its own (a unique namespace), so one
//! container can be shared by all cases and by repeated runs. The cases go
//! through [`CheckpointStore`], so they check what users see: claims won and
//! lost, checkpoints written and listed, prefixes kept apart.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;

use crate::backend::{BackendErrorKind, BlobBackend, Metadata, WriteCondition};
use crate::format::{self, BlobKind};
use crate::{
    Checkpoint, CheckpointStore, ClaimResult, ETag, Offset, OwnerId, OwnershipClaim, PartitionId, Scope,
};

type CaseResult = Result<(), String>;
type CaseFuture = Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// One named conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, e.g. `claim_with_stale_etag_is_lost`.
    pub name: &'static str,
    run: fn(Arc<dyn BlobBackend>, String) -> CaseFuture,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Case {
    /// Runs the case in a fresh, unique namespace.
    pub async fn run(&self, backend: Arc<dyn BlobBackend>) -> CaseResult {
        let namespace = format!(
            "conformance-{:016x}.servicebus.windows.net",
            rand::random::<u64>()
        );
        (self.run)(backend, namespace).await
    }
}

/// The outcome of [`run_all`].
#[derive(Debug, Default)]
pub struct Report {
    /// Names of the cases that passed.
    pub passed: Vec<&'static str>,
    /// Names and failure messages of the cases that failed.
    pub failed: Vec<(&'static str, String)>,
}

impl Report {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failed.is_empty() && !self.passed.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} passed, {} failed", self.passed.len(), self.failed.len())?;
        for (name, message) in &self.failed {
            writeln!(f, "  FAILED {name}: {message}")?;
        }
        Ok(())
    }
}

/// Runs every case, one after another, and reports each.
pub async fn run_all(backend: Arc<dyn BlobBackend>) -> Report {
    let mut report = Report::default();
    for case in cases() {
        match case.run(backend.clone()).await {
            Ok(()) => report.passed.push(case.name),
            Err(message) => report.failed.push((case.name, message)),
        }
    }
    report
}

macro_rules! case {
    ($name:ident) => {
        Case {
            name: stringify!($name),
            run: |backend, namespace| Box::pin($name(backend, namespace)),
        }
    };
}

/// Every case of the kit.
pub fn cases() -> Vec<Case> {
    vec![
        case!(claim_new_partition),
        case!(claim_with_current_etag),
        case!(claim_with_stale_etag_is_lost),
        case!(create_only_claim_of_existing_is_lost),
        case!(claim_of_deleted_blob_creates_it),
        case!(concurrent_claimers_have_one_winner),
        case!(release_and_reclaim),
        case!(checkpoint_round_trip),
        case!(delete_checkpoint),
        case!(empty_scope_lists_nothing),
        case!(prefixes_are_isolated),
        case!(scope_is_case_insensitive),
        case!(special_characters_round_trip),
        case!(lists_more_than_5000_blobs),
        case!(writes_change_the_etag),
        case!(backend_conditions_are_exact),
    ]
}

fn ensure(condition: bool, message: impl FnOnce() -> String) -> CaseResult {
    if condition { Ok(()) } else { Err(message()) }
}

fn ok<T, E: fmt::Display>(result: Result<T, E>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}"))
}

fn scope(namespace: &str) -> Scope {
    Scope::new(namespace, "hub", "$Default").expect("valid scope")
}

fn owner(name: &str) -> OwnerId {
    OwnerId::new(name).expect("valid owner")
}

fn expect_claimed(result: ClaimResult, what: &str) -> Result<crate::Ownership, String> {
    match result {
        ClaimResult::Claimed(ownership) => Ok(ownership),
        ClaimResult::Lost => Err(format!("{what}: claim was lost")),
        ClaimResult::Failed(e) => Err(format!("{what}: claim failed: {e}")),
    }
}

async fn claim_new_partition(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let claim = OwnershipClaim::new(s.clone(), PartitionId::from(0), owner("a"), None);
    let won = expect_claimed(store.claim(&claim).await, "first claim")?;
    let listed = ok(store.list_ownership(&s).await, "list")?.items;
    ensure(listed == [won.clone()], || {
        format!("listed {listed:?}, claimed {won:?}")
    })
}

async fn claim_with_current_etag(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(1);
    let first = expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "first claim",
    )?;
    // The etag as a write response gives it (quoted) ...
    let quoted = ETag::new(first.etag.header_value()).expect("valid");
    let renewed = expect_claimed(
        store
            .claim(&OwnershipClaim::new(
                s.clone(),
                p.clone(),
                owner("a"),
                Some(quoted),
            ))
            .await,
        "renewal with the quoted etag",
    )?;
    ensure(renewed.etag != first.etag, || "renewal kept the old etag".into())?;
    // ... and as a listing gives it (unquoted).
    let listed = ok(store.list_ownership(&s).await, "list")?.items;
    let stolen = expect_claimed(
        store
            .claim(&OwnershipClaim::from_listed(&listed[0], owner("b")))
            .await,
        "steal with the listed etag",
    )?;
    let listed = ok(store.list_ownership(&s).await, "list")?.items;
    ensure(listed == [stolen], || format!("after steal listed {listed:?}"))
}

async fn claim_with_stale_etag_is_lost(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(2);
    let first = expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "first claim",
    )?;
    expect_claimed(
        store
            .claim(&OwnershipClaim::new(
                s.clone(),
                p.clone(),
                owner("b"),
                Some(first.etag.clone()),
            ))
            .await,
        "second claim",
    )?;
    let stale = store
        .claim(&OwnershipClaim::new(s.clone(), p, owner("a"), Some(first.etag)))
        .await;
    ensure(matches!(stale, ClaimResult::Lost), || {
        format!("stale claim gave {stale:?}")
    })?;
    let listed = ok(store.list_ownership(&s).await, "list")?.items;
    ensure(listed[0].owner_id == Some(owner("b")), || {
        format!("owner changed: {listed:?}")
    })
}

async fn create_only_claim_of_existing_is_lost(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(3);
    expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "first claim",
    )?;
    let second = store.claim(&OwnershipClaim::new(s, p, owner("b"), None)).await;
    ensure(matches!(second, ClaimResult::Lost), || {
        format!("create-only claim gave {second:?}")
    })
}

async fn claim_of_deleted_blob_creates_it(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend.clone());
    let s = scope(&ns);
    let p = PartitionId::from(4);
    let first = expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "first claim",
    )?;
    let name = format::blob_name(&s, BlobKind::Ownership, &p);
    ok(
        backend.delete_blob(&name, &WriteCondition::Unconditional).await,
        "delete",
    )?;
    // Azure answers the conditional metadata update with 404 and the store
    // retries create-only; Azurite checks the condition first and answers
    // 412, so the claim is lost. Either way the partition must not be stuck:
    // the next listing shows no blob and a create-only claim wins.
    let claim = OwnershipClaim::new(s.clone(), p.clone(), owner("b"), Some(first.etag));
    let won = match store.claim(&claim).await {
        ClaimResult::Lost => {
            let listed = ok(store.list_ownership(&s).await, "list")?.items;
            ensure(listed.is_empty(), || {
                format!("lost, yet the blob exists: {listed:?}")
            })?;
            let create = OwnershipClaim::new(s, p, owner("b"), None);
            expect_claimed(
                store.claim(&create).await,
                "create-only claim after the blob was deleted",
            )?
        }
        other => expect_claimed(other, "claim with the etag of a deleted blob")?,
    };
    ensure(won.owner_id == Some(owner("b")), || format!("{won:?}"))
}

async fn concurrent_claimers_have_one_winner(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    const CLAIMERS: usize = 16;
    const ROUNDS: usize = 10;
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(5);
    let mut etag: Option<ETag> = None;
    for round in 0..ROUNDS {
        let results = futures::future::join_all((0..CLAIMERS).map(|i| {
            let claim =
                OwnershipClaim::new(s.clone(), p.clone(), owner(&format!("claimer-{i}")), etag.clone());
            let store = store.clone();
            async move { store.claim(&claim).await }
        }))
        .await;
        let mut winners = Vec::new();
        for result in results {
            match result {
                ClaimResult::Claimed(o) => winners.push(o),
                ClaimResult::Lost => {}
                ClaimResult::Failed(e) => return Err(format!("round {round}: a claim failed: {e}")),
            }
        }
        ensure(winners.len() == 1, || {
            format!("round {round}: {} winners", winners.len())
        })?;
        let listed = ok(store.list_ownership(&s).await, "list")?.items;
        ensure(listed == winners, || {
            format!("round {round}: listed {listed:?}, won {winners:?}")
        })?;
        etag = Some(winners.remove(0).etag);
    }
    Ok(())
}

async fn release_and_reclaim(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(6);
    let first = expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "claim",
    )?;
    let released = expect_claimed(
        store.release_ownership(&s, &p, first.etag.clone()).await,
        "release",
    )?;
    let listed = ok(store.list_ownership(&s).await, "list")?.items;
    ensure(listed.len() == 1 && listed[0].owner_id.is_none(), || {
        format!("after release: {listed:?}")
    })?;
    let stale_release = store.release_ownership(&s, &p, first.etag).await;
    ensure(matches!(stale_release, ClaimResult::Lost), || {
        format!("stale release gave {stale_release:?}")
    })?;
    let reclaimed = expect_claimed(
        store
            .claim(&OwnershipClaim::from_listed(&listed[0], owner("b")))
            .await,
        "claim a released partition",
    )?;
    ensure(reclaimed.etag != released.etag, || "etag unchanged".into())
}

async fn checkpoint_round_trip(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let make = |p: u32, offset: Option<i64>, seq: Option<i64>| {
        Checkpoint::new(s.clone(), PartitionId::from(p), offset.map(Offset::from), seq).expect("valid")
    };
    let written = [
        make(0, Some(0), Some(0)),
        make(1, Some(i64::MAX), Some(i64::MAX)),
        make(2, None, Some(77)),
        make(3, Some(5), None),
    ];
    for cp in &written {
        ok(store.update_checkpoint(cp).await, "create checkpoint")?;
    }
    let geo = Checkpoint::new(
        s.clone(),
        PartitionId::from(3),
        Some(Offset::new("g1:100:7").expect("valid")),
        Some(9),
    )
    .expect("valid");
    ok(store.update_checkpoint(&geo).await, "update checkpoint")?;
    let listed = ok(store.list_checkpoints(&s).await, "list")?;
    let expected = [written[0].clone(), written[1].clone(), written[2].clone(), geo];
    ensure(listed.items == expected, || format!("listed {:?}", listed.items))?;
    ensure(listed.skipped.is_empty(), || {
        format!("skipped {:?}", listed.skipped)
    })
}

async fn delete_checkpoint(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let p = PartitionId::from(0);
    let cp = Checkpoint::new(s.clone(), p.clone(), Some(Offset::from(1)), Some(1)).expect("valid");
    ok(store.update_checkpoint(&cp).await, "write")?;
    ensure(ok(store.delete_checkpoint(&s, &p).await, "delete")?, || {
        "delete found nothing".into()
    })?;
    ensure(
        !ok(store.delete_checkpoint(&s, &p).await, "delete again")?,
        || "second delete found a blob".into(),
    )?;
    let listed = ok(store.list_checkpoints(&s).await, "list")?.items;
    ensure(listed.is_empty(), || format!("after delete: {listed:?}"))
}

async fn empty_scope_lists_nothing(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = scope(&ns);
    let checkpoints = ok(store.list_checkpoints(&s).await, "list checkpoints")?;
    let ownership = ok(store.list_ownership(&s).await, "list ownership")?;
    ensure(
        checkpoints.items.is_empty() && ownership.items.is_empty() && checkpoints.skipped.is_empty(),
        || "an unused scope listed something".into(),
    )
}

async fn prefixes_are_isolated(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let base = ns.trim_end_matches(".servicebus.windows.net").to_owned();
    let scopes = [
        Scope::new(format!("{base}1"), "hub", "cg").expect("valid"),
        Scope::new(format!("{base}10"), "hub", "cg").expect("valid"),
        Scope::new(format!("{base}1"), "hub2", "cg").expect("valid"),
        Scope::new(format!("{base}1"), "hub", "cg2").expect("valid"),
    ];
    for (i, s) in scopes.iter().enumerate() {
        let cp = Checkpoint::new(s.clone(), PartitionId::from(0), None, Some(i as i64)).expect("valid");
        ok(store.update_checkpoint(&cp).await, "write")?;
        expect_claimed(
            store
                .claim(&OwnershipClaim::new(
                    s.clone(),
                    PartitionId::from(0),
                    owner(&format!("o{i}")),
                    None,
                ))
                .await,
            "claim",
        )?;
    }
    for (i, s) in scopes.iter().enumerate() {
        let checkpoints = ok(store.list_checkpoints(s).await, "list checkpoints")?.items;
        ensure(
            checkpoints.len() == 1 && checkpoints[0].sequence_number() == Some(i as i64),
            || format!("{s}: checkpoints {checkpoints:?}"),
        )?;
        let ownership = ok(store.list_ownership(s).await, "list ownership")?.items;
        ensure(
            ownership.len() == 1 && ownership[0].owner_id == Some(owner(&format!("o{i}"))),
            || format!("{s}: ownership {ownership:?}"),
        )?;
    }
    Ok(())
}

async fn scope_is_case_insensitive(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let upper = Scope::new(ns.to_uppercase(), "Tele-Metry", "$Default").expect("valid");
    let lower = Scope::new(ns.to_lowercase(), "tele-metry", "$default").expect("valid");
    let cp = Checkpoint::new(
        upper.clone(),
        PartitionId::from(0),
        Some(Offset::from(10)),
        Some(1),
    )
    .expect("valid");
    ok(store.update_checkpoint(&cp).await, "write")?;
    let listed = ok(store.list_checkpoints(&lower).await, "list")?.items;
    ensure(listed.len() == 1 && listed[0].scope() == &lower, || {
        format!("listed with another case: {listed:?}")
    })?;
    let listed = ok(store.list_checkpoints(&upper).await, "list")?.items;
    ensure(listed == [cp], || {
        format!("listed with the same case: {listed:?}")
    })
}

async fn special_characters_round_trip(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let store = CheckpointStore::new(backend);
    let s = Scope::new(&ns, "hub with space+plus%25", "$Default #?&=").expect("valid");
    let p = PartitionId::new("p:0;ü").expect("valid");
    let cp = Checkpoint::new(s.clone(), p.clone(), Some(Offset::from(3)), Some(4)).expect("valid");
    ok(store.update_checkpoint(&cp).await, "write")?;
    let listed = ok(store.list_checkpoints(&s).await, "list")?.items;
    ensure(listed == [cp], || format!("listed {listed:?}"))?;
    expect_claimed(
        store
            .claim(&OwnershipClaim::new(s.clone(), p.clone(), owner("a"), None))
            .await,
        "claim",
    )?;
    let ownership = ok(store.list_ownership(&s).await, "list ownership")?.items;
    ensure(ownership.len() == 1 && ownership[0].partition_id == p, || {
        format!("listed {ownership:?}")
    })
}

async fn lists_more_than_5000_blobs(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    const COUNT: u32 = 5_100;
    let store = CheckpointStore::new(backend.clone());
    let s = scope(&ns);
    let prefix = format::prefix(&s, BlobKind::Checkpoint);
    let failures: Vec<String> = futures::stream::iter(0..COUNT)
        .map(|i| {
            let backend = backend.clone();
            let name = format!("{prefix}{i}");
            async move {
                let metadata: Metadata = [("offset", i.to_string()), ("sequencenumber", i.to_string())]
                    .into_iter()
                    .collect();
                backend
                    .put_blob(&name, &metadata, &WriteCondition::Unconditional)
                    .await
                    .err()
                    .map(|e| format!("{name}: {e}"))
            }
        })
        .buffer_unordered(32)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    ensure(failures.is_empty(), || {
        format!("writes failed: {:?}", &failures[..failures.len().min(3)])
    })?;
    let listed = ok(store.list_checkpoints(&s).await, "list")?.items;
    let partitions: BTreeSet<u32> = listed
        .iter()
        .filter_map(|cp| cp.partition_id().as_str().parse().ok())
        .collect();
    ensure(
        listed.len() == COUNT as usize && partitions.len() == COUNT as usize,
        || {
            format!(
                "listed {} checkpoints ({} distinct) of {COUNT}",
                listed.len(),
                partitions.len()
            )
        },
    )
}

async fn writes_change_the_etag(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let name = format!("{ns}/etag-probe");
    let metadata: Metadata = [("OwnerId", "x")].into_iter().collect();
    let a = ok(
        backend
            .put_blob(&name, &metadata, &WriteCondition::IfNotExists)
            .await,
        "put",
    )?;
    let b = ok(
        backend
            .set_metadata(&name, &metadata, &WriteCondition::Unconditional)
            .await,
        "set metadata",
    )?;
    let c = ok(
        backend
            .put_blob(&name, &metadata, &WriteCondition::Unconditional)
            .await,
        "put again",
    )?;
    ensure(a.etag != b.etag && b.etag != c.etag && a.etag != c.etag, || {
        format!("etags did not all change: {:?} {:?} {:?}", a.etag, b.etag, c.etag)
    })?;
    let listed = ok(backend.list_blobs(&name).await, "list")?;
    ensure(listed.len() == 1, || format!("listed {} blobs", listed.len()))?;
    ensure(listed[0].properties.etag == c.etag, || {
        "listed etag differs from the write's".into()
    })?;
    ensure(listed[0].metadata.get("ownerid") == Some("x"), || {
        format!("metadata read back as {:?}", listed[0].metadata)
    })
}

async fn backend_conditions_are_exact(backend: Arc<dyn BlobBackend>, ns: String) -> CaseResult {
    let name = format!("{ns}/condition-probe");
    let metadata: Metadata = [("k", "v")].into_iter().collect();
    fn kind<T>(r: Result<T, crate::BackendError>) -> Option<BackendErrorKind> {
        r.err().map(|e| e.kind())
    }

    let missing = kind(
        backend
            .set_metadata(&name, &metadata, &WriteCondition::Unconditional)
            .await,
    );
    ensure(missing == Some(BackendErrorKind::NotFound), || {
        format!("set metadata of a missing blob gave {missing:?}")
    })?;
    let missing = kind(backend.delete_blob(&name, &WriteCondition::Unconditional).await);
    ensure(missing == Some(BackendErrorKind::NotFound), || {
        format!("delete of a missing blob gave {missing:?}")
    })?;
    let first = ok(
        backend
            .put_blob(&name, &metadata, &WriteCondition::IfNotExists)
            .await,
        "create",
    )?;
    let exists = kind(
        backend
            .put_blob(&name, &metadata, &WriteCondition::IfNotExists)
            .await,
    );
    ensure(exists.is_some_and(BackendErrorKind::is_condition_lost), || {
        format!("create-only over an existing blob gave {exists:?}")
    })?;
    let second = ok(
        backend
            .set_metadata(&name, &metadata, &WriteCondition::IfMatch(first.etag.clone()))
            .await,
        "set metadata with the current etag",
    )?;
    let stale = kind(
        backend
            .set_metadata(&name, &metadata, &WriteCondition::IfMatch(first.etag.clone()))
            .await,
    );
    ensure(stale == Some(BackendErrorKind::PreconditionFailed), || {
        format!("set metadata with a stale etag gave {stale:?}")
    })?;
    let stale = kind(
        backend
            .delete_blob(&name, &WriteCondition::IfMatch(first.etag))
            .await,
    );
    ensure(stale == Some(BackendErrorKind::PreconditionFailed), || {
        format!("delete with a stale etag gave {stale:?}")
    })?;
    ok(
        backend
            .delete_blob(&name, &WriteCondition::IfMatch(second.etag))
            .await,
        "delete with the current etag",
    )?;
    let gone = ok(backend.list_blobs(&name).await, "list")?;
    ensure(gone.is_empty(), || "deleted blob still listed".into())
}
