//! Medians, ratios, the targets, and the Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::workloads::Run;

/// A client of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// Our `CheckpointStore` (over Azure Blob or in memory).
    Ours,
    /// azure-eventhub-checkpointstoreblob-aio 1.2.0.
    Python,
    /// Pre-signed raw requests (or, in memory, the bare map operations).
    Floor,
}

impl Client {
    /// Its name in tables and on the command line.
    pub fn name(self, in_memory: bool) -> &'static str {
        match (self, in_memory) {
            (Client::Ours, _) => "ours",
            (Client::Python, _) => "python",
            (Client::Floor, false) => "floor",
            (Client::Floor, true) => "map",
        }
    }
}

/// A row of the table: one workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    /// Sort key (the order workloads are listed in).
    pub order: u32,
    /// What it is.
    pub label: String,
    /// What one operation is.
    pub op: &'static str,
    /// Whether it runs in memory.
    pub in_memory: bool,
}

/// Every measured run, by workload and client.
#[derive(Debug, Default)]
pub struct Results {
    runs: BTreeMap<Row, BTreeMap<Client, Vec<Run>>>,
    /// HTTP answers of the verification pass, by workload and client.
    requests: BTreeMap<Row, BTreeMap<Client, BTreeMap<String, u64>>>,
}

/// The medians of one client on one workload.
#[derive(Clone, Copy, Debug)]
struct Summary {
    wall: Duration,
    wall_min: Duration,
    wall_max: Duration,
    cpu: Duration,
    server: Option<Duration>,
    ops: u64,
    n: usize,
}

impl Summary {
    fn of(runs: &[Run]) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let walls: Vec<Duration> = runs.iter().map(|r| r.span.wall).collect();
        let cpus: Vec<Duration> = runs.iter().map(|r| r.span.cpu.total).collect();
        let servers: Option<Vec<Duration>> = runs.iter().map(|r| r.span.server).collect();
        Some(Self {
            wall: median(walls.clone()),
            wall_min: *walls.iter().min()?,
            wall_max: *walls.iter().max()?,
            cpu: median(cpus),
            server: servers.map(median),
            ops: runs[0].ops,
            n: runs.len(),
        })
    }

    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    fn wall_us_per_op(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 / self.ops as f64
    }

    fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops as f64
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// One verdict of the targets.
#[derive(Debug)]
pub struct Verdict {
    /// The target, in words.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Whether it was met.
    pub met: bool,
}

impl Results {
    /// Records a timed run.
    pub fn add(&mut self, row: &Row, client: Client, run: Run) {
        self.runs
            .entry(row.clone())
            .or_default()
            .entry(client)
            .or_default()
            .push(run);
    }

    /// Records the HTTP answers counted in the verification pass.
    pub fn add_requests(&mut self, row: &Row, client: Client, requests: BTreeMap<String, u64>) {
        self.requests
            .entry(row.clone())
            .or_default()
            .insert(client, requests);
    }

    fn summary(&self, row: &Row, client: Client) -> Option<Summary> {
        Summary::of(self.runs.get(row)?.get(&client)?)
    }

    fn requests_text(&self, row: &Row, client: Client) -> String {
        match self.requests.get(row).and_then(|r| r.get(&client)) {
            Some(counts) => {
                let total: u64 = counts.values().sum();
                let kinds: Vec<String> = counts.iter().map(|(k, v)| format!("{v}×{k}")).collect();
                format!("{total} ({})", kinds.join(", "))
            }
            None => "–".to_owned(),
        }
    }

