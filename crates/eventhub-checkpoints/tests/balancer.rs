//! Deterministic simulations of the partition load balancer: consumers over
//! one `InMemoryBackend`, all on one `ManualClock`, ticked one at a time in a
//! seeded random order each round; the clock moves one update interval per
//! round. Nothing sleeps.
//!
//! **Convergence** means: every partition is actively owned in the store,
//! the counts of any two live consumers differ by at most one, and every
//! consumer's `owned()` is exactly what the store says it owns (no stale
//! belief left). Convergence must then hold for three more rounds without a
//! single ownership change.
//!
//! **Bounds.** Balanced gains at most one partition per consumer per tick,
//! and from an empty store every consumer claims one claimable partition per
//! round until none is left, so it needs `ceil(P / N)` rounds; we allow
//! `ceil(P / N) + 2`. Greedy takes its whole share in its first tick
//! (claiming, then stealing from whoever took more), so the store is
//! balanced after one round and stale beliefs are gone after the next: we
//! allow 3 rounds.
//!
//! **Safety**, checked after every single tick:
//! - the consumer that just ticked holds, for each partition it believes it
//!   owns, exactly the blob's current version: same etag, its owner id;
//! - no two consumers hold the current etag of the same partition, and the
//!   one that does (if any) is the blob's owner;
//! - every (partition, etag) version any consumer ever held was held by one
//!   consumer only: the store accepted at most one claim per version.
//!
//! A consumer may still believe it owns a partition another one stole until
//! its own next tick (as with the Azure SDKs); such a belief always carries a
//! superseded etag, so its writes conditional on it fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use eventhub_checkpoints::*;

const INTERVAL: Duration = Duration::from_secs(10);
const EXPIRATION: Duration = Duration::from_secs(60);

fn scope() -> Scope {
    Scope::new("sim.servicebus.windows.net", "hub", "$Default").unwrap()
}

fn options(strategy: LoadBalancingStrategy, seed: u64) -> LoadBalancerOptions {
    LoadBalancerOptions {
        strategy,
        ownership_expiration: EXPIRATION,
        update_interval: INTERVAL,
        jitter: Duration::ZERO,
        seed: Some(seed),
    }
}

struct Sim {
    clock: Arc<ManualClock>,
    store: CheckpointStore,
    partitions: Vec<PartitionId>,
    consumers: Vec<LoadBalancer>,
    /// Whether each consumer still ticks.
    alive: Vec<bool>,
    order_rng: StdRng,
    /// Every (partition, etag) version a consumer held, and who held it.
    versions: HashMap<(PartitionId, ETag), OwnerId>,
    /// Rounds run so far.
    rounds: usize,
    /// Whether to check the safety invariants after every tick (else after
    /// every round).
    check_every_tick: bool,
}

impl Sim {
    fn new(consumers: usize, partitions: u32, strategy: LoadBalancingStrategy, seed: u64) -> Self {
        let clock = Arc::new(ManualClock::default());
        let store = CheckpointStore::new(Arc::new(InMemoryBackend::with_clock(clock.clone())));
        let mut sim = Sim {
            clock,
            store,
            partitions: (0..partitions).map(PartitionId::from).collect(),
            consumers: Vec::new(),
            alive: Vec::new(),
            order_rng: StdRng::seed_from_u64(seed),
            versions: HashMap::new(),
            rounds: 0,
            check_every_tick: true,
        };
        for _ in 0..consumers {
            sim.join(strategy);
        }
        sim
    }

    /// Adds a consumer; returns its index.
    fn join(&mut self, strategy: LoadBalancingStrategy) -> usize {
        let index = self.consumers.len();
        self.add(OwnerId::new(format!("consumer-{index}")).unwrap(), strategy)
    }

