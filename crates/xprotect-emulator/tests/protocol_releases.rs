//! `EmulatorConfig::release`: what each XProtect release's gateway reads and serves (PROTOCOL.md
//! §7, §8). Older gateways ignore fields they do not know rather than refuse them, so the same
//! request means different things to different releases; these tests pin that down at the HTTP
//! and WebSocket level.

mod protocol_support;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use protocol_support::*;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{self, Message};
use xprotect_emulator::{Emulator, EmulatorConfig, JournalEntry, JournalEvent, Release};

const WAIT: Duration = Duration::from_secs(10);
const SESSION_PATH: &str = "/api/REST/v1/WebRTC/Session";

fn config_for(release: Release) -> EmulatorConfig {
    EmulatorConfig {
        release,
        ..config()
    }
}

/// The gateway of `release` in memory, its journal watched from the start, and a token for it.
async fn logged_in_app(release: Release) -> (Router, broadcast::Receiver<JournalEntry>, String) {
    let (app, state) = app_with(config_for(release)).await;
    let journal = state.journal().subscribe();
    let token = token(&app).await;
    (app, journal, token)
}

/// The next `session_created` in the journal: (mode, stream, playback, include_audio).
async fn session_created(
    journal: &mut broadcast::Receiver<JournalEntry>,
) -> (&'static str, Option<String>, Option<Value>, bool) {
    tokio::time::timeout(WAIT, async {
        loop {
            let entry = journal.recv().await.expect("journal open");
            if let JournalEvent::SessionCreated {
                mode,
                stream,
                playback,
                include_audio,
                ..
            } = entry.event
            {
                return (mode, stream, playback, include_audio);
            }
        }
    })
    .await
    .expect("session_created in time")
}

/// What the 2025R2 sample sends for playback from a stream, with STUN, audio and both ids.
fn everything_request(stream: &str) -> String {
    json!({
        "deviceId": camera(),
        "cameraId": camera(),
        "resolution": "notInUse",
        "streamId": stream,
        "includeAudio": true,
        "playbackTimeNode": {"playbackTime": "2025-01-15T12:04:56Z", "speed": "2", "skipGaps": true},
        "iceServers": [{"url": "stun:127.0.0.1:9"}]
    })
    .to_string()
}

#[tokio::test]
async fn release_2023r1_ignores_stream_playback_ice_servers_and_audio() {
    // A GUID that is no stream of the camera: 2025R2 refuses it, 2023R1 never reads it.
    let unknown_stream = "11111111-2222-3333-4444-555555555555";
    let body = everything_request(unknown_stream);
    let (app, mut journal, token) = logged_in_app(Release::R2023R1).await;
    let reply = post_json(&app, SESSION_PATH, &token, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.json["offerSDP"].is_string(), "{}", reply.text);
    assert!(
        reply.json.get("deviceId").is_none_or(Value::is_null),
        "a 2023R1 session object has no deviceId: {}",
        reply.text
    );
    let (mode, stream, playback, include_audio) = session_created(&mut journal).await;
    assert_eq!(mode, "live", "2023R1 knows no playback");
    assert_eq!(stream, None, "2023R1 knows no streamId: the default stream");
    assert_eq!(playback, None);
    assert!(!include_audio, "2023R1 has no audio");

    let (app, _journal, token) = logged_in_app(Release::R2025R2).await;
    let reply = post_json(&app, SESSION_PATH, &token, &body).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, Some("streamId"));
}

