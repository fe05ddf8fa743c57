//! Playback end to end, in one process: the real emulator playing its recordings (with gaps)
//! and the real client over loopback WebRTC. Every frame's time from the client's frame clock
//! (requested time + RTP ms) must equal the recording time the emulator stamped into its SEI,
//! across gaps, with skipGaps and at speed; `until` (`record --to`) stops at the right frame; an
//! MP4 of a playback across a gap keeps the gap in its timestamps.

mod common;

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::macros::datetime;
use xprotect_client::media::DtlsRole;
use xprotect_client::record::{OutputFormat, OutputTarget, VideoWriter};
use xprotect_client::recorder::{self, RecordPlan, StopReason};
use xprotect_client::session::{Session, SessionEvent, SessionOptions, SignalingKind, VideoFrame};
use xprotect_emulator::JournalEvent;
use xprotect_proto::wire::Playback;

/// The default timeline records 12:00:00–12:05:00 and 12:05:10–12:10:00 on 2025-01-15: a 10 s gap.
const GAP_START: OffsetDateTime = datetime!(2025-01-15 12:05:00 UTC);
const GAP_END: OffsetDateTime = datetime!(2025-01-15 12:05:10 UTC);

fn playback_options(
    signaling: SignalingKind,
    start: OffsetDateTime,
    skip_gaps: bool,
    speed: f64,
) -> SessionOptions {
    let mut options = common::live_options(signaling, DtlsRole::Passive);
    options.params.playback = Some(Playback {
        start,
        skip_gaps,
        speed,
    });
    options
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A received frame with its SEI recording time and when it arrived.
struct Received {
    frame: VideoFrame,
    recording_unix_ms: i64,
    arrived: Instant,
}

/// Frames until one is recorded at or after `until`.
async fn play_until(options: SessionOptions, until: OffsetDateTime) -> Vec<Received> {
    let emulator = common::emulator().await;
    let (gateway, tokens) = common::login(&emulator).await;
    let mut session = Session::start(gateway, &tokens, options);
    let mut frames = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), session.next_event())
            .await
            .expect("an event within 20 s")
            .expect("the session keeps running");
        match event {
            SessionEvent::Video(frame) => {
                let stamp = frame
                    .access_unit
                    .frame_stamp()
                    .expect("every emulator frame carries its SEI stamp");
                let done = stamp.recording_unix_ms >= unix_ms(until);
                frames.push(Received {
                    frame,
                    recording_unix_ms: stamp.recording_unix_ms,
                    arrived: Instant::now(),
                });
                if done {
                    break;
                }
            }
            SessionEvent::Ended(result) => panic!("session ended early: {result:?}"),
            _ => {}
        }
    }
    session.close().await;
    emulator.shutdown().await;
    frames
}

/// The frame clock equals the SEI recording time for every frame (within 1 ms).
fn assert_clock_is_recording_time(frames: &[Received]) {
    for r in frames {
        let clock_ms = unix_ms(r.frame.time.wall_clock);
        assert!(
            (clock_ms - r.recording_unix_ms).abs() <= 1,
            "clock {clock_ms} ms, SEI {} ms",
            r.recording_unix_ms
        );
    }
}

/// The index of the first frame after the gap; checks the frames before it end at the gap.
fn gap_index(frames: &[Received]) -> usize {
    let after = frames
        .iter()
        .position(|r| r.recording_unix_ms >= unix_ms(GAP_END))
        .expect("frames after the gap");
    assert!(after > 0, "frames before the gap");
    assert!(frames[after - 1].recording_unix_ms < unix_ms(GAP_START));
    assert_eq!(frames[after].recording_unix_ms, unix_ms(GAP_END));
    assert!(
        frames[after].frame.access_unit.keyframe,
        "a recording starts with a keyframe"
    );
    after
}

