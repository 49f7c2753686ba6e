//! What the workloads do, shared by every client: sizes, names, results.

use std::collections::BTreeMap;

use eventhub_checkpoints::format::{self, BlobKind};
use eventhub_checkpoints::{PartitionId, Scope};

use crate::cpu::Span;

/// The namespace of the benchmark's scope.
pub const NAMESPACE: &str = "bench.servicebus.windows.net";
/// The event hub of the benchmark's scope.
pub const EVENT_HUB: &str = "hub";
/// The consumer group of the benchmark's scope (lower-cased in blob names).
pub const CONSUMER_GROUP: &str = "$Default";
/// The owner id every claim writes.
pub const OWNER: &str = "bench-owner";

/// Sizes of the workloads.
#[derive(Clone, Debug)]
pub struct Params {
    /// Workload 1: partitions claimed, then renewed.
    pub claim_partitions: u32,
    /// Workload 2: partitions updated concurrently.
    pub checkpoint_partitions: u32,
    /// Workload 2: updates per partition, in sequence.
    pub checkpoint_updates: u32,
    /// Workload 3: checkpoints in the container listed.
    pub list_count: u32,
    /// Workload 3: listings per run, one after the other.
    pub list_repeats: u32,
    /// Workload 3: the List Blobs page sizes to run with.
    pub page_sizes: Vec<u32>,
    /// Workload 4: how many times each in-memory workload is repeated per run.
    pub memory_iterations: u32,
}

/// One measured run of one workload by one client.
#[derive(Clone, Debug)]
pub struct Run {
    /// Wall and CPU time of the workload alone.
    pub span: Span,
    /// Operations done (claims + renewals, checkpoint updates, listings).
    pub ops: u64,
    /// HTTP answers by `"<method> <status>"`, when they were counted.
    pub requests: Option<BTreeMap<String, u64>>,
}

/// The scope every workload works in.
pub fn scope() -> Scope {
    Scope::new(NAMESPACE, EVENT_HUB, CONSUMER_GROUP).expect("a valid scope")
}

/// The name of partition `p`'s ownership blob.
pub fn ownership_blob(p: u32) -> String {
    format::blob_name(&scope(), BlobKind::Ownership, &PartitionId::from(p))
}

/// The name of partition `p`'s checkpoint blob.
pub fn checkpoint_blob(p: u32) -> String {
    format::blob_name(&scope(), BlobKind::Checkpoint, &PartitionId::from(p))
}

/// The listing prefix of the checkpoints.
pub fn checkpoint_prefix() -> String {
    format::prefix(&scope(), BlobKind::Checkpoint)
}
