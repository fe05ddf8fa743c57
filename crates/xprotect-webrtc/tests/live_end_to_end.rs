//! Live video end to end, in one process: the real emulator (axum + str0m + openh264) and the real
//! client (reqwest/tungstenite + webrtc-rs) over loopback with real ICE, DTLS and SRTP.
//! Every frame's time is checked against the recording time the emulator stamped into its SEI,
//! and the MP4 written by the same writer `record` uses is checked by ffprobe and ffmpeg.

mod common;

use std::time::{Duration, Instant};
use xprotect_client::media::DtlsRole;
use xprotect_client::record::{Mp4Writer, OutputTarget};
use xprotect_client::session::{Session, SessionEvent, SignalingKind, VideoFrame};

const FRAMES: usize = 110;

async fn record_live(signaling: SignalingKind, role: DtlsRole) {
    let emulator = common::emulator().await;
    let (gateway, tokens) = common::login(&emulator).await;
    let started = Instant::now();
    let mut session = Session::start(gateway, &tokens, common::live_options(signaling, role));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    let mut mp4 = Mp4Writer::new(OutputTarget::File(path.clone()).open().unwrap()).unwrap();
    let mut frames: Vec<VideoFrame> = Vec::new();
    let mut time_to_first_frame = None;
    while frames.len() < FRAMES {
        let event = tokio::time::timeout(Duration::from_secs(20), session.next_event())
            .await
            .expect("an event within 20 s")
            .expect("the session keeps running");
        match event {
            SessionEvent::Video(frame) => {
                time_to_first_frame.get_or_insert(started.elapsed());
                mp4.write(&frame).unwrap();
                frames.push(frame);
            }
            SessionEvent::Ended(result) => panic!("session ended early: {result:?}"),
            _ => {}
        }
    }
    session.close().await;
    mp4.finish().unwrap();
    eprintln!("{signaling:?}/{role:?}: first frame after {time_to_first_frame:?}");

    assert!(
        frames[0].access_unit.keyframe,
        "the first frame must be a keyframe"
    );
    let stamps: Vec<_> = frames
        .iter()
        .map(|f| {
            f.access_unit
                .frame_stamp()
                .expect("every emulator frame carries its SEI stamp")
        })
        .collect();
    // RTP counts milliseconds from the first frame the gateway sent, so the frame clock's times
    // must advance exactly as the recording times do.
    let first_time = frames[0].time.wall_clock;
    for (frame, stamp) in frames.iter().zip(&stamps) {
        let clock_ms = (frame.time.wall_clock - first_time).whole_milliseconds();
        let truth_ms = i128::from(stamp.recording_unix_ms - stamps[0].recording_unix_ms);
        assert!(
            (clock_ms - truth_ms).abs() <= 1,
            "frame {}: clock {clock_ms} ms, SEI {truth_ms} ms",
            stamp.frame
        );
    }
    // Live anchors the clock at the first frame's arrival: the absolute offset is the latency
    // from capture to arrival (encode + loopback), not a clock error.
    let first_truth = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(stamps[0].recording_unix_ms) * 1_000_000,
    )
    .unwrap();
    let latency = (first_time - first_truth).whole_milliseconds();
    assert!(
        (0..500).contains(&latency),
        "first frame {latency} ms after its recording time"
    );
    // Consecutive frames are 40 ms apart at 25 fps, with no holes.
    for pair in stamps.windows(2) {
        assert_eq!(pair[1].frame, pair[0].frame + 1, "no frame may be missing");
    }

    let (codec, decoded, duration) = common::ffprobe(&path);
    assert_eq!(codec, "h264");
    assert_eq!(
        decoded, FRAMES as u64,
        "ffprobe must decode every frame written"
    );
    let expected = FRAMES as f64 * 0.040;
    assert!(
        (duration - expected).abs() < 0.1,
        "duration {duration} s, expected about {expected} s"
    );
    let errors = common::ffmpeg_decode_errors(&path);
    assert!(
        errors.is_empty(),
        "ffmpeg reported decode errors:\n{errors}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_websocket_records_exact_frame_times() {
    record_live(SignalingKind::WebSocket, DtlsRole::Passive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_rest_records_exact_frame_times() {
    record_live(SignalingKind::Rest, DtlsRole::Passive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_with_active_dtls_role_works_over_both_transports() {
    record_live(SignalingKind::WebSocket, DtlsRole::Active).await;
    record_live(SignalingKind::Rest, DtlsRole::Active).await;
}
