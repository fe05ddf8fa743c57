//! REST signaling over the in-process router: the flow, the 4xx matrix, paths, keys and CORS
//! (PROTOCOL.md §0, §2, §9).

mod protocol_support;

use axum::http::{Method, StatusCode};
use protocol_support::*;
use xprotect_emulator::EmulatorConfig;
use xprotect_proto::wire::{SdpKind, SessionDescription};

const UNKNOWN_GUID: &str = "11111111-2222-4333-8444-555555555555";

#[tokio::test]
async fn session_flow_offer_then_cumulative_candidates() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let session = create_session(&app, &token).await;
    let id = session["sessionId"].as_str().expect("sessionId");
    let offer = session["offerSDP"]
        .as_str()
        .expect("offerSDP is a JSON string");
    let offer = SessionDescription::from_json_string(offer, SdpKind::Offer).expect("offer");
    assert!(offer.sdp.contains("H264"), "{}", offer.sdp);
    assert_eq!(session["deviceId"], camera());
    assert_eq!(session["cameraId"], camera());
    assert_eq!(session["resolution"], "notInUse");
    assert!(session["token"].is_null(), "token is write-only");
    assert!(session["answerSDP"].is_null());

    let path = format!("/api/REST/v1/WebRTC/IceCandidates/{id}");
    let auth = bearer(&token);
    let first = send(&app, Method::GET, &path, &[("authorization", &auth)], "").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json["sessionId"], id);
    let candidates = first.json["candidates"]
        .as_array()
        .expect("candidates array");
    assert!(!candidates.is_empty());
    for candidate in candidates {
        let parsed: serde_json::Value =
            serde_json::from_str(candidate.as_str().expect("a JSON string")).unwrap();
        assert!(
            parsed["candidate"]
                .as_str()
                .unwrap()
                .starts_with("candidate:")
        );
    }
    let second = send(&app, Method::GET, &path, &[("authorization", &auth)], "").await;
    assert_eq!(first.text, second.text, "polls are byte-identical");

    // Client candidates may precede the answer; an mDNS one is accepted (twinned by the engine).
    let candidate = serde_json::json!({
        "candidate": "candidate:1 1 udp 2122260223 3a4e07bd-5cb3-4a5b-b2f8-6a4c4e0d9b1e.local 54321 typ host generation 0",
        "sdpMid": "0", "sdpMLineIndex": 0
    })
    .to_string();
    let body = serde_json::json!({"candidates": [candidate]}).to_string();
    let posted = send(
        &app,
        Method::POST,
        &path,
        &[
            ("authorization", &auth),
            ("x-forwarded-for", "127.0.0.1, 10.0.0.1"),
        ],
        body,
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    assert_eq!(posted.json["candidates"][0], candidate);

    // Token update by PATCH (same user) answers with the session object.
    let patch = format!(r#"{{"token":"{token}"}}"#);
    let patched = send(
        &app,
        Method::PATCH,
        &format!("/API/REST/v1/WebRTC/Session/{}", id.to_uppercase()),
        &[("authorization", &auth)],
        patch,
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["sessionId"], id);
    assert!(!patched.text.contains(&token), "the token is never echoed");
}

#[tokio::test]
async fn paths_and_keys_are_case_insensitive_with_or_without_api() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let body = format!(
        r#"{{"CAMERAID":"{}","PlaybackTimeNode":{{"PlaybackTime":"","SkipGaps":"false"}}}}"#,
        camera().to_uppercase()
    );
    for path in [
        "/api/REST/v1/WebRTC/Session",
        "/API/rest/v1/webRTC/session",
        "/REST/v1/WebRTC/Session",
        "/rest/v1/webrtc/session/",
    ] {
        let reply = post_json(&app, path, &token, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    }
    let reply = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn authentication_failures_are_401_with_a_json_body() {
    let (app, _) = app().await;
    let body = format!(r#"{{"deviceId":"{}"}}"#, camera());
    let path = "/api/REST/v1/WebRTC/Session";
    let forged = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln";
    for headers in [
        vec![],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Basic YWRtaW46YWRtaW4=")],
        vec![("authorization", "Bearer not-a-token")],
        vec![("authorization", &*format!("Bearer {forged}"))],
    ] {
        let reply = send(&app, Method::POST, path, &headers, body.clone()).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, None);
        assert!(
            reply.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let candidates = format!("/api/REST/v1/WebRTC/IceCandidates/{UNKNOWN_GUID}");
    let reply = send(&app, Method::GET, &candidates, &[], "").await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, None);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let cam = camera();
    let cases: Vec<(String, Option<&str>)> = vec![
        ("{not json".into(), None),
        ("[]".into(), None),
        ("{}".into(), Some("deviceId")),
        (r#"{"deviceId":"camera-1"}"#.into(), Some("deviceId")),
        (r#"{"cameraId":42}"#.into(), Some("cameraId")),
        (
            format!(r#"{{"deviceId":"{cam}","streamId":"x"}}"#),
            Some("streamId"),
        ),
        (
            format!(r#"{{"deviceId":"{cam}","streamId":"{UNKNOWN_GUID}"}}"#),
            Some("streamId"),
        ),
        (
            format!(r#"{{"deviceId":"{cam}","includeAudio":"maybe"}}"#),
            Some("includeAudio"),
        ),
        (
            format!(
                r#"{{"deviceId":"{cam}","playbackTimeNode":{{"playbackTime":"2025-03-01T08:00:00Z","speed":"64"}}}}"#
            ),
            Some("playbackTimeNode.speed"),
        ),
        (
            format!(
                r#"{{"deviceId":"{cam}","playbackTimeNode":{{"playbackTime":"2025-03-01T08:00:00Z","speed":0}}}}"#
            ),
            Some("playbackTimeNode.speed"),
        ),
        (
            format!(r#"{{"deviceId":"{cam}","playbackTimeNode":{{"playbackTime":"yesterday"}}}}"#),
            Some("playbackTimeNode.playbackTime"),
        ),
        (
            format!(
                r#"{{"deviceId":"{cam}","playbackTimeNode":{{"playbackTime":"2025-03-01T08:00:00Z","skipGaps":"maybe"}}}}"#
            ),
            Some("playbackTimeNode.skipGaps"),
        ),
        (
            format!(r#"{{"deviceId":"{cam}","iceServers":"stun:x"}}"#),
            Some("iceServers"),
        ),
    ];
    for (body, field) in cases {
        let reply = post_json(&app, "/api/REST/v1/WebRTC/Session", &token, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, field);
    }

    let session = create_session(&app, &token).await;
    let id = session["sessionId"].as_str().unwrap();
    let auth = bearer(&token);
    let patch_path = format!("/api/REST/v1/WebRTC/Session/{id}");
    for (body, field) in [
        (r#"{"answerSDP":"v=0\r\n"}"#, "answerSDP"),
        (
            r#"{"answerSDP":"{\"type\":\"offer\",\"sdp\":\"v=0\"}"}"#,
            "answerSDP",
        ),
        (
            r#"{"answerSDP":"{\"type\":\"answer\",\"sdp\":\"v=0\\r\\nnonsense\"}"}"#,
            "answerSDP",
        ),
        (r#"{"answerSDP":5}"#, "answerSDP"),
        (r#"{}"#, "answerSDP"),
    ] {
        let reply = send(
            &app,
            Method::PATCH,
            &patch_path,
            &[("authorization", &auth)],
            body,
        )
        .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, Some(field));
    }
    let candidates_path = format!("/api/REST/v1/WebRTC/IceCandidates/{id}");
    for (body, field) in [
        (r#"{"candidates":["not json"]}"#.to_owned(), "candidates[0]"),
        (
            serde_json::json!({"candidates": [
                serde_json::json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}).to_string(),
                serde_json::json!({"candidate": 7}).to_string()
            ]})
            .to_string(),
            "candidates[1]",
        ),
        (r#"{"candidates":"x"}"#.to_owned(), "candidates"),
        (r#"{}"#.to_owned(), "candidates"),
        (format!(r#"{{"sessionId":"{UNKNOWN_GUID}","candidates":[]}}"#), "sessionId"),
    ] {
        let reply = post_json(&app, &candidates_path, &token, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, Some(field));
    }
    let bad_guid = send(
        &app,
        Method::GET,
        "/api/REST/v1/WebRTC/IceCandidates/not-a-guid",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_error(&bad_guid, StatusCode::BAD_REQUEST, Some("sessionId"));
}

#[tokio::test]
async fn unknown_things_are_404_and_wrong_methods_405() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let auth = bearer(&token);
    let unknown_device = post_json(
        &app,
        "/api/REST/v1/WebRTC/Session",
        &token,
        &format!(r#"{{"deviceId":"{UNKNOWN_GUID}"}}"#),
    )
    .await;
    assert_error(&unknown_device, StatusCode::NOT_FOUND, None);
    for (method, path) in [
        (
            Method::GET,
            format!("/api/REST/v1/WebRTC/IceCandidates/{UNKNOWN_GUID}"),
        ),
        (
            Method::PATCH,
            format!("/api/REST/v1/WebRTC/Session/{UNKNOWN_GUID}"),
        ),
    ] {
        let reply = send(
            &app,
            method,
            &path,
            &[("authorization", &auth)],
            r#"{"token":"x"}"#,
        )
        .await;
        assert_error(&reply, StatusCode::NOT_FOUND, None);
    }
    // Everything else under rest/v1 is the Config API, with its own error body (PROTOCOL.md §11).
    let nowhere = send(&app, Method::GET, "/api/REST/v1/Nowhere", &[], "").await;
    assert_eq!(nowhere.status, StatusCode::UNAUTHORIZED, "{}", nowhere.text);
    assert_eq!(nowhere.json["error"]["httpCode"], 401, "{}", nowhere.text);

    let session = create_session(&app, &token).await;
    let id = session["sessionId"].as_str().unwrap();
    for (method, path) in [
        (Method::DELETE, format!("/api/REST/v1/WebRTC/Session/{id}")),
        (Method::GET, "/api/REST/v1/WebRTC/Session".to_owned()),
        (Method::PUT, "/api/REST/v1/WebRTC/Session".to_owned()),
        (
            Method::DELETE,
            format!("/api/REST/v1/WebRTC/IceCandidates/{id}"),
        ),
        (Method::POST, "/api/ws/webrtc/v1".to_owned()),
    ] {
        let reply = send(&app, method.clone(), &path, &[("authorization", &auth)], "").await;
        assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, None);
    }
    // A GET on the WebSocket path without an upgrade is a JSON 400, not plain text.
    let plain = send(&app, Method::GET, "/api/ws/webrtc/v1", &[], "").await;
    assert_error(&plain, StatusCode::BAD_REQUEST, None);
}

#[tokio::test]
async fn sessions_are_private_to_their_user() {
    let (app, _) = app().await;
    let admin = token(&app).await;
    let bob = login_as(&app, OTHER_USER, OTHER_PASSWORD, "VmsClient").await;
    let bob = bob.json["access_token"].as_str().unwrap().to_owned();
    let session = create_session(&app, &admin).await;
    let id = session["sessionId"].as_str().unwrap();
    let path = format!("/api/REST/v1/WebRTC/IceCandidates/{id}");
    let reply = send(
        &app,
        Method::GET,
        &path,
        &[("authorization", &bearer(&bob))],
        "",
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, None);

    // Pushing another user's token into the session is forbidden; a forged one unauthorized.
    let patch_path = format!("/api/REST/v1/WebRTC/Session/{id}");
    let auth = bearer(&admin);
    let foreign = send(
        &app,
        Method::PATCH,
        &patch_path,
        &[("authorization", &auth)],
        format!(r#"{{"token":"{bob}"}}"#),
    )
    .await;
    assert_error(&foreign, StatusCode::FORBIDDEN, None);
    let forged = send(
        &app,
        Method::PATCH,
        &patch_path,
        &[("authorization", &auth)],
        r#"{"token":"a.b.c"}"#,
    )
    .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, None);
}

#[tokio::test]
async fn cors_preflight_mirrors_the_requested_headers() {
    let (app, _) = app().await;
    for path in [
        "/api/REST/v1/WebRTC/Session",
        "/API/IDP/connect/token",
        "/anything/at/all",
    ] {
        let reply = send(
            &app,
            Method::OPTIONS,
            path,
            &[
                ("origin", "http://localhost:5500"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            "",
        )
        .await;
        assert!(reply.status.is_success(), "{path}: {}", reply.status);
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_ascii_lowercase())
                .unwrap_or_default()
        };
        assert_eq!(header("access-control-allow-origin"), "*");
        let methods = header("access-control-allow-methods");
        for method in ["get", "post", "patch", "options"] {
            assert!(methods.contains(method), "{methods}");
        }
        assert_eq!(
            header("access-control-allow-headers"),
            "authorization,content-type"
        );
    }
    let token = token(&app).await;
    let actual = send(
        &app,
        Method::GET,
        &format!("/api/REST/v1/WebRTC/IceCandidates/{UNKNOWN_GUID}"),
        &[
            ("origin", "http://localhost:5500"),
            ("authorization", &bearer(&token)),
        ],
        "",
    )
    .await;
    assert_eq!(actual.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn without_cors_there_are_no_cors_headers() {
    let (app, _) = app_with(EmulatorConfig {
        cors: false,
        ..config()
    })
    .await;
    let reply = send(
        &app,
        Method::OPTIONS,
        "/api/REST/v1/WebRTC/Session",
        &[
            ("origin", "http://localhost:5500"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert!(
        reply
            .headers
            .keys()
            .all(|k| !k.as_str().starts_with("access-control")),
        "{:?}",
        reply.headers
    );
    let login = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    assert!(login.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn rejections_are_journaled_with_the_field() {
    let (app, state) = app().await;
    let mut journal = state.journal().subscribe();
    let token = token(&app).await;
    let nowhere = send(&app, Method::GET, "/API/Nowhere", &[], "").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let bad = post_json(&app, "/api/REST/v1/WebRTC/Session", &token, "{}").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let mut rejected = Vec::new();
    while let Ok(entry) = journal.try_recv() {
        if let xprotect_emulator::JournalEvent::HttpRejected {
            path,
            status,
            field,
            ..
        } = entry.event
        {
            rejected.push((path, status, field));
        }
    }
    assert_eq!(
        rejected,
        vec![
            ("/API/Nowhere".to_owned(), 404, None),
            (
                "/api/REST/v1/WebRTC/Session".to_owned(),
                400,
                Some("deviceId".to_owned())
            ),
        ]
    );
}
