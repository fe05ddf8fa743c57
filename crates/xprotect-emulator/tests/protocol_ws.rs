//! WebSocket signaling over a real loopback socket (PROTOCOL.md §3, §9.7), and the journal.

mod protocol_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol_support::*;
use serde_json::{Value, json};
use str0m::Rtc;
use str0m::change::SdpOffer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use xprotect_emulator::{Emulator, EmulatorConfig, JournalEntry, JournalEvent, RunningEmulator};
use xprotect_proto::wire::{SdpKind, SessionDescription, SessionId};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

async fn open(emulator: &RunningEmulator, subprotocol: Option<&str>) -> (Socket, Option<String>) {
    let url = format!("ws://{}/API/ws/WebRTC/v1", emulator.local_addr());
    let mut request = url.into_client_request().expect("request");
    if let Some(protocol) = subprotocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("ws connect");
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (socket, chosen)
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("server sends JSON");
        }
    }
}

async fn wait_for(
    journal: &mut tokio::sync::broadcast::Receiver<JournalEntry>,
    what: impl Fn(&JournalEvent) -> bool,
) -> JournalEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let entry = journal.recv().await.expect("journal open");
            if what(&entry.event) {
                return entry.event;
            }
        }
    })
    .await
    .expect("journal event in time")
}

fn str0m_answer(offer_sdp: &str) -> String {
    let mut rtc = Rtc::builder().build(std::time::Instant::now());
    let offer = SdpOffer::from_sdp_string(offer_sdp).expect("offer parses");
    let answer = rtc.sdp_api().accept_offer(offer).expect("answer");
    SessionDescription::answer(answer.to_sdp_string()).to_json_string()
}

