//! The benchmark's results: a markdown report ready for BENCHMARKS.md and a JSON document with
//! every raw number.

use super::export::ExportFigure;
use super::faults::{CappedSummary, FaultBench, FaultClient, SWITCH_WINDOW_FRAMES, SwitchRun};
use super::ttff::{Summary, TtffRun};
use super::worker::LoadResult;
use crate::cli::StackArg;
use std::fmt::Write as _;

const MB: f64 = 1024.0 * 1024.0;

/// Everything one `bench` run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// The command line that produced it (password redacted).
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The gateway: an emulator child process, or the `--gateway` URL.
    pub gateway: String,
    /// Time-to-first-frame figures per transport and stack (live).
    pub ttff: Vec<TtffFigure>,
    /// The same for playback sessions (recorded video from a requested time).
    pub playback_ttff: Vec<TtffFigure>,
    /// Export speed, ours and the peer's.
    pub export: Option<ExportBench>,
    /// Signaling transport of the load steps.
    pub load_signaling: String,
    /// The camera's frame rate assumed for expected frame counts.
    pub fps: u32,
    /// Load steps in the order they ran.
    pub load: Vec<LoadStep>,
    /// Sessions that last: fault → first frame and token switches.
    pub faults: Option<FaultBench>,
}

/// Export speed of one range.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportBench {
    /// Start of the range, RFC 3339.
    pub from: String,
    /// End of the range, RFC 3339.
    pub to: String,
    /// Every client that exported it, in the order they ran.
    pub figures: Vec<ExportFigure>,
    /// Clients that failed, and why.
    pub failures: Vec<String>,
}

/// The machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// The CPU model from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// The kernel release.
    pub kernel: Option<String>,
}

impl Machine {
    /// Describe this machine.
    pub fn current() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_owned());
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            kernel,
        }
    }
}

/// Medians of the milestones, ms since the run started.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PhaseMedians {
    /// Login returned.
    pub login: f64,
    /// Session created.
    pub created: f64,
    /// Media connected.
    pub connected: f64,
    /// First keyframe delivered.
    pub first_frame: f64,
}

/// Time to first frame of one stack over one transport.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TtffFigure {
    /// The stack.
    pub stack: StackArg,
    /// `rest` or `ws`.
    pub signaling: String,
    /// Every successful run.
    pub runs: Vec<TtffRun>,
    /// Why the other runs failed.
    pub failures: Vec<String>,
    /// Of the first-frame times.
    pub first_frame: Option<Summary>,
    /// Of each milestone.
    pub phase_medians: Option<PhaseMedians>,
}

impl TtffFigure {
    /// Summarise `runs`.
    pub fn new(
        stack: StackArg,
        signaling: &str,
        runs: Vec<TtffRun>,
        failures: Vec<String>,
    ) -> Self {
        let median = |pick: fn(&TtffRun) -> f64| {
            Summary::of(&runs.iter().map(pick).collect::<Vec<_>>()).map(|s| s.median)
        };
        let phase_medians = match (
            median(|r| r.login_ms),
            median(|r| r.created_ms),
            median(|r| r.connected_ms),
            median(|r| r.first_frame_ms),
        ) {
            (Some(login), Some(created), Some(connected), Some(first_frame)) => {
                Some(PhaseMedians {
                    login,
                    created,
                    connected,
                    first_frame,
                })
            }
            _ => None,
        };
        let first_frame = Summary::of(&runs.iter().map(|r| r.first_frame_ms).collect::<Vec<_>>());
        Self {
            stack,
            signaling: signaling.to_owned(),
            runs,
            failures,
            first_frame,
            phase_medians,
        }
    }
}

/// One load step: its measurement, or why it failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadStep {
    /// The stack.
    pub stack: StackArg,
    /// Concurrent sessions.
    pub sessions: usize,
    /// The worker's figures.
    pub result: Option<LoadResult>,
    /// Derived figures.
    pub derived: Option<LoadDerived>,
    /// Why the step failed.
    pub error: Option<String>,
}

