//! A partition load balancer over any [`CheckpointStore`], as the Azure
//! SDKs' event processors run it, for consumers that read partitions
//! themselves.
//!
//! Every consumer of a consumer group runs a [`LoadBalancer`] with its own
//! [`OwnerId`] and calls [`LoadBalancer::tick`] every
//! [`update_interval`](LoadBalancerOptions::update_interval) (or lets
//! [`LoadBalancer::run`] do it). One tick:
//!
//! 1. lists the ownership blobs of the scope;
//! 2. counts the **active** owners: an ownership is active if it names an
//!    owner and was written less than
//!    [`ownership_expiration`](LoadBalancerOptions::ownership_expiration)
//!    ago. Released and expired ownerships, and partitions without an
//!    ownership blob, are **claimable**;
//! 3. computes the [`FairShare`]: with `P` partitions and `N` active owners
//!    (this consumer included), everyone should hold `P / N` partitions and
//!    at most `P % N` owners one more;
//! 4. renews every partition it holds, conditional on its listed etag; a
//!    renewal another consumer beat is a lost partition. A partition listed
//!    with this owner id that it does not hold (after a restart) is renewed
//!    and counts as gained;
//! 5. if it holds less than its share, takes a random claimable partition,
//!    or if there is none, steals a random partition from the owner holding
//!    the most, provided that owner holds more than the share allows (more
//!    than `P / N + 1`, or exactly that many while this consumer holds fewer
//!    than `P / N`). [`LoadBalancingStrategy::Balanced`] takes one partition
//!    per tick; [`LoadBalancingStrategy::Greedy`] repeats until it reaches
//!    its share (as .NET's greedy processor reruns its cycle; Python's steals
//!    only one per tick).
//!
//! Claims are conditional writes, so two consumers never both win the same
//! version of an ownership blob. A consumer whose partition was stolen learns
//! it on its next tick: until then it may still be reading the partition, as
//! with the Azure SDKs (checkpoints written then are harmless but late).
//!
//! A group converges to every partition owned and the counts of any two
//! owners differing by at most one. With Balanced, every consumer gains at
//! most one partition per tick, so from an empty store it takes about
//! `P / N` rounds (`tests/balancer.rs` measures it); Greedy takes two or
//! three.
//!
//! ```
//! use std::sync::Arc;
//! use eventhub_checkpoints::*;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::default());
//! let store = CheckpointStore::new(Arc::new(InMemoryBackend::with_clock(clock.clone())));
//! let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
//! let partitions: Vec<PartitionId> = (0..4).map(PartitionId::from).collect();
//! let options = LoadBalancerOptions { seed: Some(1), ..LoadBalancerOptions::default() };
//! let mut consumers = Vec::new();
//! for name in ["alice", "bob"] {
//!     let owner = OwnerId::new(name)?;
//!     let balancer = LoadBalancer::new(
//!         store.clone(), scope.clone(), owner, partitions.clone(), options.clone(), clock.clone(),
//!     );
//!     consumers.push(balancer);
//! }
//! for _round in 0..5 {
//!     for consumer in &mut consumers {
//!         let changes = consumer.tick().await;
//!         assert!(changes.errors.is_empty());
//!         // start reading `changes.gained`, stop reading `changes.lost`
//!     }
//!     clock.advance(options.update_interval);
//! }
//! assert_eq!(consumers[0].owned().count(), 2);
//! assert_eq!(consumers[1].owned().count(), 2);
//!
//! // On shutdown, release so that the others take over at once.
//! let released = consumers[0].release_all().await;
//! assert_eq!(released.lost.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod plan;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use self::plan::FairShare;
use self::plan::{View, is_active};
pub use self::run::BalancerEvent;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::model::{OwnerId, Ownership, OwnershipClaim, PartitionId, Scope};
use crate::store::{CheckpointStore, ClaimResult};

/// How fast a consumer takes partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadBalancingStrategy {
    /// At most one partition per tick: claimable partitions are shared out
    /// evenly while consumers start up. The Azure SDKs' default.
    #[default]
    Balanced,
    /// Up to the fair share per tick, claimable partitions first, then
    /// stolen ones: faster convergence, more contention and more partitions
    /// changing hands at once.
    Greedy,
}

/// Tuning of a [`LoadBalancer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancerOptions {
    /// How fast partitions are taken. Default [`LoadBalancingStrategy::Balanced`].
    pub strategy: LoadBalancingStrategy,
    /// How long an ownership stays active without being renewed. Keep it
    /// several update intervals long (the SDKs use six), so one slow tick
    /// does not lose partitions. Default 60 s.
    pub ownership_expiration: Duration,
    /// Time between ticks in [`LoadBalancer::run`], and the pace the
    /// expiration assumes for manual ticking. Default 10 s.
    pub update_interval: Duration,
    /// [`LoadBalancer::run`] waits `update_interval` plus or minus up to this
    /// much, chosen at random each time, so that consumers started together
    /// do not keep ticking together. Default 1 s.
    pub jitter: Duration,
    /// Seed of the random choices (which claimable partition, which victim),
    /// for reproducible runs; `None` seeds from the operating system.
    /// Default `None`.
    pub seed: Option<u64>,
}

