//! Fault injection and token enforcement, over real loopback sockets: a str0m peer receives the
//! media, WebSockets and restarts use real TCP, REST goes through the emulator's router.

mod media_support;
mod protocol_support;

use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use futures_util::{SinkExt, StreamExt};
use media_support::{Answerer, DtlsRole};
use protocol_support::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use xprotect_emulator::media::SessionOffer;
use xprotect_emulator::{
    Emulator, EmulatorConfig, Fault, JournalEntry, JournalEvent, RunningEmulator, router,
};
use xprotect_proto::wire::{SdpKind, SessionDescription};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bound on every wait for something that should happen promptly.
const WAIT: Duration = Duration::from_secs(15);

async fn start(config: EmulatorConfig) -> (RunningEmulator, Router) {
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let app = router(emulator.state().clone());
    (emulator, app)
}

/// The journal event matching `what`, within [`WAIT`].
async fn wait_for<T>(
    journal: &mut broadcast::Receiver<JournalEntry>,
    what: impl Fn(&JournalEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let entry = journal.recv().await.expect("journal open");
            if let Some(found) = what(&entry.event) {
                return found;
            }
        }
    })
    .await
    .expect("journal event in time")
}

fn dropped(session: &str) -> impl Fn(&JournalEvent) -> Option<String> + '_ {
    move |event| match event {
        JournalEvent::SessionDropped { session: s, reason } if s == session => Some(reason.clone()),
        _ => None,
    }
}

fn token_expired(event: &JournalEvent) -> Option<String> {
    match event {
        JournalEvent::SessionTokenExpired { session } => Some(session.clone()),
        _ => None,
    }
}

// ---- REST sessions with a str0m peer --------------------------------------------------------

/// A REST session on the first camera, answered by a str0m peer: `(session id, peer)`.
async fn rest_session(app: &Router, token: &str) -> (String, Answerer) {
    let created = create_session(app, token).await;
    let id = created["sessionId"].as_str().expect("sessionId").to_owned();
    let offer = SessionDescription::from_json_string(
        created["offerSDP"].as_str().expect("offerSDP"),
        SdpKind::Offer,
    )
    .expect("offer");
    let (peer, answer, candidate) = answer(offer.sdp).await;
    let patched = patch(
        app,
        &id,
        token,
        json!({"answerSDP": SessionDescription::answer(answer).to_json_string()}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let posted = post_json(
        app,
        &format!("/api/REST/v1/WebRTC/IceCandidates/{id}"),
        token,
        &json!({"candidates": [candidate.to_json_string()]}).to_string(),
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    (id, peer)
}

/// A str0m peer for an offer (its candidates come in the SDP), its answer SDP and candidate.
async fn answer(
    offer_sdp: String,
) -> (Answerer, String, xprotect_emulator::media::IceCandidateInit) {
    let offer = SessionOffer {
        offer_sdp,
        local_candidates: Vec::new(),
        video: true,
        audio: false,
    };
    Answerer::answer(&offer, DtlsRole::Active).await
}

async fn patch(app: &Router, session: &str, token: &str, body: Value) -> Reply {
    let auth = bearer(token);
    send(
        app,
        Method::PATCH,
        &format!("/api/REST/v1/WebRTC/Session/{session}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_string(),
    )
    .await
}

async fn get_candidates(app: &Router, session: &str, token: &str) -> Reply {
    let auth = bearer(token);
    send(
        app,
        Method::GET,
        &format!("/api/REST/v1/WebRTC/IceCandidates/{session}"),
        &[("authorization", &auth)],
        "",
    )
    .await
}

/// Runs the peer until `done` (bounded by [`WAIT`]).
async fn run_peer_until(peer: &mut Answerer, done: impl FnMut(&Answerer) -> bool) {
    let mut done = done;
    let (_keep_open, mut no_events) = tokio::sync::mpsc::channel(1);
    let mut seen = Vec::new();
    peer.run_until(&mut no_events, &mut seen, WAIT, |peer, _| done(peer))
        .await;
}

/// Runs the peer for `span`.
async fn run_peer_for(peer: &mut Answerer, span: Duration) {
    let until = std::time::Instant::now() + span;
    run_peer_until(peer, |_| std::time::Instant::now() >= until).await;
}

/// RTP packets (video and audio) the peer has received.
fn rtp_packets(peer: &Answerer) -> usize {
    peer.wire_timestamps.len() + peer.audio_wire_timestamps.len()
}

// ---- WebSocket ------------------------------------------------------------------------------

async fn open_ws(emulator: &RunningEmulator) -> Socket {
    let url = format!("ws://{}/API/ws/WebRTC/v1", emulator.local_addr());
    tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect")
        .0
}

async fn ws_send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

async fn ws_next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("frame");
        match frame {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str()).expect("server sends JSON");
            }
            Message::Close(close) => panic!("socket closed: {close:?}"),
            _ => {}
        }
    }
}

