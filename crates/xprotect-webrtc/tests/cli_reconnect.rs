//! Lasting sessions against the real emulator's faults, in one process over loopback: for each
//! fault, live and playback, the stream continues after the fault, and the frames the emulator
//! stamped (SEI: recording time and the camera's frame counter) show no duplicate, and for
//! playback no missing 40 ms step. Each test prints the time from the fault to the first frame
//! of the new session (`fault→frame`), the figure the benchmark reports.
//!
//! Most tests notice a stall after 1 s; the `*_default_options` ones run the library's defaults
//! (a 2 s live stall) and check that the losses the client detects itself are noticed at once:
//! a closed signaling WebSocket is replaced make-before-break without losing a frame, and a
//! dropped session (DTLS close_notify, SCTP closed) ends at once instead of as a stall, and a
//! stall of a 25 fps stream is noticed after 1 s.
//! `RUST_LOG=xprotect_client=debug` shows what the WebRTC stack reported.

mod common;

use std::time::{Duration, Instant};
use time::macros::datetime;
use xprotect_client::lasting::{LastingOptions, LastingSession};
use xprotect_client::media::{DtlsRole, PeerError};
use xprotect_client::session::{SessionError, SessionEvent, SignalingKind, VideoFrame};
use xprotect_emulator::{EmulatorConfig, Fault, RunningEmulator};
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::wire::Playback;

/// Frames before the fault and after the resume (25 fps: 1.2 s each).
const FRAMES_AROUND: usize = 30;
/// Everything in one test happens within this.
const TEST_LIMIT: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Live,
    Playback,
}

/// How fast a stall is noticed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stall {
    /// After 1 s without media.
    OneSecond,
    /// The library's defaults ([`LastingOptions::new`]: 2 s live).
    Default,
}

/// The goal for what the client detects itself (a closed socket, a dropped session): the first
/// frame of the new session within 2 s of the fault. Asserted with room for a loaded CI machine.
const DETECTED_LOSS_BOUND: Duration = Duration::from_secs(3);

struct Outcome {
    frames: Vec<(VideoFrame, FrameStamp)>,
    /// Index of the first frame after the fault.
    resumed_at: usize,
    fault_to_frame: Duration,
    reconnecting_events: usize,
    /// Why sessions were lost (the `Reconnecting` events' errors).
    losses: Vec<SessionError>,
    /// Make-before-break switches after the fault.
    replacements: u64,
    reconnects: u64,
}

fn options(emulator_mode: Mode, signaling: SignalingKind, stall: Stall) -> LastingOptions {
    let mut session = common::live_options(signaling, DtlsRole::Passive);
    if emulator_mode == Mode::Playback {
        session.params.playback = Some(Playback {
            start: datetime!(2025-01-15 12:00:00 UTC),
            skip_gaps: true,
            speed: 1.0,
        });
    }
    if stall == Stall::OneSecond {
        // A stall is noticed after 1 s here (defaults: 2 s live, 10 s playback).
        session.media_timeout = Duration::from_secs(1);
        session.first_frame_timeout = Duration::from_secs(8);
    }
    LastingOptions::new(session)
}

/// Run a lasting session, inject `fault` after some frames, and collect frames until
/// [`FRAMES_AROUND`] frames after the first one that follows the fault.
async fn across_fault(
    emulator: &RunningEmulator,
    mode: Mode,
    signaling: SignalingKind,
    stall: Stall,
    before: Option<Fault>,
    fault: Fault,
) -> Outcome {
    let (gateway, tokens) = common::login(emulator).await;
    let mut session = LastingSession::start(gateway, &tokens, options(mode, signaling, stall));
    let mut frames: Vec<(VideoFrame, FrameStamp)> = Vec::new();
    let mut injected: Option<(Instant, usize)> = None;
    let mut resumed_at = None;
    let mut fault_to_frame = None;
    let mut reconnecting_events = 0;
    let mut losses = Vec::new();
    let mut resume_pending = false;
    // Make-before-break switches before the fault (none, unless a token was refreshed).
    let mut replacements_before = 0;
    let deadline = tokio::time::Instant::now() + TEST_LIMIT;
    loop {
        if let Some(at) = resumed_at
            && frames.len() >= at + FRAMES_AROUND
        {
            break;
        }
        let event = tokio::time::timeout_at(deadline, session.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{mode:?}/{signaling:?}: stuck after {} frames (fault at {injected:?}, counters {:?})",
                    frames.len(),
                    session.counters()
                )
            })
            .expect("the lasting session keeps running");
        match event {
            SessionEvent::Video(frame) => {
                let stamp = frame
                    .access_unit
                    .frame_stamp()
                    .expect("every emulator frame carries its SEI stamp");
                frames.push((frame, stamp));
                // A make-before-break switch has no `Resumed`: the counters change before the
                // replacement's first frame is delivered.
                let switched = injected.is_some()
                    && resumed_at.is_none()
                    && session.counters().replacements > replacements_before;
                if resume_pending || switched {
                    resume_pending = false;
                    resumed_at = Some(frames.len() - 1);
                    fault_to_frame = injected.map(|(at, _)| at.elapsed());
                }
                if injected.is_none() && frames.len() == FRAMES_AROUND {
                    if let Some(before) = before.clone() {
                        emulator.faults().inject(before).await;
                    }
                    replacements_before = session.counters().replacements;
                    injected = Some((Instant::now(), frames.len()));
                    emulator.faults().inject(fault.clone()).await;
                }
            }
            SessionEvent::Reconnecting { error, .. } => {
                reconnecting_events += 1;
                losses.push(error);
            }
            // The next frame is the new session's first.
            SessionEvent::Resumed { .. } if injected.is_some() => resume_pending = true,
            SessionEvent::Ended(result) => {
                panic!("{mode:?}: the lasting session ended: {result:?}")
            }
            _ => {}
        }
    }
    let counters = session.counters();
    session.close().await;
    eprintln!(
        "{mode:?}/{signaling:?}/{stall:?} {fault:?}: fault→frame {:?}, sessions {}, reconnects {}, replacements {}, losses {:?}, handover {:?}",
        fault_to_frame,
        counters.sessions_started,
        counters.reconnects,
        counters.replacements,
        losses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        counters.handover
    );
    assert!(
        counters.sessions_started >= 2,
        "a new gateway session: {counters:?}"
    );
    Outcome {
        frames,
        resumed_at: resumed_at.expect("frames after the fault"),
        fault_to_frame: fault_to_frame.expect("frames after the fault"),
        reconnecting_events,
        losses,
        replacements: counters.replacements - replacements_before,
        reconnects: counters.reconnects,
    }
}

