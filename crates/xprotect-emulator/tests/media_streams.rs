//! Per-stream pictures: "Video stream 2" is a second, larger encoding of the camera, encoded only
//! while watched; "Video stream 1" (and no streamId) the configured size. Every picture, at
//! either size and in playback, carries the timecode strip with the SEI stamp's recording time.

mod media_support;

use std::time::Duration;

use media_support::Answerer;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use time::OffsetDateTime;
use uuid::Uuid;
use xprotect_emulator::camera::{
    FRONT_DOOR_ID, PARKING_LOT_ID, StreamKind, decode_timecode_from_luma, split_annex_b,
};
use xprotect_emulator::devices::{VIDEO_STREAM_1, VIDEO_STREAM_2};
use xprotect_emulator::media::{MediaHandle, SessionRequest};
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::wire::Playback;

const LIMIT: Duration = Duration::from_secs(20);
/// Frames each session must receive and decode.
const FRAMES: usize = 12;

fn request(camera_id: Uuid, stream_id: Option<Uuid>, playback: Option<Playback>) -> SessionRequest {
    SessionRequest {
        session_id: Uuid::new_v4(),
        camera_id,
        ice_servers: vec![],
        include_audio: false,
        playback,
        stream_id,
    }
}

/// Connects an answerer to a new session and returns it with the offer's profile-level-id line.
async fn connect(engine: &MediaHandle, req: SessionRequest) -> (Answerer, String) {
    let id = req.session_id;
    let offer = engine.create_session(req).await.expect("offer");
    let fmtp = offer
        .offer_sdp
        .lines()
        .find(|l| l.contains("profile-level-id"))
        .unwrap_or_default()
        .to_owned();
    let answerer = media_support::answer_offer(engine, id, &offer).await;
    (answerer, fmtp)
}

/// Receives `FRAMES` frames on `answerer` (on its own task, so several run at once).
fn receive(mut answerer: Answerer) -> tokio::task::JoinHandle<Answerer> {
    tokio::spawn(async move {
        let (_keep_open, mut no_events) = tokio::sync::mpsc::channel(1);
        let mut seen = Vec::new();
        answerer
            .run_until(&mut no_events, &mut seen, LIMIT, |a, _| {
                a.frames.len() >= FRAMES
            })
            .await;
        answerer
    })
}

/// Decodes every received access unit: the picture size, and for each picture whether the
/// timecode drawn in it equals the recording time of its SEI stamp.
fn decode(answerer: &Answerer) -> ((usize, usize), usize) {
    let mut decoder = Decoder::new().expect("decoder");
    let mut size = None;
    let mut matching = 0;
    for frame in &answerer.frames {
        let stamp = split_annex_b(&frame.data)
            .find(|n| n.first().is_some_and(|h| h & 0x1F == 6))
            .and_then(FrameStamp::from_sei_nal)
            .expect("every frame is stamped");
        let Some(picture) = decoder.decode(&frame.data).expect("decodes") else {
            continue;
        };
        let (w, h) = picture.dimensions();
        assert!(size.is_none_or(|s| s == (w, h)), "the size changed");
        size = Some((w, h));
        let timecode = decode_timecode_from_luma(picture.y(), w, h, picture.strides().0);
        assert_eq!(
            timecode,
            Some(stamp.recording_unix_ms),
            "frame {}",
            stamp.frame
        );
        matching += 1;
    }
    (size.expect("decoded a picture"), matching)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_2_is_a_second_larger_encoding_encoded_only_while_watched() {
    let (engine, _events) = media_support::start_default_engine().await;
    let stats = engine.encoder_stats();
    assert_eq!(stats.len(), 4, "two encodings per camera: {stats:#?}");
    assert!(stats.iter().all(|s| !s.running && s.frames_encoded == 0));
    let secondary = stats
        .iter()
        .find(|s| s.camera_id == FRONT_DOOR_ID && s.stream == StreamKind::Secondary)
        .expect("stream 2 stats");
    assert_eq!((secondary.width, secondary.height), (1280, 720));

    let (small, small_fmtp) =
        connect(&engine, request(FRONT_DOOR_ID, Some(VIDEO_STREAM_1), None)).await;
    let (large, large_fmtp) =
        connect(&engine, request(FRONT_DOOR_ID, Some(VIDEO_STREAM_2), None)).await;
    let (default, _) = connect(&engine, request(FRONT_DOOR_ID, None, None)).await;
    // openh264 picks its level from the size: 3.0 at 360p, 3.1 at 720p.
    assert!(
        small_fmtp.contains("profile-level-id=42c01e"),
        "{small_fmtp}"
    );
    assert!(
        large_fmtp.contains("profile-level-id=42c01f"),
        "{large_fmtp}"
    );
    let tasks = [receive(small), receive(large), receive(default)];
    let mut received = Vec::new();
    for task in tasks {
        received.push(task.await.expect("answerer task"));
    }

    let sizes: Vec<(usize, usize)> = received
        .iter()
        .map(|a| {
            let (size, matching) = decode(a);
            assert!(matching >= FRAMES - 1, "{matching} pictures decoded");
            size
        })
        .collect();
    assert_eq!(sizes, vec![(640, 360), (1280, 720), (640, 360)]);

    let stats = engine.encoder_stats();
    let of = |camera, stream| {
        stats
            .iter()
            .find(|s| s.camera_id == camera && s.stream == stream)
            .expect("stats")
            .clone()
    };
    let primary = of(FRONT_DOOR_ID, StreamKind::Primary);
    let secondary = of(FRONT_DOOR_ID, StreamKind::Secondary);
    assert_eq!(
        primary.subscribers, 1,
        "streams 1 and default share one feed"
    );
    assert_eq!(secondary.subscribers, 1);
    assert!(primary.running && secondary.running);
    assert!(secondary.frames_encoded >= FRAMES as u64);
    for stream in [StreamKind::Primary, StreamKind::Secondary] {
        let unwatched = of(PARKING_LOT_ID, stream);
        assert_eq!(
            (unwatched.running, unwatched.frames_encoded),
            (false, 0),
            "nobody watches Parking Lot {stream:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_of_stream_2_serves_the_recording_of_stream_1() {
    let (engine, _events) = media_support::start_default_engine().await;
    // Inside the default recordings (2025-01-15 12:00–12:05 UTC).
    let start = OffsetDateTime::from_unix_timestamp(1_736_942_460).expect("time");
    let playback = Playback {
        start,
        skip_gaps: false,
        speed: 1.0,
    };
    let (answerer, fmtp) = connect(
        &engine,
        request(FRONT_DOOR_ID, Some(VIDEO_STREAM_2), Some(playback)),
    )
    .await;
    assert!(fmtp.contains("profile-level-id=42c01e"), "{fmtp}");
    let answerer = receive(answerer).await.expect("answerer task");
    let ((w, h), matching) = decode(&answerer);
    assert_eq!((w, h), (640, 360));
    assert!(matching >= FRAMES - 1);
    assert!(
        engine.encoder_stats().iter().all(|s| s.frames_encoded == 0),
        "playback does not start a live encoder"
    );
}
