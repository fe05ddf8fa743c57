//! Random input at every endpoint: always a 4xx JSON answer (or a success), never a 5xx or a
//! panic, and the server keeps answering. Seeded, so a failure replays.

mod protocol_support;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use protocol_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use xprotect_emulator::ws::WsConnection;

const SEED: u64 = 0x5eed_2025;
const HTTP_CASES: usize = 3000;
const WS_CASES: usize = 2000;

const KEYS: &[&str] = &[
    "deviceId",
    "cameraId",
    "streamId",
    "resolution",
    "includeAudio",
    "playbackTimeNode",
    "playbackTime",
    "speed",
    "skipGaps",
    "iceServers",
    "url",
    "urls",
    "username",
    "credential",
    "answerSDP",
    "token",
    "candidates",
    "sessionId",
    "candidate",
    "sdpMid",
    "sdpMLineIndex",
    "authorization",
    "peer",
    "streamID",
    "PlaybackTime",
    "PlaybackSpeed",
    "session",
    "answer",
    "type",
    "sdp",
    "jsonrpc",
    "ApiVersion",
    "id",
    "method",
    "params",
    "result",
    "error",
];

fn random_case(rng: &mut StdRng, key: &str) -> String {
    key.chars()
        .map(|c| {
            if rng.random_bool(0.2) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn random_string(rng: &mut StdRng, camera: &str, session: &str) -> String {
    match rng.random_range(0..12) {
        0 => String::new(),
        1 => camera.to_owned(),
        2 => session.to_owned(),
        3 => "2025-03-01T08:00:00.000Z".to_owned(),
        4 => json!({"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n"}).to_string(),
        5 => json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"})
            .to_string(),
        6 => "ø\u{0}\u{202e}💥".to_owned(),
        7 => "x".repeat(rng.random_range(0..5000)),
        8 => format!("{}", rng.random::<f64>() * 100.0 - 50.0),
        9 => "candidate:1 1 udp 1 abc.local 9 typ host".to_owned(),
        10 => "{".to_owned(),
        _ => (0..rng.random_range(0..20))
            .map(|_| char::from(rng.random_range(32u8..127)))
            .collect(),
    }
}

fn random_json(rng: &mut StdRng, depth: u32, camera: &str, session: &str) -> Value {
    let leaf = depth == 0 || rng.random_bool(0.3);
    match rng.random_range(0..if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random_range(-1e6..1e6)),
        3 => json!(rng.random::<i64>()),
        4 => Value::String(random_string(rng, camera, session)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth - 1, camera, session))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..6) {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                map.insert(
                    random_case(rng, key),
                    random_json(rng, depth - 1, camera, session),
                );
            }
            Value::Object(map)
        }
    }
}

fn random_body(rng: &mut StdRng, camera: &str, session: &str) -> Vec<u8> {
    match rng.random_range(0..4) {
        0 => (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect(),
        1 => {
            // Form-ish text for the IDP.
            let fields = [
                "grant_type",
                "username",
                "password",
                "client_id",
                "refresh_token",
            ];
            let values = [
                "password",
                "refresh_token",
                "admin",
                "VmsClient",
                "GrantValidatorClient",
                "%",
                "%zz",
                "",
                "=&=",
            ];
            (0..rng.random_range(0..6))
                .map(|_| {
                    format!(
                        "{}={}",
                        fields[rng.random_range(0..fields.len())],
                        values[rng.random_range(0..values.len())]
                    )
                })
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }
        _ => random_json(rng, 4, camera, session)
            .to_string()
            .into_bytes(),
    }
}

#[tokio::test]
async fn random_http_requests_never_fail_the_server() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let session = create_session(&app, &token).await["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let camera = camera();
    let auth = bearer(&token);
    let mut rng = StdRng::seed_from_u64(SEED);
    let paths = [
        "/api/IDP/connect/token".to_owned(),
        "/api/REST/v1/WebRTC/Session".to_owned(),
        format!("/api/REST/v1/WebRTC/Session/{session}"),
        format!("/api/REST/v1/WebRTC/IceCandidates/{session}"),
        "/api/REST/v1/WebRTC/IceCandidates/%FF%FE".to_owned(),
        "/api/REST/v1/WebRTC/Session/{not-a-guid}".to_owned(),
        "/api/ws/webrtc/v1".to_owned(),
        "/api/../../etc/passwd".to_owned(),
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::HEAD,
    ];
    let started = Instant::now();
    for case in 0..HTTP_CASES {
        let path = &paths[rng.random_range(0..paths.len())];
        let method = if rng.random_bool(0.7) {
            match path.as_str() {
                p if p.contains("IDP") || p.ends_with("Session") => Method::POST,
                p if p.contains("Session/") => Method::PATCH,
                _ => [Method::GET, Method::POST][rng.random_range(0..2)].clone(),
            }
        } else {
            methods[rng.random_range(0..methods.len())].clone()
        };
        let body = random_body(&mut rng, &camera, &session);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if rng.random_bool(0.8) {
            headers.push(("authorization", &auth));
        }
        if rng.random_bool(0.5) {
            headers.push(("content-type", "application/json"));
        }
        let reply = send(&app, method.clone(), path, &headers, body).await;
        assert!(
            reply.status.as_u16() < 500,
            "case {case}: {method} {path} answered {}: {}",
            reply.status,
            reply.text
        );
        if reply.status.is_client_error() && method != Method::HEAD {
            assert!(
                reply.json.get("error").is_some(),
                "case {case}: not a JSON error: {}",
                reply.text
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    // Still serving.
    let reply = send(
        &app,
        Method::GET,
        &format!("/api/REST/v1/WebRTC/IceCandidates/{session}"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn random_websocket_frames_are_answered_not_fatal() {
    let (app, state) = app().await;
    let token = token(&app).await;
    let session = create_session(&app, &token).await["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let camera = camera();
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    let mut connection = WsConnection::new(Some("127.0.0.1".parse().unwrap()));
    let started = Instant::now();
    for case in 0..WS_CASES {
        let text = match rng.random_range(0..4) {
            0 => String::from_utf8_lossy(&random_body(&mut rng, &camera, &session)).into_owned(),
            _ => {
                let methods = [
                    "register", "connect", "trickle", "invite", "error", "REGISTER", "x",
                ];
                let mut message = json!({"method": methods[rng.random_range(0..methods.len())],
                    "params": random_json(&mut rng, 3, &camera, &session)});
                if rng.random_bool(0.5) {
                    message["id"] = random_json(&mut rng, 0, &camera, &session);
                }
                if rng.random_bool(0.3)
                    && let Some(params) = message["params"].as_object_mut()
                {
                    params.insert("authorization".into(), json!(token));
                }
                message.to_string()
            }
        };
        for reply in connection.handle_text(&state, &text).await {
            let out: Value = serde_json::from_str(&reply.to_text()).expect("replies are JSON");
            assert!(out.is_object(), "case {case}");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}
