//! `ehcp demo`: several consumers in one process share a consumer group
//! through the selected store, balance its partitions and checkpoint
//! synthetic progress, until the load is spread evenly.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventhub_checkpoints::{
    Checkpoint, CheckpointStore, LoadBalancer, LoadBalancerOptions, LoadBalancingStrategy, Offset, OwnerId,
    PartitionId, Scope, SystemClock,
};

use crate::error::CliError;
use crate::output::{partition_order, write_table};

/// What the demo runs.
pub struct DemoSettings {
    pub consumers: usize,
    pub partitions: u32,
    pub limit: Duration,
    pub strategy: LoadBalancingStrategy,
}

/// How long the spread must hold before the demo calls it converged.
const STABLE_FOR: Duration = Duration::from_secs(3);

/// What every consumer reports, shared with the display.
#[derive(Clone, Default)]
struct Board {
    /// Partitions each consumer believes it holds.
    held: BTreeMap<OwnerId, BTreeSet<PartitionId>>,
    /// Last sequence number checkpointed per partition.
    sequence: BTreeMap<PartitionId, i64>,
    checkpoints: u64,
    ownership_changes: u64,
    errors: u64,
    last_change: Option<Instant>,
}

impl Board {
    /// Every partition held by exactly one consumer, and counts within one
    /// of each other.
    fn balanced(&self, partitions: usize) -> bool {
        let mut seen = BTreeSet::new();
        let held_once = self.held.values().flatten().all(|p| seen.insert(p.clone()));
        let counts: Vec<usize> = self.held.values().map(BTreeSet::len).collect();
        let spread = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0);
        held_once && seen.len() == partitions && spread <= 1
    }

    fn owner_of(&self, partition: &PartitionId) -> Option<&OwnerId> {
        self.held
            .iter()
            .find(|(_, set)| set.contains(partition))
            .map(|(owner, _)| owner)
    }
}

