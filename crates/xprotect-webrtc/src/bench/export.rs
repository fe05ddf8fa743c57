//! Export speed: how long our `export` takes for a stretch of recording, next to the str0m peer
//! playing the same range (same signaling and depacketiser, no MP4) and only counting frames.
//!
//! The peer runs twice: at the speed our export settled on (what the gateway allows without
//! dropping frames: the protocol's bound for a complete export) and at speed 32 (the fastest the
//! protocol accepts, showing how many frames the gateway drops at it).

use super::procfs::{CpuSample, Pid};
use super::session::{BenchSession, ProbeEvent};
use crate::cli::StackArg;
use anyhow::{Context, bail};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use xprotect_client::export::{self, ExportEnd, ExportPlan};
use xprotect_client::gateway::Gateway;
use xprotect_client::login::TokenSource;
use xprotect_client::record::OutputTarget;
use xprotect_client::session::SessionOptions;
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::Playback;

/// No frame for this long means the gateway has no more recording (as `export --end-wait`).
const END_WAIT: Duration = Duration::from_secs(5);
/// Slack on top of the range's playing time before a run counts as hung.
const RUN_SLACK: Duration = Duration::from_secs(60);

/// One client's export of the range.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportFigure {
    /// Who: our `export`, or the peer at some speed.
    pub client: String,
    /// The playback speed used (ours: the one it settled on).
    pub speed: f64,
    /// Frames received in the range (ours: written to the MP4).
    pub frames: u64,
    /// Frames of the range at the camera's frame rate, if it is fully recorded.
    pub expected_frames: u64,
    /// Sessions opened (ours: the probe and one per speed tried).
    pub sessions: u32,
    /// From the start (after login) until the range was done.
    pub wall_s: f64,
    /// Recording time covered.
    pub recorded_s: f64,
    /// `recorded_s / wall_s`.
    pub realtime_ratio: f64,
    /// Frames per second the gateway sent when it dropped frames (ours: seen at the speed it
    /// first tried).
    pub send_cap_fps: Option<f64>,
    /// CPU seconds this process (the client) spent on the run, if measured.
    pub client_cpu_s: Option<f64>,
    /// CPU seconds the emulator child spent on the run (encoding GOPs not yet in its cache,
    /// packetising, DTLS/SRTP), if it is ours to measure.
    pub emulator_cpu_s: Option<f64>,
}

/// CPU clocks of the client and the emulator at the start of a run.
struct CpuAtStart {
    client: Option<CpuSample>,
    emulator: Option<(u32, CpuSample)>,
}

impl CpuAtStart {
    fn read(emulator_pid: Option<u32>) -> Self {
        Self {
            client: CpuSample::read(Pid::Current).ok(),
            emulator: emulator_pid
                .and_then(|pid| Some((pid, CpuSample::read(Pid::Other(pid)).ok()?))),
        }
    }

    /// (client, emulator) CPU seconds since the start.
    fn spent(&self) -> (Option<f64>, Option<f64>) {
        let client = self.client.and_then(|start| {
            let now = CpuSample::read(Pid::Current).ok()?;
            Some(now.since(&start).best().as_secs_f64())
        });
        let emulator = self.emulator.and_then(|(pid, start)| {
            let now = CpuSample::read(Pid::Other(pid)).ok()?;
            Some(now.since(&start).best().as_secs_f64())
        });
        (client, emulator)
    }
}

