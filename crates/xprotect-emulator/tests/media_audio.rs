//! PCMU audio over real loopback WebRTC (PROTOCOL.md §4.1, §4.2): the offer's audio section, 8 kHz
//! timestamps on the video's start reference, clicks on whole seconds of recording time, gaps in
//! playback, the cases without audio, and a microphone's audio-only session.

mod media_support;

use std::collections::HashMap;
use std::time::Duration;

use media_support::{Answerer, DtlsRole, ReceivedAudio, wait_event};
use time::macros::datetime;
use uuid::Uuid;
use xprotect_emulator::audio::{mulaw, tone};
use xprotect_emulator::camera::{default_cameras, split_annex_b};
use xprotect_emulator::media::{
    self, MediaEngineConfig, MediaError, MediaEvent, MediaHandle, SessionOffer, SessionRequest,
};
use xprotect_emulator::playback::unix_ms;
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::wire::Playback;

const LIMIT: Duration = Duration::from_secs(15);
const MICROPHONE: Uuid = Uuid::from_u128(0x5EC0_0000_0000_4000_8000_0000_0000_0001);
/// Between the tone's peak (1000) and the click's (20000).
const CLICK_THRESHOLD: i16 = 8_000;
/// One video frame at 25 fps, ms.
const FRAME_MS: i64 = 40;

fn front_door() -> Uuid {
    default_cameras()[0].id
}

async fn engine_with_microphone() -> (MediaHandle, tokio::sync::mpsc::Receiver<MediaEvent>) {
    media::start(MediaEngineConfig {
        microphones: HashMap::from([(MICROPHONE, front_door())]),
        ..MediaEngineConfig::default()
    })
    .await
    .expect("engine starts")
}

fn request(camera_id: Uuid, include_audio: bool, playback: Option<Playback>) -> SessionRequest {
    SessionRequest {
        include_audio,
        playback,
        ..SessionRequest::live(Uuid::new_v4(), camera_id)
    }
}

/// The m-section of `offer` that starts with `m=<kind>`, up to the next one.
fn section<'a>(offer: &'a str, kind: &str) -> Option<&'a str> {
    let start = offer.find(&format!("m={kind} "))?;
    let rest = &offer[start..];
    let end = rest[2..].find("\nm=").map_or(rest.len(), |i| i + 3);
    Some(&rest[..end])
}

fn msid_stream(section: &str) -> Option<&str> {
    section
        .lines()
        .find_map(|l| l.strip_prefix("a=msid:"))
        .and_then(|v| v.split_whitespace().next())
}

/// Connects an answerer to a new session and returns it with the session id and offer.
async fn connect(engine: &MediaHandle, req: SessionRequest) -> (Answerer, Uuid, SessionOffer) {
    let session_id = req.session_id;
    let offer = engine.create_session(req).await.expect("offer");
    let (answerer, answer, candidate) = Answerer::answer(&offer, DtlsRole::Passive).await;
    engine
        .apply_answer(session_id, &answer)
        .await
        .expect("answer accepted");
    engine
        .add_remote_candidate(session_id, candidate, None)
        .await
        .expect("candidate");
    (answerer, session_id, offer)
}

fn stamp_of(au: &[u8]) -> FrameStamp {
    split_annex_b(au)
        .find(|n| n.first().is_some_and(|h| h & 0x1F == 6))
        .and_then(FrameStamp::from_sei_nal)
        .expect("every access unit carries the SEI frame stamp")
}

