//! What each command does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, SystemTime};

use eventhub_checkpoints::{
    Checkpoint, CheckpointStore, ClaimResult, ETag, Offset, OwnerId, Ownership, OwnershipClaim, PartitionId,
    Scope, SkippedBlob, StoredCheckpoint,
};
use serde::Serialize;

use crate::cli::{CheckpointsCommand, Cli, Command, ContainerCommand, OutputFormat, OwnershipCommand};
use crate::confirm::confirm;
use crate::error::CliError;
use crate::output::{CheckpointRecord, OwnershipRecord, Retarget, age, human, partition_order, write_table};
use crate::target::{self, Backend};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    // Check the scope before touching any store, so a usage error changes nothing.
    let needs_scope = !matches!(
        cli.command,
        Command::Container(_)
            | Command::Demo { .. }
            | Command::Checkpoints(CheckpointsCommand::Import { .. })
    );
    if needs_scope {
        target::scope(&cli.scope)?;
    }
    check_names(&cli.command)?;
    let reads_only = matches!(
        cli.command,
        Command::Status { .. }
            | Command::Checkpoints(CheckpointsCommand::List | CheckpointsCommand::Export { .. })
            | Command::Ownership(OwnershipCommand::List)
    );
    let backend = Backend::open(&cli.store, !reads_only)?;
    let store = backend.store();
    let out = Output { format: cli.output };
    match &cli.command {
        Command::Status { expiration } => {
            status(&store, &target::scope(&cli.scope)?, *expiration, &out).await
        }
        Command::Checkpoints(command) => checkpoints(&store, &cli, command, &out).await,
        Command::Ownership(command) => ownership(&store, &target::scope(&cli.scope)?, command, &out).await,
        Command::Container(ContainerCommand::Create) => create_container(&backend, &cli).await,
        Command::Demo {
            consumers,
            partitions,
            seconds,
            greedy,
            yes,
        } => {
            let scope = target::scope_with_defaults(&cli.scope, "demo.servicebus.windows.net", "demo")?;
            if cli.scope.namespace.is_some() || cli.scope.eventhub.is_some() {
                confirm_demo_scope(&store, &scope, *yes).await?;
            }
            let settings = crate::demo::DemoSettings {
                consumers: usize::from(*consumers),
                partitions: *partitions,
                limit: std::time::Duration::from_secs(*seconds),
                strategy: if *greedy {
                    eventhub_checkpoints::LoadBalancingStrategy::Greedy
                } else {
                    eventhub_checkpoints::LoadBalancingStrategy::Balanced
                },
            };
            crate::demo::run(store, scope, settings).await
        }
    }
}

struct Output {
    format: OutputFormat,
}

impl Output {
    fn json(&self, value: &impl Serialize) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value).map_err(|e| io_error("writing JSON", e.into()))?;
        writeln!(stdout).map_err(|e| io_error("writing JSON", e))
    }

    fn table(&self, headers: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
        write_table(&mut std::io::stdout().lock(), headers, rows).map_err(|e| io_error("writing output", e))
    }

    /// A one-line confirmation of a change, on stderr for JSON output so
    /// stdout stays parseable.
    fn note(&self, message: &str) {
        match self.format {
            OutputFormat::Table => println!("{message}"),
            OutputFormat::Json => eprintln!("{message}"),
        }
    }
}

fn io_error(what: &str, source: std::io::Error) -> CliError {
    CliError::Io {
        what: what.to_owned(),
        source,
    }
}

fn report_skipped(skipped: &[SkippedBlob]) {
    for blob in skipped {
        eprintln!("ehcp: warning: skipped blob '{}': {}", blob.name, blob.reason);
    }
}

#[derive(Serialize)]
struct StatusRow {
    partition_id: String,
    owner_id: String,
    ownership_age_seconds: Option<u64>,
    expired: Option<bool>,
    etag: Option<String>,
    offset: Option<String>,
    sequence_number: Option<i64>,
    checkpoint_age_seconds: Option<u64>,
}

