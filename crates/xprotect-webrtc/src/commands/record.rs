//! `record`: one camera into a file or stdout.

use super::command_lines::CommandSource;
use super::record_stats::{CounterSource, Monitor, MonitorConfig};
use crate::cli::{FormatArg, RecordArgs};
use crate::settings;
use anyhow::{Context, bail};
use std::time::{Duration, Instant};
use xprotect_client::diagnostics::ReconnectCounters;
use xprotect_client::gateway::Gateway;
use xprotect_client::lasting::{LastingOptions, LastingSession};
use xprotect_client::login::TokenSource;
use xprotect_client::record::{FrameLog, OutputFormat, OutputTarget, VideoWriter};
use xprotect_client::recorder::{self, RecordPlan, RecordStats, StopReason};
use xprotect_client::session::SessionOptions;
use xprotect_proto::clock::format_rfc3339_millis;

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = OutputTarget::parse(&args.output);
    let frame_target = args.frame_times.as_deref().map(OutputTarget::parse);
    if target == OutputTarget::Stdout && frame_target == Some(OutputTarget::Stdout) {
        bail!("-o - and --frame-times - both want stdout: send one of them to a file");
    }
    let monitor = MonitorConfig::new(args.stats.as_deref(), args.stats_interval);
    if monitor.stats == Some(OutputTarget::Stdout)
        && (target == OutputTarget::Stdout || frame_target == Some(OutputTarget::Stdout))
    {
        bail!("--stats - shares stdout with another output: send one of them to a file");
    }
    settings::check_release(&args.connection, &args.stream)?;
    let format = match args.format {
        Some(FormatArg::Mp4) => OutputFormat::Mp4,
        Some(FormatArg::H264) => OutputFormat::H264,
        None if args.output.ends_with(".h264") || args.output.ends_with(".264") => {
            OutputFormat::H264
        }
        None => OutputFormat::Mp4,
    };
    let commands = args
        .commands
        .as_deref()
        .map(CommandSource::open)
        .transpose()?;
    let (gateway, credentials) = settings::connection(&args.connection)?;
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .context("login failed")?;
    let device = settings::resolve_camera(&gateway, &tokens, &args.stream.camera).await?;
    let mut options = settings::session_options(&args.stream, device)?;
    // A microphone's session is audio only: its MP4 has just the audio track.
    let microphone = settings::is_microphone(&gateway, &tokens, device).await;
    let chosen = args.stream.signaling;
    settings::adapt_to_gateway(&gateway, &args.connection, chosen, microphone, &mut options)
        .await?;
    let plan = RecordPlan {
        duration: args.duration,
        until: args.to,
        video: Some(VideoWriter::create_with_tracks(
            &target,
            format,
            !microphone,
            microphone || options.params.include_audio,
        )?),
        frame_log: frame_target
            .map(|t| t.open().map(FrameLog::new))
            .transpose()?,
    };
    let options = settings::lasting_options(&args.reconnect, options);
    let stats =
        record_with_commands(gateway, &tokens, options, plan, started, commands, monitor).await?;
    print_summary(&stats, &args.output);
    Ok(())
}

/// Record one session into `plan`, ending on the plan's duration or Ctrl-C.
pub async fn record_with(
    gateway: Gateway,
    tokens: &TokenSource,
    options: SessionOptions,
    plan: RecordPlan,
    started: Instant,
) -> anyhow::Result<RecordStats> {
    let no_monitor = MonitorConfig {
        stats: None,
        interval: Duration::from_secs(5),
        status_line: false,
    };
    let options = LastingOptions::new(options);
    record_with_commands(gateway, tokens, options, plan, started, None, no_monitor).await
}

/// [`record_with`], sending the PTZ/aux commands read from `commands` while recording.
async fn record_with_commands(
    gateway: Gateway,
    tokens: &TokenSource,
    options: LastingOptions,
    plan: RecordPlan,
    started: Instant,
    commands: Option<CommandSource>,
    monitor: MonitorConfig,
) -> anyhow::Result<RecordStats> {
    let session = LastingSession::start(gateway, tokens, options);
    let watch = session.counters_watch();
    let counters: CounterSource = Box::new(move || {
        let counters = watch.borrow();
        ReconnectCounters {
            sessions_started: counters.sessions_started,
            reconnects: counters.reconnects,
            replacements: counters.replacements,
        }
    });
    let monitor = Monitor::start(
        session.stats_handle(),
        tokens.subscribe(),
        counters,
        monitor,
        started,
    )?;
    let feed = commands.map(|source| source.spawn(session.command_sender()));
    let (stats, outcome) = recorder::record(session, plan, started, super::interrupted()).await;
    if let Some(feed) = feed {
        feed.abort();
    }
    if let Err(error) = monitor.finish(Some(&stats)).await {
        tracing::warn!("{error:#}");
    }
    for warning in &stats.warnings {
        tracing::warn!("{warning}");
    }
    match outcome {
        Ok(
            StopReason::Duration
            | StopReason::ReachedUntil
            | StopReason::Cancelled
            | StopReason::OutputClosed,
        ) => Ok(stats),
        Err(error) if stats.frames > 0 => {
            print_summary(&stats, "the output");
            Err(anyhow::Error::new(error)
                .context(format!("recording stopped after {} frames", stats.frames)))
        }
        Err(error) => Err(error.into()),
    }
}

/// The summary goes to stderr: stdout may be the video.
pub fn print_summary(stats: &RecordStats, output: &str) {
    let ttff = stats
        .time_to_first_frame
        .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into());
    eprintln!("time to first frame: {ttff}");
    eprintln!(
        "frames: {} ({} keyframes, {:.1} MB of H.264) written to {output}",
        stats.frames,
        stats.keyframes,
        stats.video_bytes as f64 / 1e6
    );
    if let (Some(first), Some(last)) = (stats.first_frame_time, stats.last_frame_time) {
        eprintln!("first frame: {}", format_rfc3339_millis(first));
        eprintln!("last frame:  {}", format_rfc3339_millis(last));
    }
    if stats.reconnects > 0 {
        let outage = stats
            .longest_outage
            .map(|d| format!("; longest outage {:.1} s", d.as_secs_f64()))
            .unwrap_or_default();
        eprintln!("reconnects: {}{outage}", stats.reconnects);
    }
}
