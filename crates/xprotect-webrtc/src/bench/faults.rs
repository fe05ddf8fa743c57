//! Sessions that last: how long the stream is gone after a gateway fault, and what a token
//! replacement costs, for our `LastingSession` next to a plain `Session` restarted in a loop.
//!
//! ```text
//!  fault figures: emulator child (--fault-control)
//!    per case × run × client: login ─► client streams ~1 s ─► POST /emulator/faults ─► first frame
//!    of a gateway session started after it ─► 1 s more ─► close ─► DELETE /emulator/faults
//!  switch figures: emulator child (--token-lifetime 10) ─► one WS client per kind for ~35 s;
//!    every token refresh is a switch: ours make-before-break, the peer break-before-make
//! ```
//!
//! Frames are identified by the emulator's SEI stamp (the camera's frame counter and capture
//! time, [`CameraFrame`]), so lost and repeated frames are counted whatever the client did to
//! the stream.

use super::session::bench_options;
use anyhow::{Context, bail};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::lasting::{LastingCounters, LastingOptions, LastingSession};
use xprotect_client::login::{TokenSource, TokenState};
use xprotect_client::session::{Session, SessionEvent, SessionOptions, SignalingKind};
use xprotect_emulator::Fault;
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::signal::{Credentials, HttpBody, HttpMethod, HttpRequest};
use xprotect_proto::wire::DeviceId;

/// Frames the client delivers before the fault (25 fps: about 1 s).
const FRAMES_BEFORE: usize = 25;
/// Frames counted after the first continuing frame, so that repeats right after a splice or a
/// restart show up in the duplicate count (25 fps: about 1 s).
const FRAMES_AFTER: usize = 25;
/// A run whose client has not delivered [`FRAMES_BEFORE`] frames by then failed.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long a closed client may take to end before the next run starts anyway.
const CLOSE_LIMIT: Duration = Duration::from_secs(3);
/// What a user's restart loop waits after a session that delivered nothing (it failed to start),
/// so that it does not spin while the gateway is away; after a session that streamed, it
/// restarts at once. The same first steps as the lasting session's default backoff.
const PLAIN_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Frames on either side of a switch that make up its window in the switch figures.
pub const SWITCH_WINDOW_FRAMES: usize = 25;
/// The token lifetime of the switch figures' emulator (seconds, its `--token-lifetime`).
pub const SWITCH_TOKEN_LIFETIME_S: u64 = 10;

/// One fault of the fault → first frame figures, over one transport.
#[derive(Debug, Clone)]
pub struct FaultCase {
    /// How the report names it, e.g. `HttpStatus 503 ×2, then DropSessions`.
    pub name: &'static str,
    /// The transport of the clients' sessions.
    pub signaling: SignalingKind,
    /// Injected first (a condition for the reconnect), if any.
    pub before: Option<Fault>,
    /// The fault that ends the stream; the clock starts just before it is posted.
    pub fault: Fault,
}

/// The cases, in the order they run.
pub fn fault_cases() -> Vec<FaultCase> {
    use SignalingKind::{Rest, WebSocket};
    let case = |name, signaling, before, fault| FaultCase {
        name,
        signaling,
        before,
        fault,
    };
    vec![
        case("DropSessions", WebSocket, None, Fault::DropSessions),
        case("DropSessions", Rest, None, Fault::DropSessions),
        case("CloseWebSockets", WebSocket, None, Fault::CloseWebSockets),
        case("StopMedia", WebSocket, None, Fault::StopMedia),
        case("StopMedia", Rest, None, Fault::StopMedia),
        case(
            "RestartSignaling 500 ms",
            WebSocket,
            None,
            Fault::RestartSignaling { down_millis: 500 },
        ),
        case(
            "HttpStatus 503 ×2, then DropSessions",
            WebSocket,
            Some(Fault::HttpStatus {
                status: 503,
                count: 2,
            }),
            Fault::DropSessions,
        ),
        case(
            "DelayCandidates 500 ms, then DropSessions",
            Rest,
            Some(Fault::DelayCandidates { millis: 500 }),
            Fault::DropSessions,
        ),
    ]
}

