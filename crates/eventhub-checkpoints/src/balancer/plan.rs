//! One balancing decision, computed from a listing without touching the
//! store: which ownerships are ours, what is claimable, what each other
//! owner holds, and what to claim.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use rand::Rng;
use rand::seq::IndexedRandom;

use super::LoadBalancingStrategy;
use crate::model::{OwnerId, Ownership, OwnershipClaim, PartitionId, Scope};

/// How many partitions each active owner should hold.
///
/// With `partitions = owners × minimum + extra`, a balanced group has every
/// owner holding `minimum` or `minimum + 1` partitions, and exactly `extra`
/// owners holding `minimum + 1` once every partition is owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairShare {
    /// Active owners, this consumer included.
    pub owners: usize,
    /// The fewest partitions an owner should hold: `partitions / owners`.
    pub minimum: usize,
    /// How many owners may hold one more than `minimum`:
    /// `partitions % owners`.
    pub extra: usize,
}

impl FairShare {
    /// The fair share of `partitions` among `owners` (at least 1).
    pub fn new(partitions: usize, owners: usize) -> Self {
        let owners = owners.max(1);
        Self {
            owners,
            minimum: partitions / owners,
            extra: partitions % owners,
        }
    }

    /// The most partitions any owner should hold.
    pub fn maximum(&self) -> usize {
        self.minimum + usize::from(self.extra > 0)
    }
}

/// Whether `ownership` has an owner whose claim is younger than
/// `expiration` at `now`. A last-modified time in the future (clock skew)
/// counts as fresh.
pub(crate) fn is_active(ownership: &Ownership, now: SystemTime, expiration: Duration) -> bool {
    ownership.owner_id.is_some()
        && match now.duration_since(ownership.last_modified) {
            Ok(age) => age < expiration,
            Err(_) => true,
        }
}

/// The listing as one consumer sees it.
#[derive(Debug)]
pub(crate) struct View<'a> {
    /// Our ownerships, to renew: listed with our owner id and either active
    /// or held by us.
    pub mine: Vec<&'a Ownership>,
    /// Partitions nobody actively owns: never claimed (`None`), released or
    /// expired.
    pub claimable: Vec<(&'a PartitionId, Option<&'a Ownership>)>,
    /// Active ownerships of every other owner.
    pub others: BTreeMap<&'a OwnerId, Vec<&'a Ownership>>,
}

impl<'a> View<'a> {
    /// Sorts the listed ownerships of `partitions` (others are ignored) into
    /// ours, claimable and other owners'. `held(p)` says whether we believe
    /// we hold `p`. O(partitions + listed).
    pub fn new(
        partitions: &'a [PartitionId],
        listed: &'a [Ownership],
        me: &OwnerId,
        held: impl Fn(&PartitionId) -> bool,
        now: SystemTime,
        expiration: Duration,
    ) -> Self {
        let by_partition: HashMap<&PartitionId, &Ownership> =
            listed.iter().map(|o| (&o.partition_id, o)).collect();
        let mut view = View {
            mine: Vec::new(),
            claimable: Vec::new(),
            others: BTreeMap::new(),
        };
        for partition in partitions {
            let Some(&ownership) = by_partition.get(partition) else {
                view.claimable.push((partition, None));
                continue;
            };
            let active = is_active(ownership, now, expiration);
            match &ownership.owner_id {
                Some(owner) if owner == me && (active || held(partition)) => view.mine.push(ownership),
                Some(owner) if active => view.others.entry(owner).or_default().push(ownership),
                _ => view.claimable.push((partition, Some(ownership))),
            }
        }
        view
    }

    /// The fair share of `partitions` among the active owners and us.
    pub fn fair_share(&self, partitions: usize) -> FairShare {
        FairShare::new(partitions, self.others.len() + 1)
    }

    /// How many partitions we should add to the `ours` we hold now.
    fn wanted(&self, share: FairShare, ours: usize) -> usize {
        let others_above_minimum = self.others.values().filter(|o| o.len() > share.minimum).count();
        let extra_slot_free = usize::from(others_above_minimum < share.extra);
        if ours < share.minimum {
            share.minimum - ours + extra_slot_free
        } else if ours == share.minimum {
            extra_slot_free
        } else {
            0
        }
    }