    fn add(&mut self, owner: OwnerId, strategy: LoadBalancingStrategy) -> usize {
        let index = self.consumers.len();
        self.consumers.push(LoadBalancer::new(
            self.store.clone(),
            scope(),
            owner,
            self.partitions.clone(),
            options(strategy, 1000 + index as u64),
            self.clock.clone(),
        ));
        self.alive.push(true);
        index
    }

    async fn listing(&self) -> BTreeMap<PartitionId, Ownership> {
        let listing = self.store.list_ownership(&scope()).await.unwrap();
        assert!(listing.skipped.is_empty());
        listing
            .items
            .into_iter()
            .map(|o| (o.partition_id.clone(), o))
            .collect()
    }

    async fn tick(&mut self, index: usize) -> Changes {
        let changes = self.consumers[index].tick().await;
        assert!(changes.errors.is_empty(), "{:?}", changes.errors);
        if self.check_every_tick {
            self.check_safety(Some(index)).await;
        }
        changes
    }

    /// One round: every live consumer ticks once, in a random order; then
    /// the clock moves one update interval. Returns how many partitions
    /// changed hands (gains plus losses).
    async fn round(&mut self) -> usize {
        let mut order: Vec<usize> = (0..self.consumers.len()).filter(|&i| self.alive[i]).collect();
        order.shuffle(&mut self.order_rng);
        let mut changed = 0;
        for index in order {
            let changes = self.tick(index).await;
            changed += changes.gained.len() + changes.lost.len();
        }
        if !self.check_every_tick {
            self.check_safety(None).await;
        }
        self.clock.advance(INTERVAL);
        self.rounds += 1;
        changed
    }

    /// The safety invariants of the module documentation. `ticked`: the
    /// consumer that just ticked, whose beliefs must all be current.
    async fn check_safety(&mut self, ticked: Option<usize>) {
        let listing = self.listing().await;
        let mut current_holder: HashMap<&PartitionId, usize> = HashMap::new();
        for (index, consumer) in self.consumers.iter().enumerate() {
            for held in consumer.ownerships() {
                let blob = &listing[&held.partition_id];
                let key = (held.partition_id.clone(), held.etag.clone());
                let first = self
                    .versions
                    .entry(key)
                    .or_insert_with(|| consumer.owner_id().clone());
                assert_eq!(
                    first,
                    consumer.owner_id(),
                    "two consumers held version {} of partition {}",
                    held.etag,
                    held.partition_id
                );
                if blob.etag == held.etag {
                    assert_eq!(blob.owner_id.as_ref(), Some(consumer.owner_id()));
                    if let Some(other) = current_holder.insert(&held.partition_id, index) {
                        panic!(
                            "consumers {other} and {index} both hold the current version of partition {}",
                            held.partition_id
                        );
                    }
                } else if ticked == Some(index) {
                    panic!(
                        "consumer {index} ticked but holds a superseded version of partition {}",
                        held.partition_id
                    );
                }
            }
        }
    }

    /// Partitions actively owned by each live consumer, per the store, or
    /// `None` if some partition is not actively owned by a live consumer.
    async fn store_counts(&self) -> Option<Vec<usize>> {
        let listing = self.listing().await;
        let now = self.clock.now();
        let mut counts = vec![0; self.consumers.len()];
        for partition in &self.partitions {
            let ownership = listing.get(partition)?;
            let owner = ownership.owner_id.as_ref()?;
            if now.duration_since(ownership.last_modified).unwrap_or_default() >= EXPIRATION {
                return None;
            }
            let index = (0..self.consumers.len())
                .find(|&i| self.alive[i] && self.consumers[i].owner_id() == owner)?;
            counts[index] += 1;
        }
        Some(counts)
    }

    /// Whether the live consumers are converged (module documentation).
    async fn converged(&self) -> bool {
        let Some(counts) = self.store_counts().await else {
            return false;
        };
        let live: Vec<usize> = (0..self.consumers.len()).filter(|&i| self.alive[i]).collect();
        let max = live.iter().map(|&i| counts[i]).max().unwrap_or(0);
        let min = live.iter().map(|&i| counts[i]).min().unwrap_or(0);
        let beliefs_match = live
            .iter()
            .all(|&i| self.consumers[i].owned().count() == counts[i]);
        max - min <= 1 && beliefs_match
    }