/// Which client a figure is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClient {
    /// Ours: `LastingSession` with the library's defaults (as `record` runs it).
    Lasting,
    /// The peer: a plain `Session` with the library's defaults, started again whenever it ends
    /// (fault figures), or closed and started again on each token refresh (switch figures).
    PlainLoop,
}

impl FaultClient {
    /// Both, in the order they run.
    pub const ALL: [FaultClient; 2] = [FaultClient::Lasting, FaultClient::PlainLoop];

    /// The report's name for it.
    pub fn label(self) -> &'static str {
        match self {
            FaultClient::Lasting => "ours: `LastingSession`",
            FaultClient::PlainLoop => "peer: `Session` restarted when it ends",
        }
    }
}

/// One run of one fault case with one client.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaultRun {
    /// From just before the fault's POST to the first frame of a gateway session started after
    /// it (or to a make-before-break switch); `None`: none within the cap.
    pub fault_to_frame_ms: Option<f64>,
    /// Camera frames missing between the last frame before and the first after (capture-grid
    /// gaps over the whole run); `None` when the stream did not continue within the cap.
    pub frames_lost: Option<u64>,
    /// Frames delivered again (a frame counter not above the highest one delivered before).
    pub duplicates: u64,
    /// Gateway sessions the client started (the first one included).
    pub sessions_started: u64,
    /// Frames the client delivered in the run.
    pub frames: u64,
}

/// A median, minimum and maximum where some values are only known to be above the cap.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CappedSummary {
    /// `None`: above the cap.
    pub median: Option<f64>,
    /// `None`: every value above the cap.
    pub min: Option<f64>,
    /// `None`: some value above the cap.
    pub max: Option<f64>,
}

impl CappedSummary {
    /// `None` for an empty sample; `None` values are above the cap.
    pub fn of(values: &[Option<f64>]) -> Option<Self> {
        // Known values in order, then the ones above the cap.
        let mut known: Vec<f64> = values.iter().flatten().copied().collect();
        known.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return None;
        }
        let at = |index: usize| known.get(index).copied();
        let median = if n % 2 == 1 {
            at(n / 2)
        } else {
            at(n / 2 - 1).zip(at(n / 2)).map(|(a, b)| (a + b) / 2.0)
        };
        Some(Self {
            median,
            min: known.first().copied(),
            max: if known.len() == n {
                known.last().copied()
            } else {
                None
            },
        })
    }
}

/// Every run of one case with one client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultFigure {
    /// The case's name.
    pub case: String,
    /// `rest` or `ws`.
    pub signaling: String,
    /// The client.
    pub client: FaultClient,
    /// Every run that got as far as the fault.
    pub runs: Vec<FaultRun>,
    /// Runs that failed before the fault, and why.
    pub failures: Vec<String>,
    /// Of `fault_to_frame_ms` (runs above the cap count as above every other).
    pub fault_to_frame: Option<CappedSummary>,
    /// Of `frames_lost`, likewise.
    pub frames_lost: Option<CappedSummary>,
}

impl FaultFigure {
    fn new(case: &FaultCase, client: FaultClient) -> Self {
        Self {
            case: case.name.to_owned(),
            signaling: signaling_name(case.signaling).to_owned(),
            client,
            runs: Vec::new(),
            failures: Vec::new(),
            fault_to_frame: None,
            frames_lost: None,
        }
    }

    fn summarise(&mut self) {
        let times: Vec<Option<f64>> = self.runs.iter().map(|r| r.fault_to_frame_ms).collect();
        let lost: Vec<Option<f64>> = self
            .runs
            .iter()
            .map(|r| r.frames_lost.map(|n| n as f64))
            .collect();
        self.fault_to_frame = CappedSummary::of(&times);
        self.frames_lost = CappedSummary::of(&lost);
    }
}

/// One token refresh during a switch run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SwitchRun {
    /// When, in seconds since the client started.
    pub at_s: f64,
    /// Camera frames missing in the window around it (gaps on the capture grid).
    pub frames_lost: u64,
    /// Frames delivered twice in that window.
    pub duplicates: u64,
    /// The longest time between two delivered frames in that window, ms.
    pub largest_gap_ms: f64,
}

