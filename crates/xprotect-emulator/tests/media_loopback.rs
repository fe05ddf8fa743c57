//! End to end over real loopback UDP: engine offer → str0m answerer → ICE, DTLS (both roles),
//! SRTP, H.264 frames with ms RTP timestamps, and the commands data channel.

mod media_support;

use std::time::{Duration, Instant};

use media_support::{Answerer, DtlsRole, wait_event};
use uuid::Uuid;
use xprotect_emulator::camera::{default_cameras, split_annex_b};
use xprotect_emulator::media::{self, MediaEngineConfig, MediaEvent, SessionRequest};
use xprotect_proto::h264::sei::FrameStamp;

const FRAMES_WANTED: usize = 50;
const LIMIT: Duration = Duration::from_secs(20);

fn nal_types(au: &[u8]) -> Vec<u8> {
    split_annex_b(au)
        .filter_map(|n| n.first().map(|h| h & 0x1F))
        .collect()
}

fn stamp_of(au: &[u8]) -> FrameStamp {
    split_annex_b(au)
        .find(|n| n.first().is_some_and(|h| h & 0x1F == 6))
        .and_then(FrameStamp::from_sei_nal)
        .expect("every access unit carries the SEI frame stamp")
}

async fn stream_one_camera(role: DtlsRole, candidate_before_answer: bool) {
    let (engine, mut events) = media::start(MediaEngineConfig::default())
        .await
        .expect("engine starts");
    let camera = default_cameras()[0].clone();
    let session_id = Uuid::new_v4();

    let started = Instant::now();
    let offer = engine
        .create_session(SessionRequest {
            session_id,
            camera_id: camera.id,
            ice_servers: vec![],
            include_audio: true,
            playback: None,
            stream_id: None,
        })
        .await
        .expect("offer");
    assert!(offer.offer_sdp.contains("a=mid:0"), "{}", offer.offer_sdp);
    assert!(
        offer.offer_sdp.contains("a=group:BUNDLE 0 1"),
        "{}",
        offer.offer_sdp
    );
    assert!(offer.offer_sdp.contains("a=setup:actpass"));
    assert!(
        offer.offer_sdp.contains("m=application"),
        "{}",
        offer.offer_sdp
    );
    assert!(offer.offer_sdp.contains("H264/90000"));
    assert!(!offer.offer_sdp.contains("VP8") && !offer.offer_sdp.contains("VP9"));
    assert_eq!(
        offer.offer_sdp.matches("a=rtpmap:").count(),
        2,
        "H.264 + its RTX only:\n{}",
        offer.offer_sdp
    );
    let video_at = offer.offer_sdp.find("m=video").expect("video section");
    assert!(
        video_at < offer.offer_sdp.find("m=application").expect("app section"),
        "video first"
    );
    assert!(!offer.local_candidates.is_empty());
    for c in &offer.local_candidates {
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_m_line_index, Some(0));
        assert!(c.candidate.starts_with("candidate:"));
    }

    let (mut answerer, answer, candidate) = Answerer::answer(&offer, role).await;
    if candidate_before_answer {
        engine
            .add_remote_candidate(session_id, candidate.clone(), None)
            .await
            .expect("early candidate buffered");
    }
    engine
        .apply_answer(session_id, &answer)
        .await
        .expect("answer accepted");
    if !candidate_before_answer {
        engine
            .add_remote_candidate(session_id, candidate, None)
            .await
            .expect("candidate");
    }
    answerer.open_commands_channel();

    let mut seen = Vec::new();
    let mut sent = false;
    answerer
        .run_until(&mut events, &mut seen, LIMIT, |a, _| a.channel_open)
        .await;
    answerer.send_text(
        r#"{"ApiVersion":"1.0","type":"request","method":"ptzMove","params":{"direction":"up"}}"#,
    );
    answerer
        .run_until(&mut events, &mut seen, LIMIT, |a, seen| {
            sent |= seen
                .iter()
                .any(|e| matches!(e, MediaEvent::DataChannelMessage { .. }));
            a.frames.len() >= FRAMES_WANTED && sent
        })
        .await;
    let first_frame_after = answerer.frames[0].at - started;
    eprintln!("{role:?}: offer → first frame received {first_frame_after:?}");

    // The session starts at a keyframe that carries its parameter sets.
    let first = nal_types(&answerer.frames[0].data);
    assert!(
        first.contains(&5) && first.contains(&7) && first.contains(&8),
        "first AU NAL types {first:?}"
    );
    assert_eq!(first[0], 6, "the SEI stamp leads the access unit");

    // RTP timestamps: 0 at the first frame, then the recording-time difference in ms.
    let origin = stamp_of(&answerer.frames[0].data);
    assert_eq!(answerer.frames[0].rtp, 0);
    let mut last_frame = origin.frame;
    for f in &answerer.frames[1..] {
        let stamp = stamp_of(&f.data);
        assert_eq!(
            f.rtp as i64,
            stamp.recording_unix_ms - origin.recording_unix_ms,
            "frame {}",
            stamp.frame
        );
        assert_eq!(stamp.camera.as_deref(), Some(camera.name.as_str()));
        assert!(stamp.frame > last_frame);
        last_frame = stamp.frame;
    }
    // The same values on the wire, not just in str0m's media time.
    let mut wire: Vec<u32> = answerer.wire_timestamps.clone();
    wire.dedup();
    let expected: Vec<u32> = answerer.frames.iter().map(|f| f.rtp as u32).collect();
    assert!(
        wire.starts_with(&expected[..expected.len() - 1]),
        "wire {wire:?} vs frames {expected:?}"
    );
    // 25 fps: about 40 ms apart.
    let span = answerer.frames.last().map(|f| f.rtp).unwrap_or_default();
    let per_frame = span as f64 / (answerer.frames.len() - 1) as f64;
    assert!(
        (30.0..=50.0).contains(&per_frame),
        "{per_frame} ms per frame"
    );

    // The received stream decodes.
    let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
    let mut pictures = 0;
    for f in &answerer.frames {
        if decoder
            .decode(&f.data)
            .expect("received H.264 decodes")
            .is_some()
        {
            pictures += 1;
        }
    }
    assert!(pictures >= FRAMES_WANTED - 2, "{pictures} pictures decoded");

    // Engine events.
    wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::Connected { .. })
    })
    .await;
    let first_sent = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::FirstFrameSent { .. })
    })
    .await;
    assert_eq!(
        first_sent,
        MediaEvent::FirstFrameSent {
            session_id,
            rtp: 0,
            recording_unix_ms: origin.recording_unix_ms
        }
    );
    let open = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::DataChannelOpen { .. })
    })
    .await;
    assert_eq!(
        open,
        MediaEvent::DataChannelOpen {
            session_id,
            label: "commands".into(),
            protocol: "videoos-commands".into()
        }
    );
    let msg = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::DataChannelMessage { .. })
    })
    .await;
    assert!(matches!(msg, MediaEvent::DataChannelMessage { text, .. } if text.contains("ptzMove")));

    engine.close_session(session_id).await;
    let closed = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::Closed { .. })
    })
    .await;
    assert!(matches!(closed, MediaEvent::Closed { session_id: id, .. } if id == session_id));
    assert_eq!(engine.session_count().await.expect("engine alive"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_to_an_active_dtls_answerer() {
    stream_one_camera(DtlsRole::Active, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_to_a_passive_dtls_answerer_with_a_candidate_before_the_answer() {
    stream_one_camera(DtlsRole::Passive, true).await;
}