impl Default for LoadBalancerOptions {
    fn default() -> Self {
        Self {
            strategy: LoadBalancingStrategy::Balanced,
            ownership_expiration: Duration::from_secs(60),
            update_interval: Duration::from_secs(10),
            jitter: Duration::from_secs(1),
            seed: None,
        }
    }
}

/// What one [`LoadBalancer::tick`] (or [`LoadBalancer::release_all`])
/// changed.
///
/// A partition can be in both lists if it was lost (e.g. released by someone
/// else) and claimed again within the tick; the loss came first.
#[derive(Debug, Default)]
pub struct Changes {
    /// Partitions this consumer now holds and did not before: start reading
    /// them (from their checkpoint). Sorted.
    pub gained: Vec<PartitionId>,
    /// Partitions this consumer held and no longer does: stop reading them.
    /// Sorted.
    pub lost: Vec<PartitionId>,
    /// Failures of the tick: a failed listing (nothing was claimed or
    /// renewed; held partitions are kept until their ownership expires), or
    /// claims that failed for another reason than a lost race (the partition
    /// is kept until its ownership expires, if it was held; but a renewal
    /// that met a changed blob it could not read back gives the partition up
    /// at once, in `lost`).
    pub errors: Vec<StoreError>,
}

impl Changes {
    /// Whether nothing was gained or lost and nothing failed.
    pub fn is_empty(&self) -> bool {
        self.gained.is_empty() && self.lost.is_empty() && self.errors.is_empty()
    }
}

/// Shares the partitions of an event hub among the consumers of a consumer
/// group, through ownership blobs in a [`CheckpointStore`].
///
/// See the [module documentation](self) for the algorithm and an example.
#[derive(Debug)]
pub struct LoadBalancer {
    store: CheckpointStore,
    scope: Scope,
    owner: OwnerId,
    partitions: Vec<PartitionId>,
    options: LoadBalancerOptions,
    clock: Arc<dyn Clock>,
    rng: StdRng,
    /// The ownerships we hold, as our last accepted claims returned them.
    held: BTreeMap<PartitionId, Ownership>,
    fair_share: Option<FairShare>,
}