/// One client over the switch run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwitchFigure {
    /// The client.
    pub client: FaultClient,
    /// How long the emulator held back each new session's candidates (0: loopback speed), ms.
    pub setup_delay_ms: u64,
    /// How long it streamed, s.
    pub duration_s: f64,
    /// Every switch (token refresh).
    pub switches: Vec<SwitchRun>,
    /// Frames delivered.
    pub frames: u64,
    /// Frames missing over the whole run.
    pub frames_lost: u64,
    /// Frames repeated over the whole run.
    pub duplicates: u64,
    /// The longest time between two delivered frames over the whole run, ms.
    pub largest_gap_ms: f64,
    /// Gateway sessions started.
    pub sessions_started: u64,
    /// Sessions started after a loss (ours; expected 0 here).
    pub reconnects: u64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// The whole section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultBench {
    /// Runs per case and client.
    pub runs: usize,
    /// Runs without a continuing frame this long after the fault are "above the cap".
    pub cap_ms: f64,
    /// Fault → first frame, per case and client.
    pub cases: Vec<FaultFigure>,
    /// The token lifetime of the switch figures, s.
    pub token_lifetime_s: u64,
    /// Frames lost at token switches, per client.
    pub switches: Vec<SwitchFigure>,
}

impl FaultBench {
    /// Runs and clients that failed outright (a client above the cap is a figure, not a failure).
    pub fn failure_count(&self) -> usize {
        self.cases.iter().map(|c| c.failures.len()).sum::<usize>()
            + self.switches.iter().filter(|s| s.error.is_some()).count()
    }
}

/// What the fault figures need to run.
pub struct FaultPlan<'a> {
    /// The emulator, started with `--fault-control`.
    pub gateway: &'a Gateway,
    /// Its user.
    pub login: &'a Credentials,
    /// The camera.
    pub device: DeviceId,
    /// Our host candidates' address.
    pub bind_ip: IpAddr,
    /// Runs per case and client.
    pub runs: usize,
    /// See [`FaultBench::cap_ms`].
    pub cap: Duration,
}

impl FaultPlan<'_> {
    /// Every case, `runs` times, the two clients interleaved run by run.
    pub async fn figures(&self) -> Vec<FaultFigure> {
        let mut figures = Vec::new();
        for case in fault_cases() {
            let mut pair = FaultClient::ALL.map(|client| FaultFigure::new(&case, client));
            for run in 1..=self.runs {
                for (figure, client) in pair.iter_mut().zip(FaultClient::ALL) {
                    match self.run_once(&case, client).await {
                        Ok(result) => figure.runs.push(result),
                        Err(error) => {
                            eprintln!(
                                "\nbench: {} over {} with {client:?}, run {run} failed: {error:#}",
                                case.name,
                                signaling_name(case.signaling)
                            );
                            figure.failures.push(format!("{error:#}"));
                        }
                    }
                    // Sticky faults (the candidate delay) and unused request failures must not
                    // reach the next run.
                    if let Err(error) = self.clear_faults().await {
                        eprintln!("\nbench: cannot clear the emulator's faults: {error:#}");
                    }
                }
                eprint!(
                    "\rbench: {} over {}: {run}/{} runs   ",
                    case.name,
                    signaling_name(case.signaling),
                    self.runs
                );
            }
            eprintln!();
            for mut figure in pair {
                figure.summarise();
                figures.push(figure);
            }
        }
        figures
    }

    async fn run_once(&self, case: &FaultCase, client: FaultClient) -> anyhow::Result<FaultRun> {
        let tokens = TokenSource::login(self.gateway.clone(), self.login.clone())
            .await
            .context("login failed")?;
        let options = bench_options(self.device, case.signaling, self.bind_ip);
        let mut probe = Probe::start(client, self.gateway, &tokens, options);
        let result = self.observe(case, &mut probe).await;
        probe.close().await;
        result
    }

    /// Stream, inject, and watch for the continuation.
    async fn observe(&self, case: &FaultCase, probe: &mut Probe<'_>) -> anyhow::Result<FaultRun> {
        let start_limit = tokio::time::Instant::now() + START_LIMIT;
        let mut counters: Vec<CameraFrame> = Vec::new();
        while counters.len() < FRAMES_BEFORE {
            match tokio::time::timeout_at(start_limit, probe.next()).await {
                Err(_) => bail!(
                    "{} frames within {START_LIMIT:?} of the start, {FRAMES_BEFORE} wanted",
                    counters.len()
                ),
                Ok(Observed::Frame { frame, .. }) => counters.push(frame),
                Ok(Observed::Switched) => {}
                Ok(Observed::Ended(error)) => bail!("the client ended before the fault: {error}"),
            }
        }
        // Built before the clock starts: only the request is timed.
        let control = ControlEndpoint::new(self.gateway)?;
        if let Some(before) = &case.before {
            control.inject(before).await?;
        }
        let fault_at = Instant::now();
        control.inject(&case.fault).await?;
        let cap_limit = tokio::time::Instant::from_std(fault_at + self.cap);
        let mut continued: Option<(Instant, usize)> = None;
        loop {
            let limit = match continued {
                // The frames after the continuation come at the camera's rate.
                Some((at, _)) => tokio::time::Instant::from_std(at + START_LIMIT),
                None => cap_limit,
            };
            let observed = match tokio::time::timeout_at(limit, probe.next()).await {
                Ok(observed) => observed,
                Err(_) if continued.is_none() => break,
                Err(_) => bail!("the stream stopped again after it continued"),
            };
            match observed {
                Observed::Frame { frame, fresh } => {
                    counters.push(frame);
                    if fresh && continued.is_none() {
                        continued = Some((Instant::now(), counters.len() - 1));
                    }
                }
                Observed::Switched => {
                    if continued.is_none() {
                        // Observed right after the replacement's first frame was delivered.
                        continued = Some((Instant::now(), counters.len().saturating_sub(1)));
                    }
                }
                Observed::Ended(error) => bail!("the client ended after the fault: {error}"),
            }
            if let Some((_, index)) = continued
                && counters.len() > index + FRAMES_AFTER
            {
                break;
            }
        }
        // Over the whole run: a gap before the fault would count too (none on loopback).
        let (lost, duplicates) = lost_and_duplicates(&counters);
        Ok(FaultRun {
            fault_to_frame_ms: continued.map(|(at, _)| ms(at.duration_since(fault_at))),
            frames_lost: continued.map(|_| lost),
            duplicates,
            sessions_started: probe.sessions_started(),
            frames: counters.len() as u64,
        })
    }

    async fn clear_faults(&self) -> anyhow::Result<()> {
        ControlEndpoint::new(self.gateway)?.clear().await
    }
}