    /// Runs rounds until converged (at most `bound`), then checks that three
    /// more rounds change nothing. Returns the rounds it took.
    async fn converge(&mut self, bound: usize, what: &str) -> usize {
        let start = self.rounds;
        while !self.converged().await {
            assert!(
                self.rounds - start < bound,
                "{what}: not converged after {bound} rounds; store counts {:?}",
                self.store_counts().await
            );
            self.round().await;
        }
        let took = self.rounds - start;
        for _ in 0..3 {
            assert_eq!(
                self.round().await,
                0,
                "{what}: ownership changed after converging"
            );
            assert!(self.converged().await, "{what}: diverged after converging");
        }
        took
    }

    fn owned_counts(&self) -> Vec<usize> {
        self.consumers.iter().map(|c| c.owned().count()).collect()
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

const CASES: [(usize, u32); 6] = [(1, 1), (3, 1), (4, 16), (5, 32), (7, 100), (8, 1024)];

fn balanced_bound(consumers: usize, partitions: u32) -> usize {
    (partitions as usize).div_ceil(consumers) + 2
}

const GREEDY_BOUND: usize = 3;

async fn converge_from_empty(
    consumers: usize,
    partitions: u32,
    strategy: LoadBalancingStrategy,
    seed: u64,
) -> usize {
    let mut sim = Sim::new(consumers, partitions, strategy, seed);
    // Checking every tick costs a listing per tick; the largest case checks
    // every round.
    sim.check_every_tick = partitions <= 100;
    let bound = match strategy {
        LoadBalancingStrategy::Balanced => balanced_bound(consumers, partitions),
        LoadBalancingStrategy::Greedy => GREEDY_BOUND,
    };
    let what = format!("{consumers} consumers, {partitions} partitions, {strategy:?}");
    let rounds = sim.converge(bound, &what).await;
    let counts = sim.owned_counts();
    assert_eq!(counts.iter().sum::<usize>(), partitions as usize, "{what}");
    let expected_zero = consumers.saturating_sub(partitions as usize);
    assert_eq!(
        counts.iter().filter(|&&c| c == 0).count(),
        expected_zero,
        "{what}"
    );
    println!("{what}: converged in {rounds} rounds (bound {bound}), counts {counts:?}");
    rounds
}

#[test]
fn balanced_converges_from_empty() {
    block_on(async {
        for (consumers, partitions) in CASES {
            // 8 × 1024 takes about 4 s in a debug build: one seed only.
            let seeds: &[u64] = if partitions > 100 { &[1] } else { &[1, 2] };
            for &seed in seeds {
                converge_from_empty(consumers, partitions, LoadBalancingStrategy::Balanced, seed).await;
            }
        }
    });
}

#[test]
fn greedy_converges_from_empty() {
    block_on(async {
        for (consumers, partitions) in CASES {
            for seed in [1, 2] {
                converge_from_empty(consumers, partitions, LoadBalancingStrategy::Greedy, seed).await;
            }
        }
    });
}

#[test]
fn greedy_converges_faster_than_balanced() {
    block_on(async {
        for seed in 1..=5 {
            let balanced = converge_from_empty(4, 16, LoadBalancingStrategy::Balanced, seed).await;
            let greedy = converge_from_empty(4, 16, LoadBalancingStrategy::Greedy, seed).await;
            assert!(
                greedy < balanced,
                "seed {seed}: greedy {greedy} rounds, balanced {balanced}"
            );
        }
    });
}

#[test]
fn a_stopped_consumer_loses_its_partitions_after_the_expiration() {
    block_on(async {
        for strategy in [LoadBalancingStrategy::Balanced, LoadBalancingStrategy::Greedy] {
            let mut sim = Sim::new(4, 16, strategy, 3);
            sim.converge(balanced_bound(4, 16), "start").await;
            let dead = 2;
            let dead_partitions: Vec<PartitionId> = sim.consumers[dead].owned().cloned().collect();
            assert_eq!(dead_partitions.len(), 4);
            sim.alive[dead] = false;

            // Until the expiration, nobody touches the dead consumer's
            // partitions: the others count it as an active owner.
            let expiry_rounds = (EXPIRATION.as_secs() / INTERVAL.as_secs()) as usize;
            for _ in 0..expiry_rounds - 1 {
                assert_eq!(sim.round().await, 0);
            }
            let listing = sim.listing().await;
            for p in &dead_partitions {
                assert_eq!(listing[p].owner_id.as_ref(), Some(sim.consumers[dead].owner_id()));
            }

            // Then the three others share the 16 partitions: 6, 5, 5.
            // Balanced claims one partition per consumer per round.
            let took = sim
                .converge(1 + 4usize.div_ceil(3) + 2, "after a consumer stopped")
                .await;
            let mut counts = sim.owned_counts();
            counts.remove(dead);
            counts.sort();
            assert_eq!(counts, [5, 5, 6]);
            let listing = sim.listing().await;
            for p in &dead_partitions {
                assert_ne!(listing[p].owner_id.as_ref(), Some(sim.consumers[dead].owner_id()));
            }
            println!(
                "{strategy:?}: took over a stopped consumer's partitions in {took} rounds after expiry - 1"
            );
        }
    });
}

#[test]
fn a_joining_consumer_steals_its_fair_share() {
    block_on(async {
        for strategy in [LoadBalancingStrategy::Balanced, LoadBalancingStrategy::Greedy] {
            for (consumers, partitions) in [(4, 16), (5, 32), (3, 100)] {
                let mut sim = Sim::new(consumers, partitions, strategy, 4);
                sim.converge(balanced_bound(consumers, partitions), "start").await;
                let newcomer = sim.join(strategy);
                // Nothing is claimable, so every partition the newcomer gets is
                // stolen; Balanced steals one per round.
                let share = partitions as usize / (consumers + 1);
                let bound = match strategy {
                    LoadBalancingStrategy::Balanced => share + 3,
                    LoadBalancingStrategy::Greedy => GREEDY_BOUND,
                };
                let what = format!("{strategy:?}: joining {consumers} consumers on {partitions} partitions");
                let took = sim.converge(bound, &what).await;
                let counts = sim.owned_counts();
                assert!(counts[newcomer] >= share, "{what}: {counts:?}");
                println!("{what}: converged in {took} rounds, counts {counts:?}");
            }
        }
    });
}

#[test]
fn release_all_makes_partitions_claimable_at_once() {
    block_on(async {
        let mut sim = Sim::new(2, 8, LoadBalancingStrategy::Balanced, 5);
        sim.converge(balanced_bound(2, 8), "start").await;
        let released: Vec<PartitionId> = sim.consumers[0].owned().cloned().collect();
        let changes = sim.consumers[0].release_all().await;
        assert!(changes.errors.is_empty());
        assert!(changes.gained.is_empty());
        assert_eq!(changes.lost, released);
        assert_eq!(sim.consumers[0].owned().count(), 0);
        sim.alive[0] = false;
        let listing = sim.listing().await;
        for p in &released {
            assert_eq!(listing[p].owner_id, None, "partition {p} was not released");
        }

        // Without the clock moving, the remaining consumer takes them all,
        // one per tick (Balanced).
        let mut gained = Vec::new();
        for _ in 0..released.len() {
            gained.extend(sim.tick(1).await.gained);
        }
        gained.sort();
        assert_eq!(gained, released);
        assert_eq!(sim.consumers[1].owned().count(), 8);
        assert!(sim.converged().await);
    });
}

#[test]
fn a_restarted_consumer_renews_what_it_owned() {
    block_on(async {
        let mut sim = Sim::new(2, 8, LoadBalancingStrategy::Balanced, 6);
        sim.converge(balanced_bound(2, 8), "start").await;
        let before: Vec<PartitionId> = sim.consumers[1].owned().cloned().collect();
        // Consumer 1 restarts with the same owner id: a new balancer.
        let owner = sim.consumers[1].owner_id().clone();
        sim.alive[1] = false;
        sim.clock.advance(INTERVAL * 2);
        let restarted = sim.add(owner, LoadBalancingStrategy::Balanced);
        let changes = sim.tick(restarted).await;
        assert_eq!(changes.gained, before, "recovered partitions count as gained");
        assert!(changes.lost.is_empty());
        // The stale balancer of the first incarnation now holds superseded
        // etags only.
        let listing = sim.listing().await;
        for held in sim.consumers[1].ownerships() {
            assert_ne!(listing[&held.partition_id].etag, held.etag);
        }
        assert_eq!(sim.converge(3, "after restart").await, 0);
    });
}

/// A backend whose listings can be made to fail, and whose next renewal
/// can be made ambiguous.
#[derive(Debug)]
struct FlakyBackend {
    inner: InMemoryBackend,
    fail_listings: AtomicBool,
    /// The next conditional metadata write: a thief's write lands first
    /// (so ours gets 412), the answer reads as possibly applied (a retry
    /// after a lost response), and listings fail from then on (the store's
    /// read-back).
    steal_next_renewal: AtomicBool,
}

#[async_trait]
impl BlobBackend for FlakyBackend {
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        if self.fail_listings.load(Ordering::SeqCst) {
            return Err(BackendError::new(BackendErrorKind::Transient, "connection reset"));
        }
        self.inner.list_blobs(prefix).await
    }

    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        self.inner.put_blob(name, metadata, condition).await
    }

    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        if matches!(condition, WriteCondition::IfMatch(_))
            && self.steal_next_renewal.swap(false, Ordering::SeqCst)
        {
            let mut theirs = metadata.clone();
            theirs.insert("ownerid", "thief");
            self.inner
                .set_metadata(name, &theirs, &WriteCondition::Unconditional)
                .await?;
            self.fail_listings.store(true, Ordering::SeqCst);
            let lost = self.inner.set_metadata(name, metadata, condition).await;
            return Err(lost
                .expect_err("the thief changed the etag")
                .with_write_may_have_applied());
        }
        self.inner.set_metadata(name, metadata, condition).await
    }

    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        self.inner.delete_blob(name, condition).await
    }
}

