//! An `EventProcessor` of the official Event Hubs SDK with checkpoints and
//! partition ownership in Azure Blob Storage, through `SdkCheckpointStore`.
//!
//! It reads every partition this instance wins, prints each event and
//! checkpoints after it, for `RUN_SECONDS` (default 60) or until Ctrl-C.
//! Start several instances to watch them share the partitions.
//!
//! Environment:
//!
//! - The storage account, either `AZURE_STORAGE_CONNECTION_STRING` (with
//!   `AccountKey` or `SharedAccessSignature`) or `AZURE_STORAGE_ACCOUNT_URL`
//!   (e.g. `https://contoso.blob.core.windows.net`, signed in with `az login`
//!   or `azd auth login`; the identity needs Storage Blob Data Contributor).
//! - `AZURE_STORAGE_CONTAINER`: the container (default `checkpoints`; created
//!   if missing).
//! - The event hub, either `EVENTHUBS_CONNECTION_STRING` (a shared access
//!   policy's connection string) or `EVENTHUBS_HOST` (e.g.
//!   `contoso.servicebus.windows.net`, signed in with `az login` or
//!   `azd auth login`).
//! - `EVENTHUB_NAME`: the event hub (required unless the connection string
//!   has an `EntityPath`).
//! - `EVENTHUB_CONSUMER_GROUP` (default `$Default`), `RUN_SECONDS`.
//!
//! Without one of the storage variables and one of the event hub variables
//! it prints this usage and exits 0.
//!
//! ```text
//! cargo run --example processor --manifest-path crates/eventhub-checkpoints-sdk/Cargo.toml
//! ```

use std::sync::Arc;
use std::time::Duration;

use azure_messaging_eventhubs::error::ErrorKind;
use azure_messaging_eventhubs::processor::PartitionClient;
use azure_messaging_eventhubs::{ConsumerClient, EventProcessor};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_sdk::{SdkCheckpointStore, TokenCredentialSource};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

const USAGE: &str = "\
usage: (AZURE_STORAGE_CONNECTION_STRING=... | AZURE_STORAGE_ACCOUNT_URL=https://<account>.blob.core.windows.net) \\
       [AZURE_STORAGE_CONTAINER=checkpoints] \\
       (EVENTHUBS_CONNECTION_STRING=... | EVENTHUBS_HOST=<namespace>.servicebus.windows.net) \\
       [EVENTHUB_NAME=...] [EVENTHUB_CONSUMER_GROUP=$Default] [RUN_SECONDS=60] \\
       cargo run --example processor --manifest-path crates/eventhub-checkpoints-sdk/Cargo.toml";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let has_event_hub = env("EVENTHUBS_CONNECTION_STRING").is_some() || env("EVENTHUBS_HOST").is_some();
    let storage = env("AZURE_STORAGE_CONNECTION_STRING");
    let account_url = env("AZURE_STORAGE_ACCOUNT_URL");
    if !has_event_hub || (storage.is_none() && account_url.is_none()) {
        println!("{USAGE}");
        return Ok(());
    }
    let container = env("AZURE_STORAGE_CONTAINER").unwrap_or_else(|| "checkpoints".into());
    let event_hub = env("EVENTHUB_NAME");
    let consumer_group = env("EVENTHUB_CONSUMER_GROUP").unwrap_or_else(|| "$Default".into());
    let run_for = Duration::from_secs(env("RUN_SECONDS").map_or(Ok(60), |s| s.parse())?);

    // The checkpoint store. `SdkCheckpointStore::from_connection_string` and
    // `from_token_credential` are the one-liners when the container exists;
    // here it is created first.
    let options = AzureBlobOptions::default();
    let backend = match (storage, account_url) {
        (Some(connection_string), _) => {
            AzureBlobBackend::from_connection_string(&connection_string, &container, options)?
        }
        (None, Some(account_url)) => {
            let credential = azure_identity::DeveloperToolsCredential::new(None)?;
            let tokens = Credential::token_source(Arc::new(TokenCredentialSource::new(credential)));
            AzureBlobBackend::new(&account_url, &container, tokens, options)?
        }
        (None, None) => unreachable!("checked above"),
    };
    if backend.create_container().await? {
        println!("created container {container}");
    }
    let store = SdkCheckpointStore::from_backend(Arc::new(backend));

    // The consumer, then the processor over our store.
    let builder = ConsumerClient::builder().with_consumer_group(consumer_group);
    let consumer = match env("EVENTHUBS_CONNECTION_STRING") {
        Some(connection_string) => {
            builder
                .open_with_connection_string(&connection_string, event_hub.as_deref())
                .await?
        }
        None => {
            let host = env("EVENTHUBS_HOST").expect("checked above");
            let event_hub = event_hub.ok_or("EVENTHUB_NAME is required with EVENTHUBS_HOST")?;
            let credential = azure_identity::DeveloperToolsCredential::new(None)?;
            builder.open(&host, event_hub, credential).await?
        }
    };
    let processor = EventProcessor::builder().build(consumer, Arc::new(store)).await?;

    let running = tokio::spawn({
        let processor = processor.clone();
        async move { processor.run().await }
    });

    // The processor hands out a client per partition this instance owns;
    // the partitions are read concurrently on this task (their event
    // streams are not `Send`).
    let mut partitions = FuturesUnordered::new();
    let deadline = tokio::time::sleep(run_for);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = processor.next_partition_client() => match next {
                Ok(partition) => {
                    println!("now processing partition {}", partition.get_partition_id());
                    partitions.push(process(partition));
                }
                Err(error) => {
                    eprintln!("no more partitions: {error}");
                    break;
                }
            },
            Some(()) = partitions.next(), if !partitions.is_empty() => {}
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("stopping");
    drop(partitions);
    // The processor notices the shutdown after its current update interval
    // (30 s by default); its ownerships then expire and other instances take
    // the partitions over.
    processor.shutdown().await?;
    running.await??;
    Ok(())
}

/// Prints each event of one partition and checkpoints after it, until the
/// partition moves to another instance.
async fn process(partition: Arc<PartitionClient>) {
    let id = partition.get_partition_id().to_owned();
    let mut events = partition.stream_events();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                println!(
                    "partition {id}: sequence number {:?}, offset {:?}, {} bytes",
                    event.sequence_number(),
                    event.offset(),
                    event.event_data().body().map_or(0, <[u8]>::len),
                );
                if let Err(error) = partition.update_checkpoint(&event).await {
                    eprintln!("partition {id}: checkpoint failed: {error}");
                }
            }
            Err(error) if matches!(error.kind, ErrorKind::ConsumerDisconnected(_)) => {
                println!("partition {id} moved to another instance");
                return;
            }
            Err(error) => {
                eprintln!("partition {id}: {error}");
                return;
            }
        }
    }
}
