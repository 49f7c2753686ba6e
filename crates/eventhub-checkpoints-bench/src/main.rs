//! `ehcp-bench`: our checkpoint store side by side with the Python store
//! (azure-eventhub-checkpointstoreblob-aio 1.2.0) and a raw-HTTP floor, on
//! one Blob endpoint (Azurite, started by `benches/compare.sh`), plus the
//! store's own cost on the in-memory backend.
//!
//! Workloads (each client makes the same store calls with the same
//! concurrency; see `docs/performance.md`):
//!
//! 1. claim N partitions in an empty container, then renew every claim;
//! 2. P partitions × U checkpoint updates, partitions concurrent;
//! 3. list C checkpoints, R times, per page size;
//! 4. 1–3 on `InMemoryBackend`, against bare map operations.
//!
//! Each run gets fresh containers; a first, untimed round warms up and
//! counts the HTTP requests of each client. Medians of the timed runs are
//! printed as a Markdown table and written to `--out` (and `--json`).

mod counter;
mod cpu;
mod memory;
mod ours;
mod python;
mod raw;
mod report;
mod workloads;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use eventhub_checkpoints_blob::{DEVELOPMENT_ACCOUNT, DEVELOPMENT_ACCOUNT_KEY};

use crate::python::PythonDriver;
use crate::raw::Raw;
use crate::report::{Client, Results, Row};
use crate::workloads::{Params, Run};

/// Errors of the benchmark: anything, with a message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// Results of the benchmark.
pub type Result<T> = std::result::Result<T, BenchError>;

/// Benchmarks the checkpoint store against the Python store and a raw-HTTP floor.
#[derive(Parser, Debug)]
#[command(name = "ehcp-bench", version, args_override_self = true)]
struct Args {
    /// Blob endpoint of the account, e.g. http://127.0.0.1:10000/devstoreaccount1
    /// (needed unless only the in-memory workload runs).
    #[arg(long)]
    endpoint: Option<String>,
    /// Account name (SharedKey).
    #[arg(long, default_value = DEVELOPMENT_ACCOUNT)]
    account: String,
    /// Account key, base64 (default: Azurite's well-known key).
    #[arg(long, default_value = DEVELOPMENT_ACCOUNT_KEY, hide_default_value = true)]
    key: String,
    /// x-ms-version for every client (the Python store's default).
    #[arg(long, default_value = "2019-07-07")]
    api_version: String,
    /// Timed runs per workload and client (medians are reported).
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Untimed rounds first; the first of them counts each client's HTTP requests.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Clients to run: ours, python, floor.
    #[arg(long, value_delimiter = ',', default_value = "ours,python,floor")]
    clients: Vec<String>,
    /// Workloads to run: claim, checkpoints, list, memory.
    #[arg(long, value_delimiter = ',', default_value = "claim,checkpoints,list,memory")]
    workloads: Vec<String>,
    /// The Python interpreter with azure-eventhub-checkpointstoreblob-aio.
    #[arg(long, default_value = "tests/.venv/bin/python")]
    python: PathBuf,
    /// The Python benchmark driver.
    #[arg(long, default_value = "benches/python_driver.py")]
    python_driver: PathBuf,
    /// Workload 1: partitions claimed then renewed.
    #[arg(long, default_value_t = 1024)]
    claim_partitions: u32,
    /// Workload 2: partitions updated concurrently.
    #[arg(long, default_value_t = 32)]
    checkpoint_partitions: u32,
    /// Workload 2: checkpoint updates per partition, in sequence.
    #[arg(long, default_value_t = 200)]
    checkpoint_updates: u32,
    /// Workload 3: checkpoints listed.
    #[arg(long, default_value_t = 2000)]
    list_count: u32,
    /// Workload 3: listings per run.
    #[arg(long, default_value_t = 10)]
    list_repeats: u32,
    /// Workload 3: page sizes (maxresults) to run with.
    #[arg(long, value_delimiter = ',', default_value = "5000,500")]
    page_sizes: Vec<u32>,
    /// Claims (and requests) in flight: the store's claim_concurrency, the
    /// backend's max_concurrent_requests, the Python driver's window.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Workload 4: repetitions of each in-memory workload per run.
    #[arg(long, default_value_t = 20)]
    memory_iterations: u32,
    /// Tokio worker threads; 0: one per core (the default runtime), 1: current-thread runtime.
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "target/ehcp-bench/results.md")]
    out: PathBuf,
    /// Where to write every run as JSON.
    #[arg(long, default_value = "target/ehcp-bench/results.json")]
    json: PathBuf,
    /// Pid of the server (Azurite) on this machine: its CPU time is measured
    /// around every run too.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Extra lines (machine notes) put above the tables.
    #[arg(long)]
    note: Vec<String>,
}