#[tokio::test]
async fn release_2023r3_reads_playback_speed_and_skip_gaps() {
    let (app, mut journal, token) = logged_in_app(Release::R2023R3).await;
    let body = json!({
        "cameraId": camera(),
        "resolution": "notInUse",
        "playbackTimeNode": {"playbackTime": "2025-01-15T12:04:56Z", "speed": "2", "skipGaps": true},
        "iceServers": []
    });
    let reply = post_json(&app, SESSION_PATH, &token, &body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let (mode, _, playback, include_audio) = session_created(&mut journal).await;
    assert_eq!(mode, "playback");
    let playback = playback.expect("playback details");
    assert_eq!(playback["speed"], 2.0);
    assert_eq!(playback["skipGaps"], true);
    assert!(!include_audio, "2023R3 has no audio");
}

#[tokio::test]
async fn device_id_alone_is_a_400_naming_camera_id_before_2025r2() {
    let body = json!({"deviceId": camera(), "resolution": "notInUse"}).to_string();
    for release in [Release::R2023R1, Release::R2024R2, Release::R2025R1] {
        let (app, _journal, token) = logged_in_app(release).await;
        let reply = post_json(&app, SESSION_PATH, &token, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, Some("cameraId"));
        assert!(
            reply.json["message"]
                .as_str()
                .is_some_and(|m| m.contains(release.name())),
            "the message names the release: {}",
            reply.text
        );
    }
    let (app, _journal, token) = logged_in_app(Release::R2025R2).await;
    let reply = post_json(&app, SESSION_PATH, &token, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["deviceId"], camera(), "{}", reply.text);
}

#[tokio::test]
async fn audio_only_from_2025r2() {
    let body = json!({"cameraId": camera(), "deviceId": camera(), "includeAudio": true});
    for (release, audio) in [(Release::R2025R1, false), (Release::R2025R2, true)] {
        let (app, mut journal, token) = logged_in_app(release).await;
        let reply = post_json(&app, SESSION_PATH, &token, &body.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let (_, _, _, include_audio) = session_created(&mut journal).await;
        assert_eq!(include_audio, audio, "{release}");
        let echoed = reply.json.get("includeAudio").cloned().unwrap_or_default();
        assert_eq!(
            echoed,
            if audio { json!(true) } else { Value::Null },
            "{release}: {}",
            reply.text
        );
    }
}

/// A real socket: the WebSocket endpoint exists from 2025R1 on, and is a plain 404 before.
#[tokio::test]
async fn websocket_endpoint_only_from_2025r1() {
    for release in Release::ALL {
        let emulator = Emulator::start(config_for(release))
            .await
            .expect("emulator starts");
        let url = format!("ws://{}/api/ws/webrtc/v1", emulator.local_addr());
        let outcome = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("handshake in time");
        match (release.websocket(), outcome) {
            (true, Ok((mut socket, _))) => {
                // Connected, and it speaks: a register with a bad token gets an error.
                socket
                    .send(Message::text(
                        json!({"jsonrpc":"2.0","id":1,"method":"register","params":{"authorization":"nope"}})
                            .to_string(),
                    ))
                    .await
                    .expect("send");
                let frame = tokio::time::timeout(WAIT, socket.next())
                    .await
                    .expect("reply in time")
                    .expect("socket open")
                    .expect("frame");
                assert!(
                    frame.to_text().is_ok_and(|t| t.contains("error")),
                    "{frame:?}"
                );
            }
            (false, Err(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), StatusCode::NOT_FOUND, "{release}");
            }
            (expected, outcome) => {
                panic!("{release}: websocket expected {expected}, got {outcome:?}")
            }
        }
        emulator.shutdown().await;
    }
}

/// WebSocket `connect` on 2025R1 asks for audio (a newer client would): no audio track.
#[tokio::test]
async fn websocket_connect_on_2025r1_gets_no_audio() {
    let emulator = Emulator::start(config_for(Release::R2025R1))
        .await
        .expect("emulator starts");
    let mut journal = emulator.journal();
    let (status, login) = http_login(emulator.local_addr(), "admin", PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let url = format!("ws://{}/api/ws/webrtc/v1", emulator.local_addr());
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("2025R1 has WebSocket");
    let connect = json!({"jsonrpc":"2.0","id":2,"method":"connect",
        "params":{"authorization": token, "peer": camera(), "includeAudio": true}});
    socket
        .send(Message::text(connect.to_string()))
        .await
        .expect("send");
    let (mode, _, _, include_audio) = session_created(&mut journal).await;
    assert_eq!(mode, "live");
    assert!(!include_audio, "2025R1 has no audio");
    drop(socket);
    emulator.shutdown().await;
}

/// The journal file's first line says which release the emulator reproduces.
#[tokio::test]
async fn the_journal_starts_with_the_release() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.jsonl");
    let emulator = Emulator::start(EmulatorConfig {
        journal: Some(path.clone()),
        ..config_for(Release::R2024R1)
    })
    .await
    .expect("emulator starts");
    emulator.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("journal written");
    let first: Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON line");
    assert_eq!(first["event"], "started", "{text}");
    assert_eq!(first["release"], "2024R1");
    assert_eq!(first["websocket"], false);
    assert_eq!(first["playback"], true);
    assert_eq!(first["audio"], false);
}

/// A microphone is a session device only from 2025R2; older gateways know cameras alone.
#[tokio::test]
async fn a_microphone_is_a_device_only_from_2025r2() {
    let microphone = xprotect_emulator::devices::FRONT_DOOR_MICROPHONE.to_string();
    let body = json!({"cameraId": microphone, "deviceId": microphone}).to_string();
    for release in [Release::R2024R2, Release::R2025R1] {
        let (app, _journal, token) = logged_in_app(release).await;
        let reply = post_json(&app, SESSION_PATH, &token, &body).await;
        assert_error(&reply, StatusCode::NOT_FOUND, None);
    }
    let (app, mut journal, token) = logged_in_app(Release::R2025R2).await;
    let reply = post_json(&app, SESSION_PATH, &token, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let (mode, _, _, include_audio) = session_created(&mut journal).await;
    assert_eq!(mode, "live");
    assert!(include_audio);
}
