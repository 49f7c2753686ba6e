//! Several OS processes race to claim one partition in one directory, round
//! after round; every round must have exactly one winner.
//!
//! The test re-runs its own binary as the racing processes: with
//! `EHCP_FS_RACER` set, the same test acts as racer number `EHCP_FS_RACER`
//! instead of as the parent.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhub_checkpoints::{CheckpointStore, ClaimResult, OwnerId, OwnershipClaim, PartitionId, Scope};
use eventhub_checkpoints_fs::FileBackend;

const TEST_NAME: &str = "processes_racing_for_a_partition_have_one_winner_per_round";
const RACER: &str = "EHCP_FS_RACER";
const DIR: &str = "EHCP_FS_RACE_DIR";
const PROCESSES: usize = 4;
const ROUNDS: usize = 50;

#[test]
fn processes_racing_for_a_partition_have_one_winner_per_round() {
    if let Ok(index) = std::env::var(RACER) {
        let dir = PathBuf::from(std::env::var(DIR).expect("racers get the directory"));
        return race(index.parse().expect("racer index"), &dir);
    }

    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("barrier")).unwrap();
    let racers: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(RACER, i.to_string())
                .env(DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, racer) in racers.into_iter().enumerate() {
        let output = racer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "racer {i} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // Each racer wrote one line per round: "<round> won" or "<round> lost".
    let mut winners = vec![Vec::new(); ROUNDS];
    for i in 0..PROCESSES {
        let results = fs::read_to_string(dir.path().join(format!("results-{i}.txt"))).unwrap();
        assert_eq!(results.lines().count(), ROUNDS, "racer {i}:\n{results}");
        for line in results.lines() {
            let (round, outcome) = line.split_once(' ').unwrap();
            if outcome == "won" {
                winners[round.parse::<usize>().unwrap()].push(i);
            }
        }
    }
    for (round, winners) in winners.iter().enumerate() {
        assert_eq!(winners.len(), 1, "round {round} was won by racers {winners:?}");
    }

    // The store agrees: the last round's winner owns the partition.
    let last = winners[ROUNDS - 1][0];
    let store = CheckpointStore::new(Arc::new(FileBackend::open(dir.path().join("store")).unwrap()));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let listed = runtime.block_on(store.list_ownership(&scope())).unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].owner_id, Some(owner(last, ROUNDS - 1)));
}

fn scope() -> Scope {
    Scope::new("race.servicebus.windows.net", "hub", "$Default").unwrap()
}

fn owner(racer: usize, round: usize) -> OwnerId {
    OwnerId::new(format!("racer-{racer}-round-{round}")).unwrap()
}

/// One racing process: in every round, reads the ownership as the previous
/// round left it, waits for all racers to have read it too, then claims with
/// its etag (create-only in round 0).
fn race(index: usize, dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = CheckpointStore::new(Arc::new(FileBackend::open(dir.join("store")).unwrap()));
        let partition = PartitionId::from(0);
        let mut results = String::new();
        for round in 0..ROUNDS {
            let etag = if round == 0 {
                None
            } else {
                // No claim of this round can land before every racer has read
                // (the barrier), so all read the previous round's winner.
                let listed = store.list_ownership(&scope()).await.unwrap().items;
                assert_eq!(listed.len(), 1, "round {round}: listed {listed:?}");
                let previous_owner = listed[0].owner_id.as_ref().map(OwnerId::as_str).unwrap_or("");
                let expected_suffix = format!("-round-{}", round - 1);
                assert!(
                    previous_owner.ends_with(&expected_suffix),
                    "round {round}: previous round left owner {previous_owner:?}"
                );
                Some(listed[0].etag.clone())
            };
            barrier(dir, round, index).await;
            let claim = OwnershipClaim::new(scope(), partition.clone(), owner(index, round), etag);
            let outcome = match store.claim(&claim).await {
                ClaimResult::Claimed(_) => "won",
                ClaimResult::Lost => "lost",
                ClaimResult::Failed(e) => panic!("round {round}: claim failed: {e}"),
            };
            writeln!(results, "{round} {outcome}").unwrap();
        }
        fs::write(dir.join(format!("results-{index}.txt")), results).unwrap();
    });
}

/// Waits until every racer has reached `round`, each marking its arrival
/// with a file.
async fn barrier(dir: &Path, round: usize, index: usize) {
    let marker = |i: usize| dir.join("barrier").join(format!("{round}-{i}"));
    fs::write(marker(index), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..PROCESSES).any(|i| !marker(i).exists()) {
        assert!(
            Instant::now() < deadline,
            "round {round}: other racers did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