fn main() {
    if let Err(error) = run(Args::parse()) {
        eprintln!("ehcp-bench: {error}");
        std::process::exit(1);
    }
}

fn row(order: u32, label: impl Into<String>, op: &'static str, in_memory: bool) -> Row {
    Row {
        order,
        label: label.into(),
        op,
        in_memory,
    }
}

fn run(args: Args) -> Result<()> {
    counter::install();
    if let Some(pid) = args.server_pid {
        cpu::watch_server(pid);
    }
    let params = Params {
        claim_partitions: args.claim_partitions,
        checkpoint_partitions: args.checkpoint_partitions,
        checkpoint_updates: args.checkpoint_updates,
        list_count: args.list_count,
        list_repeats: args.list_repeats,
        page_sizes: args.page_sizes.clone(),
        memory_iterations: args.memory_iterations,
    };
    let wants = |w: &str| args.workloads.iter().any(|x| x == w);
    let mut clients = Vec::new();
    for c in &args.clients {
        clients.push(match c.as_str() {
            "ours" => Client::Ours,
            "python" => Client::Python,
            "floor" => Client::Floor,
            other => return Err(format!("unknown client {other:?}").into()),
        });
    }
    let runtime = match args.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    let network = ["claim", "checkpoints", "list"].iter().any(|w| wants(w));
    let mut results = Results::default();
    let started = Instant::now();

    if network {
        let endpoint = args
            .endpoint
            .as_deref()
            .ok_or("--endpoint is needed for the claim, checkpoints and list workloads")?;
        let mut raw = Raw::new(endpoint, &args.account, &args.key, &args.api_version)?;
        raw.concurrency = args.concurrency;
        let mut python = if clients.contains(&Client::Python) {
            Some(PythonDriver::start(&args.python, &args.python_driver)?)
        } else {
            None
        };
        let mut bench = Network {
            raw: &raw,
            runtime: &runtime,
            params: &params,
            python: python.as_mut(),
            results: &mut results,
        };
        let rounds = args.warmup + args.runs;
        for round in 0..rounds {
            let timed = round >= args.warmup;
            let count = round == 0 && args.warmup > 0;
            // Rotate who goes first, so no client always follows the same one.
            let mut order = clients.clone();
            let len = order.len().max(1);
            order.rotate_left(round as usize % len);
            eprintln!(
                "[{:>5.1}s] round {}/{rounds}{}",
                started.elapsed().as_secs_f64(),
                round + 1,
                if timed { "" } else { " (warm-up, untimed)" }
            );
            if wants("claim") {
                let r = row(
                    1,
                    format!("claim {0} + renew {0}", params.claim_partitions),
                    "claim",
                    false,
                );
                for &client in &order {
                    bench.one(&r, client, round, timed, count, Net::ClaimRenew)?;
                }
            }
            if wants("checkpoints") {
                let r = row(
                    2,
                    format!(
                        "{} partitions × {} checkpoint updates",
                        params.checkpoint_partitions, params.checkpoint_updates
                    ),
                    "update",
                    false,
                );
                for &client in &order {
                    bench.one(&r, client, round, timed, count, Net::Checkpoints)?;
                }
            }
            if wants("list") {
                let container = container_name(round, "list", "all");
                runtime.block_on(raw.create_container(&container))?;
                runtime.block_on(raw.fill_checkpoints(&container, params.list_count))?;
                for (i, &page_size) in params.page_sizes.iter().enumerate() {
                    let r = row(
                        30 + i as u32,
                        format!("list {} checkpoints, page size {page_size}", params.list_count),
                        "listing",
                        false,
                    );
                    for &client in &order {
                        let run = bench.run_in(&container, client, count, Net::List(page_size))?;
                        bench.record(&r, client, timed, count, run);
                    }
                }
                runtime.block_on(raw.delete_container(&container))?;
            }
        }
        drop(python);
    }

    if wants("memory") {
        let rounds = args.warmup + args.runs;
        for round in 0..rounds {
            let timed = round >= args.warmup;
            let workloads = [
                (memory::Workload::ClaimRenew, "claim"),
                (memory::Workload::Checkpoints, "update"),
                (memory::Workload::List, "listing"),
            ];
            for (i, (workload, op)) in workloads.into_iter().enumerate() {
                let label = match workload {
                    memory::Workload::ClaimRenew => {
                        format!("in memory: claim {0} + renew {0}", params.claim_partitions)
                    }
                    memory::Workload::Checkpoints => format!(
                        "in memory: {} × {} checkpoint updates",
                        params.checkpoint_partitions, params.checkpoint_updates
                    ),
                    memory::Workload::List => format!("in memory: list {} checkpoints", params.list_count),
                };
                let r = row(40 + i as u32, label, op, true);
                let ours = runtime.block_on(memory::ours(workload, &params))?;
                let map = memory::baseline(workload, &params)?;
                if timed {
                    results.add(&r, Client::Ours, ours);
                    results.add(&r, Client::Floor, map);
                }
            }
        }
    }

    let mut header = format!(
        "## ehcp-bench results\n\n{} timed runs after {} warm-up round(s); x-ms-version {}; \
         concurrency {}; tokio worker threads: {}; total bench time {:.0} s.\n",
        args.runs,
        args.warmup,
        args.api_version,
        args.concurrency,
        match args.worker_threads {
            0 => "one per core".to_owned(),
            1 => "current-thread runtime".to_owned(),
            n => n.to_string(),
        },
        started.elapsed().as_secs_f64()
    );
    for note in &args.note {
        header.push_str(note);
        header.push('\n');
    }
    let markdown = results.markdown(&header);
    println!("{markdown}");
    for path in [&args.out, &args.json] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&args.out, &markdown)?;
    std::fs::write(&args.json, serde_json::to_string_pretty(&results.json())?)?;
    eprintln!("wrote {} and {}", args.out.display(), args.json.display());
    let mismatches = results.request_mismatches();
    if !mismatches.is_empty() {
        return Err(format!("ours and the floor made different requests: {mismatches:?}").into());
    }
    Ok(())
}