/// Figures derived from a step (and, for memory, from the same stack's 1-session step).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LoadDerived {
    /// Client CPU ms per session-second.
    pub cpu_ms_per_session_second: f64,
    /// (RSS_N − RSS_1) / (N − 1), bytes.
    pub rss_per_extra_session_bytes: Option<f64>,
    /// Frames the camera sent in the window: sessions × fps × window.
    pub expected_frames: u64,
    /// Emulator child CPU ms per session-second.
    pub emulator_cpu_ms_per_session_second: Option<f64>,
}

impl LoadStep {
    /// A measured step; `single` is the same stack's 1-session result, if there is one.
    pub fn measured(result: LoadResult, single: Option<&LoadResult>, fps: u32) -> Self {
        let session_seconds = result.sessions as f64 * result.window_s;
        let rss_per_extra_session_bytes = single
            .filter(|single| result.sessions > 1 && single.sessions == 1)
            .map(|single| {
                (result.rss_bytes as f64 - single.rss_bytes as f64) / (result.sessions - 1) as f64
            });
        let derived = LoadDerived {
            cpu_ms_per_session_second: result.cpu_ms / session_seconds,
            rss_per_extra_session_bytes,
            expected_frames: (session_seconds * f64::from(fps)).round() as u64,
            emulator_cpu_ms_per_session_second: result
                .emulator_cpu_ms
                .map(|ms| ms / session_seconds),
        };
        Self {
            stack: result.stack,
            sessions: result.sessions,
            result: Some(result),
            derived: Some(derived),
            error: None,
        }
    }

    /// A step that failed.
    pub fn failed(stack: StackArg, sessions: usize, error: String) -> Self {
        Self {
            stack,
            sessions,
            result: None,
            derived: None,
            error: Some(error),
        }
    }
}

fn stack_name(stack: StackArg) -> &'static str {
    match stack {
        StackArg::Ours => "ours (webrtc-rs)",
        StackArg::Str0m => "peer (str0m)",
    }
}

impl BenchReport {
    /// The report as markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "#### `{}`\n", self.command);
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), Linux {}. Gateway: {}.\n",
            m.cpus,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            m.kernel.as_deref().unwrap_or("?"),
            self.gateway
        );
        ttff_table(&mut out, "Time to first frame, live", &self.ttff);
        ttff_table(
            &mut out,
            "Time to first frame, playback (recorded video from a requested time, speed 1)",
            &self.playback_ttff,
        );
        if let Some(export) = &self.export {
            export_table(&mut out, export);
        }
        if !self.load.is_empty() {
            let window = self
                .load
                .iter()
                .filter_map(|s| s.result.as_ref())
                .map(|r| r.window_s)
                .fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "Load, {} signaling, measured over {window:.0} s once every session had its first frame; each step in a fresh client process:\n",
                self.load_signaling.to_uppercase()
            );
            let _ = writeln!(
                out,
                "| sessions | stack | client CPU ms per session-second | client RSS | RSS per extra session | frames rx / expected ({} fps) | slowest session | all streaming after | emulator CPU ms per session-second |",
                self.fps
            );
            let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
            for step in &self.load {
                let (Some(r), Some(d)) = (&step.result, &step.derived) else {
                    let _ = writeln!(
                        out,
                        "| {} | {} | failed: {} | | | | | | |",
                        step.sessions,
                        stack_name(step.stack),
                        step.error.as_deref().unwrap_or("?").replace('|', "/")
                    );
                    continue;
                };
                let per_extra = d
                    .rss_per_extra_session_bytes
                    .map(|b| format!("{:.2} MB", b / MB))
                    .unwrap_or_else(|| "–".into());
                let emulator = d
                    .emulator_cpu_ms_per_session_second
                    .map(|c| format!("{c:.2}"))
                    .unwrap_or_else(|| "–".into());
                let failures = if r.failures > 0 {
                    format!(" ({} failed)", r.failures)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.1} MB | {per_extra} | {} / {}{failures} | {} frames | {:.0} ms | {emulator} |",
                    r.sessions,
                    stack_name(r.stack),
                    d.cpu_ms_per_session_second,
                    r.rss_bytes as f64 / MB,
                    r.frames,
                    d.expected_frames,
                    r.min_frames_per_session,
                    r.all_started_ms,
                );
            }
        }
        if let Some(faults) = &self.faults {
            faults_tables(&mut out, faults);
        }
        out
    }
}

