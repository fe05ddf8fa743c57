//! The Config API (PROTOCOL.md §11) in-process: envelopes and shapes, auth, 404s, case-insensitive
//! paths, and the WebRTC `streamId` accepting exactly the streams `/streams` lists.

mod protocol_support;

use axum::http::{Method, StatusCode};
use protocol_support::*;
use serde_json::Value;
use uuid::Uuid;
use xprotect_emulator::camera::default_cameras;
use xprotect_emulator::devices::{CameraDetails, MicrophoneConfig};

const UNKNOWN_GUID: &str = "00000000-0000-0000-0000-000000000001";

async fn get(app: &axum::Router, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    send(app, Method::GET, path, &headers, "").await
}

fn assert_config_error(reply: &Reply, status: StatusCode, text: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.json["error"]["httpCode"],
        status.as_u16(),
        "{}",
        reply.text
    );
    let error_text = reply.json["error"]["details"][0]["errorText"]
        .as_str()
        .unwrap_or_default();
    assert!(error_text.contains(text), "{}", reply.text);
}

#[tokio::test]
async fn cameras_list_get_and_streams_have_the_documented_shapes() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let cameras = default_cameras();

    let list = get(&app, "/api/rest/v1/cameras", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let array = list.json["array"].as_array().expect("array envelope");
    assert_eq!(array.len(), cameras.len());
    let first = &array[0];
    assert_eq!(first["id"], cameras[0].id.to_string());
    assert_eq!(first["displayName"], "Front Door");
    assert_eq!(first["name"], "Front Door");
    assert_eq!(first["enabled"], true);
    assert_eq!(first["channel"], 0);
    assert_eq!(first["ptzEnabled"], true);
    assert_eq!(array[1]["name"], "Parking Lot");
    assert_eq!(
        array[1]["ptzEnabled"], false,
        "Parking Lot is a fixed camera"
    );
    assert_eq!(first["createdDate"], "0001-01-01T00:00:00.0000000");
    assert_eq!(first["relations"]["parent"]["type"], "hardware");
    assert_eq!(first["relations"]["self"]["type"], "cameras");
    assert_eq!(first["relations"]["self"]["id"], cameras[0].id.to_string());
    // The captures' field order starts displayName, enabled, id, name, channel (§11.D).
    let positions: Vec<usize> = [
        "displayName",
        "enabled",
        "id",
        "name",
        "channel",
        "relations",
    ]
    .iter()
    .map(|key| {
        list.text
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} missing: {}", list.text))
    })
    .collect();
    assert!(positions.is_sorted(), "field order: {}", list.text);

    let one = get(
        &app,
        &format!("/api/rest/v1/cameras/{}", cameras[1].id),
        Some(&token),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["data"], array[1]);

    let streams = get(
        &app,
        &format!("/api/rest/v1/cameras/{}/streams", cameras[0].id),
        Some(&token),
    )
    .await;
    assert_eq!(streams.status, StatusCode::OK, "{}", streams.text);
    let wrappers = streams.json["array"].as_array().expect("array");
    assert_eq!(wrappers.len(), 1, "one element wraps the streams");
    assert_eq!(
        wrappers[0]["relations"]["parent"]["id"],
        cameras[0].id.to_string()
    );
    let list: &Vec<Value> = wrappers[0]["stream"].as_array().expect("stream[]");
    assert_eq!(list.len(), 2);
    for (stream, (name, reference, live_default)) in list.iter().zip([
        (
            "Video stream 1",
            "28DC44C3-079E-4C94-8EC9-60363451EB40",
            true,
        ),
        (
            "Video stream 2",
            "28DC44C3-079E-4C94-8EC9-60363451EB41",
            false,
        ),
    ]) {
        assert_eq!(stream["displayName"], name);
        assert_eq!(stream["name"], name);
        assert_eq!(stream["streamReferenceId"], reference);
        assert_eq!(stream["liveDefault"], live_default);
        assert_eq!(stream["liveMode"], "WhenNeeded");
        assert_eq!(stream["useEdge"], false);
        assert!(stream["recordTo"].is_string());
        assert!(stream["defaultPlayback"].is_boolean());
    }

    let presets = get(
        &app,
        &format!("/api/rest/v1/cameras/{}/ptzPresets", cameras[0].id),
        Some(&token),
    )
    .await;
    assert_eq!(presets.status, StatusCode::OK, "{}", presets.text);
    assert_eq!(presets.json["array"], Value::Array(vec![]));
}