async fn status(
    store: &CheckpointStore,
    scope: &Scope,
    expiration: Duration,
    out: &Output,
) -> Result<(), CliError> {
    let ownership = store.list_ownership(scope).await?;
    let checkpoints = store.list_stored_checkpoints(scope).await?;
    report_skipped(&ownership.skipped);
    report_skipped(&checkpoints.skipped);
    let now = SystemTime::now();
    let owners: BTreeMap<&PartitionId, &Ownership> =
        ownership.items.iter().map(|o| (&o.partition_id, o)).collect();
    let stored: BTreeMap<&PartitionId, &StoredCheckpoint> = checkpoints
        .items
        .iter()
        .map(|c| (c.checkpoint.partition_id(), c))
        .collect();
    let mut partitions: Vec<&PartitionId> = owners
        .keys()
        .chain(stored.keys())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    partitions.sort_by(|a, b| partition_order(a, b));
    let rows: Vec<StatusRow> = partitions
        .into_iter()
        .map(|p| {
            let o = owners.get(p);
            let c = stored.get(p);
            let ownership_age = o.map(|o| age(now, o.last_modified));
            StatusRow {
                partition_id: p.to_string(),
                owner_id: o
                    .and_then(|o| o.owner_id.as_ref())
                    .map_or("", OwnerId::as_str)
                    .to_owned(),
                ownership_age_seconds: ownership_age.map(|a| a.as_secs()),
                expired: ownership_age.map(|a| a >= expiration),
                etag: o.map(|o| o.etag.to_string()),
                offset: c
                    .and_then(|c| c.checkpoint.offset())
                    .map(|o| o.as_str().to_owned()),
                sequence_number: c.and_then(|c| c.checkpoint.sequence_number()),
                checkpoint_age_seconds: c.map(|c| age(now, c.last_modified).as_secs()),
            }
        })
        .collect();
    if out.format == OutputFormat::Json {
        return out.json(&rows);
    }
    let dash = || "-".to_owned();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.partition_id.clone(),
                if r.owner_id.is_empty() {
                    if r.etag.is_some() {
                        "(released)".into()
                    } else {
                        dash()
                    }
                } else {
                    r.owner_id.clone()
                },
                r.ownership_age_seconds
                    .map_or_else(dash, |s| human(Duration::from_secs(s))),
                match r.expired {
                    Some(true) => "expired".into(),
                    Some(false) => "active".into(),
                    None => dash(),
                },
                r.offset.clone().unwrap_or_else(dash),
                r.sequence_number.map_or_else(dash, |n| n.to_string()),
                r.checkpoint_age_seconds
                    .map_or_else(dash, |s| human(Duration::from_secs(s))),
            ]
        })
        .collect();
    println!("{scope}");
    if table.is_empty() {
        println!("no ownership or checkpoints recorded");
        return Ok(());
    }
    out.table(
        &[
            "PARTITION",
            "OWNER",
            "OWNED FOR",
            "OWNERSHIP",
            "OFFSET",
            "SEQUENCE",
            "CHECKPOINTED",
        ],
        &table,
    )
}