    /// Whether our requests and the floor's were the same, per workload
    /// (only where both were counted).
    pub fn request_mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (row, by_client) in &self.requests {
            if let (Some(ours), Some(floor)) = (by_client.get(&Client::Ours), by_client.get(&Client::Floor))
                && ours != floor
            {
                out.push(format!("{}: ours {ours:?}, floor {floor:?}", row.label));
            }
        }
        out
    }

    /// The targets of the issue, checked.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for row in self.runs.keys() {
            let ours = self.summary(row, Client::Ours);
            let python = self.summary(row, Client::Python);
            let floor = self.summary(row, Client::Floor);
            if row.in_memory {
                if row.op == "update"
                    && let Some(ours) = ours
                {
                    let worst = ours.cpu_us_per_op().max(ours.wall_us_per_op());
                    out.push(Verdict {
                        target: format!("{}: store < 5 µs per update", row.label),
                        measured: format!(
                            "{:.2} µs CPU, {:.2} µs wall per update",
                            ours.cpu_us_per_op(),
                            ours.wall_us_per_op()
                        ),
                        met: worst < 5.0,
                    });
                }
                continue;
            }
            if let (Some(o), Some(p)) = (ours, python) {
                if row.order < 20 {
                    let speedup = p.wall.as_secs_f64() / o.wall.as_secs_f64();
                    out.push(Verdict {
                        target: format!("{}: wall ≥ 5× better than Python", row.label),
                        measured: format!("{speedup:.2}×"),
                        met: speedup >= 5.0,
                    });
                }
                let cpu = o.cpu_us_per_op() / p.cpu_us_per_op();
                out.push(Verdict {
                    target: format!("{}: CPU/op ≤ 1/10 of Python's", row.label),
                    measured: format!("1/{:.1}", 1.0 / cpu),
                    met: cpu <= 0.1,
                });
            }
            if let (Some(o), Some(f)) = (ours, floor) {
                let ratio = o.wall.as_secs_f64() / f.wall.as_secs_f64();
                out.push(Verdict {
                    target: format!("{}: wall within 1.15× of the floor", row.label),
                    measured: format!("{ratio:.3}×"),
                    met: ratio <= 1.15,
                });
            }
        }
        out
    }

    /// The Markdown report: absolute figures, ratios, targets.
    pub fn markdown(&self, header: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s, "### Absolute figures (medians)\n");
        let _ = writeln!(
            s,
            "| workload | client | runs | wall ms (min–max) | ops/s | client CPU ms | client CPU µs/op | server CPU (busy) | HTTP requests per run (verification pass) |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|");
        for (row, by_client) in &self.runs {
            for &client in by_client.keys() {
                let Some(sm) = self.summary(row, client) else {
                    continue;
                };
                let _ = writeln!(
                    s,
                    "| {} ({} {}s) | {} | {} | {} ({}–{}) | {:.0} | {} | {:.1} | {} | {} |",
                    row.label,
                    sm.ops,
                    row.op,
                    client.name(row.in_memory),
                    sm.n,
                    ms(sm.wall),
                    ms(sm.wall_min),
                    ms(sm.wall_max),
                    sm.ops_per_s(),
                    ms(sm.cpu),
                    sm.cpu_us_per_op(),
                    match sm.server {
                        Some(server) => format!(
                            "{} ms ({:.0} %)",
                            ms(server),
                            100.0 * server.as_secs_f64() / sm.wall.as_secs_f64()
                        ),
                        None => "–".to_owned(),
                    },
                    if row.in_memory {
                        "–".to_owned()
                    } else {
                        self.requests_text(row, client)
                    },
                );
            }
        }
        let _ = writeln!(s, "\n### Ratios (lower is better for ours)\n");
        let _ = writeln!(
            s,
            "| workload | wall ours/Python | wall ours/floor | CPU/op ours/Python | CPU/op ours/floor |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for row in self.runs.keys() {
            let ours = self.summary(row, Client::Ours);
            let ratio = |other: Option<Summary>, cpu: bool| match (ours, other) {
                (Some(o), Some(x)) if cpu => format!("{:.3}", o.cpu_us_per_op() / x.cpu_us_per_op()),
                (Some(o), Some(x)) => format!("{:.3}", o.wall.as_secs_f64() / x.wall.as_secs_f64()),
                _ => "–".to_owned(),
            };
            let python = self.summary(row, Client::Python);
            let floor = self.summary(row, Client::Floor);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                row.label,
                ratio(python, false),
                ratio(floor, false),
                ratio(python, true),
                ratio(floor, true),
            );
        }
        let _ = writeln!(s, "\n### Targets\n");
        let _ = writeln!(s, "| target | measured | met |");
        let _ = writeln!(s, "|---|---:|---|");
        for v in self.verdicts() {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                v.target,
                v.measured,
                if v.met { "yes" } else { "**no**" }
            );
        }
        let mismatches = self.request_mismatches();
        if !mismatches.is_empty() {
            let _ = writeln!(s, "\n**Request mismatch between ours and the floor:**\n");
            for m in mismatches {
                let _ = writeln!(s, "- {m}");
            }
        }
        s
    }

    /// Every run, for scripts.
    pub fn json(&self) -> Value {
        let mut rows = Vec::new();
        for (row, by_client) in &self.runs {
            for (client, runs) in by_client {
                rows.push(json!({
                    "workload": row.label,
                    "op": row.op,
                    "client": client.name(row.in_memory),
                    "requests": self.requests.get(row).and_then(|r| r.get(client)),
                    "runs": runs.iter().map(|r| json!({
                        "wall_s": r.span.wall.as_secs_f64(),
                        "cpu_s": r.span.cpu.total.as_secs_f64(),
                        "user_s": r.span.cpu.user.as_secs_f64(),
                        "sys_s": r.span.cpu.sys.as_secs_f64(),
                        "server_cpu_s": r.span.server.map(|d| d.as_secs_f64()),
                        "ops": r.ops,
                    })).collect::<Vec<_>>(),
                }));
            }
        }
        json!({ "results": rows })
    }
}
