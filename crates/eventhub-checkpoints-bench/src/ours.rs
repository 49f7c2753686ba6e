//! Our store: [`CheckpointStore`] over [`AzureBlobBackend`] with SharedKey,
//! default options but for the API version (and the page size of workload 3).

use std::sync::Arc;

use eventhub_checkpoints::{
    Checkpoint, CheckpointStore, ClaimResult, Offset, OwnerId, OwnershipClaim, PartitionId, StoreOptions,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};

use crate::Result;
use crate::cpu::measure;
use crate::raw::Raw;
use crate::workloads::{self, Params, Run};

/// A store on `container`, built as a user would build it.
pub fn store(raw: &Raw, container: &str, page_size: u32) -> Result<CheckpointStore> {
    let options = AzureBlobOptions {
        api_version: raw.api_version.parse()?,
        max_concurrent_requests: raw.concurrency,
        list_page_size: page_size,
        ..AzureBlobOptions::default()
    };
    let credential = Credential::shared_key(raw.account.clone(), &raw.key_base64)?;
    let backend = AzureBlobBackend::new(&raw.endpoint, container, credential, options)?;
    Ok(CheckpointStore::with_options(
        Arc::new(backend),
        StoreOptions {
            claim_concurrency: raw.concurrency,
        },
    ))
}

/// Workload 1 through `store`: claim every partition (no etag), then renew
/// every claim with the etag it got; `claim_concurrency` at a time.
pub async fn claim_renew(store: &CheckpointStore, params: &Params) -> Result<Run> {
    let scope = workloads::scope();
    let owner = OwnerId::new(workloads::OWNER)?;
    let n = params.claim_partitions;
    let (result, span) = measure(async {
        let claims =
            (0..n).map(|p| OwnershipClaim::new(scope.clone(), PartitionId::from(p), owner.clone(), None));
        let claimed = store.claim_ownership(claims).await;
        let renewals = claimed
            .into_iter()
            .map(|outcome| match outcome.result {
                ClaimResult::Claimed(ownership) => Ok(OwnershipClaim::from_listed(&ownership, owner.clone())),
                other => Err(format!("claim of {}: {other:?}", outcome.claim.partition_id)),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for outcome in store.claim_ownership(renewals).await {
            if outcome.result.claimed().is_none() {
                return Err(format!(
                    "renewal of {}: {:?}",
                    outcome.claim.partition_id, outcome.result
                ));
            }
        }
        Ok(())
    })
    .await;
    result?;
    Ok(Run {
        span,
        ops: 2 * u64::from(n),
        requests: None,
    })
}

/// Workload 2 through `store`: one task per partition, each making its
/// updates one after the other.
pub async fn checkpoints(store: &CheckpointStore, params: &Params) -> Result<Run> {
    let (partitions, updates) = (params.checkpoint_partitions, params.checkpoint_updates);
    let (result, span) = measure(async {
        let tasks: Vec<_> = (0..partitions)
            .map(|p| {
                let store = store.clone();
                tokio::spawn(async move {
                    let scope = workloads::scope();
                    for u in 0..updates {
                        let checkpoint = Checkpoint::new(
                            scope.clone(),
                            PartitionId::from(p),
                            Some(Offset::from(i64::from(u) * 100)),
                            Some(i64::from(u)),
                        )?;
                        store.update_checkpoint(&checkpoint).await?;
                    }
                    Ok::<(), crate::BenchError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok::<(), crate::BenchError>(())
    })
    .await;
    result?;
    Ok(Run {
        span,
        ops: u64::from(params.checkpoint_partitions) * u64::from(params.checkpoint_updates),
        requests: None,
    })
}

/// Workload 3 through `store`: `list_repeats` listings, one after the other.
pub async fn list(store: &CheckpointStore, params: &Params) -> Result<Run> {
    let scope = workloads::scope();
    let (result, span) = measure(async {
        for _ in 0..params.list_repeats {
            let listing = store.list_checkpoints(&scope).await?;
            if listing.items.len() != params.list_count as usize || !listing.skipped.is_empty() {
                return Err(format!(
                    "listed {} checkpoints ({} skipped), expected {}",
                    listing.items.len(),
                    listing.skipped.len(),
                    params.list_count
                )
                .into());
            }
        }
        Ok::<(), crate::BenchError>(())
    })
    .await;
    result?;
    Ok(Run {
        span,
        ops: u64::from(params.list_repeats),
        requests: None,
    })
}