/// The close frame's code, skipping anything before it.
async fn ws_close_code(socket: &mut Socket) -> CloseCode {
    tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code,
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("socket failed before its close frame: {error}"),
            }
        }
    })
    .await
    .expect("close frame in time")
}

/// `connect` on a registered socket: returns the session id and the invite.
async fn ws_connect(socket: &mut Socket, token: &str) -> (String, Value) {
    ws_send(
        socket,
        json!({"jsonrpc":"2.0","method":"connect","id":2,"params":{
            "authorization": token, "peer": camera(), "includeAudio": false}}),
    )
    .await;
    let connected = ws_next(socket).await;
    let session = connected["result"]["session"]
        .as_str()
        .unwrap_or_else(|| panic!("a session: {connected}"))
        .to_owned();
    let invite = ws_next(socket).await;
    assert_eq!(invite["method"], "invite", "{invite}");
    (session, invite)
}

/// A WebSocket session answered by a str0m peer.
async fn ws_session(socket: &mut Socket, token: &str) -> (String, Answerer) {
    let (session, invite) = ws_connect(socket, token).await;
    let offer = SessionDescription::from_json_string(
        invite["params"]["offer"].as_str().expect("offer"),
        SdpKind::Offer,
    )
    .expect("offer");
    let (peer, answer, candidate) = answer(offer.sdp).await;
    ws_send(
        socket,
        json!({"jsonrpc":"2.0","id":invite["id"],"result":{
            "answer": SessionDescription::answer(answer).to_json_string()}}),
    )
    .await;
    ws_send(
        socket,
        json!({"jsonrpc":"2.0","method":"trickle","params":{
            "session": session, "candidate": candidate}}),
    )
    .await;
    (session, peer)
}

// ---- raw HTTP over TCP (the dev-dependencies carry no HTTP client) -------------------------

/// One request with `Connection: close`; `Err` when the connection is refused or reset.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, Value)> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

