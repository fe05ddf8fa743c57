//! Helpers for the `protocol_*` tests: an in-process router and one-shot requests.
#![allow(dead_code)] // each test file uses a different part

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use xprotect_emulator::camera::default_cameras;
use xprotect_emulator::{AppState, EmulatorConfig, router};
use xprotect_proto::wire::Secret;

pub const PASSWORD: &str = "Adm1n!pw";
pub const OTHER_USER: &str = "bob";
pub const OTHER_PASSWORD: &str = "b0b-secret";

/// A configuration with two users and a fixed seed.
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        users: vec![
            ("admin".into(), Secret::new(PASSWORD)),
            (OTHER_USER.into(), Secret::new(OTHER_PASSWORD)),
        ],
        rng_seed: Some(42),
        ..EmulatorConfig::ephemeral()
    }
}

pub fn camera() -> String {
    default_cameras()[0].id.to_string()
}

pub async fn app_with(config: EmulatorConfig) -> (Router, AppState) {
    let state = AppState::new(&config).await.expect("emulator state");
    (router(state.clone()), state)
}

pub async fn app() -> (Router, AppState) {
    app_with(config()).await
}

/// One response, with the body parsed as JSON (`Value::Null` if empty, a string if not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

pub async fn send(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(body.into()).expect("request"))
        .await
        .expect("infallible service");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    Reply {
        status,
        headers,
        text,
        json,
    }
}

pub async fn login_as(app: &Router, user: &str, password: &str, client: &str) -> Reply {
    let body = format!(
        "grant_type=password&username={user}&password={}&client_id={client}",
        password.replace('!', "%21")
    );
    send(
        app,
        Method::POST,
        "/api/IDP/connect/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
    )
    .await
}

/// An access token for `admin`.
pub async fn token(app: &Router) -> String {
    let reply = login_as(app, "admin", PASSWORD, "VmsClient").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// POST a JSON body with a token.
pub async fn post_json(app: &Router, path: &str, token: &str, body: &str) -> Reply {
    let auth = bearer(token);
    send(
        app,
        Method::POST,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
}

/// Create a live session on the first camera; returns the session object.
pub async fn create_session(app: &Router, token: &str) -> Value {
    let body = format!(
        r#"{{"deviceId":"{}","resolution":"notInUse","iceServers":[]}}"#,
        camera()
    );
    let reply = post_json(app, "/api/REST/v1/WebRTC/Session", token, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}

/// Assert a JSON error body with this status and (optionally) field.
pub fn assert_error(reply: &Reply, status: StatusCode, field: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(
        reply.json.get("error").is_some(),
        "no JSON error body: {}",
        reply.text
    );
    assert!(
        reply.json.get("message").is_some() || reply.json.get("error_description").is_some(),
        "{}",
        reply.text
    );
    if let Some(field) = field {
        assert_eq!(reply.json["field"], field, "{}", reply.text);
    }
}

/// A password-grant login over a real socket with a minimal HTTP/1.1 exchange (the emulator's
/// dev-dependencies carry no HTTP client); returns the status and the JSON body.
pub async fn http_login(addr: std::net::SocketAddr, user: &str, password: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(
        "grant_type=password&username={user}&password={}&client_id=VmsClient",
        password.replace('!', "%21")
    );
    let request = format!(
        "POST /API/IDP/connect/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("login in time")
    .expect("read");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