#[tokio::test]
async fn register_connect_invite_answer_trickle() {
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.jsonl");
    let emulator = start(EmulatorConfig {
        journal: Some(journal_path.clone()),
        ..config()
    })
    .await;
    let mut journal = emulator.journal();
    let (status, login) = http_login(emulator.local_addr(), "admin", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    let (mut ws, chosen) = open(&emulator, Some("webrtc.onvif.org")).await;
    assert_eq!(chosen.as_deref(), Some("webrtc.onvif.org"));

    send(
        &mut ws,
        json!({"jsonrpc":"2.0","method":"register","params":{"authorization":token},"id":1}),
    )
    .await;
    let registered = next(&mut ws).await;
    assert_eq!(registered["id"], 1, "{registered}");
    assert!(registered["result"]["id"].is_string(), "{registered}");
    assert_eq!(registered["jsonrpc"], "2.0");

    send(
        &mut ws,
        json!({"jsonrpc":"2.0","method":"connect","id":2,"params":{
        "authorization": token, "peer": camera(), "PlaybackSpeed": "1.0", "includeAudio": true}}),
    )
    .await;
    let connected = next(&mut ws).await;
    assert_eq!(
        connected["id"], 2,
        "the connect result comes first: {connected}"
    );
    let session = connected["result"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    assert_eq!(connected["result"]["iceServers"], json!([]));

    let invite = next(&mut ws).await;
    assert_eq!(invite["method"], "invite", "{invite}");
    let invite_id = invite["id"].clone();
    assert!(
        invite_id.is_string(),
        "invite id is a UUID string: {invite_id}"
    );
    assert!(invite_id.as_str().unwrap().parse::<SessionId>().is_ok());
    assert_eq!(invite["params"]["session"], session.as_str());
    let offer = SessionDescription::from_json_string(
        invite["params"]["offer"]
            .as_str()
            .expect("offer is a JSON string"),
        SdpKind::Offer,
    )
    .expect("offer");

    let trickle = next(&mut ws).await;
    assert_eq!(trickle["method"], "trickle", "{trickle}");
    assert!(trickle.get("id").is_none());
    assert!(
        trickle["params"]["candidate"]["candidate"]
            .as_str()
            .unwrap()
            .starts_with("candidate:"),
        "candidate is an object: {trickle}"
    );
    assert_eq!(trickle["params"]["session"], session.as_str());

    send(
        &mut ws,
        json!({"jsonrpc":"2.0","id":invite_id,"result":{"answer": str0m_answer(&offer.sdp)}}),
    )
    .await;
    wait_for(&mut journal, |e| {
        matches!(e, JournalEvent::AnswerReceived { .. })
    })
    .await;

    // Client candidates in the sample's form: a JSON string.
    let candidate = json!({"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host","sdpMid":"0","sdpMLineIndex":0}).to_string();
    send(&mut ws, json!({"jsonrpc":"2.0","method":"trickle","params":{"session":session,"candidate":candidate}})).await;
    let event = wait_for(&mut journal, |e| {
        matches!(e, JournalEvent::ClientCandidate { .. })
    })
    .await;
    assert!(
        matches!(event, JournalEvent::ClientCandidate { ref address, .. } if address == "127.0.0.1")
    );

    // Garbage never closes the socket; each gets an `error` notification.
    ws.send(Message::text("this is not json")).await.unwrap();
    let error = next(&mut ws).await;
    assert_eq!(error["method"], "error", "{error}");
    assert!(error.get("id").is_none());
    assert!(
        error["params"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next(&mut ws).await["method"], "error");
    send(&mut ws, json!({"jsonrpc":"2.0","method":"trickle","params":{"session":session,"candidate":"{\"candidate\":5}"}})).await;
    let bad_candidate = next(&mut ws).await;
    assert_eq!(bad_candidate["params"]["code"], 1003, "{bad_candidate}");
    send(
        &mut ws,
        json!({"jsonrpc":"2.0","method":"dance","id":7,"params":{}}),
    )
    .await;
    let notification = next(&mut ws).await;
    assert_eq!(notification["method"], "error");
    let response = next(&mut ws).await;
    assert_eq!(response["id"], 7);
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dance")
    );

    // The 2025 R1 envelope is answered in kind.
    send(
        &mut ws,
        json!({"ApiVersion":"1.0","method":"register","params":{"authorization":token},"id":1}),
    )
    .await;
    let old = next(&mut ws).await;
    assert_eq!(old["ApiVersion"], "1.0", "{old}");
    assert!(old.get("jsonrpc").is_none());

    // Closing the socket ends signaling, not the session.
    ws.close(None).await.unwrap();
    drop(ws);
    let id: SessionId = session.parse().unwrap();
    assert!(emulator.state().sessions().get(id, "admin").is_some());
    assert!(emulator.state().media().session_count().await.unwrap() >= 1);

    emulator.shutdown().await;
    let text = std::fs::read_to_string(&journal_path).expect("journal file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    for event in [
        "token_issued",
        "session_created",
        "server_candidates",
        "answer_received",
        "client_candidate",
        "ws_error",
    ] {
        assert!(
            lines.iter().any(|l| l["event"] == event),
            "no {event} in {text}"
        );
    }
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    for secret in [PASSWORD, token.as_str(), refresh.as_str()] {
        assert!(!text.contains(secret), "a secret leaked into the journal");
    }
}

#[tokio::test]
async fn failures_are_error_notifications_and_responses() {
    let emulator = start(config()).await;
    let (mut ws, chosen) = open(&emulator, None).await;
    assert_eq!(chosen, None, "no subprotocol unless offered");

    send(&mut ws, json!({"jsonrpc":"2.0","method":"register","params":{"authorization":"forged.token.here"},"id":1})).await;
    let notification = next(&mut ws).await;
    assert_eq!(notification["method"], "error", "{notification}");
    assert_eq!(notification["params"]["code"], 401);
    let response = next(&mut ws).await;
    assert_eq!(response["id"], 1);
    assert_eq!(response["error"]["code"], 401);

    let (status, login) = http_login(emulator.local_addr(), "admin", PASSWORD).await;
    assert_eq!(status, 200);
    let token = login["access_token"].as_str().unwrap();
    for (params, code, text) in [
        (json!({"authorization": token, "peer": "nope"}), 400, "peer"),
        (
            json!({"authorization": token, "peer": "11111111-2222-4333-8444-555555555555"}),
            404,
            "device",
        ),
        (
            json!({"authorization": token, "peer": camera(), "PlaybackTime": "2025-01-01T00:00:00Z", "PlaybackSpeed": "99"}),
            400,
            "PlaybackSpeed",
        ),
        (
            json!({"authorization": token, "peer": camera(), "PlaybackTime": "2025-01-01T00:00:00Z", "skipGaps": "maybe"}),
            400,
            "skipGaps",
        ),
        (
            json!({"authorization": token, "peer": camera(), "PlaybackTime": "2025-13-01T00:00:00Z"}),
            400,
            "PlaybackTime",
        ),
        (
            json!({"authorization": token, "peer": camera(), "streamID": "5e9ba1dc-d012-425b-ab5a-611a5fb6dae5"}),
            400,
            "streamID",
        ),
        (
            json!({"authorization": "", "peer": camera()}),
            401,
            "Authorization",
        ),
    ] {
        send(
            &mut ws,
            json!({"jsonrpc":"2.0","method":"connect","id":2,"params":params}),
        )
        .await;
        let notification = next(&mut ws).await;
        assert_eq!(notification["method"], "error", "{notification}");
        assert_eq!(notification["params"]["code"], code, "{notification}");
        assert!(
            notification["params"]["message"]
                .as_str()
                .unwrap()
                .contains(text),
            "{notification}"
        );
        let response = next(&mut ws).await;
        assert_eq!(response["id"], 2, "{response}");
    }
    // A response to nothing, and a trickle before any registration.
    send(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"nobody","result":{"answer":"{}"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["method"], "error");
    // The socket still works afterwards.
    send(
        &mut ws,
        json!({"jsonrpc":"2.0","method":"register","params":{"authorization":token},"id":1}),
    )
    .await;
    assert!(next(&mut ws).await["result"]["id"].is_string());
    emulator.shutdown().await;
}