#[tokio::test]
async fn microphones_are_listed_when_cameras_have_them() {
    let (app, _) = app().await;
    let token = token(&app).await;
    // By default only Front Door has a microphone.
    let default = get(&app, "/api/rest/v1/microphones", Some(&token)).await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.text);
    assert_eq!(default.json["array"][0]["name"], "Front Door Microphone");
    assert_eq!(default.json["array"].as_array().map(Vec::len), Some(1));
    let mut none = config();
    none.camera_details.clear();
    let (app, _) = app_with(none).await;
    let token = protocol_support::token(&app).await;
    let empty = get(&app, "/api/rest/v1/microphones", Some(&token)).await;
    assert_eq!(empty.json["array"], Value::Array(vec![]), "none configured");

    let cameras = default_cameras();
    let mic = Uuid::from_u128(0x1234);
    let mut config = config();
    config.camera_details.insert(
        cameras[0].id,
        CameraDetails {
            microphone: Some(MicrophoneConfig {
                id: mic,
                name: "Front Door Microphone".into(),
            }),
            ..CameraDetails::default()
        },
    );
    let (app, _) = app_with(config).await;
    let token = protocol_support::token(&app).await;
    let list = get(&app, "/api/rest/v1/microphones", Some(&token)).await;
    let array = list.json["array"].as_array().expect("array");
    assert_eq!(array.len(), 1, "{}", list.text);
    assert_eq!(array[0]["name"], "Front Door Microphone");
    assert_eq!(array[0]["relations"]["self"]["type"], "microphones");
    let camera = get(
        &app,
        &format!("/api/rest/v1/cameras/{}", cameras[0].id),
        Some(&token),
    )
    .await;
    assert_eq!(
        array[0]["relations"]["parent"],
        camera.json["data"]["relations"]["parent"]
    );
    let one = get(
        &app,
        &format!("/api/rest/v1/microphones/{mic}"),
        Some(&token),
    )
    .await;
    assert_eq!(one.json["data"], array[0]);
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401_in_the_config_api_shape() {
    let (app, _) = app().await;
    let reply = get(&app, "/api/rest/v1/cameras", None).await;
    assert_config_error(&reply, StatusCode::UNAUTHORIZED, "Authorization");
    assert!(reply.headers.contains_key("www-authenticate"));
    let reply = get(&app, "/api/rest/v1/cameras", Some("not-a-token")).await;
    assert_config_error(&reply, StatusCode::UNAUTHORIZED, "Token validation failed");
    let reply = get(
        &app,
        &format!("/api/rest/v1/cameras/{}/streams", camera()),
        None,
    )
    .await;
    assert_config_error(&reply, StatusCode::UNAUTHORIZED, "");
}

#[tokio::test]
async fn unknown_ids_and_collections_are_404() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let reply = get(
        &app,
        &format!("/api/rest/v1/cameras/{UNKNOWN_GUID}"),
        Some(&token),
    )
    .await;
    assert_config_error(
        &reply,
        StatusCode::NOT_FOUND,
        &format!("Device not found. cameras/{UNKNOWN_GUID}"),
    );
    let reply = get(
        &app,
        &format!("/api/rest/v1/cameras/{UNKNOWN_GUID}/streams"),
        Some(&token),
    )
    .await;
    assert_config_error(&reply, StatusCode::NOT_FOUND, "Device not found");
    let reply = get(&app, "/api/rest/v1/cameras/front-door", Some(&token)).await;
    assert_config_error(&reply, StatusCode::NOT_FOUND, "Device not found");
    let reply = get(&app, "/api/rest/v1/recordings", Some(&token)).await;
    assert_config_error(
        &reply,
        StatusCode::NOT_FOUND,
        "Unknown resource: recordings",
    );
    let reply = get(
        &app,
        &format!("/api/rest/v1/cameras/{}/motionDetections", camera()),
        Some(&token),
    )
    .await;
    assert_config_error(
        &reply,
        StatusCode::NOT_FOUND,
        "Unknown resource: motiondetections",
    );
    let reply = get(
        &app,
        &format!("/api/rest/v1/microphones/{UNKNOWN_GUID}"),
        Some(&token),
    )
    .await;
    assert_config_error(
        &reply,
        StatusCode::NOT_FOUND,
        "Device not found. microphones/",
    );
}

#[tokio::test]
async fn paths_are_case_insensitive_with_or_without_api() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let cam = camera().to_uppercase();
    for path in [
        "/API/REST/v1/Cameras".to_owned(),
        "/rest/v1/cameras/".to_owned(),
        format!("/Api/Rest/V1/CAMERAS/{cam}"),
        format!("/api/rest/v1/cameras/{cam}/Streams"),
        "/API/rest/v1/Microphones".to_owned(),
    ] {
        let reply = get(&app, &path, Some(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    }
}

#[tokio::test]
async fn webrtc_stream_id_must_be_a_listed_stream_of_that_camera() {
    let (app, _) = app().await;
    let token = token(&app).await;
    let cam = camera();
    // Lower case works as well as the listed upper case.
    for stream in [
        "28DC44C3-079E-4C94-8EC9-60363451EB41",
        "28dc44c3-079e-4c94-8ec9-60363451eb40",
    ] {
        let body = format!(r#"{{"deviceId":"{cam}","streamId":"{stream}","iceServers":[]}}"#);
        let reply = post_json(&app, "/api/REST/v1/WebRTC/Session", &token, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{stream}: {}", reply.text);
        assert_eq!(
            reply.json["streamId"].as_str().map(str::to_ascii_uppercase),
            Some(stream.to_ascii_uppercase())
        );
    }
    let body = format!(r#"{{"deviceId":"{cam}","streamId":"{UNKNOWN_GUID}"}}"#);
    let reply = post_json(&app, "/api/REST/v1/WebRTC/Session", &token, &body).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, Some("streamId"));
    assert!(reply.text.contains("Video stream 1"), "{}", reply.text);
}
