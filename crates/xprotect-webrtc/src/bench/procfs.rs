//! CPU time and memory of a process from `/proc` (Linux), without new dependencies.
//!
//! Two CPU clocks are read because each has a weakness: `/proc/PID/stat` counts every thread
//! that ever ran (also exited ones) but only in 10 ms ticks, which is coarse for one session
//! over 20 s (about 30 ms in all); the per-thread `schedstat` files count nanoseconds but
//! forget threads that exit during the window. The tables use the precise one and the report
//! warns when the two disagree.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which the kernel ABI fixes at 100 per second
/// on every architecture (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: u64 = 100;

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// This process.
    Current,
    /// Another process (a child).
    Other(u32),
}

impl Pid {
    fn dir(self) -> PathBuf {
        match self {
            Pid::Current => PathBuf::from("/proc/self"),
            Pid::Other(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }
}

/// A snapshot of a process's CPU clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// user + system time from `/proc/PID/stat`, 10 ms resolution, every thread ever.
    pub ticks: Duration,
    /// Sum of the live threads' `schedstat` run time, nanosecond resolution.
    pub scheduled: Duration,
}

impl CpuSample {
    /// Read both clocks of `pid`.
    pub fn read(pid: Pid) -> anyhow::Result<Self> {
        Ok(Self {
            ticks: stat_cpu(pid)?,
            scheduled: schedstat_cpu(pid)?,
        })
    }

    /// The CPU time spent between `earlier` and `self`, by each clock.
    pub fn since(&self, earlier: &CpuSample) -> CpuSpent {
        CpuSpent {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            scheduled: self.scheduled.saturating_sub(earlier.scheduled),
        }
    }
}

/// CPU time spent in a window, by each clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSpent {
    /// From `/proc/PID/stat` (10 ms ticks).
    pub ticks: Duration,
    /// From the threads' `schedstat` (ns).
    pub scheduled: Duration,
}

impl CpuSpent {
    /// The figure to report: the precise clock, unless threads that exited during the window
    /// made it lose more than the tick clock's rounding (two ticks) could explain.
    pub fn best(&self) -> Duration {
        let rounding = Duration::from_millis(2 * 1000 / TICKS_PER_SECOND);
        if self.scheduled + rounding < self.ticks {
            self.ticks
        } else {
            self.scheduled
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn format_error(path: &Path) -> anyhow::Error {
    anyhow::anyhow!("unexpected format of {} (see proc(5))", path.display())
}

/// `utime + stime` (fields 14 and 15 of proc(5)). The command name (field 2) is in parentheses
/// and may contain spaces or parentheses, so fields are counted from the last `)`.
fn stat_cpu(pid: Pid) -> anyhow::Result<Duration> {
    let path = pid.dir().join("stat");
    let text = read(&path)?;
    let after_name = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| format_error(&path))?;
    // After the name, the first field is field 3 (state): utime is the 12th, stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next_number = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format_error(&path))
    };
    let ticks = next_number()? + next_number()?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// The sum over the live threads of the first `schedstat` field (time on the CPU, in ns).
fn schedstat_cpu(pid: Pid) -> anyhow::Result<Duration> {
    let tasks = pid.dir().join("task");
    let entries =
        std::fs::read_dir(&tasks).with_context(|| format!("cannot list {}", tasks.display()))?;
    let mut total = Duration::ZERO;
    for entry in entries.flatten() {
        let path = entry.path().join("schedstat");
        // A thread may exit between listing and reading: it simply no longer counts.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let nanos = text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format_error(&path))?;
        total += Duration::from_nanos(nanos);
    }
    Ok(total)
}

/// Resident memory now and at its peak, in bytes (`VmRSS`, `VmHWM` of `/proc/PID/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Resident set size now.
    pub rss_bytes: u64,
    /// Peak resident set size.
    pub peak_rss_bytes: u64,
}

impl Memory {
    /// Read `pid`'s memory figures.
    pub fn read(pid: Pid) -> anyhow::Result<Self> {
        let path = pid.dir().join("status");
        let text = read(&path)?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .ok_or_else(|| format_error(&path))
        };
        Ok(Self {
            rss_bytes: field("VmRSS:")?,
            peak_rss_bytes: field("VmHWM:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = CpuSample::read(Pid::Current).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        // Spin until the scheduler has given us the CPU time (a busy machine gives it slowly),
        // then check that both clocks saw it.
        let spent = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let spent = CpuSample::read(Pid::Current).unwrap().since(&before);
            if spent.scheduled >= Duration::from_millis(60)
                || started.elapsed() > Duration::from_secs(30)
            {
                break spent;
            }
        };
        assert!(spent.scheduled >= Duration::from_millis(40), "{spent:?}");
        assert!(spent.best() >= Duration::from_millis(40), "{spent:?}");
    }

    #[test]
    fn own_memory_is_plausible() {
        let memory = Memory::read(Pid::Current).unwrap();
        assert!(
            memory.rss_bytes > 100_000 && memory.peak_rss_bytes >= memory.rss_bytes,
            "{memory:?}"
        );
    }
}