async fn checkpoints(
    store: &CheckpointStore,
    cli: &Cli,
    command: &CheckpointsCommand,
    out: &Output,
) -> Result<(), CliError> {
    match command {
        CheckpointsCommand::List => {
            let scope = target::scope(&cli.scope)?;
            let listing = store.list_stored_checkpoints(&scope).await?;
            report_skipped(&listing.skipped);
            let mut items = listing.items;
            items.sort_by(|a, b| partition_order(a.checkpoint.partition_id(), b.checkpoint.partition_id()));
            if out.format == OutputFormat::Json {
                let records: Vec<CheckpointRecord> = items.iter().map(|c| (&c.checkpoint).into()).collect();
                return out.json(&records);
            }
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|c| {
                    vec![
                        c.checkpoint.partition_id().to_string(),
                        c.checkpoint.offset().map_or("-".into(), |o| o.to_string()),
                        c.checkpoint
                            .sequence_number()
                            .map_or("-".into(), |n| n.to_string()),
                        human(age(now, c.last_modified)),
                    ]
                })
                .collect();
            out.table(&["PARTITION", "OFFSET", "SEQUENCE", "UPDATED AGO"], &rows)
        }
        CheckpointsCommand::Set {
            partition,
            offset,
            sequence_number,
            allow_missing_sequence_number,
            yes,
        } => {
            let scope = target::scope(&cli.scope)?;
            let partition = PartitionId::new(partition.as_str())?;
            let offset = offset.as_deref().map(Offset::new).transpose()?;
            let checkpoint = Checkpoint::new(scope.clone(), partition.clone(), offset, *sequence_number)?;
            if sequence_number.is_none() && !allow_missing_sequence_number {
                return Err(CliError::Usage(MISSING_SEQUENCE_NUMBER.into()));
            }
            let existing = store.list_checkpoints(&scope).await?.items;
            if let Some(current) = existing
                .iter()
                .find(|c| same_partition(c.partition_id(), &partition))
            {
                confirm(
                    &format!(
                        "Replace the checkpoint of partition {partition} ({}) in {scope}?",
                        describe(current)
                    ),
                    *yes,
                )?;
            }
            store.update_checkpoint(&checkpoint).await?;
            out.note(&format!(
                "partition {partition}: checkpoint set to {}",
                describe(&checkpoint)
            ));
            Ok(())
        }
        CheckpointsCommand::Delete { partition, all, yes } => {
            let scope = target::scope(&cli.scope)?;
            // With --all, also the checkpoint blobs a broken peer wrote that
            // cannot be read: deleting them is how they are repaired.
            let (targets, unreadable): (Vec<PartitionId>, Vec<SkippedBlob>) = if *all {
                let listing = store.list_checkpoints(&scope).await?;
                report_skipped(&listing.skipped);
                let targets = listing.items.iter().map(|c| c.partition_id().clone()).collect();
                (targets, listing.skipped)
            } else {
                (
                    vec![PartitionId::new(partition.as_deref().unwrap_or_default())?],
                    Vec::new(),
                )
            };
            if targets.is_empty() && unreadable.is_empty() {
                out.note(&format!("no checkpoints in {scope}"));
                return Ok(());
            }
            let question = if *all {
                let unreadable_part = if unreadable.is_empty() {
                    String::new()
                } else {
                    format!(" and {} unreadable checkpoint blob(s)", unreadable.len())
                };
                format!(
                    "Delete all {} checkpoints{unreadable_part} of {scope}?",
                    targets.len()
                )
            } else {
                format!("Delete the checkpoint of partition {} in {scope}?", targets[0])
            };
            confirm(&question, *yes)?;
            let mut deleted = 0;
            for blob in &unreadable {
                let unconditional = eventhub_checkpoints::WriteCondition::Unconditional;
                match store.backend().delete_blob(&blob.name, &unconditional).await {
                    Ok(()) => out.note(&format!("deleted unreadable blob '{}'", blob.name)),
                    Err(e) if e.kind() == eventhub_checkpoints::BackendErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for partition in &targets {
                if store.delete_checkpoint(&scope, partition).await? {
                    deleted += 1;
                } else if !*all {
                    out.note(&format!("partition {partition} has no checkpoint"));
                    return Ok(());
                }
            }
            out.note(&format!(
                "deleted {deleted} checkpoint{}",
                if deleted == 1 { "" } else { "s" }
            ));
            Ok(())
        }
        CheckpointsCommand::Export { file, allow_skipped } => {
            let scope = target::scope(&cli.scope)?;
            let listing = store.list_checkpoints(&scope).await?;
            report_skipped(&listing.skipped);
            if !listing.skipped.is_empty() && !allow_skipped {
                return Err(CliError::Unfinished(format!(
                    "{} checkpoint blob(s) of {scope} could not be read (see the warnings) and would be \
                     missing from the export; nothing was written. Pass --allow-skipped to export the rest",
                    listing.skipped.len()
                )));
            }
            let mut items = listing.items;
            items.sort_by(|a, b| partition_order(a.partition_id(), b.partition_id()));
            let mut text = String::new();
            for checkpoint in &items {
                let line = serde_json::to_string(&CheckpointRecord::from(checkpoint))
                    .map_err(|e| io_error("encoding a checkpoint", e.into()))?;
                text.push_str(&line);
                text.push('\n');
            }
            match file {
                Some(path) => {
                    std::fs::write(path, text)
                        .map_err(|e| io_error(&format!("writing {}", path.display()), e))?;
                    eprintln!("exported {} checkpoints to {}", items.len(), path.display());
                }
                None => std::io::stdout()
                    .lock()
                    .write_all(text.as_bytes())
                    .map_err(|e| io_error("writing output", e))?,
            }
            Ok(())
        }
        CheckpointsCommand::Import {
            file,
            to_consumer_group,
            allow_missing_sequence_number,
            yes,
        } => {
            let consumer_group = match (cli.scope.consumer_group.as_deref(), to_consumer_group.as_deref()) {
                (Some(a), Some(b)) if a != b => {
                    return Err(CliError::Usage(format!(
                        "--consumer-group {a:?} and --to-consumer-group {b:?} disagree; give one"
                    )));
                }
                (a, b) => b.or(a),
            };
            let to = Retarget {
                namespace: cli.scope.namespace.as_deref(),
                eventhub: cli.scope.eventhub.as_deref(),
                consumer_group,
            };
            import(
                store,
                file.as_deref(),
                &to,
                *allow_missing_sequence_number,
                *yes,
                out,
            )
            .await
        }
    }
}

/// Checks the partition ids, owner ids, offsets and etags a command was
/// given, before any store is opened (or created).
fn check_names(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Checkpoints(CheckpointsCommand::Set {
            partition, offset, ..
        }) => {
            PartitionId::new(partition.as_str())?;
            offset.as_deref().map(Offset::new).transpose()?;
        }
        Command::Checkpoints(CheckpointsCommand::Delete {
            partition: Some(partition),
            ..
        })
        | Command::Ownership(OwnershipCommand::Release { partition, .. }) => {
            PartitionId::new(partition.as_str())?;
        }
        Command::Ownership(OwnershipCommand::Claim {
            partition,
            owner,
            etag,
        }) => {
            PartitionId::new(partition.as_str())?;
            OwnerId::new(owner.as_str())?;
            etag.as_deref().map(ETag::new).transpose()?;
        }
        _ => {}
    }
    Ok(())
}