    /// The claims that move us towards our fair share. Each step takes a
    /// random claimable partition if there is one, otherwise steals a random
    /// partition of the owner holding the most (ties broken at random),
    /// provided it holds more than the fair share allows: more than
    /// `minimum + 1`, or exactly that while we hold less than `minimum`.
    /// Balanced makes one step per tick; Greedy steps until we reach our
    /// share (the view is updated as if every claim succeeds).
    pub fn acquisitions(
        &mut self,
        share: FairShare,
        scope: &Scope,
        me: &OwnerId,
        strategy: LoadBalancingStrategy,
        rng: &mut impl Rng,
    ) -> Vec<OwnershipClaim> {
        let mut claims = Vec::new();
        loop {
            let ours = self.mine.len() + claims.len();
            let limit = match strategy {
                LoadBalancingStrategy::Balanced => 1,
                LoadBalancingStrategy::Greedy => usize::MAX,
            };
            if claims.len() >= limit || self.wanted(share, ours) == 0 {
                break;
            }
            if !self.claimable.is_empty() {
                let (partition, listed) = self
                    .claimable
                    .swap_remove(rng.random_range(0..self.claimable.len()));
                claims.push(match listed {
                    Some(ownership) => OwnershipClaim::from_listed(ownership, me.clone()),
                    None => OwnershipClaim::new(scope.clone(), partition.clone(), me.clone(), None),
                });
                continue;
            }
            let Some(most) = self.others.values().map(Vec::len).max() else {
                break;
            };
            let may_steal = most > share.minimum + 1 || (most == share.minimum + 1 && ours < share.minimum);
            if !may_steal {
                break;
            }
            let victims: Vec<&OwnerId> = self
                .others
                .iter()
                .filter(|(_, o)| o.len() == most)
                .map(|(owner, _)| *owner)
                .collect();
            let victim = *victims.choose(rng).expect("some owner holds the most");
            let held = self.others.get_mut(victim).expect("the victim is listed");
            let stolen = held.swap_remove(rng.random_range(0..held.len()));
            claims.push(OwnershipClaim::from_listed(stolen, me.clone()));
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::model::ETag;

    fn scope() -> Scope {
        Scope::new("ns", "hub", "cg").unwrap()
    }

    fn listed(partition: u32, owner: Option<&str>, age_secs: u64, now: SystemTime) -> Ownership {
        Ownership {
            scope: scope(),
            partition_id: PartitionId::from(partition),
            owner_id: owner.map(|o| OwnerId::new(o).unwrap()),
            etag: ETag::new(format!("e{partition}")).unwrap(),
            last_modified: now - Duration::from_secs(age_secs),
        }
    }

    #[test]
    fn fair_share_splits_the_remainder() {
        assert_eq!(
            FairShare::new(10, 4),
            FairShare {
                owners: 4,
                minimum: 2,
                extra: 2
            }
        );
        assert_eq!(FairShare::new(10, 4).maximum(), 3);
        assert_eq!(FairShare::new(8, 4).maximum(), 2);
        assert_eq!(FairShare::new(1, 3).maximum(), 1);
        assert_eq!(FairShare::new(5, 0).owners, 1);
    }

    #[test]
    fn activity_needs_an_owner_and_a_fresh_claim() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let expiration = Duration::from_secs(60);
        assert!(is_active(&listed(0, Some("a"), 59, now), now, expiration));
        assert!(!is_active(&listed(0, Some("a"), 60, now), now, expiration));
        assert!(!is_active(&listed(0, None, 0, now), now, expiration));
        let mut future = listed(0, Some("a"), 0, now);
        future.last_modified = now + Duration::from_secs(5);
        assert!(is_active(&future, now, expiration));
    }

    #[test]
    fn view_sorts_ours_claimable_and_others() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let me = OwnerId::new("me").unwrap();
        let partitions: Vec<PartitionId> = (0..6).map(PartitionId::from).collect();
        let listing = vec![
            listed(0, Some("me"), 10, now),
            listed(1, Some("me"), 100, now), // expired, not held: claimable
            listed(2, Some("me"), 100, now), // expired but held: ours
            listed(3, Some("b"), 10, now),
            listed(4, None, 0, now),
            listed(9, Some("b"), 0, now), // not one of our partitions
        ];
        let held = |p: &PartitionId| p.as_str() == "2";
        let view = View::new(&partitions, &listing, &me, held, now, Duration::from_secs(60));
        let ids = |v: &[&Ownership]| v.iter().map(|o| o.partition_id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&view.mine), ["0", "2"]);
        let claimable: Vec<String> = view.claimable.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(claimable, ["1", "4", "5"]);
        assert_eq!(view.others.len(), 1);
        assert_eq!(view.fair_share(6), FairShare::new(6, 2));
    }

    #[test]
    fn steals_only_beyond_what_the_fair_share_allows() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let me = OwnerId::new("me").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let strategy = LoadBalancingStrategy::Balanced;
        // 5 partitions, b holds 3 and we hold 2: balanced, nothing to do.
        let partitions: Vec<PartitionId> = (0..5).map(PartitionId::from).collect();
        let owners = ["b", "b", "b", "me", "me"];
        let listing: Vec<Ownership> = (0..5)
            .map(|p| listed(p, Some(owners[p as usize]), 0, now))
            .collect();
        let mut view = View::new(
            &partitions,
            &listing,
            &me,
            |_| false,
            now,
            Duration::from_secs(60),
        );
        let share = view.fair_share(5);
        assert!(
            view.acquisitions(share, &scope(), &me, strategy, &mut rng)
                .is_empty()
        );
        // b holds 4 and we hold 1: steal one of b's.
        let owners = ["b", "b", "b", "b", "me"];
        let listing: Vec<Ownership> = (0..5)
            .map(|p| listed(p, Some(owners[p as usize]), 0, now))
            .collect();
        let mut view = View::new(
            &partitions,
            &listing,
            &me,
            |_| false,
            now,
            Duration::from_secs(60),
        );
        let claims = view.acquisitions(share, &scope(), &me, strategy, &mut rng);
        assert_eq!(claims.len(), 1);
        assert!(claims[0].partition_id.as_str() < "4");
        assert_eq!(
            claims[0].etag,
            Some(ETag::new(format!("e{}", claims[0].partition_id)).unwrap())
        );
    }
}