/// No duplicate frame, times strictly increasing and equal to the stamped recording times
/// shifted by one constant; playback: every 40 ms step present.
fn assert_continuity(mode: Mode, outcome: &Outcome) {
    let frames = &outcome.frames;
    for pair in frames.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b.1.frame > a.1.frame,
            "duplicate or reordered frame: {} then {}",
            a.1.frame,
            b.1.frame
        );
        assert!(b.0.time.wall_clock > a.0.time.wall_clock);
        assert!(b.0.time.media_ms > a.0.time.media_ms);
        if mode == Mode::Playback {
            assert_eq!(
                b.1.recording_unix_ms - a.1.recording_unix_ms,
                40,
                "a missing or repeated recording step at frame {}",
                b.1.frame
            );
            let clock_ms = (b.0.time.wall_clock.unix_timestamp_nanos() / 1_000_000) as i64;
            assert_eq!(
                clock_ms, b.1.recording_unix_ms,
                "playback times are recording times"
            );
        }
    }
    if mode == Mode::Live {
        // Live loses what the outage lost, but the clock stays on the camera's: our time minus
        // the stamped capture time is the same before and after, within the sessions' clock
        // anchoring (arrival − RTP).
        let lag = |(frame, stamp): &(VideoFrame, FrameStamp)| {
            (frame.time.wall_clock.unix_timestamp_nanos() / 1_000_000) as i64
                - stamp.recording_unix_ms
        };
        let at = outcome.resumed_at;
        let (before, after) = (lag(&frames[at - 1]), lag(&frames[at]));
        assert!(
            (after - before).abs() < 150,
            "clock lag behind the camera: {before} ms before, {after} ms after the reconnect"
        );
    }
}

async fn check(
    mode: Mode,
    signaling: SignalingKind,
    before: Option<Fault>,
    fault: Fault,
) -> Outcome {
    check_with(mode, signaling, Stall::OneSecond, before, fault).await
}

async fn check_with(
    mode: Mode,
    signaling: SignalingKind,
    stall: Stall,
    before: Option<Fault>,
    fault: Fault,
) -> Outcome {
    init_tracing();
    let emulator = common::start_emulator(EmulatorConfig::ephemeral()).await;
    let outcome = across_fault(&emulator, mode, signaling, stall, before, fault).await;
    assert_continuity(mode, &outcome);
    outcome
}

/// Logs to the test's output when `RUST_LOG` asks for them.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Not one camera frame missing or repeated (the SEI frame counter steps by one).
fn assert_no_frame_lost(outcome: &Outcome) {
    for pair in outcome.frames.windows(2) {
        let (a, b) = (pair[0].1.frame, pair[1].1.frame);
        assert_eq!(
            b,
            a + 1,
            "frame {b} follows {a} (the switch was at delivered frame {})",
            outcome.resumed_at
        );
    }
}

/// The session ended at once because the gateway closed the connection, not as a stall.
fn assert_lost_as_closed_by_gateway(outcome: &Outcome) {
    assert!(
        outcome.losses.first().is_some_and(|error| matches!(
            error,
            SessionError::Peer(PeerError::ClosedByGateway { .. })
        )),
        "the first loss: {:?}",
        outcome.losses
    );
}