/// Whether two partition ids name the same blob (blob names are lower-cased).
fn same_partition(a: &PartitionId, b: &PartitionId) -> bool {
    a.as_str().to_lowercase() == b.as_str().to_lowercase()
}

/// Why a checkpoint without a sequence number needs a flag.
const MISSING_SEQUENCE_NUMBER: &str = "a checkpoint without a sequence number makes Python, JavaScript, Go and Java \
     consumers fail to list this consumer group's checkpoints; give --sequence-number, or \
     --allow-missing-sequence-number if only .NET and Rust consumers read it";

/// The demo claims every partition of its scope and writes checkpoints:
/// on a scope the operator named, ask first if anything is stored there.
async fn confirm_demo_scope(store: &CheckpointStore, scope: &Scope, yes: bool) -> Result<(), CliError> {
    let owned = store.list_ownership(scope).await?.items.len();
    let checkpointed = store.list_checkpoints(scope).await?.items.len();
    if owned + checkpointed == 0 {
        return Ok(());
    }
    confirm(
        &format!(
            "{scope} has {owned} ownership and {checkpointed} checkpoint blob(s); the demo takes its \
             partitions over and overwrites their checkpoints. Run it there?"
        ),
        yes,
    )
}

/// Reads every line first, so a malformed file changes nothing.
async fn import(
    store: &CheckpointStore,
    file: Option<&std::path::Path>,
    to: &Retarget<'_>,
    allow_missing_sequence_number: bool,
    yes: bool,
    out: &Output,
) -> Result<(), CliError> {
    let (reader, source): (Box<dyn BufRead>, String) = match file {
        Some(path) => {
            let f =
                std::fs::File::open(path).map_err(|e| io_error(&format!("opening {}", path.display()), e))?;
            (Box::new(BufReader::new(f)), path.display().to_string())
        }
        None => (Box::new(std::io::stdin().lock()), "stdin".to_owned()),
    };
    let mut checkpoints = Vec::new();
    let mut destinations = BTreeMap::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| io_error(&format!("reading {source}"), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |reason: String| CliError::Usage(format!("{source} line {}: {reason}", index + 1));
        let record: CheckpointRecord = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        let checkpoint = record.to_checkpoint(to).map_err(|e| at(e.to_string()))?;
        if checkpoint.sequence_number().is_none() && !allow_missing_sequence_number {
            return Err(at(
                MISSING_SEQUENCE_NUMBER.replace("give --sequence-number", "add one")
            ));
        }
        // Scopes compare case-insensitively, as their blob names do.
        let key = (
            checkpoint.scope().to_string().to_lowercase(),
            checkpoint.partition_id().as_str().to_lowercase(),
        );
        if let Some(first) = destinations.insert(key, index + 1) {
            return Err(at(format!(
                "partition {} of {} is also written by line {first}",
                checkpoint.partition_id(),
                checkpoint.scope()
            )));
        }
        checkpoints.push(checkpoint);
    }
    let scopes: BTreeSet<String> = checkpoints.iter().map(|c| c.scope().to_string()).collect();
    let mut overwritten = 0;
    let mut listed: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    for checkpoint in &checkpoints {
        let key = checkpoint.scope().to_string();
        if !listed.contains_key(&key) {
            listed.insert(
                key.clone(),
                store.list_checkpoints(checkpoint.scope()).await?.items,
            );
        }
        if listed[&key]
            .iter()
            .any(|c| same_partition(c.partition_id(), checkpoint.partition_id()))
        {
            overwritten += 1;
        }
    }
    if overwritten > 0 {
        confirm(
            &format!(
                "Importing replaces {overwritten} existing checkpoint(s) in {}.",
                scopes.into_iter().collect::<Vec<_>>().join(", ")
            ),
            yes,
        )?;
    }
    for checkpoint in &checkpoints {
        store.update_checkpoint(checkpoint).await?;
    }
    out.note(&format!(
        "imported {} checkpoints from {source}",
        checkpoints.len()
    ));
    Ok(())
}