async fn skip_gaps_at_speed_one(signaling: SignalingKind) {
    let start = datetime!(2025-01-15 12:04:58 UTC);
    let frames = play_until(
        playback_options(signaling, start, true, 1.0),
        datetime!(2025-01-15 12:05:11 UTC),
    )
    .await;
    assert!(
        frames[0].frame.access_unit.keyframe,
        "playback starts with a keyframe"
    );
    assert_eq!(frames[0].recording_unix_ms, unix_ms(start));
    assert_eq!(
        frames[0].frame.time.media_ms, 0,
        "RTP 0 is the requested time"
    );
    assert_clock_is_recording_time(&frames);
    let after = gap_index(&frames);
    assert_eq!(after, 50, "every frame of the 2 s before the gap");
    // The gap is skipped: the next recording follows at the frame rate, not 10 s later.
    let pause = frames[after].arrived - frames[after - 1].arrived;
    assert!(
        pause < Duration::from_millis(1_000),
        "waited {pause:?} at the skipped gap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_gaps_over_rest_keeps_recording_times() {
    skip_gaps_at_speed_one(SignalingKind::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_gaps_over_websocket_keeps_recording_times() {
    skip_gaps_at_speed_one(SignalingKind::WebSocket).await;
}

async fn speed_four_waits_out_the_gap(signaling: SignalingKind) {
    let start = datetime!(2025-01-15 12:04:56 UTC);
    let frames = play_until(
        playback_options(signaling, start, false, 4.0),
        datetime!(2025-01-15 12:05:11 UTC),
    )
    .await;
    assert!(frames[0].frame.access_unit.keyframe);
    assert_eq!(frames[0].recording_unix_ms, unix_ms(start));
    assert_clock_is_recording_time(&frames);
    let after = gap_index(&frames);
    // 100 frames/s wanted, at most 60 sent: every other recorded frame, 80 ms apart.
    for pair in frames[..after].windows(2) {
        assert_eq!(pair[1].recording_unix_ms - pair[0].recording_unix_ms, 80);
    }
    // 4 s of recording play in about 1 s, then nothing for 10 s / 4.
    let before_gap = frames[after - 1].arrived - frames[0].arrived;
    assert!(
        (Duration::from_millis(700)..Duration::from_millis(1_600)).contains(&before_gap),
        "4 s of recording took {before_gap:?}"
    );
    let pause = frames[after].arrived - frames[after - 1].arrived;
    assert!(
        (Duration::from_millis(2_200)..Duration::from_millis(3_200)).contains(&pause),
        "the 10 s gap at speed 4 took {pause:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_four_over_websocket_waits_out_the_gap_in_a_quarter_of_its_time() {
    speed_four_waits_out_the_gap(SignalingKind::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_four_over_rest_waits_out_the_gap_in_a_quarter_of_its_time() {
    speed_four_waits_out_the_gap(SignalingKind::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_until_a_time_stops_there_and_the_mp4_keeps_the_gap() {
    let emulator = common::emulator().await;
    let (gateway, tokens) = common::login(&emulator).await;
    let start = datetime!(2025-01-15 12:04:58 UTC);
    let until = datetime!(2025-01-15 12:05:11 UTC);
    let session = Session::start(
        gateway,
        &tokens,
        playback_options(SignalingKind::Rest, start, true, 1.0),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("playback.mp4");
    let plan = RecordPlan {
        duration: None,
        until: Some(until),
        video: Some(
            VideoWriter::create(&OutputTarget::File(path.clone()), OutputFormat::Mp4).unwrap(),
        ),
        frame_log: None,
    };
    let (stats, outcome) = tokio::time::timeout(
        Duration::from_secs(30),
        recorder::record(session, plan, Instant::now(), std::future::pending()),
    )
    .await
    .expect("recording ends within 30 s");
    assert!(
        matches!(outcome, Ok(StopReason::ReachedUntil)),
        "{outcome:?}"
    );
    // 2 s before the gap and 1 s after it, at 25 fps; the frame at `until` is not written.
    assert_eq!(stats.frames, 75);
    assert_eq!(stats.first_frame_time, Some(start));
    assert_eq!(
        stats.last_frame_time,
        Some(datetime!(2025-01-15 12:05:10.960 UTC))
    );
    emulator.shutdown().await;

    let (codec, decoded, duration) = common::ffprobe(&path);
    assert_eq!(codec, "h264");
    assert_eq!(decoded, 75, "ffprobe decodes every frame written");
    // 12:04:58 to 12:05:11 in media time: the 10 s gap stays in the file's timestamps.
    assert!(
        (duration - 13.0).abs() < 0.1,
        "duration {duration} s, expected 13 s with the gap"
    );
    let errors = common::ffmpeg_decode_errors(&path);
    assert!(
        errors.is_empty(),
        "ffmpeg reported decode errors:\n{errors}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_ends_after_the_last_recording_and_the_journal_says_so() {
    let emulator = common::emulator().await;
    let mut journal = emulator.journal();
    let (gateway, tokens) = common::login(&emulator).await;
    // The last recording ends at 14:00:00: one second of video at speed 2, then the end.
    let mut session = Session::start(
        gateway,
        &tokens,
        playback_options(
            SignalingKind::WebSocket,
            datetime!(2025-01-15 13:59:59 UTC),
            true,
            2.0,
        ),
    );
    let mut last = None;
    let ended = loop {
        tokio::select! {
            event = session.next_event() => match event {
                Some(SessionEvent::Video(frame)) => {
                    last = frame.access_unit.frame_stamp().map(|s| s.recording_unix_ms);
                }
                Some(SessionEvent::Ended(result)) => panic!("session ended: {result:?}"),
                _ => {}
            },
            entry = tokio::time::timeout(Duration::from_secs(20), journal.recv()) => {
                let entry = entry.expect("journal events within 20 s").expect("journal open");
                if let JournalEvent::PlaybackEnded { last_recording_time, .. } = entry.event {
                    break last_recording_time;
                }
            }
        }
    };
    assert_eq!(ended.as_deref(), Some("2025-01-15T13:59:59.960Z"));
    // The last frame may still be on its way when the journal reports the end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while last != Some(unix_ms(datetime!(2025-01-15 13:59:59.960 UTC))) {
        match tokio::time::timeout_at(deadline, session.next_event()).await {
            Ok(Some(SessionEvent::Video(frame))) => {
                last = frame.access_unit.frame_stamp().map(|s| s.recording_unix_ms);
            }
            Ok(Some(_)) => {}
            other => panic!("the last recorded frame never arrived: {:?}", other.is_ok()),
        }
    }
    session.close().await;
    emulator.shutdown().await;
}