/// The emulator's DTLS close_notify / SCTP close ends the session at once: no waiting for the
/// (default 2 s) stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_sessions_live_default_options() {
    let outcome = check_with(
        Mode::Live,
        SignalingKind::WebSocket,
        Stall::Default,
        None,
        Fault::DropSessions,
    )
    .await;
    assert!(outcome.reconnecting_events >= 1);
    assert_lost_as_closed_by_gateway(&outcome);
    assert!(
        outcome.fault_to_frame < DETECTED_LOSS_BOUND,
        "{:?}",
        outcome.fault_to_frame
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_sessions_live_rest_default_options() {
    let outcome = check_with(
        Mode::Live,
        SignalingKind::Rest,
        Stall::Default,
        None,
        Fault::DropSessions,
    )
    .await;
    assert_lost_as_closed_by_gateway(&outcome);
    assert!(
        outcome.fault_to_frame < DETECTED_LOSS_BOUND,
        "{:?}",
        outcome.fault_to_frame
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_sessions_playback() {
    check(
        Mode::Playback,
        SignalingKind::Rest,
        None,
        Fault::DropSessions,
    )
    .await;
}

/// The media outlives the socket for the emulator's 5 s linger: the replacement starts at once
/// and is spliced in make-before-break, without a lost frame and without a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_websockets_live_default_options() {
    let outcome = check_with(
        Mode::Live,
        SignalingKind::WebSocket,
        Stall::Default,
        None,
        Fault::CloseWebSockets,
    )
    .await;
    assert_no_frame_lost(&outcome);
    assert_eq!(outcome.replacements, 1, "one make-before-break switch");
    assert_eq!(outcome.reconnects, 0, "no loss: {:?}", outcome.losses);
    assert_eq!(outcome.reconnecting_events, 0);
    assert!(
        outcome.fault_to_frame < DETECTED_LOSS_BOUND,
        "{:?}",
        outcome.fault_to_frame
    );
}

/// The replacement meets two 503s: it goes through the backoff while the old session, whose
/// media outlives its socket, keeps delivering; still no frame is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_websockets_live_replacement_retries_while_the_old_session_delivers() {
    let failing = Fault::HttpStatus {
        status: 503,
        count: 2,
    };
    let outcome = check_with(
        Mode::Live,
        SignalingKind::WebSocket,
        Stall::Default,
        Some(failing),
        Fault::CloseWebSockets,
    )
    .await;
    assert_no_frame_lost(&outcome);
    assert_eq!(outcome.replacements, 1, "one make-before-break switch");
    assert_eq!(
        outcome.reconnecting_events, 2,
        "each refused replacement is retried: {:?}",
        outcome.losses
    );
    assert!(
        outcome
            .losses
            .iter()
            .all(|error| matches!(error, SessionError::Connect(_))),
        "{:?}",
        outcome.losses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_websockets_playback() {
    check(
        Mode::Playback,
        SignalingKind::WebSocket,
        None,
        Fault::CloseWebSockets,
    )
    .await;
}

/// Silence is all there is to notice here: with the defaults, a 25 fps stream counts as stalled
/// after 1 s (ten frame intervals, raised to the 1 s floor), not after the 2 s ceiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_media_live_default_options() {
    let outcome = check_with(
        Mode::Live,
        SignalingKind::Rest,
        Stall::Default,
        None,
        Fault::StopMedia,
    )
    .await;
    assert!(
        matches!(
            outcome.losses.first(),
            Some(SessionError::MediaTimeout(limit)) if *limit == Duration::from_secs(1)
        ),
        "{:?}",
        outcome.losses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_media_playback() {
    check(
        Mode::Playback,
        SignalingKind::WebSocket,
        None,
        Fault::StopMedia,
    )
    .await;
}

/// The reconnect meets two 503s, retries with backoff, and gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_at_reconnect_live() {
    let failing = Fault::HttpStatus {
        status: 503,
        count: 2,
    };
    check(
        Mode::Live,
        SignalingKind::Rest,
        Some(failing),
        Fault::DropSessions,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_at_reconnect_playback() {
    let failing = Fault::HttpStatus {
        status: 503,
        count: 2,
    };
    check(
        Mode::Playback,
        SignalingKind::WebSocket,
        Some(failing),
        Fault::DropSessions,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_signaling_live() {
    let restart = Fault::RestartSignaling { down_millis: 500 };
    check(Mode::Live, SignalingKind::WebSocket, None, restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_signaling_playback() {
    let restart = Fault::RestartSignaling { down_millis: 500 };
    check(Mode::Playback, SignalingKind::Rest, None, restart).await;
}

/// The new session's candidates come 800 ms late; it still connects and continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_candidates_live() {
    let delay = Fault::DelayCandidates { millis: 800 };
    check(
        Mode::Live,
        SignalingKind::Rest,
        Some(delay),
        Fault::DropSessions,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_candidates_playback() {
    let delay = Fault::DelayCandidates { millis: 800 };
    check(
        Mode::Playback,
        SignalingKind::WebSocket,
        Some(delay),
        Fault::DropSessions,
    )
    .await;
}
