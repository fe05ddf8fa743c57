//! What runs next to a recording: the `--stats` JSON lines and the status line on a terminal.
//!
//! One task asks the session for its statistics (through a [`StatsHandle`], so it never touches
//! the recording loop), every `--stats-interval` for the JSON lines and every second for the
//! status line. At the end the caller hands in the recorder's final figures for the last line.

use super::status_line;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use xprotect_client::diagnostics::{ReconnectCounters, StatsHandle, StatsSampler, StatsSnapshot};
use xprotect_client::login::TokenState;
use xprotect_client::record::OutputTarget;
use xprotect_client::recorder::RecordStats;

/// How often the status line is redrawn.
const STATUS_LINE_PERIOD: Duration = Duration::from_secs(1);

/// What to show and where.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// `--stats` target.
    pub stats: Option<OutputTarget>,
    /// `--stats-interval`.
    pub interval: Duration,
    /// Draw the status line (stderr is a terminal).
    pub status_line: bool,
}

impl MonitorConfig {
    /// From the flags; the status line only when stderr is a terminal.
    pub fn new(stats: Option<&str>, interval: Duration) -> Self {
        Self {
            stats: stats.map(OutputTarget::parse),
            interval,
            status_line: std::io::stderr().is_terminal(),
        }
    }

    /// Neither output is wanted.
    fn is_off(&self) -> bool {
        self.stats.is_none() && !self.status_line
    }
}

/// Where the reconnect counters come from (the lasting session, when there is one).
pub type CounterSource = Box<dyn Fn() -> ReconnectCounters + Send + Sync>;

/// The running monitor; [`Monitor::finish`] writes the final line.
pub struct Monitor {
    finish: Option<oneshot::Sender<Option<RecordStats>>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Monitor {
    /// Starts monitoring the session behind `handle`, or nothing when `config` wants nothing.
    /// The `--stats` file is created here, so a bad path fails before recording starts.
    pub fn start(
        handle: StatsHandle,
        tokens: watch::Receiver<TokenState>,
        counters: CounterSource,
        config: MonitorConfig,
        started: Instant,
    ) -> anyhow::Result<Self> {
        if config.is_off() {
            return Ok(Self {
                finish: None,
                task: None,
            });
        }
        let out = config
            .stats
            .as_ref()
            .map(|target| target.open().context("--stats"))
            .transpose()?;
        let (finish, finished) = oneshot::channel();
        let task = tokio::spawn(run(
            Probe {
                handle,
                tokens,
                counters,
                lines: StatsSampler::new(started),
                status: StatsSampler::new(started),
            },
            out,
            config,
            finished,
        ));
        Ok(Self {
            finish: Some(finish),
            task: Some(task),
        })
    }

    /// Writes the final `--stats` line (with the recorder's figures, which count what was
    /// written) and clears the status line.
    pub async fn finish(mut self, record: Option<&RecordStats>) -> anyhow::Result<()> {
        let (Some(finish), Some(task)) = (self.finish.take(), self.task.take()) else {
            return Ok(());
        };
        let _ = finish.send(record.cloned());
        task.await.context("the statistics task failed")?
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Everything a snapshot is made of. The `--stats` lines and the status line keep separate
/// samplers, so each one's rates cover its own interval (5 s and 1 s by default).
struct Probe {
    handle: StatsHandle,
    tokens: watch::Receiver<TokenState>,
    counters: CounterSource,
    lines: StatsSampler,
    status: StatsSampler,
}

/// Which sampler a snapshot advances.
#[derive(Clone, Copy)]
enum For {
    Lines,
    StatusLine,
}

impl Probe {
    async fn snapshot(&mut self, purpose: For, is_final: bool) -> StatsSnapshot {
        let session = match self.handle.stats().await {
            Ok(stats) => Some(stats),
            Err(error) => {
                tracing::debug!(%error, "no session statistics for this snapshot");
                None
            }
        };
        let refreshes = match &*self.tokens.borrow() {
            TokenState::Valid { refreshes, .. } => *refreshes,
            _ => 0,
        };
        let counters = (self.counters)();
        let sampler = match purpose {
            For::Lines => &mut self.lines,
            For::StatusLine => &mut self.status,
        };
        sampler.sample(
            Instant::now(),
            OffsetDateTime::from(SystemTime::now()),
            session,
            counters,
            refreshes,
            is_final,
        )
    }
}

async fn run(
    mut probe: Probe,
    mut out: Option<Box<dyn Write + Send>>,
    config: MonitorConfig,
    mut finished: oneshot::Receiver<Option<RecordStats>>,
) -> anyhow::Result<()> {
    let now = tokio::time::Instant::now();
    let mut stats_tick = tokio::time::interval_at(now + config.interval, config.interval);
    let mut status_tick = tokio::time::interval_at(now + STATUS_LINE_PERIOD, STATUS_LINE_PERIOD);
    // A slow disk or a suspended laptop must not cause a burst of catch-up lines.
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let record = loop {
        tokio::select! {
            record = &mut finished => break record.ok().flatten(),
            _ = stats_tick.tick(), if out.is_some() => {
                let snapshot = probe.snapshot(For::Lines, false).await;
                write_line(&mut out, &snapshot)?;
            }
            _ = status_tick.tick(), if config.status_line => {
                let snapshot = probe.snapshot(For::StatusLine, false).await;
                // A convenience: a failing stderr must not stop the recording.
                let _ = status_line::draw(&mut std::io::stderr(), &status_line::format(&snapshot));
            }
        }
    };
    if config.status_line {
        let _ = status_line::clear(&mut std::io::stderr());
    }
    if out.is_some() {
        let mut last = probe.snapshot(For::Lines, true).await;
        if let Some(record) = &record {
            apply_record(&mut last, record);
        }
        // The last line's rates are averages over the whole recording.
        if last.elapsed_s > 0.0 {
            last.fps = last.frames as f64 / last.elapsed_s;
            last.bitrate_bps = last.bytes as f64 * 8.0 / last.elapsed_s;
        }
        write_line(&mut out, &last)?;
    }
    Ok(())
}

/// The recorder counts what reached the file; the last line reports that.
fn apply_record(snapshot: &mut StatsSnapshot, record: &RecordStats) {
    snapshot.frames = record.frames;
    snapshot.keyframes = record.keyframes;
    snapshot.bytes = record.video_bytes;
    snapshot.last_frame_time = record.last_frame_time.or(snapshot.last_frame_time);
    snapshot.warnings = snapshot.warnings.max(record.warnings.len() as u64);
}

fn write_line(
    out: &mut Option<Box<dyn Write + Send>>,
    snapshot: &StatsSnapshot,
) -> anyhow::Result<()> {
    let Some(writer) = out.as_mut() else {
        return Ok(());
    };
    let mut line = serde_json::to_string(snapshot).context("encoding a --stats line")?;
    line.push('\n');
    match writer
        .write_all(line.as_bytes())
        .and_then(|()| writer.flush())
    {
        Ok(()) => Ok(()),
        // The reader of stdout went away: stop writing statistics, keep recording.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            *out = None;
            Ok(())
        }
        Err(error) => Err(error).context("writing --stats"),
    }
}