/// What the switch figures need to run.
pub struct SwitchPlan<'a> {
    /// The emulator, started with short tokens.
    pub gateway: &'a Gateway,
    /// Its user.
    pub login: &'a Credentials,
    /// The camera.
    pub device: DeviceId,
    /// Our host candidates' address.
    pub bind_ip: IpAddr,
    /// How long each client streams.
    pub duration: Duration,
    /// The emulator's `--delay-candidates` (it stands for a slower session setup, as across a
    /// WAN); recorded with the figures.
    pub setup_delay: Duration,
}

impl SwitchPlan<'_> {
    /// Each client in turn over WebSocket for the duration.
    pub async fn figures(&self) -> Vec<SwitchFigure> {
        let mut figures = Vec::new();
        for client in FaultClient::ALL {
            eprintln!(
                "bench: token switches with {client:?} for {}…",
                humantime::format_duration(self.duration)
            );
            let figure = match self.run(client).await {
                Ok(figure) => figure,
                Err(error) => {
                    eprintln!("bench: the token-switch run with {client:?} failed: {error:#}");
                    SwitchFigure {
                        client,
                        setup_delay_ms: self.setup_delay.as_millis() as u64,
                        duration_s: 0.0,
                        switches: Vec::new(),
                        frames: 0,
                        frames_lost: 0,
                        duplicates: 0,
                        largest_gap_ms: 0.0,
                        sessions_started: 0,
                        reconnects: 0,
                        error: Some(format!("{error:#}")),
                    }
                }
            };
            figures.push(figure);
        }
        figures
    }

    async fn run(&self, client: FaultClient) -> anyhow::Result<SwitchFigure> {
        let tokens = TokenSource::login(self.gateway.clone(), self.login.clone())
            .await
            .context("login failed")?;
        let options = bench_options(self.device, SignalingKind::WebSocket, self.bind_ip);
        let started = Instant::now();
        let end = tokio::time::Instant::from_std(started + self.duration);
        let mut frames: Vec<(Instant, CameraFrame)> = Vec::new();
        let mut switches: Vec<Instant> = Vec::new();
        let mut probe = Probe::start(client, self.gateway, &tokens, options);
        let mut refreshes = tokens.subscribe();
        refreshes.borrow_and_update();
        let result = loop {
            let observed = tokio::select! {
                observed = probe.next() => observed,
                changed = refreshes.changed(), if client == FaultClient::PlainLoop => {
                    if changed.is_err() {
                        break Err(anyhow::anyhow!("the login task ended"));
                    }
                    let refreshed = matches!(
                        *refreshes.borrow_and_update(),
                        TokenState::Valid { .. }
                    );
                    if refreshed {
                        // Break before make: the old session goes, then a new one on the new
                        // token starts.
                        switches.push(Instant::now());
                        probe.restart().await;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(end) => break Ok(()),
            };
            match observed {
                Observed::Frame { frame, .. } => frames.push((Instant::now(), frame)),
                Observed::Switched => switches.push(Instant::now()),
                Observed::Ended(error) => break Err(anyhow::anyhow!("the client ended: {error}")),
            }
        };
        let counters = probe.counters();
        let sessions_started = probe.sessions_started();
        probe.close().await;
        result?;
        let all: Vec<CameraFrame> = frames.iter().map(|(_, c)| *c).collect();
        let (frames_lost, duplicates) = lost_and_duplicates(&all);
        Ok(SwitchFigure {
            client,
            setup_delay_ms: self.setup_delay.as_millis() as u64,
            duration_s: started.elapsed().as_secs_f64(),
            switches: switches
                .iter()
                .map(|&at| switch_window(&frames, at, started))
                .collect(),
            frames: frames.len() as u64,
            frames_lost,
            duplicates,
            largest_gap_ms: largest_gap(&frames).map_or(0.0, ms),
            sessions_started,
            reconnects: counters.map_or(0, |c| c.reconnects),
            error: None,
        })
    }
}

/// The frames around one switch: [`SWITCH_WINDOW_FRAMES`] delivered before it and as many after.
fn switch_window(frames: &[(Instant, CameraFrame)], at: Instant, started: Instant) -> SwitchRun {
    let split = frames.partition_point(|(arrived, _)| *arrived < at);
    let from = split.saturating_sub(SWITCH_WINDOW_FRAMES);
    let to = split.saturating_add(SWITCH_WINDOW_FRAMES).min(frames.len());
    let window = frames.get(from..to).unwrap_or_default();
    let counters: Vec<CameraFrame> = window.iter().map(|(_, c)| *c).collect();
    let (frames_lost, duplicates) = lost_and_duplicates(&counters);
    SwitchRun {
        at_s: at.duration_since(started).as_secs_f64(),
        frames_lost,
        duplicates,
        largest_gap_ms: largest_gap(window).map_or(0.0, ms),
    }
}

/// What identifies a delivered frame of the emulated camera (its SEI stamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraFrame {
    /// The camera's frame counter: the same frame delivered twice has the same counter.
    pub counter: u64,
    /// Its recording time (the camera's capture clock), Unix ms.
    pub recording_ms: i64,
}