impl LoadBalancer {
    /// A balancer for `owner` over `partitions` of `scope`, holding nothing
    /// yet. Duplicate partition ids are ignored. `clock` decides when
    /// ownerships expire; pass `Arc::new(SystemClock)` outside simulations.
    pub fn new(
        store: CheckpointStore,
        scope: Scope,
        owner: OwnerId,
        partitions: Vec<PartitionId>,
        options: LoadBalancerOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut seen = BTreeSet::new();
        let partitions: Vec<PartitionId> = partitions
            .into_iter()
            .filter(|p| seen.insert(p.clone()))
            .collect();
        if options.ownership_expiration <= options.update_interval + options.jitter {
            tracing::warn!(
                expiration = ?options.ownership_expiration,
                interval = ?options.update_interval,
                "ownership expires before the next renewal; partitions will keep changing owner"
            );
        }
        let rng = match options.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            store,
            scope,
            owner,
            partitions,
            options,
            clock,
            rng,
            held: BTreeMap::new(),
            fair_share: None,
        }
    }

    /// This consumer's owner id.
    pub fn owner_id(&self) -> &OwnerId {
        &self.owner
    }

    /// The consumer group and event hub balanced.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The partitions balanced, without duplicates.
    pub fn partitions(&self) -> &[PartitionId] {
        &self.partitions
    }

    /// The options given to [`LoadBalancer::new`].
    pub fn options(&self) -> &LoadBalancerOptions {
        &self.options
    }

    /// The partitions this consumer holds, in partition-id order.
    pub fn owned(&self) -> impl Iterator<Item = &PartitionId> {
        self.held.keys()
    }

    /// The ownerships this consumer holds, as its last accepted claims
    /// returned them (the etag is the version this consumer wrote).
    pub fn ownerships(&self) -> impl Iterator<Item = &Ownership> {
        self.held.values()
    }

    /// Whether this consumer holds `partition`.
    pub fn owns(&self, partition: &PartitionId) -> bool {
        self.held.contains_key(partition)
    }

    /// The fair share computed by the last tick that listed the store.
    pub fn fair_share(&self) -> Option<FairShare> {
        self.fair_share
    }

    /// One balancing cycle: list, renew what this consumer holds, and claim
    /// or steal towards its fair share (see the [module
    /// documentation](self)).
    pub async fn tick(&mut self) -> Changes {
        let now = self.clock.now();
        let listing = match self.store.list_ownership(&self.scope).await {
            Ok(listing) => listing,
            Err(error) => {
                let lost = self.drop_expired(now);
                return Changes {
                    gained: Vec::new(),
                    lost,
                    errors: vec![error],
                };
            }
        };
        let expiration = self.options.ownership_expiration;
        let held = &self.held;
        let mut view = View::new(
            &self.partitions,
            &listing.items,
            &self.owner,
            |p| held.contains_key(p),
            now,
            expiration,
        );
        let share = view.fair_share(self.partitions.len());
        self.fair_share = Some(share);

        let mut changes = Changes::default();
        let renewing: BTreeSet<&PartitionId> = view.mine.iter().map(|o| &o.partition_id).collect();
        for partition in self.held.keys().filter(|p| !renewing.contains(p)) {
            changes.lost.push(partition.clone());
        }
        let renewals: Vec<OwnershipClaim> = view
            .mine
            .iter()
            .map(|o| OwnershipClaim::from_listed(o, self.owner.clone()))
            .collect();
        let acquisitions = view.acquisitions(
            share,
            &self.scope,
            &self.owner,
            self.options.strategy,
            &mut self.rng,
        );
        drop(view);
        for partition in &changes.lost {
            self.held.remove(partition);
        }

        let renewal_count = renewals.len();
        let outcomes = self
            .store
            .claim_ownership(renewals.into_iter().chain(acquisitions))
            .await;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let partition = outcome.claim.partition_id;
            let renewal = index < renewal_count;
            match outcome.result {
                ClaimResult::Claimed(ownership) => {
                    if self.held.insert(partition.clone(), ownership).is_none() {
                        changes.gained.push(partition);
                    }
                }
                ClaimResult::Lost => {
                    if renewal && self.held.remove(&partition).is_some() {
                        changes.lost.push(partition);
                    }
                }
                ClaimResult::Failed(error) => {
                    // A renewal that met a changed blob (412, 409) it could
                    // not read back: the etag held is stale whoever changed
                    // it, and another consumer may hold the partition now.
                    let superseded = renewal && error.kind().is_condition_lost();
                    let expired = self
                        .held
                        .get(&partition)
                        .is_some_and(|o| !is_active(o, now, expiration));
                    if (superseded || expired) && self.held.remove(&partition).is_some() {
                        changes.lost.push(partition);
                    }
                    changes.errors.push(error);
                }
            }
        }
        changes.gained.sort();
        changes.lost.sort();
        if !changes.gained.is_empty() || !changes.lost.is_empty() {
            tracing::debug!(
                owner = %self.owner,
                gained = ?changes.gained,
                lost = ?changes.lost,
                owned = self.held.len(),
                ?share,
                "load balancing changed ownership"
            );
        }
        changes
    }

    /// Drops the held partitions whose last accepted claim has expired at
    /// `now`: other consumers may have taken them.
    fn drop_expired(&mut self, now: SystemTime) -> Vec<PartitionId> {
        let expiration = self.options.ownership_expiration;
        let expired: Vec<PartitionId> = self
            .held
            .values()
            .filter(|o| !is_active(o, now, expiration))
            .map(|o| o.partition_id.clone())
            .collect();
        for partition in &expired {
            self.held.remove(partition);
        }
        expired
    }

    /// Graceful shutdown: releases every held partition (owner id emptied,
    /// conditional on the etag of this consumer's last claim), so that other
    /// consumers can claim it at once instead of waiting for it to expire.
    ///
    /// Afterwards this consumer holds nothing; every partition it held is in
    /// [`Changes::lost`], and releases that failed for another reason than a
    /// lost race are in [`Changes::errors`] (those partitions expire in due
    /// time). Stop reading the partitions (and write final checkpoints)
    /// before calling it.
    pub async fn release_all(&mut self) -> Changes {
        let held = std::mem::take(&mut self.held);
        // Collected first: a borrowing iterator held across the await would
        // make the future not provably `Send`.
        let releases: Vec<OwnershipClaim> = held
            .values()
            .map(|o| OwnershipClaim::release(self.scope.clone(), o.partition_id.clone(), o.etag.clone()))
            .collect();
        let outcomes = self.store.claim_ownership(releases).await;
        let errors = outcomes
            .into_iter()
            .filter_map(|outcome| match outcome.result {
                ClaimResult::Failed(error) => Some(error),
                ClaimResult::Claimed(_) | ClaimResult::Lost => None,
            })
            .collect();
        Changes {
            gained: Vec::new(),
            lost: held.into_keys().collect(),
            errors,
        }
    }

    /// The pause before the next tick: the update interval plus or minus a
    /// random amount up to the jitter.
    pub fn next_delay(&mut self) -> Duration {
        let interval = self.options.update_interval;
        let jitter = self.options.jitter.min(interval);
        if jitter.is_zero() {
            return interval;
        }
        let offset = self.rng.random_range(0..=2 * jitter.as_nanos());
        let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
        (interval + offset).saturating_sub(jitter)
    }
}
