//! A client that vanishes without closing (a killed tab, a peer that only drops its socket)
//! leaves its session behind until the disconnect timeout. When the OS hands that client's UDP
//! port to the next client, the new session must still connect and stream: the leftover
//! session's nominated pair used to make it accept every datagram from the port, STUN and DTLS
//! included, so the newcomer never connected (the bench's runs with no first frame in 20 s).

mod media_support;

use std::net::SocketAddr;
use std::time::Duration;

use media_support::{Answerer, DtlsRole, session_of};
use time::macros::datetime;
use tokio::sync::mpsc;
use uuid::Uuid;
use xprotect_emulator::camera::default_cameras;
use xprotect_emulator::media::{self, MediaEngineConfig, MediaEvent, MediaHandle, SessionRequest};
use xprotect_proto::wire::Playback;

/// A healthy session on loopback has its first frame in well under 100 ms.
const FIRST_FRAME_LIMIT: Duration = Duration::from_secs(5);
/// Clients in a row, each on the port of the one before.
const CLIENTS: u32 = 4;

fn request(session_id: Uuid, playback: Option<Playback>) -> SessionRequest {
    SessionRequest {
        session_id,
        camera_id: default_cameras()[0].id,
        ice_servers: vec![],
        include_audio: false,
        playback,
        stream_id: None,
    }
}

/// Offer, answer and candidate for a client bound to `bind`, run until its first frame.
async fn first_frame_from(
    engine: &MediaHandle,
    events: &mut mpsc::Receiver<MediaEvent>,
    req: SessionRequest,
    role: DtlsRole,
    bind: SocketAddr,
) -> Answerer {
    let id = req.session_id;
    let offer = engine.create_session(req).await.expect("offer");
    let (mut client, answer, candidate) = Answerer::answer_from(&offer, role, bind).await;
    if bind.port() != 0 {
        assert_eq!(client.addr, bind, "the client took the port it was given");
    }
    engine.apply_answer(id, &answer).await.expect("answer");
    engine
        .add_remote_candidate(id, candidate, None)
        .await
        .expect("candidate");
    let mut seen = Vec::new();
    client
        .run_until(events, &mut seen, FIRST_FRAME_LIMIT, |c, _| {
            !c.frames.is_empty()
        })
        .await;
    let closed: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, MediaEvent::Closed { .. }))
        .collect();
    assert!(closed.is_empty(), "no session closes meanwhile: {closed:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::Connected { .. }) && session_of(e) == id),
        "the new session connected: {seen:?}"
    );
    client
}

/// `CLIENTS` clients in a row, each vanishing after its first frame and the next taking its
/// port while the vanished client's session is still alive.
async fn clients_on_one_port(role: DtlsRole, playback: impl Fn(u32) -> Option<Playback>) {
    let (engine, mut events) = media::start(MediaEngineConfig::default())
        .await
        .expect("engine");
    let mut bind = SocketAddr::from(([127, 0, 0, 1], 0));
    for n in 0..CLIENTS {
        let client = first_frame_from(
            &engine,
            &mut events,
            request(Uuid::new_v4(), playback(n)),
            role,
            bind,
        )
        .await;
        assert_eq!(
            engine.session_count().await.expect("count"),
            n as usize + 1,
            "every vanished client's session is still there (until the disconnect timeout)"
        );
        bind = client.addr;
        // Gone without a word: no DTLS close_notify, no RTCP BYE; the socket closes.
        drop(client);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_session_connects_on_the_port_of_a_vanished_client() {
    // As the bench plays back: each run from a new time, the client the DTLS server.
    clients_on_one_port(DtlsRole::Passive, |n| {
        Some(Playback {
            start: datetime!(2025-01-15 13:00:00 UTC) + Duration::from_secs(7) * n,
            skip_gaps: true,
            speed: 1.0,
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_session_connects_on_the_port_of_a_vanished_client() {
    // A browser's role: the client is the DTLS client.
    clients_on_one_port(DtlsRole::Active, |_| None).await;
}