impl CameraFrame {
    fn of(stamp: &FrameStamp) -> Self {
        Self {
            counter: stamp.frame,
            recording_ms: stamp.recording_unix_ms,
        }
    }
}

/// The emulator's default cameras run at 25 frames/s: one picture every 40 ms.
const CAPTURE_INTERVAL_MS: i64 = 40;

/// Missing and repeated frames in delivery order. A frame whose counter is not above the highest
/// so far is a repeat. Missing frames are counted on the capture clock: the pictures a camera
/// at 25 frames/s took between two delivered ones. Not by counter gaps: the emulator encodes only
/// while someone watches, so its counter pauses while a client has no session (break-before-make,
/// a dropped session), when a real camera goes on capturing.
pub fn lost_and_duplicates(frames: &[CameraFrame]) -> (u64, u64) {
    let mut highest: Option<CameraFrame> = None;
    let (mut lost, mut duplicates) = (0, 0);
    for &frame in frames {
        match highest {
            Some(high) if frame.counter <= high.counter => duplicates += 1,
            Some(high) => {
                let elapsed = frame.recording_ms.saturating_sub(high.recording_ms);
                let slots = (elapsed + CAPTURE_INTERVAL_MS / 2) / CAPTURE_INTERVAL_MS;
                lost += u64::try_from(slots - 1).unwrap_or(0);
                highest = Some(frame);
            }
            None => highest = Some(frame),
        }
    }
    (lost, duplicates)
}

