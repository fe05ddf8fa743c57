//! `bench-worker`: one load step in a process of its own — N concurrent sessions of one stack,
//! measured over a window that starts once every session has its first frame. Prints one JSON
//! line ([`LoadResult`]) on stdout; progress goes to stderr.

use super::procfs::{CpuSample, Memory, Pid};
use super::session::{BenchSession, ProbeEvent, bench_options, credentials, local_ip_towards};
use crate::cli::{BenchWorkerArgs, StackArg};
use crate::settings;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::login::TokenSource;
use xprotect_proto::wire::DeviceId;

/// Every session must have its first frame by then (they start together, so allow for the
/// queue of handshakes on a busy machine).
const BASE_START_TIMEOUT: Duration = Duration::from_secs(20);
const START_TIMEOUT_PER_SESSION: Duration = Duration::from_millis(200);
/// Sessions told to close that have not ended by then are dropped (aborted).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The figures of one load step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadResult {
    /// The stack.
    pub stack: StackArg,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Length of the measuring window, in seconds.
    pub window_s: f64,
    /// Client CPU (user + system) over the window, ms: the precise figure (see `procfs`).
    pub cpu_ms: f64,
    /// The same from `/proc/self/stat` (10 ms ticks, counts exited threads too).
    pub cpu_ms_stat: f64,
    /// The same from the threads' `schedstat` (ns).
    pub cpu_ms_schedstat: f64,
    /// Video frames delivered in the window, all sessions.
    pub frames: u64,
    /// The fewest any one session got in the window.
    pub min_frames_per_session: u64,
    /// Client RSS at the end of the window, bytes.
    pub rss_bytes: u64,
    /// Client peak RSS, bytes.
    pub peak_rss_bytes: u64,
    /// Client RSS after login, before any session, bytes.
    pub rss_before_sessions_bytes: u64,
    /// Time from starting all sessions until the last one had its first frame, ms.
    pub all_started_ms: f64,
    /// Emulator child CPU over the same window, ms (when its pid was given).
    pub emulator_cpu_ms: Option<f64>,
    /// Sessions that failed during the window.
    pub failures: usize,
}

/// One session's counters, shared with the task that drains its events.
#[derive(Debug, Default)]
struct Counters {
    frames: AtomicU64,
}

pub async fn run(args: BenchWorkerArgs) -> anyhow::Result<()> {
    if args.sessions == 0 {
        bail!("--sessions must be at least 1");
    }
    let camera: DeviceId = args
        .camera
        .parse()
        .with_context(|| format!("--camera: `{}` is not a GUID", args.camera))?;
    let gateway = Gateway::new(&GatewayConfig::new(args.gateway.clone()))?;
    let bind_ip = local_ip_towards(&args.gateway)?;
    let options = bench_options(camera, settings::signaling(args.signaling), bind_ip);
    let tokens = TokenSource::login(gateway.clone(), credentials(&args.user, &args.password))
        .await
        .context("login failed")?;
    let before_sessions = Memory::read(Pid::Current)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut counters = Vec::with_capacity(args.sessions);
    let mut first_frames = Vec::with_capacity(args.sessions);
    let mut tasks = Vec::with_capacity(args.sessions);
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for _ in 0..args.sessions {
        let session = BenchSession::start(args.stack, gateway.clone(), &tokens, options.clone())?;
        let counter = Arc::new(Counters::default());
        let (first_tx, first_rx) = oneshot::channel();
        tasks.push(tokio::spawn(drive(
            session,
            counter.clone(),
            first_tx,
            stop_rx.clone(),
            failures.clone(),
        )));
        counters.push(counter);
        first_frames.push(first_rx);
    }
    let start_timeout = BASE_START_TIMEOUT + START_TIMEOUT_PER_SESSION * args.sessions as u32;
    let all_first = async {
        for (index, first) in first_frames.into_iter().enumerate() {
            match first.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => bail!(
                    "session {} of {} failed before its first frame: {error}",
                    index + 1,
                    args.sessions
                ),
                Err(_) => bail!(
                    "session {} of {} ended before its first frame",
                    index + 1,
                    args.sessions
                ),
            }
        }
        Ok(())
    };
    tokio::time::timeout(start_timeout, all_first)
        .await
        .with_context(|| {
            format!(
                "not every one of {} sessions had a frame within {start_timeout:?}",
                args.sessions
            )
        })??;
    let all_started_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "  {} {:?} sessions streaming after {all_started_ms:.0} ms; measuring {:?}",
        args.sessions, args.stack, args.duration
    );

    let emulator = args.emulator_pid.map(Pid::Other);
    let frames_before: Vec<u64> = counters
        .iter()
        .map(|c| c.frames.load(Ordering::Relaxed))
        .collect();
    let failures_before = failures.load(Ordering::Relaxed);
    let emulator_before = emulator.map(CpuSample::read).transpose()?;
    let cpu_before = CpuSample::read(Pid::Current)?;
    let window_start = Instant::now();
    // The measuring window: the sessions run on their own tasks meanwhile.
    tokio::time::sleep(args.duration).await;
    let cpu = CpuSample::read(Pid::Current)?.since(&cpu_before);
    let window = window_start.elapsed();
    let emulator_cpu = match (emulator, emulator_before) {
        (Some(pid), Some(before)) => Some(CpuSample::read(pid)?.since(&before).best()),
        _ => None,
    };
    let memory = Memory::read(Pid::Current)?;
    let per_session: Vec<u64> = counters
        .iter()
        .zip(&frames_before)
        .map(|(c, before)| c.frames.load(Ordering::Relaxed) - before)
        .collect();
    let failed_in_window = failures.load(Ordering::Relaxed) - failures_before;

    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(STOP_TIMEOUT, task).await;
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let result = LoadResult {
        stack: args.stack,
        sessions: args.sessions,
        window_s: window.as_secs_f64(),
        cpu_ms: ms(cpu.best()),
        cpu_ms_stat: ms(cpu.ticks),
        cpu_ms_schedstat: ms(cpu.scheduled),
        frames: per_session.iter().sum(),
        min_frames_per_session: per_session.iter().copied().min().unwrap_or(0),
        rss_bytes: memory.rss_bytes,
        peak_rss_bytes: memory.peak_rss_bytes,
        rss_before_sessions_bytes: before_sessions.rss_bytes,
        all_started_ms,
        emulator_cpu_ms: emulator_cpu.map(ms),
        failures: usize::try_from(failed_in_window).unwrap_or(usize::MAX),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Drains one session's events: counts frames, reports the first, closes on `stop`.
async fn drive(
    mut session: BenchSession,
    counters: Arc<Counters>,
    first: oneshot::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
    failures: Arc<AtomicU64>,
) {
    let mut first = Some(first);
    loop {
        tokio::select! {
            event = session.next_event() => match event {
                Some(ProbeEvent::Frame { .. }) => {
                    counters.frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                }
                Some(ProbeEvent::Ended(result)) => {
                    if let Err(error) = &result {
                        tracing::warn!("session failed: {error}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(first) = first.take() {
                        let _ = first.send(result.and(Err("ended".into())));
                    }
                    return;
                }
                Some(ProbeEvent::Warning(text)) => tracing::debug!("{text}"),
                Some(ProbeEvent::Created | ProbeEvent::Connected) => {}
                None => return,
            },
            _ = stop.changed() => {
                super::ttff::close(&mut session).await;
                return;
            }
        }
    }
}
