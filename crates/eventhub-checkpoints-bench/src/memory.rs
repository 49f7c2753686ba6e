//! Workload 4: the same three workloads on [`InMemoryBackend`] (the store's
//! own per-operation cost, no network), and a baseline doing the bare map
//! operation each store operation stands for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eventhub_checkpoints::{Checkpoint, CheckpointStore, InMemoryBackend, Offset, PartitionId};
use futures::StreamExt as _;

use crate::cpu::Span;
use crate::workloads::{self, Params, Run};
use crate::{Result, ours};

/// Which in-memory workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Claim every partition, then renew every claim.
    ClaimRenew,
    /// Concurrent partitions, sequential checkpoint updates.
    Checkpoints,
    /// Repeated listings of the checkpoints.
    List,
}

fn store() -> CheckpointStore {
    CheckpointStore::new(Arc::new(InMemoryBackend::new()))
}

/// The store over a fresh [`InMemoryBackend`], `memory_iterations` times;
/// spans and operations summed.
pub async fn ours(workload: Workload, params: &Params) -> Result<Run> {
    let mut total = Run {
        span: Span::default(),
        ops: 0,
        requests: None,
    };
    for _ in 0..params.memory_iterations {
        let store = store();
        let run = match workload {
            Workload::ClaimRenew => ours::claim_renew(&store, params).await?,
            Workload::Checkpoints => ours::checkpoints(&store, params).await?,
            Workload::List => {
                fill(&store, params.list_count).await?;
                ours::list(&store, params).await?
            }
        };
        total.span = total.span.plus(run.span);
        total.ops += run.ops;
    }
    Ok(total)
}

/// Writes `count` checkpoints through the store (untimed set-up).
async fn fill(store: &CheckpointStore, count: u32) -> Result<()> {
    let scope = workloads::scope();
    let results: Vec<_> = futures::stream::iter(0..count)
        .map(|p| {
            let scope = scope.clone();
            async move {
                let checkpoint = Checkpoint::new(
                    scope,
                    PartitionId::from(p),
                    Some(Offset::from(i64::from(p) * 100)),
                    Some(i64::from(p)),
                )?;
                store.update_checkpoint(&checkpoint).await?;
                Ok::<(), crate::BenchError>(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A blob of the baseline: what a bare map keeps per name.
#[derive(Clone)]
struct Entry {
    owner_or_offset: String,
    sequence: i64,
    etag: u64,
}

/// The baseline: the same operations as direct operations on a
/// `Mutex<BTreeMap>` with names built ahead (no async, no formatting, no
/// metadata, no validation), `memory_iterations` times.
pub fn baseline(workload: Workload, params: &Params) -> Result<Run> {
    let mut span = Span::default();
    let mut ops = 0;
    for _ in 0..params.memory_iterations {
        let map: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());
        let mut etag = 0u64;
        let one = match workload {
            Workload::ClaimRenew => {
                let names: Vec<String> = (0..params.claim_partitions)
                    .map(workloads::ownership_blob)
                    .collect();
                let ((), s) = block_measure(|| {
                    let mut etags = Vec::with_capacity(names.len());
                    for name in &names {
                        let mut map = map.lock().expect("not poisoned");
                        if map.contains_key(name) {
                            panic!("claimed twice");
                        }
                        etag += 1;
                        let entry = Entry {
                            owner_or_offset: workloads::OWNER.to_owned(),
                            sequence: 0,
                            etag,
                        };
                        map.insert(name.clone(), entry);
                        etags.push(etag);
                    }
                    for (name, seen) in names.iter().zip(etags) {
                        let mut map = map.lock().expect("not poisoned");
                        let entry = map.get_mut(name).expect("claimed");
                        assert_eq!(entry.etag, seen);
                        etag += 1;
                        entry.owner_or_offset = workloads::OWNER.to_owned();
                        entry.etag = etag;
                    }
                });
                ops += 2 * u64::from(params.claim_partitions);
                s
            }
            Workload::Checkpoints => {
                let names: Vec<String> = (0..params.checkpoint_partitions)
                    .map(workloads::checkpoint_blob)
                    .collect();
                let ((), s) = block_measure(|| {
                    for u in 0..params.checkpoint_updates {
                        for name in &names {
                            let mut map = map.lock().expect("not poisoned");
                            etag += 1;
                            let entry = Entry {
                                owner_or_offset: (i64::from(u) * 100).to_string(),
                                sequence: i64::from(u),
                                etag,
                            };
                            map.insert(name.clone(), entry);
                        }
                    }
                });
                ops += u64::from(params.checkpoint_partitions) * u64::from(params.checkpoint_updates);
                s
            }
            Workload::List => {
                {
                    let mut map = map.lock().expect("not poisoned");
                    for p in 0..params.list_count {
                        map.insert(
                            workloads::checkpoint_blob(p),
                            Entry {
                                owner_or_offset: (i64::from(p) * 100).to_string(),
                                sequence: i64::from(p),
                                etag: 0,
                            },
                        );
                    }
                }
                let prefix = workloads::checkpoint_prefix();
                let ((), s) = block_measure(|| {
                    for _ in 0..params.list_repeats {
                        let map = map.lock().expect("not poisoned");
                        let items: Vec<(String, Entry)> = map
                            .range(prefix.clone()..)
                            .take_while(|(name, _)| name.starts_with(&prefix))
                            .map(|(name, entry)| (name.clone(), entry.clone()))
                            .collect();
                        let sequences: i64 = items.iter().map(|(_, e)| e.sequence).sum();
                        assert_eq!(items.len(), params.list_count as usize);
                        std::hint::black_box((items, sequences));
                    }
                });
                ops += u64::from(params.list_repeats);
                s
            }
        };
        span = span.plus(one);
    }
    Ok(Run {
        span,
        ops,
        requests: None,
    })
}

fn block_measure<T>(work: impl FnOnce() -> T) -> (T, Span) {
    let cpu0 = crate::cpu::CpuTime::now();
    let start = std::time::Instant::now();
    let out = std::hint::black_box(work());
    let wall = start.elapsed();
    (
        out,
        Span {
            wall,
            cpu: crate::cpu::CpuTime::now().since(cpu0),
            server: None,
        },
    )
}