/// The longest time between two consecutive deliveries.
pub fn largest_gap<T>(frames: &[(Instant, T)]) -> Option<Duration> {
    frames
        .windows(2)
        .filter_map(|pair| match pair {
            [(a, _), (b, _)] => Some(b.saturating_duration_since(*a)),
            _ => None,
        })
        .max()
}

/// What a client did next.
enum Observed {
    /// A video frame of the emulated camera; `fresh`: the first of a gateway session that
    /// took over after a loss (ours: after `Resumed`; the peer: its restarted session's first).
    Frame { frame: CameraFrame, fresh: bool },
    /// Ours: a make-before-break replacement took over (its first frame was just delivered).
    Switched,
    /// The client ended for good (ours only; the peer starts again).
    Ended(String),
}

/// A client under test.
enum Probe<'a> {
    Lasting(LastingProbe),
    // Boxed: a `Session` is several times the size of a `LastingSession` handle.
    Plain(Box<PlainLoop<'a>>),
}

struct LastingProbe {
    session: LastingSession,
    counters: watch::Receiver<LastingCounters>,
    replacements: u64,
    resumed: bool,
}

/// A user's loop around a plain [`Session`]: start it again whenever it ends.
struct PlainLoop<'a> {
    gateway: Gateway,
    tokens: &'a TokenSource,
    options: SessionOptions,
    session: Session,
    sessions_started: u64,
    delivered: bool,
    fresh: bool,
}

impl<'a> Probe<'a> {
    fn start(
        client: FaultClient,
        gateway: &Gateway,
        tokens: &'a TokenSource,
        options: SessionOptions,
    ) -> Self {
        match client {
            FaultClient::Lasting => {
                let session =
                    LastingSession::start(gateway.clone(), tokens, LastingOptions::new(options));
                let mut counters = session.counters_watch();
                counters.borrow_and_update();
                Probe::Lasting(LastingProbe {
                    session,
                    counters,
                    replacements: 0,
                    resumed: false,
                })
            }
            FaultClient::PlainLoop => Probe::Plain(Box::new(PlainLoop {
                session: Session::start(gateway.clone(), tokens, options.clone()),
                gateway: gateway.clone(),
                tokens,
                options,
                sessions_started: 1,
                delivered: false,
                fresh: false,
            })),
        }
    }

    async fn next(&mut self) -> Observed {
        match self {
            Probe::Lasting(probe) => probe.next().await,
            Probe::Plain(plain) => plain.next().await,
        }
    }

    /// The peer: close the session, wait (bounded) until it ended, start a new one.
    async fn restart(&mut self) {
        if let Probe::Plain(plain) = self {
            close_session(&mut plain.session).await;
            plain.start_again();
        }
    }

    fn sessions_started(&self) -> u64 {
        match self {
            Probe::Lasting(probe) => probe.session.counters().sessions_started,
            Probe::Plain(plain) => plain.sessions_started,
        }
    }

    fn counters(&self) -> Option<LastingCounters> {
        match self {
            Probe::Lasting(probe) => Some(probe.session.counters()),
            Probe::Plain(_) => None,
        }
    }

    async fn close(&mut self) {
        match self {
            Probe::Lasting(probe) => {
                probe.session.close().await;
                let _ = tokio::time::timeout(CLOSE_LIMIT, async {
                    while let Some(event) = probe.session.next_event().await {
                        if matches!(event, SessionEvent::Ended(_)) {
                            return;
                        }
                    }
                })
                .await;
            }
            Probe::Plain(plain) => close_session(&mut plain.session).await,
        }
    }
}

