//! Two consumers share a consumer group through the in-memory backend: they
//! claim partitions, one renews and steals, both write checkpoints, and the
//! store lists what it holds.
//!
//! Run with `cargo run -p eventhub-checkpoints --example quickstart`.

use std::sync::Arc;

use eventhub_checkpoints::{
    Checkpoint, CheckpointStore, ClaimResult, InMemoryBackend, Offset, OwnerId, OwnershipClaim, PartitionId,
    Scope,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = CheckpointStore::new(Arc::new(InMemoryBackend::new()));
    let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
    let alice = OwnerId::new("alice")?;
    let bob = OwnerId::new("bob")?;

    // Alice claims all four partitions of a new consumer group.
    let claims =
        (0..4).map(|p| OwnershipClaim::new(scope.clone(), PartitionId::from(p), alice.clone(), None));
    for outcome in store.claim_ownership(claims).await {
        println!(
            "alice claims partition {}: {}",
            outcome.claim.partition_id,
            describe(&outcome.result)
        );
    }

    // Bob arrives, lists ownership and steals partitions 2 and 3 with their etags.
    let listed = store.list_ownership(&scope).await?.items;
    let steals = listed[2..]
        .iter()
        .map(|o| OwnershipClaim::from_listed(o, bob.clone()));
    for outcome in store.claim_ownership(steals).await {
        println!(
            "bob steals partition {}: {}",
            outcome.claim.partition_id,
            describe(&outcome.result)
        );
    }

    // Alice tries to renew partition 3 with the etag she saw before: too late.
    let stale = OwnershipClaim::from_listed(&listed[3], alice.clone());
    println!(
        "alice renews partition 3 with a stale etag: {}",
        describe(&store.claim(&stale).await)
    );

    // Each writes checkpoints for what it owns.
    for p in 0..4u32 {
        let sequence_number = i64::from(p) * 100 + 41;
        let offset = Offset::from(sequence_number * 512);
        let checkpoint = Checkpoint::new(
            scope.clone(),
            PartitionId::from(p),
            Some(offset),
            Some(sequence_number),
        )?;
        store.update_checkpoint(&checkpoint).await?;
    }

    println!("\npartition  owner  etag                  offset  sequence number");
    let checkpoints = store.list_checkpoints(&scope).await?.items;
    for (ownership, checkpoint) in store.list_ownership(&scope).await?.items.iter().zip(&checkpoints) {
        println!(
            "{:<10} {:<6} {:<21} {:<7} {}",
            ownership.partition_id,
            ownership.owner_id.as_ref().map_or("-", OwnerId::as_str),
            ownership.etag,
            checkpoint.offset().map_or("-", Offset::as_str),
            checkpoint.sequence_number().map_or("-".into(), |n| n.to_string()),
        );
    }
    Ok(())
}

fn describe(result: &ClaimResult) -> String {
    match result {
        ClaimResult::Claimed(o) => format!("claimed (etag {})", o.etag),
        ClaimResult::Lost => "lost to another consumer".into(),
        ClaimResult::Failed(e) => format!("failed: {e}"),
    }
}
