//! Several sessions on one camera share one encoder; bad input yields typed errors.

mod media_support;

use std::collections::HashMap;
use std::time::Duration;

use media_support::{Answerer, DtlsRole};
use uuid::Uuid;
use xprotect_emulator::camera::{default_cameras, split_annex_b};
use xprotect_emulator::media::{IceCandidateInit, MediaError, SessionRequest};
use xprotect_proto::h264::sei::FrameStamp;

const LIMIT: Duration = Duration::from_secs(20);

fn request(session_id: Uuid, camera_id: Uuid) -> SessionRequest {
    SessionRequest {
        session_id,
        camera_id,
        ice_servers: vec![],
        include_audio: false,
        playback: None,
        stream_id: None,
    }
}

fn stamps(a: &Answerer) -> HashMap<u64, i64> {
    a.frames
        .iter()
        .filter_map(|f| {
            split_annex_b(&f.data)
                .find(|n| n.first().is_some_and(|h| h & 0x1F == 6))
                .and_then(FrameStamp::from_sei_nal)
        })
        .map(|s| (s.frame, s.recording_unix_ms))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_share_one_encoder() {
    let (engine, mut events) = media_support::start_default_engine().await;
    let [front, parking] = [default_cameras()[0].id, default_cameras()[1].id];
    assert!(
        engine
            .encoder_stats()
            .iter()
            .all(|s| !s.running && s.frames_encoded == 0),
        "idle until watched"
    );

    let mut answerers = Vec::new();
    for _ in 0..2 {
        let id = Uuid::new_v4();
        let offer = engine
            .create_session(request(id, front))
            .await
            .expect("offer");
        answerers.push(media_support::answer_offer(&engine, id, &offer).await);
    }
    // Drive both answerers at once, each on its own task (the engine's events are not needed).
    let tasks: Vec<_> = answerers
        .into_iter()
        .map(|mut a| {
            tokio::spawn(async move {
                let (_keep_open, mut no_events) = tokio::sync::mpsc::channel(1);
                let mut seen = Vec::new();
                a.run_until(&mut no_events, &mut seen, LIMIT, |a, _| {
                    a.frames.len() >= 15
                })
                .await;
                a
            })
        })
        .collect();
    let mut answerers = Vec::new();
    for t in tasks {
        answerers.push(t.await.expect("answerer task"));
    }
    drop(events.try_recv());
    let (a, b) = (stamps(&answerers[0]), stamps(&answerers[1]));
    let shared: Vec<_> = a.keys().filter(|k| b.contains_key(k)).collect();
    assert!(
        shared.len() >= 5,
        "both sessions got the same encoded frames: {shared:?}"
    );
    for k in shared {
        assert_eq!(a[k], b[k], "frame {k} has one recording time");
    }

    let stats = engine.encoder_stats();
    let front_stats = stats
        .iter()
        .find(|s| s.camera_id == front)
        .expect("front stats");
    let parking_stats = stats
        .iter()
        .find(|s| s.camera_id == parking)
        .expect("parking stats");
    assert!(front_stats.running);
    assert_eq!(
        front_stats.subscribers, 1,
        "one engine subscription feeds both sessions"
    );
    let received = answerers
        .iter()
        .map(|a| a.frames.len() as u64)
        .max()
        .unwrap_or(0);
    assert!(
        front_stats.frames_encoded < received + 30,
        "encoded {} for {} received per session: one encoder, not one per session",
        front_stats.frames_encoded,
        received
    );
    assert_eq!(
        parking_stats.frames_encoded, 0,
        "an unwatched camera does not encode"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors() {
    let (engine, _events) = media_support::start_default_engine().await;
    let camera = default_cameras()[0].id;

    let missing = Uuid::new_v4();
    assert!(matches!(
        engine.create_session(request(Uuid::new_v4(), missing)).await,
        Err(MediaError::UnknownCamera(id)) if id == missing
    ));
    assert!(matches!(
        engine.apply_answer(missing, "v=0").await,
        Err(MediaError::UnknownSession(_))
    ));

    let id = Uuid::new_v4();
    let offer = engine
        .create_session(request(id, camera))
        .await
        .expect("offer");
    assert!(matches!(
        engine.create_session(request(id, camera)).await,
        Err(MediaError::DuplicateSession(_))
    ));

    let garbage = IceCandidateInit {
        candidate: "candidate:not a candidate".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    assert!(matches!(
        engine.add_remote_candidate(id, garbage, None).await,
        Err(MediaError::BadCandidate(_))
    ));

    // Unparseable text: rejected, and the session still takes a good answer afterwards.
    let err = engine
        .apply_answer(id, "this is not SDP")
        .await
        .expect_err("garbage answer");
    assert!(matches!(err, MediaError::BadAnswer(_)), "{err}");

    // Parseable SDP that str0m rejects: no fingerprint.
    let (_answerer, answer, _) = Answerer::answer(&offer, DtlsRole::Passive).await;
    let no_fingerprint: String = answer
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect();
    let err = engine
        .apply_answer(id, &no_fingerprint)
        .await
        .expect_err("answer without fingerprint");
    assert!(
        matches!(err, MediaError::BadAnswer(ref m) if m.contains("fingerprint")),
        "{err}"
    );
    // A rejected answer ends the session.
    assert!(matches!(
        engine.apply_answer(id, &answer).await,
        Err(MediaError::UnknownSession(_))
    ));
    tokio::time::timeout(LIMIT, async {
        while engine.session_count().await.unwrap_or(0) != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("rejected session removed");
}