/// Recording times (Unix ms × 8, i.e. sample indices) of the clicks in `packets`, given the start
/// reference `start_ms`: `start + rtp/8 + offset in the packet`.
fn click_samples(packets: &[ReceivedAudio], start_ms: i64) -> Vec<i64> {
    let mut clicks = Vec::new();
    // Decode runs of contiguous packets, so a click is found once even across packet borders.
    let mut run: Vec<i16> = Vec::new();
    let mut run_start = 0i64;
    let mut next_rtp = None;
    let mut flush = |run: &mut Vec<i16>, run_start: i64| {
        for index in tone::find_clicks(run, CLICK_THRESHOLD) {
            clicks.push(start_ms * 8 + run_start + index as i64);
        }
        run.clear();
    };
    for p in packets {
        let rtp = p.rtp as i64;
        if next_rtp != Some(rtp) {
            flush(&mut run, run_start);
            run_start = rtp;
        }
        run.extend(mulaw::decode(&p.data));
        next_rtp = Some(rtp + p.data.len() as i64);
    }
    flush(&mut run, run_start);
    clicks
}

fn assert_clicks_on_whole_seconds(clicks: &[i64]) {
    for c in clicks {
        // Sample-exact: the brief allows 1 ms (8 samples); the emulator is exact.
        let off = c.rem_euclid(8_000).min(8_000 - c.rem_euclid(8_000));
        assert!(
            off <= 8,
            "click at sample {c} is {off} samples off a whole second"
        );
    }
}