/// Milliseconds, or "> cap" for a value above it.
fn capped_ms(value: Option<f64>, cap_ms: f64) -> String {
    value.map_or_else(
        || format!("> {:.0} s", cap_ms / 1000.0),
        |ms| format!("{ms:.0}"),
    )
}

/// The lasting-session tables: fault → first frame, then token switches.
fn faults_tables(out: &mut String, faults: &FaultBench) {
    let cap = faults.cap_ms;
    if !faults.cases.is_empty() {
        let _ = writeln!(
            out,
            "Fault → first frame, live, {} runs per row: ms from just before the fault's POST to the first frame of a gateway session started after it (after `Resumed`, or at a make-before-break switch); a run without one within {:.0} s counts as \"> {:.0} s\". Frames lost: gaps on the camera's capture grid (the SEI recording time / 40 ms) over the run.\n",
            faults.runs,
            cap / 1000.0,
            cap / 1000.0
        );
        let _ = writeln!(
            out,
            "| fault | signaling | client | median | min | max | runs > {:.0} s | frames lost, median (min–max) | repeated frames | gateway sessions per run | failed runs |",
            cap / 1000.0
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for figure in &faults.cases {
            let time = match &figure.fault_to_frame {
                Some(CappedSummary { median, min, max }) => format!(
                    "{} | {} | {}",
                    capped_ms(*median, cap),
                    min.map_or_else(|| "–".into(), |m| format!("{m:.0}")),
                    capped_ms(*max, cap)
                ),
                None => "– | – | –".into(),
            };
            let lost = match &figure.frames_lost {
                Some(CappedSummary {
                    median: Some(median),
                    min: Some(min),
                    max,
                }) => format!(
                    "{median:.0} ({min:.0}–{})",
                    max.map_or_else(|| "?".into(), |m| format!("{m:.0}"))
                ),
                Some(_) => "–".into(),
                None => "–".into(),
            };
            let above = figure
                .runs
                .iter()
                .filter(|r| r.fault_to_frame_ms.is_none())
                .count();
            let repeated: u64 = figure.runs.iter().map(|r| r.duplicates).sum();
            let sessions = sessions_range(figure.runs.iter().map(|r| r.sessions_started));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {time} | {above} | {lost} | {repeated} | {sessions} | {} |",
                figure.case,
                figure.signaling.to_uppercase(),
                figure.client.label(),
                figure.failures.len()
            );
        }
        let _ = writeln!(out);
    }
    if !faults.switches.is_empty() {
        let _ = writeln!(
            out,
            "Token switches, live over WebSocket with {} s tokens (a WebSocket session cannot take a new token, so each refresh means a new session): ours make-before-break, the peer closing its session on each refresh and starting a new one. Per switch, the {} frames delivered before and after it:\n",
            faults.token_lifetime_s, SWITCH_WINDOW_FRAMES
        );
        let _ = writeln!(
            out,
            "| session setup | client | streamed | switches | frames lost at each switch | repeated at each switch | largest gap at each switch (ms) | frames / lost / repeated, whole run | largest gap, whole run | gateway sessions | reconnects |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for figure in &faults.switches {
            let label = match figure.client {
                FaultClient::Lasting => "ours: `LastingSession` (make-before-break)",
                FaultClient::PlainLoop => "peer: `Session`, closed and restarted on refresh",
            };
            let setup = match figure.setup_delay_ms {
                0 => "loopback".to_owned(),
                ms => format!("candidates +{ms} ms"),
            };
            if let Some(error) = &figure.error {
                let _ = writeln!(
                    out,
                    "| {setup} | {label} | failed: {} | | | | | | | | |",
                    error.replace('|', "/")
                );
                continue;
            }
            let each = |pick: fn(&SwitchRun) -> String| {
                let values: Vec<String> = figure.switches.iter().map(pick).collect();
                if values.is_empty() {
                    "–".to_owned()
                } else {
                    values.join(", ")
                }
            };
            let _ = writeln!(
                out,
                "| {setup} | {label} | {:.0} s | {} | {} | {} | {} | {} / {} / {} | {:.0} ms | {} | {} |",
                figure.duration_s,
                figure.switches.len(),
                each(|s| s.frames_lost.to_string()),
                each(|s| s.duplicates.to_string()),
                each(|s| format!("{:.0}", s.largest_gap_ms)),
                figure.frames,
                figure.frames_lost,
                figure.duplicates,
                figure.largest_gap_ms,
                figure.sessions_started,
                match figure.client {
                    FaultClient::Lasting => figure.reconnects.to_string(),
                    FaultClient::PlainLoop => "–".to_owned(),
                },
            );
        }
        let _ = writeln!(out);
    }
}