/// Our `export` of `[from, from + length)` with `parallel` sessions into a temporary MP4
/// (removed afterwards); the emulator's CPU is measured if `emulator_pid` is given.
#[allow(clippy::too_many_arguments)]
pub async fn ours(
    gateway: &Gateway,
    credentials: &Credentials,
    options: &SessionOptions,
    from: OffsetDateTime,
    length: Duration,
    fps: u32,
    parallel: usize,
    emulator_pid: Option<u32>,
) -> anyhow::Result<ExportFigure> {
    let tokens = TokenSource::login(gateway.clone(), credentials.clone())
        .await
        .context("login failed")?;
    let path =
        std::env::temp_dir().join(format!("xprotect-bench-export-{}.mp4", std::process::id()));
    let mut plan = ExportPlan::new(from, from + length, OutputTarget::File(path.clone()));
    plan.parallel = parallel;
    let cpu = CpuAtStart::read(emulator_pid);
    let started = Instant::now();
    let run = export::export(
        gateway.clone(),
        &tokens,
        options.clone(),
        plan,
        started,
        |_| {},
        std::future::pending(),
    );
    let outcome = tokio::time::timeout(length + RUN_SLACK, run).await;
    let _ = std::fs::remove_file(&path);
    let (client_cpu_s, emulator_cpu_s) = cpu.spent();
    let (report, end) = outcome.context("the export did not finish in time")?;
    match end.context("the export failed")? {
        ExportEnd::ReachedTo | ExportEnd::RecordingsEnded => {}
        other => bail!("the export stopped early: {other:?}"),
    }
    Ok(ExportFigure {
        client: format!(
            "ours: `export --parallel {parallel}` to MP4 (webrtc-rs, {} chunk{})",
            report.chunks,
            if report.chunks == 1 { "" } else { "s" }
        ),
        speed: report.speed,
        frames: report.frames,
        expected_frames: expected_frames(length, fps),
        sessions: report.sessions,
        wall_s: report.wall_time.as_secs_f64(),
        recorded_s: report.recorded_span().as_secs_f64(),
        realtime_ratio: report.realtime_ratio(),
        send_cap_fps: report.speed_limit.map(|limit| limit.send_fps()),
        client_cpu_s,
        emulator_cpu_s,
    })
}

/// The str0m peer plays `[from, from + length)` at `speed` with skipGaps and counts the frames
/// before the first one at or after the end.
pub async fn peer(
    gateway: &Gateway,
    credentials: &Credentials,
    options: &SessionOptions,
    from: OffsetDateTime,
    length: Duration,
    speed: f64,
    fps: u32,
) -> anyhow::Result<ExportFigure> {
    let tokens = TokenSource::login(gateway.clone(), credentials.clone())
        .await
        .context("login failed")?;
    let mut options = options.clone();
    options.params.playback = Some(Playback {
        start: from,
        skip_gaps: true,
        speed,
    });
    let to = from + length;
    let started = Instant::now();
    let mut session = BenchSession::start(StackArg::Str0m, gateway.clone(), &tokens, options)?;
    let limit = length.div_f64(speed) + RUN_SLACK;
    let (mut frames, mut first, mut last) = (0u64, None, None);
    let counted = tokio::time::timeout(limit, async {
        loop {
            let quiet = if frames > 0 { END_WAIT } else { RUN_SLACK };
            let event = match tokio::time::timeout(quiet, session.next_event()).await {
                Ok(event) => event,
                Err(_) if frames > 0 => return Ok(()), // the recordings ended
                Err(_) => bail!("no frame within {quiet:?}"),
            };
            match event {
                Some(ProbeEvent::Frame { rtp_timestamp, .. }) => {
                    let time = from + Duration::from_millis(u64::from(rtp_timestamp));
                    if time >= to {
                        return Ok(());
                    }
                    frames += 1;
                    first.get_or_insert(time);
                    last = Some(time);
                }
                Some(ProbeEvent::Ended(Err(error))) => bail!("the session failed: {error}"),
                Some(ProbeEvent::Ended(Ok(()))) | None => bail!("the session ended early"),
                Some(_) => {}
            }
        }
    })
    .await;
    let wall = started.elapsed();
    super::ttff::close(&mut session).await;
    counted.context("the peer did not finish in time")??;
    let recorded = match (first, last) {
        (Some(first), Some(last)) => {
            Duration::try_from(last - first).unwrap_or_default()
                + Duration::from_secs(1) / fps.max(1)
        }
        _ => Duration::ZERO,
    };
    let expected = expected_frames(length, fps);
    Ok(ExportFigure {
        client: format!("peer (str0m), counting frames at speed {speed}"),
        speed,
        frames,
        expected_frames: expected,
        sessions: 1,
        wall_s: wall.as_secs_f64(),
        recorded_s: recorded.as_secs_f64(),
        realtime_ratio: recorded.as_secs_f64() / wall.as_secs_f64().max(f64::MIN_POSITIVE),
        send_cap_fps: (frames < expected).then(|| frames as f64 / wall.as_secs_f64()),
        client_cpu_s: None,
        emulator_cpu_s: None,
    })
}

fn expected_frames(length: Duration, fps: u32) -> u64 {
    (length.as_secs_f64() * f64::from(fps)).round() as u64
}
