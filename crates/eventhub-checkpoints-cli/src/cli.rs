//! The command line: global options, where the checkpoints live, and the
//! commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Inspect and repair what Event Hubs consumers store in a blob container:
/// checkpoints (how far each partition was read) and partition ownership.
///
/// Reads and writes the format every Azure SDK shares, so what you change
/// here is what Python, .NET, Java, JavaScript and Go processors see.
#[derive(Debug, Parser)]
#[command(name = "ehcp", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub scope: ScopeArgs,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table, help_heading = "Output")]
    pub output: OutputFormat,

    /// Log what happens (requests, retries) to stderr; repeat for more.
    #[arg(long, short, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line (exiting with clap's message on a usage
    /// error). What the command line says beats what the environment says:
    /// an exported `AZURE_STORAGE_CONNECTION_STRING` gives way to
    /// `--account-url` or `--store`, and an exported `AZURE_STORAGE_KEY` or
    /// `AZURE_STORAGE_SAS_TOKEN` to the other one given as a flag.
    pub fn parse_with_environment() -> Cli {
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let source = |id: &str| matches.value_source(id);
        let from_env = |id: &str| source(id) == Some(ValueSource::EnvVariable);
        let on_command_line = |id: &str| source(id) == Some(ValueSource::CommandLine);
        let store = &mut cli.store;
        if from_env("connection_string") && (on_command_line("account_url") || on_command_line("store")) {
            store.connection_string = None;
        }
        if from_env("account_key") && on_command_line("sas") {
            store.account_key = None;
        }
        // An exported SAS only means something with --account-url.
        if from_env("sas") && (on_command_line("account_key") || store.account_url.is_none()) {
            store.sas = None;
        }
        cli
    }
}

/// Where the checkpoints are stored.
#[derive(Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// A local directory store (the default when no Azure option is given).
    #[arg(long, global = true, value_name = "PATH", default_value = ".ehcp-store")]
    pub store: PathBuf,

    /// Azure Storage connection string.
    #[arg(
        long,
        global = true,
        env = "AZURE_STORAGE_CONNECTION_STRING",
        hide_env_values = true,
        value_name = "CS"
    )]
    pub connection_string: Option<String>,

    /// Blob service URL, e.g. https://contoso.blob.core.windows.net.
    #[arg(long, global = true, value_name = "URL")]
    pub account_url: Option<String>,

    /// Blob container holding the checkpoints (with --connection-string or --account-url).
    #[arg(long, global = true, value_name = "NAME")]
    pub container: Option<String>,

    /// SAS token for --account-url (from the environment rather than the
    /// command line, where `ps` and shell history would show it).
    #[arg(
        long,
        global = true,
        env = "AZURE_STORAGE_SAS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub sas: Option<String>,

    /// Account key for --account-url (SharedKey). Without --sas or a key,
    /// Entra ID is used (Azure CLI / Azure Developer CLI sign-in).
    #[arg(
        long,
        global = true,
        env = "AZURE_STORAGE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub account_key: Option<String>,

    /// Storage account name for --account-key, when the URL does not show it.
    #[arg(long, global = true, value_name = "NAME")]
    pub account_name: Option<String>,

    /// Storage REST API version, e.g. 2017-11-09 for Azure Stack Hub.
    #[arg(long, global = true, value_name = "YYYY-MM-DD")]
    pub api_version: Option<String>,
}

/// Which consumer group of which event hub.
#[derive(Debug, Args)]
#[command(next_help_heading = "Scope")]
pub struct ScopeArgs {
    /// Fully qualified Event Hubs namespace, e.g. contoso.servicebus.windows.net.
    #[arg(long, global = true, value_name = "FQDN")]
    pub namespace: Option<String>,

    /// Event hub name.
    #[arg(long, global = true, value_name = "NAME")]
    pub eventhub: Option<String>,

    /// Consumer group [default: $Default].
    #[arg(long, global = true, value_name = "NAME")]
    pub consumer_group: Option<String>,
}

impl ScopeArgs {
    /// The consumer group given, or `$Default`.
    pub fn consumer_group(&self) -> &str {
        self.consumer_group.as_deref().unwrap_or("$Default")
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON with the Python store's keys, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One row per partition: owner, ownership age and expiry, checkpoint and its age.
    Status {
        /// Ownership older than this is expired (processors default to 60s).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        expiration: Duration,
    },
    /// List, set, delete, export and import checkpoints.
    #[command(subcommand)]
    Checkpoints(CheckpointsCommand),
    /// List, claim and release partition ownership.
    #[command(subcommand)]
    Ownership(OwnershipCommand),
    /// Manage the blob container.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Run consumers that balance the partitions of a consumer group and
    /// checkpoint synthetic progress, live, until the load is even.
    Demo {
        /// Consumers to run in this process.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
        consumers: u16,
        /// Partitions of the simulated event hub.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
        partitions: u32,
        /// Give up if not converged by then.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Claim the whole fair share at once instead of one partition per cycle.
        #[arg(long)]
        greedy: bool,
        /// Run on a --namespace/--eventhub that already has blobs without
        /// asking (the demo takes its partitions over and overwrites their
        /// checkpoints).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// List the consumer group's checkpoints.
    List,
    /// Set (or reset) one partition's checkpoint.
    Set {
        /// Partition id.
        #[arg(long)]
        partition: String,
        /// Offset to resume after.
        #[arg(long, allow_hyphen_values = true)]
        offset: Option<String>,
        /// Sequence number to resume after.
        #[arg(long, allow_hyphen_values = true)]
        sequence_number: Option<i64>,
        /// Write a checkpoint without a sequence number. Python, JavaScript,
        /// Go and Java consumers then fail to list the consumer group's
        /// checkpoints; only .NET and Rust consumers read it.
        #[arg(long)]
        allow_missing_sequence_number: bool,
        /// Overwrite an existing checkpoint without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Delete one partition's checkpoint, or all of them.
    Delete {
        /// Partition id.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        partition: Option<String>,
        /// Delete every checkpoint of the consumer group.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Write the checkpoints as JSON lines (to FILE, or stdout).
    Export {
        /// Output file; stdout when absent.
        file: Option<PathBuf>,
        /// Export what can be read even if some checkpoint blobs cannot
        /// (otherwise that fails, exit 1, and writes nothing).
        #[arg(long)]
        allow_skipped: bool,
    },
    /// Write checkpoints from JSON lines (from FILE, or stdin), each to the
    /// scope it names; --namespace, --eventhub and --consumer-group, when
    /// given, replace that part of every line's scope.
    Import {
        /// Input file; stdin when absent.
        file: Option<PathBuf>,
        /// Import into this consumer group instead of the one in each line
        /// (the same as --consumer-group here).
        #[arg(long, value_name = "NAME")]
        to_consumer_group: Option<String>,
        /// Accept lines without a sequence number (see `checkpoints set
        /// --allow-missing-sequence-number`).
        #[arg(long)]
        allow_missing_sequence_number: bool,
        /// Overwrite existing checkpoints without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OwnershipCommand {
    /// List who owns each partition.
    List,
    /// Claim a partition for an owner (conditional on --etag, or create-only).
    Claim {
        /// Partition id.
        #[arg(long)]
        partition: String,
        /// New owner id.
        #[arg(long)]
        owner: String,
        /// Claim only if the ownership still has this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Release a partition so any consumer can claim it at once.
    Release {
        /// Partition id.
        #[arg(long)]
        partition: String,
        /// Release only if this is the current owner.
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create the container (or the local store directory) if it does not exist.
    Create,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