fn four_partitions() -> Vec<PartitionId> {
    (0..4).map(PartitionId::from).collect()
}

/// A greedy balancer of owner "me" over [`four_partitions`], on a
/// [`FlakyBackend`] with a manual clock.
fn greedy_over_flaky_backend(
    seed: u64,
) -> (Arc<ManualClock>, Arc<FlakyBackend>, CheckpointStore, LoadBalancer) {
    let clock = Arc::new(ManualClock::default());
    let backend = Arc::new(FlakyBackend {
        inner: InMemoryBackend::with_clock(clock.clone()),
        fail_listings: AtomicBool::new(false),
        steal_next_renewal: AtomicBool::new(false),
    });
    let store = CheckpointStore::new(backend.clone());
    let balancer = LoadBalancer::new(
        store.clone(),
        scope(),
        OwnerId::new("me").unwrap(),
        four_partitions(),
        options(LoadBalancingStrategy::Greedy, seed),
        clock.clone(),
    );
    (clock, backend, store, balancer)
}

#[test]
fn failed_listings_keep_partitions_only_until_they_expire() {
    block_on(async {
        let (clock, backend, _store, mut balancer) = greedy_over_flaky_backend(7);
        let partitions = four_partitions();
        assert_eq!(balancer.tick().await.gained, partitions);

        backend.fail_listings.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            clock.advance(INTERVAL);
            let changes = balancer.tick().await;
            assert_eq!(changes.errors.len(), 1);
            assert_eq!(changes.errors[0].operation(), Operation::ListOwnership);
            assert!(changes.lost.is_empty());
            assert_eq!(balancer.owned().count(), 4);
        }
        clock.advance(INTERVAL);
        let changes = balancer.tick().await;
        assert_eq!(changes.lost, partitions, "expired ownerships must be given up");
        assert_eq!(balancer.owned().count(), 0);

        backend.fail_listings.store(false, Ordering::SeqCst);
        assert_eq!(balancer.tick().await.gained, partitions);
    });
}