/// Audio packets are 20 ms of PCMU with consecutive timestamps (except across `gaps`).
fn assert_pcmu_packets(audio: &[ReceivedAudio]) {
    for p in audio {
        assert_eq!(p.pt, 0, "PCMU's static payload type");
        assert!(p.data.len() <= 160 && !p.data.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_audio_shares_the_video_start_reference_and_clicks_on_whole_seconds() {
    let (engine, mut events) = engine_with_microphone().await;
    let (mut answerer, session_id, offer) =
        connect(&engine, request(front_door(), true, None)).await;
    assert!(offer.video && offer.audio);
    let sdp = &offer.offer_sdp;
    assert!(sdp.contains("a=group:BUNDLE 0 1 2"), "{sdp}");
    let video = section(sdp, "video").expect("video section");
    let audio = section(sdp, "audio").expect("audio section");
    assert!(
        audio.starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 0"),
        "{audio}"
    );
    assert!(audio.contains("a=rtpmap:0 PCMU/8000"), "{audio}");
    assert!(
        audio.contains("a=sendonly") && audio.contains("a=mid:1"),
        "{audio}"
    );
    assert_eq!(audio.matches("a=rtpmap:").count(), 1, "PCMU only: {audio}");
    assert_eq!(msid_stream(video), msid_stream(audio), "one stream");
    assert!(sdp.find("m=video") < sdp.find("m=audio"));
    assert!(sdp.find("m=audio") < sdp.find("m=application"));

    let mut seen = Vec::new();
    // 2.2 s of audio holds at least two whole seconds.
    answerer
        .run_until(&mut events, &mut seen, LIMIT, |a, _| a.audio.len() >= 110)
        .await;
    let first_video = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::FirstFrameSent { .. })
    })
    .await;
    let MediaEvent::FirstFrameSent {
        recording_unix_ms: start_ms,
        ..
    } = first_video
    else {
        unreachable!()
    };
    let first_audio = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::FirstAudioSent { .. })
    })
    .await;
    assert_eq!(
        first_audio,
        MediaEvent::FirstAudioSent {
            session_id,
            rtp: 0,
            recording_unix_ms: start_ms
        },
        "audio sample 0 is the video's start reference"
    );

    let audio = &answerer.audio;
    assert_pcmu_packets(audio);
    assert_eq!(audio[0].rtp, 0);
    for pair in audio.windows(2) {
        assert_eq!(
            pair[1].rtp,
            pair[0].rtp + 160,
            "20 ms packets, no gaps live"
        );
    }
    assert_eq!(
        answerer.audio_wire_timestamps.first(),
        Some(&0),
        "the wire carries the raw sample count"
    );
    // Paced in real time: 2.2 s of audio takes about 2.2 s to arrive.
    let spread = audio[109].at - audio[0].at;
    assert!(
        spread > Duration::from_millis(1_800),
        "110 packets arrived within {spread:?}"
    );

    // Video and audio on one timeline: each frame's recording time matches its rtp, and the audio
    // that arrived with it is within a frame of it.
    for frame in answerer.frames.iter().skip(1) {
        let stamp = stamp_of(&frame.data);
        assert_eq!(frame.rtp as i64, stamp.recording_unix_ms - start_ms);
        let nearest = audio
            .iter()
            .min_by_key(|a| {
                if a.at > frame.at {
                    a.at - frame.at
                } else {
                    frame.at - a.at
                }
            })
            .expect("audio");
        let audio_end_ms = (nearest.rtp as i64 + 160) / 8;
        assert!(
            (audio_end_ms - frame.rtp as i64).abs() <= FRAME_MS + 20,
            "audio ending at {audio_end_ms} ms arrived with the frame at {} ms",
            frame.rtp
        );
    }

    let clicks = click_samples(audio, start_ms);
    assert!(clicks.len() >= 2, "clicks {clicks:?}");
    assert_clicks_on_whole_seconds(&clicks);
    // And every whole second in the received span has its click.
    let span_start = start_ms * 8;
    let span_end = span_start + audio.last().map_or(0, |p| p.rtp as i64 + 160);
    let seconds = (span_start.div_euclid(8_000)..=span_end.div_euclid(8_000))
        .filter(|s| s * 8_000 >= span_start && s * 8_000 + 40 <= span_end)
        .count();
    assert_eq!(clicks.len(), seconds, "clicks {clicks:?}");
    engine.close_session(session_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_audio_starts_at_the_requested_time_and_jumps_gaps_like_the_video() {
    let (engine, mut events) = engine_with_microphone().await;
    // 12:04:59.5: half a second before the 10 s gap that ends at 12:05:10.
    let start = datetime!(2025-01-15 12:04:59.5 UTC);
    let start_ms = unix_ms(start);
    let playback = Playback {
        start,
        speed: 1.0,
        skip_gaps: true,
    };
    let (mut answerer, _, offer) =
        connect(&engine, request(front_door(), true, Some(playback))).await;
    assert!(offer.audio);
    let mut seen = Vec::new();
    let after_gap_ms = unix_ms(datetime!(2025-01-15 12:05:11.2 UTC)) - start_ms;
    answerer
        .run_until(&mut events, &mut seen, LIMIT, |a, _| {
            a.audio
                .last()
                .is_some_and(|p| p.rtp as i64 / 8 >= after_gap_ms)
        })
        .await;
    let audio = &answerer.audio;
    assert_pcmu_packets(audio);
    assert_eq!(audio[0].rtp, 0, "audio starts at the requested time");
    let gap_start = (unix_ms(datetime!(2025-01-15 12:05:00 UTC)) - start_ms) * 8;
    let gap_end = (unix_ms(datetime!(2025-01-15 12:05:10 UTC)) - start_ms) * 8;
    for p in audio {
        let (from, to) = (p.rtp as i64, p.rtp as i64 + p.data.len() as i64);
        assert!(
            to <= gap_start || from >= gap_end,
            "no audio inside the gap: packet {from}..{to}"
        );
    }
    let resumed = audio
        .iter()
        .find(|p| p.rtp as i64 >= gap_end)
        .expect("audio after the gap");
    assert_eq!(
        resumed.rtp as i64, gap_end,
        "the timestamp jumps by the gap, to the next recording's start"
    );
    let before = audio
        .iter()
        .rev()
        .find(|p| (p.rtp as i64) < gap_start)
        .expect("audio before the gap");
    assert_eq!(
        before.rtp as i64 + before.data.len() as i64,
        gap_start,
        "audio runs to the recording's end"
    );
    // Video has the same jump: 12:05:10 is rtp 10 500 ms.
    assert!(
        answerer
            .frames
            .iter()
            .any(|f| f.rtp as i64 == (gap_end / 8)),
        "the video's first frame after the gap is at rtp {}",
        gap_end / 8
    );
    let clicks = click_samples(audio, start_ms);
    // 12:05:00 is the gap's start (no audio there); 12:05:10 starts the recording with a click.
    let whole_seconds: Vec<i64> = clicks.iter().map(|c| c / 8_000).collect();
    assert_eq!(
        whole_seconds,
        [
            unix_ms(datetime!(2025-01-15 12:05:10 UTC)) / 1000,
            unix_ms(datetime!(2025-01-15 12:05:11 UTC)) / 1000
        ],
        "clicks {clicks:?}"
    );
    assert_clicks_on_whole_seconds(&clicks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audio_without_include_audio_at_speed_two_or_for_a_camera_without_microphone() {
    let (engine, _events) = engine_with_microphone().await;
    let parking_lot = default_cameras()[1].id;
    let fast = Playback {
        start: datetime!(2025-01-15 12:00:00 UTC),
        speed: 2.0,
        skip_gaps: false,
    };
    let cases = [
        ("includeAudio false", request(front_door(), false, None)),
        ("speed 2", request(front_door(), true, Some(fast))),
        ("no microphone", request(parking_lot, true, None)),
    ];
    for (case, req) in cases {
        let (mut answerer, session_id, offer) = connect(&engine, req).await;
        assert!(offer.video && !offer.audio, "{case}");
        assert!(
            !offer.offer_sdp.contains("m=audio"),
            "{case}: {}",
            offer.offer_sdp
        );
        assert!(offer.offer_sdp.contains("a=group:BUNDLE 0 1"), "{case}");
        let (_keep, mut no_events) = tokio::sync::mpsc::channel(1);
        answerer
            .run_until(&mut no_events, &mut Vec::new(), LIMIT, |a, _| {
                a.frames.len() >= 10
            })
            .await;
        assert!(answerer.audio.is_empty(), "{case}");
        assert!(answerer.audio_wire_timestamps.is_empty(), "{case}");
        engine.close_session(session_id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_gives_an_audio_only_session() {
    let (engine, mut events) = engine_with_microphone().await;
    // includeAudio false does not matter: the device is the microphone.
    let (mut answerer, session_id, offer) =
        connect(&engine, request(MICROPHONE, false, None)).await;
    assert!(!offer.video && offer.audio);
    let sdp = &offer.offer_sdp;
    assert!(!sdp.contains("m=video"), "{sdp}");
    assert!(sdp.contains("a=group:BUNDLE 0 1"), "{sdp}");
    assert!(section(sdp, "audio").is_some_and(|a| a.contains("a=mid:0")));
    assert!(sdp.contains("m=application"));
    assert_eq!(offer.local_candidates[0].sdp_mid.as_deref(), Some("0"));

    let mut seen = Vec::new();
    answerer
        .run_until(&mut events, &mut seen, LIMIT, |a, _| a.audio.len() >= 60)
        .await;
    assert!(answerer.frames.is_empty(), "no video");
    let first_audio = wait_event(&mut events, &mut seen, LIMIT, |e| {
        matches!(e, MediaEvent::FirstAudioSent { .. })
    })
    .await;
    let MediaEvent::FirstAudioSent {
        rtp: 0,
        recording_unix_ms: start_ms,
        ..
    } = first_audio
    else {
        panic!("first audio at rtp 0: {first_audio:?}")
    };
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MediaEvent::FirstFrameSent { .. }))
    );
    assert_pcmu_packets(&answerer.audio);
    let clicks = click_samples(&answerer.audio, start_ms);
    assert!(!clicks.is_empty(), "1.2 s of audio has a whole second");
    assert_clicks_on_whole_seconds(&clicks);
    // The camera's encoder never started for it.
    assert!(engine.encoder_stats().iter().all(|s| s.frames_encoded == 0));
    engine.close_session(session_id).await;

    let fast = Playback {
        start: datetime!(2025-01-15 12:00:00 UTC),
        speed: 2.0,
        skip_gaps: false,
    };
    let refused = engine
        .create_session(request(MICROPHONE, true, Some(fast)))
        .await;
    assert!(
        matches!(refused, Err(MediaError::AudioSpeed(s)) if s == 2.0),
        "{refused:?}"
    );
}