/// A network workload.
#[derive(Clone, Copy, Debug)]
enum Net {
    ClaimRenew,
    Checkpoints,
    List(u32),
}

/// What the network rounds share.
struct Network<'a> {
    raw: &'a Raw,
    runtime: &'a tokio::runtime::Runtime,
    params: &'a Params,
    python: Option<&'a mut PythonDriver>,
    results: &'a mut Results,
}

/// A new container name, unique per call.
fn container_name(round: u32, workload: &str, client: &str) -> String {
    format!("b{round}-{workload}-{client}-{:08x}", rand::random::<u32>())
}

impl Network<'_> {
    /// Runs a write workload in a container of its own, created and deleted untimed.
    fn one(
        &mut self,
        row: &Row,
        client: Client,
        round: u32,
        timed: bool,
        count: bool,
        net: Net,
    ) -> Result<()> {
        let workload = match net {
            Net::ClaimRenew => "claim",
            Net::Checkpoints => "cp",
            Net::List(_) => "list",
        };
        let container = container_name(round, workload, client.name(false));
        self.runtime.block_on(self.raw.create_container(&container))?;
        let run = self.run_in(&container, client, count, net)?;
        self.runtime.block_on(self.raw.delete_container(&container))?;
        self.record(row, client, timed, count, run);
        Ok(())
    }

    fn record(&mut self, row: &Row, client: Client, timed: bool, count: bool, mut run: Run) {
        eprintln!(
            "    {:<48} {:<6} {:>9.1} ms  {:>9.1} ms CPU",
            row.label,
            client.name(false),
            run.span.wall.as_secs_f64() * 1e3,
            run.span.cpu.total.as_secs_f64() * 1e3
        );
        if count && let Some(requests) = run.requests.take() {
            self.results.add_requests(row, client, requests);
        }
        if timed {
            self.results.add(row, client, run);
        }
    }

    fn run_in(&mut self, container: &str, client: Client, count: bool, net: Net) -> Result<Run> {
        let (raw, params) = (self.raw, self.params);
        match client {
            Client::Ours => {
                let page_size = match net {
                    Net::List(size) => size,
                    _ => 5_000,
                };
                let store = ours::store(raw, container, page_size)?;
                if count {
                    counter::start();
                }
                let run = self.runtime.block_on(async {
                    match net {
                        Net::ClaimRenew => ours::claim_renew(&store, params).await,
                        Net::Checkpoints => ours::checkpoints(&store, params).await,
                        Net::List(_) => ours::list(&store, params).await,
                    }
                });
                let counted = count.then(counter::stop);
                let mut run = run?;
                run.requests = counted;
                Ok(run)
            }
            Client::Python => {
                let driver = self
                    .python
                    .as_deref_mut()
                    .ok_or("the Python driver is not running")?;
                let workload = match net {
                    Net::ClaimRenew => python::Workload::ClaimRenew,
                    Net::Checkpoints => python::Workload::Checkpoints,
                    Net::List(size) => python::Workload::List(size),
                };
                driver.run(raw, container, workload, params, count)
            }
            Client::Floor => self.runtime.block_on(async {
                match net {
                    Net::ClaimRenew => raw::claim_renew(raw, container, params).await,
                    Net::Checkpoints => raw::checkpoints(raw, container, params).await,
                    Net::List(size) => raw::list(raw, container, params, size).await,
                }
            }),
        }
    }
}
