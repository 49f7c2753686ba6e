//! The Python store, driven through `benches/python_driver.py` in a
//! long-lived interpreter (started once, so imports are not timed). The
//! driver times each workload itself, from inside the Python process.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Result;
use crate::cpu::{CpuTime, Span};
use crate::raw::Raw;
use crate::workloads::{Params, Run};

/// A running driver.
pub struct PythonDriver {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl std::fmt::Debug for PythonDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonDriver")
            .field("pid", &self.child.id())
            .finish()
    }
}

/// Which workload the driver runs.
#[derive(Clone, Copy, Debug)]
pub enum Workload {
    /// `claim_renew`.
    ClaimRenew,
    /// `checkpoints`.
    Checkpoints,
    /// `list` with this page size.
    List(u32),
}

impl PythonDriver {
    /// Starts `python driver`.
    pub fn start(python: &Path, driver: &Path) -> Result<Self> {
        let mut child = Command::new(python)
            .arg(driver)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {} {}: {e}", python.display(), driver.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    /// Runs one workload on `container`; counts the HTTP answers if `count_requests`.
    pub fn run(
        &mut self,
        raw: &Raw,
        container: &str,
        workload: Workload,
        params: &Params,
        count_requests: bool,
    ) -> Result<Run> {
        let mut command = json!({
            "connection_string": raw.connection_string(),
            "container": container,
            "api_version": raw.api_version,
            "count_requests": count_requests,
            "server_pid": crate::cpu::server_pid(),
        });
        let fields = match workload {
            Workload::ClaimRenew => json!({
                "cmd": "claim_renew",
                "partitions": params.claim_partitions,
                "concurrency": raw.concurrency,
            }),
            Workload::Checkpoints => json!({
                "cmd": "checkpoints",
                "partitions": params.checkpoint_partitions,
                "updates": params.checkpoint_updates,
            }),
            Workload::List(page_size) => json!({
                "cmd": "list",
                "repeats": params.list_repeats,
                "page_size": page_size,
                "expect": params.list_count,
            }),
        };
        for (k, v) in fields.as_object().expect("an object") {
            command[k] = v.clone();
        }
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err("the Python driver exited".into());
        }
        let answer: Value = serde_json::from_str(&line)?;
        if let Some(error) = answer.get("error") {
            return Err(format!("Python driver: {error}").into());
        }
        let seconds = |key: &str| -> Result<Duration> {
            let s = answer[key]
                .as_f64()
                .ok_or_else(|| format!("no {key} in {line}"))?;
            Ok(Duration::from_secs_f64(s.max(0.0)))
        };
        let requests = answer.get("requests").and_then(Value::as_object).map(|counts| {
            counts
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect::<BTreeMap<_, _>>()
        });
        Ok(Run {
            span: Span {
                wall: seconds("wall_s")?,
                cpu: CpuTime {
                    total: seconds("cpu_s")?,
                    user: seconds("user_s")?,
                    sys: seconds("sys_s")?,
                },
                server: answer["server_cpu_s"]
                    .as_f64()
                    .map(|s| Duration::from_secs_f64(s.max(0.0))),
            },
            ops: answer["ops"].as_u64().ok_or("no ops")?,
            requests,
        })
    }
}

impl Drop for PythonDriver {
    fn drop(&mut self) {
        // Closing stdin ends the driver's loop.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