fn describe(checkpoint: &Checkpoint) -> String {
    let offset = checkpoint.offset().map_or("none".into(), |o| o.to_string());
    let sequence = checkpoint
        .sequence_number()
        .map_or("none".into(), |n| n.to_string());
    format!("offset {offset}, sequence number {sequence}")
}

async fn ownership(
    store: &CheckpointStore,
    scope: &Scope,
    command: &OwnershipCommand,
    out: &Output,
) -> Result<(), CliError> {
    match command {
        OwnershipCommand::List => {
            let listing = store.list_ownership(scope).await?;
            report_skipped(&listing.skipped);
            let mut items = listing.items;
            items.sort_by(|a, b| partition_order(&a.partition_id, &b.partition_id));
            if out.format == OutputFormat::Json {
                let records: Vec<OwnershipRecord> = items.iter().map(OwnershipRecord::from).collect();
                return out.json(&records);
            }
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|o| {
                    vec![
                        o.partition_id.to_string(),
                        o.owner_id
                            .as_ref()
                            .map_or("(released)".into(), |id| id.to_string()),
                        o.etag.to_string(),
                        human(age(now, o.last_modified)),
                    ]
                })
                .collect();
            out.table(&["PARTITION", "OWNER", "ETAG", "CLAIMED AGO"], &rows)
        }
        OwnershipCommand::Claim {
            partition,
            owner,
            etag,
        } => {
            let claim = OwnershipClaim::new(
                scope.clone(),
                PartitionId::new(partition.as_str())?,
                OwnerId::new(owner.as_str())?,
                etag.as_deref().map(ETag::new).transpose()?,
            );
            let result = store.claim(&claim).await;
            if matches!(result, ClaimResult::Lost) && etag.is_none() {
                return Err(CliError::ClaimLost(format!(
                    "claim of partition {partition} for {owner}: lost — the partition already has an \
                     ownership record; claim it with --etag (from `ownership list`)"
                )));
            }
            finish_claim(
                result,
                &format!("claim of partition {partition} for {owner}"),
                out,
            )
        }
        OwnershipCommand::Release { partition, owner } => {
            let partition = PartitionId::new(partition.as_str())?;
            let current = store
                .list_ownership(scope)
                .await?
                .items
                .into_iter()
                .find(|o| o.partition_id == partition);
            let Some(current) = current else {
                out.note(&format!(
                    "partition {partition} has no ownership record; nothing to release"
                ));
                return Ok(());
            };
            if let Some(expected) = owner {
                let actual = current.owner_id.as_ref().map_or("", OwnerId::as_str);
                if actual != expected {
                    return Err(CliError::ClaimLost(format!(
                        "partition {partition} is owned by '{actual}', not '{expected}'; nothing was changed"
                    )));
                }
            }
            let result = store.release_ownership(scope, &partition, current.etag).await;
            finish_claim(result, &format!("release of partition {partition}"), out)
        }
    }
}

fn finish_claim(result: ClaimResult, what: &str, out: &Output) -> Result<(), CliError> {
    match result {
        ClaimResult::Claimed(ownership) => {
            if out.format == OutputFormat::Json {
                out.json(&OwnershipRecord::from(&ownership))
            } else {
                println!("{what}: done (etag {})", ownership.etag);
                Ok(())
            }
        }
        ClaimResult::Lost => Err(CliError::ClaimLost(format!(
            "{what}: lost — the ownership changed since its etag was read"
        ))),
        ClaimResult::Failed(error) => Err(error.into()),
    }
}

async fn create_container(backend: &Backend, cli: &Cli) -> Result<(), CliError> {
    match backend {
        Backend::Azure(azure) => {
            let created = azure.create_container().await?;
            let state = if created { "created" } else { "already exists" };
            println!("container {}: {state}", azure.container_url());
        }
        Backend::File(_) => println!("local store {}: ready", cli.store.store.display()),
    }
    Ok(())
}
