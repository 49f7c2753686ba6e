//! `ehcp`: inspect and repair Event Hubs checkpoints and partition ownership.

// The doc comments of `cli` are the command's --help text, where URLs are
// plain text, not links.
#![allow(rustdoc::bare_urls)]

use std::process::ExitCode;

mod cli;
mod commands;
mod confirm;
mod demo;
mod error;
mod output;
mod target;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_with_environment();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ehcp: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ehcp: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// `-v` logs this project's debug events to stderr, `-vv` its trace events
/// (one per HTTP request). Other crates stay quiet: their logs could carry
/// request details this project does not control.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "debug",
        _ => "trace",
    };
    let filter = [
        "eventhub_checkpoints",
        "eventhub_checkpoints_blob",
        "eventhub_checkpoints_fs",
        "ehcp",
    ]
    .map(|target| format!("{target}={level}"))
    .join(",");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}