impl LastingProbe {
    async fn next(&mut self) -> Observed {
        loop {
            tokio::select! {
                changed = self.counters.changed() => {
                    if changed.is_err() {
                        // The driver is gone; its `Ended` event follows on the event channel.
                        return self.drain_to_end().await;
                    }
                    let replacements = self.counters.borrow_and_update().replacements;
                    if replacements > self.replacements {
                        self.replacements = replacements;
                        return Observed::Switched;
                    }
                }
                event = self.session.next_event() => match event {
                    Some(SessionEvent::Video(frame)) => {
                        let Some(stamp) = frame.access_unit.frame_stamp() else {
                            // Not the emulator (no SEI stamp): nothing to count with.
                            return Observed::Ended("a frame without the emulator's SEI stamp".into());
                        };
                        return Observed::Frame {
                            frame: CameraFrame::of(&stamp),
                            fresh: std::mem::take(&mut self.resumed),
                        };
                    }
                    Some(SessionEvent::Resumed { .. }) => self.resumed = true,
                    Some(SessionEvent::Ended(result)) => {
                        return Observed::Ended(match result {
                            Ok(()) => "closed".into(),
                            Err(error) => error.to_string(),
                        });
                    }
                    None => return Observed::Ended("the event stream ended".into()),
                    Some(_) => {}
                }
            }
        }
    }

    async fn drain_to_end(&mut self) -> Observed {
        while let Some(event) = self.session.next_event().await {
            if let SessionEvent::Ended(result) = event {
                return Observed::Ended(result.err().map_or("closed".into(), |e| e.to_string()));
            }
        }
        Observed::Ended("the event stream ended".into())
    }
}

impl PlainLoop<'_> {
    async fn next(&mut self) -> Observed {
        loop {
            match self.session.next_event().await {
                Some(SessionEvent::Video(frame)) => {
                    let Some(stamp) = frame.access_unit.frame_stamp() else {
                        return Observed::Ended("a frame without the emulator's SEI stamp".into());
                    };
                    self.delivered = true;
                    return Observed::Frame {
                        frame: CameraFrame::of(&stamp),
                        fresh: std::mem::take(&mut self.fresh),
                    };
                }
                Some(SessionEvent::Ended(result)) => {
                    tracing::debug!(?result, "plain session ended; starting another");
                    if !self.delivered {
                        tokio::time::sleep(PLAIN_RETRY_PAUSE).await;
                    }
                    self.start_again();
                }
                None => {
                    if !self.delivered {
                        tokio::time::sleep(PLAIN_RETRY_PAUSE).await;
                    }
                    self.start_again();
                }
                Some(_) => {}
            }
        }
    }

    fn start_again(&mut self) {
        self.session = Session::start(self.gateway.clone(), self.tokens, self.options.clone());
        self.sessions_started += 1;
        self.delivered = false;
        self.fresh = true;
    }
}

/// Close a plain session and wait (bounded) for its end, so the gateway lets go of it.
async fn close_session(session: &mut Session) {
    session.close().await;
    let _ = tokio::time::timeout(CLOSE_LIMIT, async {
        while let Some(event) = session.next_event().await {
            if matches!(event, SessionEvent::Ended(_)) {
                return;
            }
        }
    })
    .await;
}

/// The emulator's fault control endpoint (`POST`/`DELETE /emulator/faults`, 204).
struct ControlEndpoint {
    /// An HTTP client of its own, made per run: a restarted listener leaves a pooled connection
    /// dead, and a POST is not retried on another.
    http: Gateway,
}

impl ControlEndpoint {
    fn new(gateway: &Gateway) -> anyhow::Result<Self> {
        let http = Gateway::new(&GatewayConfig::new(gateway.base_url().clone()))?;
        Ok(Self { http })
    }

    /// Inject `fault`; returns once it took effect.
    async fn inject(&self, fault: &Fault) -> anyhow::Result<()> {
        let body = serde_json::to_string(fault).context("cannot encode the fault")?;
        self.request(HttpMethod::Post, Some(body))
            .await
            .with_context(|| format!("cannot inject {fault:?}"))
    }

    /// Undo the sticky faults and forget pending request failures.
    async fn clear(&self) -> anyhow::Result<()> {
        self.request(HttpMethod::Delete, None).await
    }