/// A renewal answered 412 whose read-back failed is reported `Failed` by
/// the store; its partition may be another consumer's now, so the balancer
/// must give it up at once rather than at expiry.
#[test]
fn a_renewal_that_met_a_changed_blob_it_could_not_read_back_gives_the_partition_up() {
    block_on(async {
        let (clock, backend, store, mut balancer) = greedy_over_flaky_backend(9);
        let partitions = four_partitions();
        assert_eq!(balancer.tick().await.gained, partitions);

        clock.advance(INTERVAL);
        backend.steal_next_renewal.store(true, Ordering::SeqCst);
        let changes = balancer.tick().await;
        assert_eq!(changes.errors.len(), 1, "{changes:?}");
        let error = &changes.errors[0];
        assert_eq!(error.kind(), BackendErrorKind::PreconditionFailed, "{error}");
        assert!(error.backend_error().write_may_have_applied(), "{error}");
        assert_eq!(changes.lost.len(), 1, "given up at once: {changes:?}");
        let stolen = &changes.lost[0];
        assert!(balancer.owned().all(|p| p != stolen));
        assert_eq!(balancer.owned().count(), 3);

        backend.fail_listings.store(false, Ordering::SeqCst);
        let listed = store.list_ownership(&scope()).await.unwrap().items;
        let thiefs = listed.iter().find(|o| &o.partition_id == stolen).unwrap();
        assert_eq!(thiefs.owner_id, Some(OwnerId::new("thief").unwrap()));
    });
}

