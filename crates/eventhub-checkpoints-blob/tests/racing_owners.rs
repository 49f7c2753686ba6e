//! Claim races: 8 claimers, 64 partitions, many rounds. Each round every
//! claimer lists the ownership, then all of them claim all 64 partitions at
//! once, each with the etag it listed. Per round and partition exactly one
//! claim wins, the others are lost (none fails), and the winner's etag and
//! owner id are what the blob holds afterwards.
//!
//! Against `InMemoryBackend` and against Azurite directly (no proxy), each
//! claimer with a backend of its own (its own connections), as separate
//! processes would be; 50 rounds each, 25,600 claims. Azurite takes about
//! 45 s for them on 2 cores (about 600 claims a second);
//! `RACING_OWNERS_AZURITE_ROUNDS` sets another number of rounds for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhub_checkpoints::{
    CheckpointStore, ClaimResult, ETag, InMemoryBackend, OwnerId, OwnershipClaim, PartitionId, Scope,
};
use eventhub_checkpoints_blob::AzureBlobOptions;
use eventhub_checkpoints_test_support::unique_container_name;
use tokio::sync::Barrier;

mod common;

const CLAIMERS: usize = 8;
const PARTITIONS: u32 = 64;
const ROUNDS: usize = 50;

fn scope() -> Scope {
    Scope::new("ns.servicebus.windows.net", "race", "$Default").unwrap()
}

/// What one claimer saw in a round: its listing, and the etag it won for
/// each partition it won.
struct Round {
    claimer: usize,
    listed: BTreeMap<u32, (Option<OwnerId>, ETag)>,
    won: BTreeMap<u32, ETag>,
    lost: usize,
}

async fn list(store: &CheckpointStore) -> BTreeMap<u32, (Option<OwnerId>, ETag)> {
    let listing = store.list_ownership(&scope()).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    listing
        .items
        .into_iter()
        .map(|o| (o.partition_id.as_str().parse().unwrap(), (o.owner_id, o.etag)))
        .collect()
}

async fn claimer(index: usize, store: CheckpointStore, start: Arc<Barrier>) -> Round {
    let me = OwnerId::new(format!("claimer-{index}")).unwrap();
    let listed = list(&store).await;
    let claims: Vec<OwnershipClaim> = (0..PARTITIONS)
        .map(|p| {
            OwnershipClaim::new(
                scope(),
                PartitionId::from(p),
                me.clone(),
                listed.get(&p).map(|(_, etag)| etag.clone()),
            )
        })
        .collect();
    // Everyone has listed before anyone claims.
    start.wait().await;
    let mut won = BTreeMap::new();
    let mut lost = 0;
    for outcome in store.claim_ownership(claims).await {
        let p: u32 = outcome.claim.partition_id.as_str().parse().unwrap();
        match outcome.result {
            ClaimResult::Claimed(ownership) => {
                assert_eq!(ownership.owner_id.as_ref(), Some(&me));
                won.insert(p, ownership.etag);
            }
            ClaimResult::Lost => lost += 1,
            ClaimResult::Failed(error) => panic!("claimer {index}, partition {p}: {error}"),
        }
    }
    Round {
        claimer: index,
        listed,
        won,
        lost,
    }
}

/// Runs the rounds; returns how many claims were made.
async fn race(stores: Vec<CheckpointStore>, rounds: usize) -> usize {
    assert_eq!(stores.len(), CLAIMERS);
    let mut previous_winners: BTreeMap<u32, (usize, ETag)> = BTreeMap::new();
    for round in 0..rounds {
        let start = Arc::new(Barrier::new(CLAIMERS));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, store) in stores.iter().enumerate() {
            tasks.spawn(claimer(index, store.clone(), Arc::clone(&start)));
        }
        let mut results: Vec<Round> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            results.push(joined.expect("a claimer panicked"));
        }

        // Every claimer listed the same state: the last round's winners.
        for r in &results {
            assert_eq!(r.listed.len(), previous_winners.len(), "round {round}");
            for (p, (winner, etag)) in &previous_winners {
                let (owner, listed_etag) = &r.listed[p];
                assert_eq!(
                    listed_etag, etag,
                    "round {round}, partition {p}: the winner's etag is the blob's"
                );
                assert_eq!(
                    owner.as_ref().map(OwnerId::as_str),
                    Some(format!("claimer-{winner}").as_str()),
                    "round {round}, partition {p}"
                );
            }
        }
        // Exactly one winner per partition.
        let mut winners: BTreeMap<u32, (usize, ETag)> = BTreeMap::new();
        for r in &results {
            for (p, etag) in &r.won {
                let previous = winners.insert(*p, (r.claimer, etag.clone()));
                assert!(
                    previous.is_none(),
                    "round {round}, partition {p}: two winners, {previous:?} and claimer {}",
                    r.claimer
                );
                if let Some((_, old)) = previous_winners.get(p) {
                    assert_ne!(
                        old, etag,
                        "round {round}, partition {p}: a claim must change the etag"
                    );
                }
            }
        }
        assert_eq!(
            winners.len(),
            PARTITIONS as usize,
            "round {round}: a partition had no winner"
        );
        let lost: usize = results.iter().map(|r| r.lost).sum();
        assert_eq!(lost, (CLAIMERS - 1) * PARTITIONS as usize, "round {round}");
        previous_winners = winners;
    }
    // The last round's winners hold the blobs.
    let listed = list(&stores[0]).await;
    for (p, (winner, etag)) in &previous_winners {
        let (owner, listed_etag) = &listed[p];
        assert_eq!(listed_etag, etag, "partition {p}");
        assert_eq!(owner.as_ref().unwrap().as_str(), format!("claimer-{winner}"));
    }
    rounds * CLAIMERS * PARTITIONS as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_winner_per_partition_and_round_in_memory() {
    let backend = Arc::new(InMemoryBackend::new());
    let stores = (0..CLAIMERS)
        .map(|_| CheckpointStore::new(backend.clone()))
        .collect();
    let started = Instant::now();
    let claims = race(stores, ROUNDS).await;
    assert_eq!(claims, 25_600);
    eprintln!("in memory: {claims} claims in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_winner_per_partition_and_round_on_azurite() {
    let rounds = std::env::var("RACING_OWNERS_AZURITE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let container = unique_container_name("race");
    let first = common::shared_key_backend_for(&container, AzureBlobOptions::default());
    first.create_container().await.unwrap();
    let stores = (0..CLAIMERS)
        .map(|_| {
            CheckpointStore::new(Arc::new(common::shared_key_backend_for(
                &container,
                AzureBlobOptions::default(),
            )))
        })
        .collect();
    let started = Instant::now();
    let claims = race(stores, rounds).await;
    let took = started.elapsed();
    eprintln!("Azurite: {claims} claims in {took:?} ({rounds} rounds)");
    assert!(took < Duration::from_secs(180), "took {took:?}");
}
