//! Client CPU time of this process: user + system, all threads.
//!
//! The total comes from `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (the sum
//! the kernel also reports through `getrusage(RUSAGE_SELF)` as
//! `ru_utime + ru_stime`, at nanosecond resolution); the user/system split
//! from `/proc/self/stat` (clock ticks, so 10 ms resolution). The workspace
//! forbids `unsafe`, so `libc::getrusage` is not called directly.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// CPU time used by this process so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTime {
    /// User + system, precise.
    pub total: Duration,
    /// User time (tick resolution).
    pub user: Duration,
    /// System time (tick resolution).
    pub sys: Duration,
}

impl CpuTime {
    /// The process's CPU time now.
    pub fn now() -> Self {
        let ts = clock_gettime(ClockId::ProcessCPUTime);
        let total = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        let (user, sys) = proc_stat_user_sys("/proc/self/stat").unwrap_or_default();
        Self { total, user, sys }
    }

    /// CPU time spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            total: self.total.saturating_sub(earlier.total),
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    /// The sum of two spans.
    pub fn plus(self, other: CpuTime) -> CpuTime {
        CpuTime {
            total: self.total + other.total,
            user: self.user + other.user,
            sys: self.sys + other.sys,
        }
    }
}

/// Wall and CPU time of one measured span.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    /// Elapsed wall time.
    pub wall: Duration,
    /// CPU time used by the process meanwhile.
    pub cpu: CpuTime,
    /// CPU time used by the server process meanwhile (user + sys, tick
    /// resolution), when its pid is known.
    pub server: Option<Duration>,
}

impl Span {
    /// The sum of two spans (a workload measured in phases).
    pub fn plus(self, other: Span) -> Span {
        Span {
            wall: self.wall + other.wall,
            cpu: self.cpu.plus(other.cpu),
            server: match (self.server, other.server) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }
}

static SERVER_PID: OnceLock<u32> = OnceLock::new();

/// Makes every [`measure`] also measure the CPU time of process `pid` (the
/// server on this machine).
pub fn watch_server(pid: u32) {
    let _ = SERVER_PID.set(pid);
}

/// The pid given to [`watch_server`].
pub fn server_pid() -> Option<u32> {
    SERVER_PID.get().copied()
}

fn server_cpu() -> Option<Duration> {
    let (user, sys) = proc_stat_user_sys(&format!("/proc/{}/stat", server_pid()?))?;
    Some(user + sys)
}

/// Runs `work` and measures it.
pub async fn measure<T>(work: impl Future<Output = T>) -> (T, Span) {
    let server0 = server_cpu();
    let cpu0 = CpuTime::now();
    let start = Instant::now();
    let out = work.await;
    let wall = start.elapsed();
    let cpu = CpuTime::now().since(cpu0);
    let server = server_cpu().zip(server0).map(|(b, a)| b.saturating_sub(a));
    (out, Span { wall, cpu, server })
}

/// utime and stime of a `/proc/<pid>/stat` (fields 14 and 15).
fn proc_stat_user_sys(path: &str) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: count from its closing `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let ticks = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / hz);
    Some((ticks(utime), ticks(stime)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_stat() {
        let (user, sys) = proc_stat_user_sys("/proc/self/stat").expect("/proc/self/stat is readable");
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (user2, sys2) = proc_stat_user_sys("/proc/self/stat").unwrap();
        assert!(user2 + sys2 >= user + sys);
        assert!(CpuTime::now().total > Duration::ZERO);
    }
}