/// "2" or "2–3".
fn sessions_range(counts: impl Iterator<Item = u64>) -> String {
    let counts: Vec<u64> = counts.collect();
    match (counts.iter().min(), counts.iter().max()) {
        (Some(min), Some(max)) if min == max => min.to_string(),
        (Some(min), Some(max)) => format!("{min}–{max}"),
        _ => "–".into(),
    }
}

/// A time-to-first-frame table, if there are figures.
fn ttff_table(out: &mut String, title: &str, figures: &[TtffFigure]) {
    if figures.is_empty() {
        return;
    }
    let runs = figures
        .iter()
        .map(|f| f.runs.len() + f.failures.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{title}, ms from the start of login ({runs} runs per row):\n"
    );
    let _ = writeln!(
        out,
        "| signaling | stack | median | p90 | min | max | login ✓ | session created | media connected | first frame | failed runs |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for figure in figures {
        let (summary, phases) = match (&figure.first_frame, &figure.phase_medians) {
            (Some(s), Some(p)) => (
                format!(
                    "{:.1} | {:.1} | {:.1} | {:.1}",
                    s.median, s.p90, s.min, s.max
                ),
                format!(
                    "{:.1} | {:.1} | {:.1} | {:.1}",
                    p.login, p.created, p.connected, p.first_frame
                ),
            ),
            _ => ("– | – | – | –".to_owned(), "– | – | – | –".to_owned()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {summary} | {phases} | {} |",
            figure.signaling.to_uppercase(),
            stack_name(figure.stack),
            figure.failures.len()
        );
    }
    let _ = writeln!(
        out,
        "\n(the four milestone columns are medians, each in ms since the start of login)\n"
    );
}

/// CPU seconds, or a dash when not measured.
fn cpu_seconds(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "–".into(), |s| format!("{s:.1} s"))
}

/// The export-speed table.
fn export_table(out: &mut String, export: &ExportBench) {
    let _ = writeln!(
        out,
        "Export of {} to {} (recording time), WS signaling, wall time from the start (after login) until the range is done:\n",
        export.from, export.to
    );
    let _ = writeln!(
        out,
        "| client | speed | frames / in range | sessions | wall time | × real time | gateway send cap | client CPU | emulator CPU |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for figure in &export.figures {
        let cap = figure
            .send_cap_fps
            .map(|fps| format!("≈ {fps:.0} frames/s"))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {:.1} s | {:.2} | {cap} | {} | {} |",
            figure.client,
            figure.speed,
            figure.frames,
            figure.expected_frames,
            figure.sessions,
            figure.wall_s,
            figure.realtime_ratio,
            cpu_seconds(figure.client_cpu_s),
            cpu_seconds(figure.emulator_cpu_s),
        );
    }
    for failure in &export.failures {
        let _ = writeln!(out, "\nfailed: {failure}");
    }
    let _ = writeln!(out);
}