#[test]
fn run_streams_gains_then_releases_on_shutdown() {
    block_on(async {
        let clock = Arc::new(ManualClock::default());
        let store = CheckpointStore::new(Arc::new(InMemoryBackend::with_clock(clock.clone())));
        let partitions: Vec<PartitionId> = (0..3).map(PartitionId::from).collect();
        let balancer = LoadBalancer::new(
            store.clone(),
            scope(),
            OwnerId::new("runner").unwrap(),
            partitions.clone(),
            options(LoadBalancingStrategy::Greedy, 8),
            clock.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut events = Box::pin(balancer.run(async move {
            let _ = stopped.await;
        }));

        let mut gained = Vec::new();
        for _ in 0..3 {
            match events.next().await {
                Some(BalancerEvent::Gained(p)) => gained.push(p),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(gained, partitions);
        stop.send(()).unwrap();

        let mut releasing = Vec::new();
        for _ in 0..3 {
            match events.next().await {
                Some(BalancerEvent::Releasing(p)) => releasing.push(p),
                other => panic!("unexpected {other:?}"),
            }
            // Not released until the consumer has seen every Releasing.
            let listing = store.list_ownership(&scope()).await.unwrap();
            assert!(listing.items.iter().all(|o| o.owner_id.is_some()));
        }
        assert_eq!(releasing, partitions);
        assert!(events.next().await.is_none());
        let listing = store.list_ownership(&scope()).await.unwrap();
        assert_eq!(listing.items.len(), 3);
        assert!(listing.items.iter().all(|o| o.owner_id.is_none()));
    });
}