async fn http_token(addr: std::net::SocketAddr) -> String {
    let (status, login) = http_login(addr, "admin", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    login["access_token"].as_str().expect("token").to_owned()
}

fn faults_config() -> EmulatorConfig {
    EmulatorConfig {
        fault_control: true,
        ..config()
    }
}

// ---- the control endpoint -------------------------------------------------------------------

#[tokio::test]
async fn the_control_endpoint_is_off_by_default() {
    let (app, _) = app().await;
    let reply = send(
        &app,
        Method::POST,
        "/api/emulator/faults",
        &[("content-type", "application/json")],
        r#"{"fault":"drop_sessions"}"#,
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, None);
    let reply = send(&app, Method::DELETE, "/api/emulator/faults", &[], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_control_endpoint_takes_faults_and_refuses_bad_ones() {
    let (app, state) = app_with(faults_config()).await;
    let mut journal = state.journal().subscribe();
    let origin = [
        ("content-type", "application/json"),
        ("origin", "http://page.test"),
    ];

    let reply = send(&app, Method::POST, "/emulator/faults", &origin, "{not json").await;
    assert_error(&reply, StatusCode::BAD_REQUEST, Some("fault"));
    assert!(
        reply.json["message"]
            .as_str()
            .unwrap()
            .contains("http_status"),
        "the message lists the faults: {}",
        reply.text
    );
    let reply = send(
        &app,
        Method::POST,
        "/emulator/faults",
        &origin,
        r#"{"fault":"explode"}"#,
    )
    .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, Some("fault"));
    let reply = send(
        &app,
        Method::POST,
        "/emulator/faults",
        &origin,
        r#"{"fault":"http_status","status":200,"count":1}"#,
    )
    .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, Some("status"));

    let reply = send(
        &app,
        Method::POST,
        "/API/Emulator/Faults",
        &origin,
        r#"{"fault":"delay_candidates","millis":250}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(
        reply.headers["access-control-allow-origin"], "*",
        "CORS like the rest, for the web viewer's tests"
    );
    let injected = wait_for(&mut journal, |event| match event {
        JournalEvent::FaultInjected { fault } => Some(fault.clone()),
        _ => None,
    })
    .await;
    assert_eq!(injected, Fault::DelayCandidates { millis: 250 });
    assert_eq!(
        state.faults().candidate_delay(),
        Some(Duration::from_millis(250))
    );

    let reply = send(&app, Method::DELETE, "/emulator/faults", &origin, "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(state.faults().candidate_delay(), None, "cleared");
}

// ---- HttpStatus -----------------------------------------------------------------------------

#[tokio::test]
async fn http_status_fails_the_next_requests_then_lets_them_through() {
    let (emulator, _) = start(faults_config()).await;
    let addr = emulator.local_addr();
    let token = http_token(addr).await;
    let (status, _) = http(
        addr,
        "POST",
        "/api/emulator/faults",
        &[("Content-Type", "application/json")],
        r#"{"fault":"http_status","status":503,"count":2}"#,
    )
    .await
    .expect("control endpoint");
    assert_eq!(status, 204);

    // 1: the identity provider answers in OAuth's error form.
    let (status, body) = http_login(addr, "admin", PASSWORD).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    // 2: the API answers in its REST error form, whatever the request.
    let auth = bearer(&token);
    let (status, body) = http(
        addr,
        "GET",
        "/api/rest/v1/cameras",
        &[("Authorization", &auth)],
        "",
    )
    .await
    .expect("cameras");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable", "{body}");
    assert!(body["message"].is_string(), "{body}");
    // 3: served again.
    let (status, body) = http(
        addr,
        "GET",
        "/api/rest/v1/cameras",
        &[("Authorization", &auth)],
        "",
    )
    .await
    .expect("cameras");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_login(addr, "admin", PASSWORD).await;
    assert_eq!(status, 200);
    emulator.shutdown().await;
}

#[tokio::test]
async fn configured_request_failures_hit_the_first_requests_and_401_says_bearer() {
    let (emulator, _) = start(EmulatorConfig {
        fail_requests: Some("401:1".parse().expect("spec")),
        ..config()
    })
    .await;
    let addr = emulator.local_addr();
    let (status, body) = http(addr, "GET", "/api/rest/v1/cameras", &[], "")
        .await
        .expect("cameras");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized", "{body}");
    let token = http_token(addr).await;
    assert!(!token.is_empty());
    emulator.shutdown().await;
}

// ---- DropSessions, StopMedia, scheduled drops ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_sessions_stops_media_and_forgets_the_session() {
    let (emulator, app) = start(config()).await;
    let mut journal = emulator.journal();
    let token = token(&app).await;
    let (session, mut peer) = rest_session(&app, &token).await;
    run_peer_until(&mut peer, |p| p.frames.len() >= 5).await;

    emulator.faults().inject(Fault::DropSessions).await;
    let reason = wait_for(&mut journal, dropped(&session)).await;
    assert!(reason.contains("fault"), "{reason}");
    let reply = get_candidates(&app, &session, &token).await;
    assert_error(&reply, StatusCode::NOT_FOUND, None);
    let reply = patch(&app, &session, &token, json!({"token": token})).await;
    assert_error(&reply, StatusCode::NOT_FOUND, None);

    // The peer is told: DTLS close_notify, after which its connection carries nothing more.
    run_peer_until(&mut peer, |p| p.closed).await;
    assert!(!peer.rtc.is_alive() || peer.closed);
    assert_eq!(
        emulator
            .state()
            .media()
            .session_count()
            .await
            .expect("count"),
        0,
        "the media engine closed it"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_media_stops_rtp_while_ice_stays_up() {
    let (emulator, app) = start(config()).await;
    let mut journal = emulator.journal();
    let token = token(&app).await;
    let (session, mut peer) = rest_session(&app, &token).await;
    run_peer_until(&mut peer, |p| p.frames.len() >= 5).await;

    emulator.faults().inject(Fault::StopMedia).await;
    run_peer_for(&mut peer, Duration::from_millis(300)).await;
    let (rtp_before, stun_before) = (rtp_packets(&peer), peer.stun_received);
    // Longer than str0m's 3 s keepalive interval, so consent checks must pass meanwhile.
    run_peer_for(&mut peer, Duration::from_millis(3500)).await;
    assert_eq!(rtp_packets(&peer), rtp_before, "no RTP once stopped");
    assert!(
        peer.stun_received > stun_before,
        "ICE consent keeps being exchanged"
    );
    let reply = get_candidates(&app, &session, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "the session lives on");
    while let Ok(entry) = journal.try_recv() {
        assert!(
            !matches!(
                entry.event,
                JournalEvent::Disconnected { .. } | JournalEvent::Closed { .. }
            ),
            "ICE stayed up: {entry:?}"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_dropped_the_configured_time_after_they_connected() {
    let (emulator, app) = start(EmulatorConfig {
        drop_sessions_after: Some(Duration::from_secs(1)),
        ..config()
    })
    .await;
    let mut journal = emulator.journal();
    let token = token(&app).await;
    let (session, mut peer) = rest_session(&app, &token).await;
    run_peer_until(&mut peer, |p| p.connected).await;
    let connected = Instant::now();
    let reason = wait_for(&mut journal, dropped(&session)).await;
    assert!(
        connected.elapsed() >= Duration::from_millis(900),
        "dropped after {:?}",
        connected.elapsed()
    );
    assert!(reason.contains("after it connected"), "{reason}");
    let reply = get_candidates(&app, &session, &token).await;
    assert_error(&reply, StatusCode::NOT_FOUND, None);
    emulator.shutdown().await;
}

// ---- CloseWebSockets ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_web_sockets_sends_1011_and_ends_their_sessions_after_a_linger() {
    let (emulator, _) = start(config()).await;
    let mut journal = emulator.journal();
    let token = http_token(emulator.local_addr()).await;
    let mut socket = open_ws(&emulator).await;
    let (session, _invite) = ws_connect(&mut socket, &token).await;

    emulator.faults().inject(Fault::CloseWebSockets).await;
    let closed_at = Instant::now();
    assert_eq!(ws_close_code(&mut socket).await, CloseCode::Error, "1011");
    // Sockets opened afterwards are served normally.
    let mut fresh = open_ws(&emulator).await;
    let (other, _) = ws_connect(&mut fresh, &token).await;

    let reason = wait_for(&mut journal, dropped(&session)).await;
    assert!(
        closed_at.elapsed()
            >= xprotect_emulator::faults::WEBSOCKET_LINGER - Duration::from_millis(100),
        "ended after its linger, not at once: {:?}",
        closed_at.elapsed()
    );
    assert!(reason.contains("WebSocket"), "{reason}");
    assert!(
        emulator
            .state()
            .sessions()
            .contains(other.parse().expect("id")),
        "the session of the open socket lives on"
    );
    emulator.shutdown().await;
}

// ---- DelayCandidates ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_candidates_arrive_no_earlier_than_the_delay() {
    const DELAY: Duration = Duration::from_millis(800);
    let (emulator, app) = start(config()).await;
    let token = token(&app).await;
    emulator
        .faults()
        .inject(Fault::DelayCandidates {
            millis: DELAY.as_millis() as u64,
        })
        .await;

    // REST: the offer carries no candidate, polling returns none until the delay is over.
    let created_at = Instant::now();
    let created = create_session(&app, &token).await;
    let session = created["sessionId"].as_str().expect("id").to_owned();
    assert!(
        !created["offerSDP"]
            .as_str()
            .expect("offer")
            .contains("a=candidate"),
        "{created}"
    );
    let first = loop {
        let reply = get_candidates(&app, &session, &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let candidates = reply.json["candidates"].as_array().expect("list").clone();
        if !candidates.is_empty() {
            break created_at.elapsed();
        }
        assert!(created_at.elapsed() < WAIT, "no candidates in time");
        // The poll interval of a REST client.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(first >= DELAY, "REST candidates after {first:?}");

    // WebSocket: the first trickle comes the delay after the invite.
    let mut socket = open_ws(&emulator).await;
    let connected_at = Instant::now();
    let (session, _) = ws_connect(&mut socket, &token).await;
    let trickle = ws_next(&mut socket).await;
    let first = connected_at.elapsed();
    assert_eq!(trickle["method"], "trickle", "{trickle}");
    assert_eq!(trickle["params"]["session"], session.as_str());
    assert!(first >= DELAY, "WebSocket candidates after {first:?}");

    // Cleared: the next session has its candidates at once.
    emulator.faults().clear();
    let created = create_session(&app, &token).await;
    assert!(
        created["offerSDP"]
            .as_str()
            .expect("offer")
            .contains("a=candidate"),
        "{created}"
    );
    emulator.shutdown().await;
}

// ---- RestartSignaling -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_signaling_refuses_connections_then_serves_the_same_url() {
    const DOWN: Duration = Duration::from_millis(700);
    let (emulator, app) = start(config()).await;
    let addr = emulator.local_addr();
    let mut journal = emulator.journal();
    let token = http_token(addr).await;
    let old_session = create_session(&app, &token).await["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut socket = open_ws(&emulator).await;

    let injected_at = Instant::now();
    emulator
        .faults()
        .inject(Fault::RestartSignaling {
            down_millis: DOWN.as_millis() as u64,
        })
        .await;
    let refused = TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "the listener is closed during the downtime"
    );
    assert_eq!(
        ws_close_code(&mut socket).await,
        CloseCode::Restart,
        "1012 service restart"
    );
    wait_for(&mut journal, dropped(&old_session)).await;

    let down_ms = wait_for(&mut journal, |event| match event {
        JournalEvent::SignalingRestarted { down_ms } => Some(*down_ms),
        _ => None,
    })
    .await;
    assert!(
        injected_at.elapsed() >= DOWN && down_ms >= DOWN.as_millis() as u64,
        "down {down_ms} ms"
    );
    // The same URL works, the old token too (the IDP survives), the old session is gone.
    let auth = bearer(&token);
    let (status, body) = http(
        addr,
        "GET",
        &format!("/api/REST/v1/WebRTC/IceCandidates/{old_session}"),
        &[("Authorization", &auth)],
        "",
    )
    .await
    .expect("listening again");
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(
        addr,
        "GET",
        "/api/rest/v1/cameras",
        &[("Authorization", &auth)],
        "",
    )
    .await
    .expect("cameras");
    assert_eq!(status, 200, "{body}");
    let mut socket = open_ws(&emulator).await;
    ws_send(
        &mut socket,
        json!({"jsonrpc":"2.0","method":"register","params":{"authorization":token},"id":1}),
    )
    .await;
    assert!(ws_next(&mut socket).await["result"].is_object());
    emulator.shutdown().await;
}

// ---- token enforcement ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_stop_media_unless_a_rest_session_gets_a_new_one() {
    let (emulator, app) = start(EmulatorConfig {
        token_lifetime: Duration::from_secs(3),
        token_grace: Some(Duration::from_secs(1)),
        ..config()
    })
    .await;
    let mut journal = emulator.journal();
    let login = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    let token = login.json["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut refresh = login.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (never_patched, a) = rest_session(&app, &token).await;
    let (patched, b) = rest_session(&app, &token).await;
    let mut socket = open_ws(&emulator).await;
    let (over_ws, c) = ws_session(&mut socket, &token).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peers = [a, b, c].map(|mut peer| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (_keep_open, mut no_events) = tokio::sync::mpsc::channel(1);
            let mut seen = Vec::new();
            peer.run_until(&mut no_events, &mut seen, 4 * WAIT, |_, _| {
                stop.load(std::sync::atomic::Ordering::Relaxed)
            })
            .await;
            peer
        })
    });
    patch_new_token(&app, &patched, &mut refresh).await;

    let mut expired = vec![
        wait_for(&mut journal, token_expired).await,
        wait_for(&mut journal, token_expired).await,
    ];
    let expired_at = std::time::Instant::now();
    expired.sort();
    let mut expected = vec![never_patched.clone(), over_ws.clone()];
    expected.sort();
    assert_eq!(
        expired, expected,
        "the unpatched REST and the WebSocket session"
    );
    // Keep the patched session's token fresh while its peer is watched.
    patch_new_token(&app, &patched, &mut refresh).await;
    // The observation window (not a synchronisation): what each peer receives meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut done = Vec::new();
    for peer in peers {
        done.push(peer.await.expect("peer task"));
    }

    // What was in flight at the expiry may still land within a few hundred ms.
    let quiet_from = expired_at + Duration::from_millis(300);
    let after = |peer: &Answerer| {
        peer.frames.iter().filter(|f| f.at > quiet_from).count()
            + peer.audio.iter().filter(|p| p.at > quiet_from).count()
    };
    for (peer, name) in done
        .iter()
        .zip(["unpatched REST", "patched REST", "WebSocket"])
    {
        assert!(
            peer.frames.iter().any(|f| f.at < expired_at),
            "the {name} session streamed before the expiry"
        );
    }
    assert_eq!(after(&done[0]), 0, "the unpatched REST session is silent");
    assert_eq!(after(&done[2]), 0, "the WebSocket session is silent");
    assert!(
        after(&done[1]) >= 10,
        "the patched session streams on ({} frames and packets)",
        after(&done[1])
    );
    let still_there = get_candidates(&app, &never_patched, &token).await;
    assert_ne!(
        still_there.status,
        StatusCode::NOT_FOUND,
        "an expired session is silenced, not forgotten"
    );
    while let Ok(entry) = journal.try_recv() {
        assert_ne!(
            token_expired(&entry.event).as_deref(),
            Some(patched.as_str()),
            "the patched session did not expire"
        );
    }
    drop(socket);
    emulator.shutdown().await;
}

/// Refresh (rotating the refresh token) and PATCH the new access token into `session`.
async fn patch_new_token(app: &Router, session: &str, refresh: &mut String) {
    let reply = send(
        app,
        Method::POST,
        "/api/IDP/connect/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=VmsClient"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    *refresh = reply.json["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let fresh = reply.json["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let reply = patch(app, session, &fresh, json!({"token": fresh})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn a_refresh_token_is_single_use() {
    let (app, _) = app().await;
    let login = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    let refresh = login.json["refresh_token"].as_str().expect("refresh");
    let grant =
        |token: &str| format!("grant_type=refresh_token&refresh_token={token}&client_id=VmsClient");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let first = send(
        &app,
        Method::POST,
        "/api/IDP/connect/token",
        &form,
        grant(refresh),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_ne!(
        first.json["refresh_token"].as_str(),
        Some(refresh),
        "rotated"
    );
    let again = send(
        &app,
        Method::POST,
        "/api/IDP/connect/token",
        &form,
        grant(refresh),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text);
    assert_eq!(again.json["error"], "invalid_grant", "{}", again.text);
}