    async fn request(&self, method: HttpMethod, json: Option<String>) -> anyhow::Result<()> {
        let request = HttpRequest {
            method,
            path: "emulator/faults".into(),
            body: json.map(HttpBody::Json),
            bearer: None,
        };
        let response = self
            .http
            .execute(&request)
            .await
            .map_err(|error| anyhow::anyhow!("the fault control endpoint: {error}"))?;
        if !response.is_success() {
            bail!(
                "the fault control endpoint answered {} (is the emulator running with --fault-control?): {}",
                response.status,
                response.body
            );
        }
        Ok(())
    }
}

fn signaling_name(signaling: SignalingKind) -> &'static str {
    match signaling {
        SignalingKind::Rest => "rest",
        SignalingKind::WebSocket => "ws",
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame `counter`, captured at `slot` × 40 ms.
    fn frame(counter: u64, slot: i64) -> CameraFrame {
        CameraFrame {
            counter,
            recording_ms: 1_700_000_000_000 + slot * 40,
        }
    }

    #[test]
    fn missing_captures_and_repeats() {
        let run = |pairs: &[(u64, i64)]| {
            let frames: Vec<CameraFrame> = pairs.iter().map(|&(c, s)| frame(c, s)).collect();
            lost_and_duplicates(&frames)
        };
        assert_eq!(run(&[]), (0, 0));
        assert_eq!(run(&[(5, 5), (6, 6), (7, 7)]), (0, 0));
        assert_eq!(run(&[(5, 5), (6, 6), (9, 9), (10, 10)]), (2, 0));
        // A restart that delivers 8 and 9 again after 10: two repeats, nothing lost.
        assert_eq!(
            run(&[(7, 7), (8, 8), (9, 9), (10, 10), (8, 8), (9, 9), (11, 11)]),
            (0, 2)
        );
        assert_eq!(run(&[(1, 1), (1, 1), (4, 4)]), (2, 1));
        // The encoder paused while nobody watched: its counter runs on from 11, but 30 captures
        // (1.2 s) went by.
        assert_eq!(run(&[(10, 10), (11, 41)]), (30, 0));
        // A new encoder run starts its grid anew, a few ms after the last picture: nothing lost.
        let restarted = CameraFrame {
            counter: 11,
            recording_ms: frame(10, 10).recording_ms + 8,
        };
        assert_eq!(lost_and_duplicates(&[frame(10, 10), restarted]), (0, 0));
    }

    #[test]
    fn largest_gap_between_deliveries() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let frames = [(at(0), 1), (at(40), 2), (at(200), 3), (at(240), 4)];
        assert_eq!(largest_gap(&frames), Some(Duration::from_millis(160)));
        assert_eq!(largest_gap(&frames[..1]), None);
    }

    #[test]
    fn capped_summary_counts_runs_above_the_cap_as_largest() {
        let s = CappedSummary::of(&[Some(3.0), Some(1.0), Some(2.0)]).unwrap();
        assert_eq!((s.median, s.min, s.max), (Some(2.0), Some(1.0), Some(3.0)));
        let s = CappedSummary::of(&[Some(3.0), None, Some(1.0)]).unwrap();
        assert_eq!((s.median, s.min, s.max), (Some(3.0), Some(1.0), None));
        let s = CappedSummary::of(&[None, None, Some(1.0)]).unwrap();
        assert_eq!((s.median, s.min, s.max), (None, Some(1.0), None));
        let s = CappedSummary::of(&[Some(1.0), Some(3.0)]).unwrap();
        assert_eq!(s.median, Some(2.0));
        assert!(CappedSummary::of(&[]).is_none());
    }

    #[test]
    fn switch_window_takes_frames_on_both_sides() {
        let t = Instant::now();
        let frames: Vec<(Instant, CameraFrame)> = (0..100u64)
            .map(|i| {
                // Frame 60 is missing; the switch is at 2.4 s (frame 60's slot).
                let n = i + u64::from(i >= 60);
                (
                    t + Duration::from_millis(i * 40),
                    frame(n, i64::try_from(n).unwrap()),
                )
            })
            .collect();
        let run = switch_window(&frames, t + Duration::from_millis(2_400), t);
        assert_eq!(run.frames_lost, 1);
        assert_eq!(run.duplicates, 0);
        assert!((run.at_s - 2.4).abs() < 1e-9);
        assert!((run.largest_gap_ms - 40.0).abs() < 1e-6);
    }
}
