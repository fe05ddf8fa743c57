//! Playback clients that vanish without closing (a killed tab, a peer that only drops its socket)
//! leave their sessions until the disconnect timeout. From the moment ICE says they are gone
//! their players must stop encoding: otherwise every such session keeps the camera's one
//! playback encoder busy with a GOP a second, and with enough of them a new session's first
//! picture waits seconds behind their look-ahead encodes.

mod media_support;

use std::time::Duration;

use media_support::{Answerer, DtlsRole, session_of, wait_event};
use time::macros::datetime;
use tokio::sync::mpsc;
use uuid::Uuid;
use xprotect_emulator::camera::default_cameras;
use xprotect_emulator::media::{self, MediaEngineConfig, MediaEvent, MediaHandle, SessionRequest};
use xprotect_proto::wire::Playback;

/// Sessions whose clients vanish.
const VANISHING: usize = 4;
/// A healthy session on loopback has its first frame in well under 100 ms; this is generous for
/// a loaded 2-core CI machine while far below the seconds a saturated encoder costs.
const FIRST_FRAME_LIMIT: Duration = Duration::from_secs(3);
/// str0m's ICE gives up on a silent peer after about 22 s.
const DISCONNECT_LIMIT: Duration = Duration::from_secs(60);
/// Frames of the new session that serve as the clock of the measurement: 5 s at 25 fps.
const MEASURED_FRAMES: usize = 125;
/// GOPs the new session itself encodes in those 5 s: its first, the look-ahead of each second
/// it plays, and one more at a boundary.
const NEW_SESSION_GOPS: u64 = 7;

fn playback_request(n: u32) -> SessionRequest {
    SessionRequest {
        session_id: Uuid::new_v4(),
        camera_id: default_cameras()[0].id,
        ice_servers: vec![],
        include_audio: false,
        // Each from its own time, so that no two sessions share a GOP.
        playback: Some(Playback {
            start: datetime!(2025-01-15 13:00:00 UTC) + Duration::from_secs(60) * n,
            skip_gaps: true,
            speed: 1.0,
        }),
        stream_id: None,
    }
}

/// Offer, answer and candidate; returns the client once it has its first frame.
async fn play(
    engine: &MediaHandle,
    events: &mut mpsc::Receiver<MediaEvent>,
    seen: &mut Vec<MediaEvent>,
    req: SessionRequest,
) -> Answerer {
    let id = req.session_id;
    let offer = engine.create_session(req).await.expect("offer");
    let (mut client, answer, candidate) = Answerer::answer(&offer, DtlsRole::Passive).await;
    engine.apply_answer(id, &answer).await.expect("answer");
    engine
        .add_remote_candidate(id, candidate, None)
        .await
        .expect("candidate");
    client
        .run_until(events, seen, FIRST_FRAME_LIMIT, |c, _| !c.frames.is_empty())
        .await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_playback_clients_cost_no_encoding_once_ice_gives_up() {
    let (engine, mut events) = media::start(MediaEngineConfig::default())
        .await
        .expect("engine");
    let mut seen = Vec::new();
    let mut vanishing = Vec::new();
    for n in 0..VANISHING {
        let req = playback_request(n as u32);
        let id = req.session_id;
        let client = play(&engine, &mut events, &mut seen, req).await;
        vanishing.push((id, client));
    }
    // Gone without a word: no DTLS close_notify, no RTCP BYE; the sockets close.
    let ids: Vec<Uuid> = vanishing.iter().map(|(id, _)| *id).collect();
    drop(vanishing);
    for id in &ids {
        wait_event(&mut events, &mut seen, DISCONNECT_LIMIT, |e| {
            matches!(e, MediaEvent::Disconnected { .. }) && session_of(e) == *id
        })
        .await;
    }
    let encoded_at_disconnect = engine.gop_cache_stats().gops_encoded;

    // A new session starts at once and plays 5 s while the vanished ones await their timeout.
    let mut newcomer = play(
        &engine,
        &mut events,
        &mut seen,
        playback_request(VANISHING as u32),
    )
    .await;
    newcomer
        .run_until(&mut events, &mut seen, Duration::from_secs(30), |c, _| {
            c.frames.len() >= MEASURED_FRAMES
        })
        .await;
    let encoded = engine.gop_cache_stats().gops_encoded - encoded_at_disconnect;
    assert_eq!(
        engine.session_count().await.expect("count"),
        VANISHING + 1,
        "the vanished clients' sessions are still there: {seen:?}"
    );
    // Each vanished player may finish the one look-ahead it had started when ICE gave up; a
    // player that went on would have encoded five more GOPs each in these 5 s.
    let limit = NEW_SESSION_GOPS + VANISHING as u64;
    assert!(
        encoded <= limit,
        "{encoded} GOPs encoded in the new session's first 5 s (at most {limit}: its own and \
         the vanished players' last look-aheads)"
    );
}