pub async fn run(store: CheckpointStore, scope: Scope, settings: DemoSettings) -> Result<(), CliError> {
    if settings.consumers == 0 || settings.partitions == 0 {
        return Err(CliError::Usage(
            "--consumers and --partitions must be at least 1".into(),
        ));
    }
    let partitions: Vec<PartitionId> = (0..settings.partitions).map(PartitionId::from).collect();
    let options = LoadBalancerOptions {
        strategy: settings.strategy,
        ownership_expiration: Duration::from_secs(10),
        update_interval: Duration::from_secs(1),
        jitter: Duration::from_millis(250),
        seed: None,
    };
    let board = Arc::new(Mutex::new(Board::default()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut consumers = Vec::new();
    for i in 1..=settings.consumers {
        let owner = OwnerId::new(format!("consumer-{i}"))?;
        board
            .lock()
            .expect("board lock")
            .held
            .insert(owner.clone(), BTreeSet::new());
        let balancer = LoadBalancer::new(
            store.clone(),
            scope.clone(),
            owner,
            partitions.clone(),
            options.clone(),
            Arc::new(SystemClock),
        );
        consumers.push(tokio::spawn(consume(
            balancer,
            store.clone(),
            board.clone(),
            stopped.clone(),
        )));
    }

    let terminal = std::io::stdout().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(1);
    let mut assignment = BTreeMap::new();
    let converged_after = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let view = board.lock().expect("board lock");
        let balanced = view.balanced(partitions.len());
        let quiet_for = view.last_change.map_or(Duration::ZERO, |t| t.elapsed());
        if terminal {
            draw(&view, &partitions, &scope, started.elapsed());
        } else if last_line.elapsed() >= Duration::from_secs(1) {
            let held: usize = view.held.values().map(BTreeSet::len).sum();
            println!(
                "{:>5.1}s  {held}/{} partitions held, {} checkpoints, {} ownership changes",
                started.elapsed().as_secs_f64(),
                partitions.len(),
                view.checkpoints,
                view.ownership_changes
            );
            last_line = Instant::now();
        }
        if balanced && quiet_for >= STABLE_FOR {
            assignment = view.held.clone();
            break Some(started.elapsed() - quiet_for);
        }
        if started.elapsed() >= settings.limit {
            break None;
        }
    };

    // A watch, not a Notify: a consumer busy in a tick when this is sent
    // still sees it at its next wait.
    let _ = stop.send(true);
    for consumer in consumers {
        let _ = consumer.await;
    }
    let view = board.lock().expect("board lock").clone();
    summary(&view, &assignment, &store, &scope, converged_after).await?;
    match converged_after {
        Some(_) => Ok(()),
        None => Err(CliError::Unfinished(format!(
            "did not converge within {}s; try a longer --seconds",
            settings.limit.as_secs()
        ))),
    }
}

/// One consumer: balance, then checkpoint progress on what it holds, until
/// told to stop; then release everything so others can take over at once.
async fn consume(
    mut balancer: LoadBalancer,
    store: CheckpointStore,
    board: Arc<Mutex<Board>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let owner = balancer.owner_id().clone();
    while !*stopped.borrow_and_update() {
        let changes = balancer.tick().await;
        let resume = if changes.gained.is_empty() {
            BTreeMap::new()
        } else {
            // Resume gained partitions from their stored checkpoints, as a real consumer would.
            match store.list_checkpoints(balancer.scope()).await {
                Ok(listing) => listing
                    .items
                    .iter()
                    .filter_map(|c| Some((c.partition_id().clone(), c.sequence_number()?)))
                    .collect(),
                Err(_) => BTreeMap::new(),
            }
        };
        let owned: Vec<PartitionId> = balancer.owned().cloned().collect();
        let mut progress = Vec::new();
        {
            let mut view = board.lock().expect("board lock");
            view.errors += changes.errors.len() as u64;
            if !changes.gained.is_empty() || !changes.lost.is_empty() {
                view.ownership_changes += (changes.gained.len() + changes.lost.len()) as u64;
                view.last_change = Some(Instant::now());
            }
            for p in &changes.gained {
                if let Some(seq) = resume.get(p) {
                    view.sequence.insert(p.clone(), *seq);
                }
            }
            view.held.insert(owner.clone(), owned.iter().cloned().collect());
            for p in &owned {
                let next = view.sequence.get(p).copied().unwrap_or(-1) + 1 + rand::random_range(0..40);
                progress.push((p.clone(), next));
            }
        }
        for (partition, sequence_number) in progress {
            let checkpoint = Checkpoint::new(
                balancer.scope().clone(),
                partition.clone(),
                Some(Offset::from(sequence_number * 512)),
                Some(sequence_number),
            )
            .expect("offset and sequence number are set");
            let written = store.update_checkpoint(&checkpoint).await;
            let mut view = board.lock().expect("board lock");
            match written {
                Ok(()) => {
                    view.checkpoints += 1;
                    view.sequence.insert(partition, sequence_number);
                }
                Err(_) => view.errors += 1,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(balancer.next_delay()) => {}
            _ = stopped.changed() => break,
        }
    }
    balancer.release_all().await;
    board
        .lock()
        .expect("board lock")
        .held
        .insert(owner, BTreeSet::new());
}

fn draw(view: &Board, partitions: &[PartitionId], scope: &Scope, elapsed: Duration) {
    let mut out = Vec::new();
    let _ = write!(out, "\x1b[H\x1b[2J");
    let _ = writeln!(out, "ehcp demo — {scope} — {:.1}s\n", elapsed.as_secs_f64());
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|p| {
            vec![
                p.to_string(),
                view.owner_of(p).map_or("-".into(), ToString::to_string),
                view.sequence.get(p).map_or("-".into(), i64::to_string),
            ]
        })
        .collect();
    let _ = write_table(&mut out, &["PARTITION", "OWNER", "SEQUENCE"], &rows);
    let counts: Vec<String> = view
        .held
        .iter()
        .map(|(o, set)| format!("{o}: {}", set.len()))
        .collect();
    let _ = writeln!(out, "\n{}", counts.join("  "));
    let _ = std::io::stdout().lock().write_all(&out);
}

async fn summary(
    view: &Board,
    assignment: &BTreeMap<OwnerId, BTreeSet<PartitionId>>,
    store: &CheckpointStore,
    scope: &Scope,
    converged_after: Option<Duration>,
) -> Result<(), CliError> {
    println!();
    match converged_after {
        Some(after) => {
            println!(
                "converged after {:.1}s: every partition owned, loads within one",
                after.as_secs_f64()
            );
            for (owner, held) in assignment {
                let mut held: Vec<&PartitionId> = held.iter().collect();
                held.sort_by(|a, b| partition_order(a, b));
                let list: Vec<String> = held.iter().map(ToString::to_string).collect();
                println!("  {owner} owned {:>3}: {}", held.len(), list.join(" "));
            }
        }
        None => println!("not converged"),
    }
    println!(
        "{} checkpoints written, {} ownership changes, {} errors; partitions released on shutdown",
        view.checkpoints, view.ownership_changes, view.errors
    );
    let mut checkpoints = store.list_checkpoints(scope).await?.items;
    checkpoints.sort_by(|a, b| partition_order(a.partition_id(), b.partition_id()));
    let rows: Vec<Vec<String>> = checkpoints
        .iter()
        .map(|c| {
            vec![
                c.partition_id().to_string(),
                c.sequence_number().map_or("-".into(), |n| n.to_string()),
                c.offset().map_or("-".into(), ToString::to_string),
            ]
        })
        .collect();
    println!("\nstored checkpoints of {scope}:");
    write_table(
        &mut std::io::stdout().lock(),
        &["PARTITION", "SEQUENCE", "OFFSET"],
        &rows,
    )
    .map_err(|source| CliError::Io {
        what: "writing output".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use eventhub_checkpoints::{
        BackendError, BlobBackend, BlobItem, BlobProperties, InMemoryBackend, Metadata, WriteCondition,
    };

    use super::*;

    /// Listings take a while, so a consumer is busy inside its tick.
    #[derive(Debug)]
    struct SlowListings(InMemoryBackend);

    #[async_trait]
    impl BlobBackend for SlowListings {
        async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.0.list_blobs(prefix).await
        }
        async fn put_blob(
            &self,
            name: &str,
            metadata: &Metadata,
            condition: &WriteCondition,
        ) -> Result<BlobProperties, BackendError> {
            self.0.put_blob(name, metadata, condition).await
        }
        async fn set_metadata(
            &self,
            name: &str,
            metadata: &Metadata,
            condition: &WriteCondition,
        ) -> Result<BlobProperties, BackendError> {
            self.0.set_metadata(name, metadata, condition).await
        }
        async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
            self.0.delete_blob(name, condition).await
        }
    }

    /// Seen as a hung `ehcp demo` on a loaded machine: the stop was a
    /// `Notify::notify_waiters`, which only wakes consumers already waiting,
    /// so one busy in a tick at that moment never stopped.
    #[tokio::test]
    async fn a_stop_sent_while_a_consumer_is_busy_still_ends_it() {
        let store = CheckpointStore::new(Arc::new(SlowListings(InMemoryBackend::new())));
        let scope = Scope::new("demo.servicebus.windows.net", "demo", "$Default").unwrap();
        let options = LoadBalancerOptions {
            update_interval: Duration::from_secs(1),
            ..LoadBalancerOptions::default()
        };
        let balancer = LoadBalancer::new(
            store.clone(),
            scope,
            OwnerId::new("consumer-1").unwrap(),
            vec![PartitionId::from(0)],
            options,
            Arc::new(SystemClock),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let board = Arc::new(Mutex::new(Board::default()));
        let consumer = tokio::spawn(consume(balancer, store, board, stopped));
        // The consumer is now inside its first listing.
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the consumer ends after its current tick")
            .unwrap();
    }
}
