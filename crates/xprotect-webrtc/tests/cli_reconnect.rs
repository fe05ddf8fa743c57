//! Lasting sessions against the real emulator's faults, in one process over loopback: for each
//! fault, live and playback, the stream continues after the fault, and the frames the emulator
//! stamped (SEI: recording time and the camera's frame counter) show no duplicate, and for
//! playback no missing 40 ms step. Each test prints the time from the fault to the first frame
//! of the new session (`fault→frame`), the figure the benchmark reports.

mod common;

use std::time::{Duration, Instant};
use time::macros::datetime;
use xprotect_client::lasting::{LastingOptions, LastingSession};
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{SessionEvent, SignalingKind, VideoFrame};
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

struct Outcome {
    frames: Vec<(VideoFrame, FrameStamp)>,
    /// Index of the first frame after the fault.
    resumed_at: usize,
    fault_to_frame: Duration,
    reconnecting_events: usize,
}

fn options(emulator_mode: Mode, signaling: SignalingKind) -> LastingOptions {
    let mut session = common::live_options(signaling, DtlsRole::Passive);
    if emulator_mode == Mode::Playback {
        session.params.playback = Some(Playback {
            start: datetime!(2025-01-15 12:00:00 UTC),
            skip_gaps: true,
            speed: 1.0,
        });
    }
    // A stall is noticed after 1 s here (defaults: 2 s live, 10 s playback).
    session.media_timeout = Duration::from_secs(1);
    session.first_frame_timeout = Duration::from_secs(8);
    LastingOptions::new(session)
}

/// Run a lasting session, inject `fault` after some frames, and collect frames until
/// [`FRAMES_AROUND`] frames after the first one that follows the fault.
async fn across_fault(
    emulator: &RunningEmulator,
    mode: Mode,
    signaling: SignalingKind,
    before: Option<Fault>,
    fault: Fault,
) -> Outcome {
    let (gateway, tokens) = common::login(emulator).await;
    let mut session = LastingSession::start(gateway, &tokens, options(mode, signaling));
    let mut frames: Vec<(VideoFrame, FrameStamp)> = Vec::new();
    let mut injected: Option<(Instant, usize)> = None;
    let mut resumed_at = None;
    let mut fault_to_frame = None;
    let mut reconnecting_events = 0;
    let mut resume_pending = false;
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
                if resume_pending {
                    resume_pending = false;
                    resumed_at = Some(frames.len() - 1);
                    fault_to_frame = injected.map(|(at, _)| at.elapsed());
                }
                if injected.is_none() && frames.len() == FRAMES_AROUND {
                    if let Some(before) = before.clone() {
                        emulator.faults().inject(before).await;
                    }
                    injected = Some((Instant::now(), frames.len()));
                    emulator.faults().inject(fault.clone()).await;
                }
            }
            SessionEvent::Reconnecting { .. } => reconnecting_events += 1,
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
        "{mode:?}/{signaling:?} {fault:?}: fault→frame {:?}, sessions {}, reconnects {}, handover {:?}",
        fault_to_frame, counters.sessions_started, counters.reconnects, counters.handover
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
    let emulator = common::start_emulator(EmulatorConfig::ephemeral()).await;
    let outcome = across_fault(&emulator, mode, signaling, before, fault).await;
    assert_continuity(mode, &outcome);
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_sessions_live() {
    let outcome = check(
        Mode::Live,
        SignalingKind::WebSocket,
        None,
        Fault::DropSessions,
    )
    .await;
    assert!(outcome.reconnecting_events >= 1);
    assert!(
        outcome.fault_to_frame < Duration::from_secs(4),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_websockets_live() {
    check(
        Mode::Live,
        SignalingKind::WebSocket,
        None,
        Fault::CloseWebSockets,
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_media_live() {
    let outcome = check(Mode::Live, SignalingKind::Rest, None, Fault::StopMedia).await;
    assert!(outcome.reconnecting_events >= 1);
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
