//! `export`: a recorded time range of one camera into an MP4, as fast as the gateway allows.

use crate::cli::{DtlsRoleArg, ExportArgs, StreamArgs};
use crate::settings;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use xprotect_client::export::{self, ExportEnd, ExportPlan, ExportProgress, ExportReport};
use xprotect_client::login::TokenSource;
use xprotect_client::record::OutputTarget;
use xprotect_proto::clock::format_rfc3339_millis;

/// Progress lines are redrawn at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (gateway, credentials) = settings::connection(&args.connection)?;
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .context("login failed")?;
    let device = settings::resolve_camera(&gateway, &tokens, &args.camera).await?;
    let stream = StreamArgs {
        camera: args.camera.clone(),
        stream: args.stream.clone(),
        signaling: Some(args.signaling),
        dtls_role: DtlsRoleArg::Passive,
        mdns: false,
        bind: args.bind,
        // The export sets its own playback parameters per session.
        from: None,
        speed: None,
        skip_gaps: false,
        // Exports are video only (they play at speeds other than 1, where there is no audio).
        audio: false,
        no_audio: true,
        ice: args.ice.clone(),
    };
    let options = settings::session_options(&stream, device)?;
    let mut plan = ExportPlan::new(args.from, args.to, OutputTarget::parse(&args.output));
    plan.close_gaps = args.close_gaps;
    plan.max_speed = args.speed;
    plan.end_wait = args.end_wait;
    plan.parallel = usize::from(args.parallel);

    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let (report, outcome) = export::export(
        gateway,
        &tokens,
        options,
        plan,
        started,
        |p| progress.update(p),
        super::interrupted(),
    )
    .await;
    progress.clear();
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
    match outcome {
        Ok(end) => {
            print_summary(&report, end, &args.output, args.close_gaps);
            Ok(())
        }
        Err(error) if report.frames > 0 => {
            print_summary(&report, ExportEnd::Cancelled, &args.output, args.close_gaps);
            Err(anyhow::Error::new(error)
                .context(format!("the export stopped after {} frames", report.frames)))
        }
        Err(error) => Err(error.into()),
    }
}

/// A one-line progress display on a terminal's stderr.
struct Progress {
    enabled: bool,
    last_drawn: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            last_drawn: None,
            drawn: false,
        }
    }

    fn update(&mut self, progress: &ExportProgress) {
        if !self.enabled
            || self
                .last_drawn
                .is_some_and(|at| at.elapsed() < PROGRESS_EVERY)
        {
            return;
        }
        self.last_drawn = Some(Instant::now());
        self.drawn = true;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2Kexport: {:>3.0}%  at {}  {} frames  speed {}",
            progress.done * 100.0,
            format_rfc3339_millis(progress.recorded_up_to),
            progress.frames,
            progress.speed
        );
        let _ = stderr.flush();
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
        }
    }
}

/// The summary goes to stderr: stdout may be the video.
fn print_summary(report: &ExportReport, end: ExportEnd, output: &str, close_gaps: bool) {
    let range = Duration::try_from(report.to - report.from).unwrap_or_default();
    eprintln!(
        "range: {} to {} ({:.1} s)",
        format_rfc3339_millis(report.from),
        format_rfc3339_millis(report.to),
        range.as_secs_f64()
    );
    eprintln!(
        "frames: {} ({} keyframes, {:.1} MB of H.264) written to {output} ({:.1} MB)",
        report.frames,
        report.keyframes,
        report.video_bytes as f64 / 1e6,
        report.output_bytes as f64 / 1e6
    );
    if let (Some(first), Some(last)) = (report.first_frame, report.last_frame) {
        eprintln!("first frame: {}", format_rfc3339_millis(first));
        eprintln!("last frame:  {}", format_rfc3339_millis(last));
    }
    if report.gaps.is_empty() {
        eprintln!("gaps: none");
    } else {
        let treatment = if close_gaps {
            "closed in the file's timeline"
        } else {
            "kept in the file's timeline"
        };
        eprintln!(
            "gaps: {} ({:.3} s in all, {treatment})",
            report.gaps.len(),
            report.gap_total().as_secs_f64()
        );
        for gap in &report.gaps {
            eprintln!(
                "  from {} for {:.3} s",
                format_rfc3339_millis(gap.start),
                gap.length.as_secs_f64()
            );
        }
    }
    match report.speed_limit {
        Some(limit) => eprintln!(
            "speed: {} — at speed {} the gateway sent one frame per {} ms of recording instead of \
             every {} ms (about {:.0} frames/s, dropping the rest), so the export used the \
             fastest speed that keeps every frame",
            report.speed,
            limit.dropped_at,
            limit.step.as_millis(),
            limit.interval.as_millis(),
            limit.send_fps()
        ),
        None => eprintln!("speed: {}", report.speed),
    }
    eprintln!(
        "wall time: {:.1} s for {:.1} s of recording ({:.1}× real time, {} chunks, {} sessions)",
        report.wall_time.as_secs_f64(),
        report.recorded_span().as_secs_f64(),
        report.realtime_ratio(),
        report.chunks,
        report.sessions
    );
    if report.spilled_chunks > 0 {
        eprintln!(
            "buffering: {} chunks waited in spill files next to the output (over {} MiB in memory)",
            report.spilled_chunks,
            export::MEMORY_BUDGET / (1024 * 1024)
        );
    }
    match end {
        ExportEnd::ReachedTo => eprintln!("complete: reached the end of the range"),
        ExportEnd::RecordingsEnded => {
            let ended_at = report
                .last_frame
                .map(|last| last + report.frame_interval.unwrap_or_default());
            match ended_at {
                Some(ended_at) => eprintln!(
                    "complete: the recordings end at {} (no recording after it up to {})",
                    format_rfc3339_millis(ended_at),
                    format_rfc3339_millis(report.to)
                ),
                None => eprintln!("complete: no more recordings"),
            }
        }
        ExportEnd::Cancelled => eprintln!("stopped early: the file holds the frames above"),
        ExportEnd::OutputClosed => eprintln!("stopped: the reader of the output went away"),
    }
}
