//! The gateway proxy at the HTTP level, against a recording stand-in for the gateway: what it
//! forwards (method, path, query, body, the allowed headers, X-Forwarded-For), what it refuses
//! (other paths, dot segments, encoded slashes, other hosts in absolute-form requests) and that
//! refused requests never reach any server. Requests that a client library would normalise are
//! written by hand on a raw TCP socket.

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xprotect_viewer::{RunningViewer, ViewerConfig};

const LIMIT: Duration = Duration::from_secs(10);

/// Every request a stand-in server received, as `METHOD path?query`.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn all(&self) -> Vec<String> {
        self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
    }
}

/// A stand-in gateway under `/api/`: echoes what it received as JSON; `/api/ws/webrtc/v1`
/// echoes WebSocket text frames prefixed with `echo:`.
async fn stand_in() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/api/ws/webrtc/v1", any(ws_echo))
        .fallback(echo)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn echo(State(seen): State<Seen>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let line = format!("{} {}", parts.method, parts.uri);
    seen.0.lock().unwrap().push(line);
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "body": String::from_utf8_lossy(&body),
        "xff": header("x-forwarded-for"),
        "authorization": header("authorization"),
        "content_type": header("content-type"),
        "cookie": header("cookie"),
        "origin": header("origin"),
    });
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("set-cookie", "secret=1".parse().unwrap());
    headers.insert("x-internal", "yes".parse().unwrap());
    (
        axum::http::StatusCode::IM_A_TEAPOT,
        headers,
        answer.to_string(),
    )
        .into_response()
}

async fn ws_echo(
    State(seen): State<Seen>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let xff = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    seen.0.lock().unwrap().push(format!("WS xff={xff}"));
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message
                && socket
                    .send(Message::Text(format!("echo:{}", text.as_str()).into()))
                    .await
                    .is_err()
            {
                break;
            }
        }
    })
}

async fn viewer_for(gateway: SocketAddr) -> RunningViewer {
    let mut config = ViewerConfig::new(format!("http://{gateway}/api").parse().unwrap());
    config.listen = "127.0.0.1:0".parse().unwrap();
    xprotect_viewer::start(config).await.unwrap()
}

/// One request written verbatim; returns the status code and the body.
async fn raw_request(viewer: SocketAddr, request_line: &str) -> (u16, String) {
    raw_request_to(viewer, &viewer.to_string(), request_line).await
}

/// As [`raw_request`], naming `host` in the `Host` header.
async fn raw_request_to(viewer: SocketAddr, host: &str, request_line: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(viewer).await.unwrap();
    let request = format!("{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the viewer answers in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn forwards_to_the_gateway_with_the_browsers_address_and_only_allowed_headers() {
    let (gateway, seen) = stand_in().await;
    let viewer = viewer_for(gateway).await;
    let client = reqwest::Client::new();
    let response = client
        .patch(format!(
            "{}gateway/REST/v1/WebRTC/Session/abc?x=1",
            viewer.url()
        ))
        .header("authorization", "Bearer t0ken")
        .header("content-type", "application/json")
        .header("cookie", "session=browser")
        .header("origin", "http://elsewhere.example")
        .header("x-forwarded-for", "203.0.113.9")
        .body(r#"{"answerSDP":"x"}"#)
        .send()
        .await
        .unwrap();
    // The gateway's status and content type come through; its other headers do not.
    assert_eq!(response.status().as_u16(), 418);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("x-internal").is_none());
    let echo: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "PATCH");
    assert_eq!(echo["path"], "/api/REST/v1/WebRTC/Session/abc");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["body"], r#"{"answerSDP":"x"}"#);
    assert_eq!(echo["authorization"], "Bearer t0ken");
    assert_eq!(echo["content_type"], "application/json");
    // The browser's own XFF is not trusted: the proxy states the address it saw.
    assert_eq!(echo["xff"], "127.0.0.1");
    assert_eq!(echo["cookie"], serde_json::Value::Null);
    assert_eq!(echo["origin"], serde_json::Value::Null);

    // The IDP's form post.
    let response = client
        .post(format!("{}gateway/IDP/connect/token", viewer.url()))
        .form(&[("grant_type", "password"), ("client_id", "VmsClient")])
        .send()
        .await
        .unwrap();
    let echo: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echo["path"], "/api/IDP/connect/token");
    assert_eq!(echo["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(echo["body"], "grant_type=password&client_id=VmsClient");
    assert_eq!(seen.all().len(), 2);
    viewer.shutdown().await;
}

#[tokio::test]
async fn refuses_paths_that_climb_out_and_other_hosts() {
    let (gateway, seen) = stand_in().await;
    let (elsewhere, seen_elsewhere) = stand_in().await;
    let viewer = viewer_for(gateway).await;
    let addr = viewer.local_addr();
    let refused = [
        ("GET /gateway/../secret HTTP/1.1", 400),
        ("GET /gateway/rest/../../secret HTTP/1.1", 400),
        ("GET /gateway/%2e%2e/secret HTTP/1.1", 400),
        ("GET /gateway/rest%2F..%2F..%2Fsecret HTTP/1.1", 400),
        ("GET /gateway/rest%5c..%5csecret HTTP/1.1", 400),
        (
            &format!("GET /gateway//{elsewhere}/api/x HTTP/1.1") as &str,
            400,
        ),
        (
            &format!("GET /gateway/http://{elsewhere}/api/x HTTP/1.1"),
            400,
        ),
        ("GET /gateway/ HTTP/1.1", 404),
        ("GET /api/rest/v1/cameras HTTP/1.1", 404),
        ("GET /other HTTP/1.1", 404),
        ("CONNECT 127.0.0.1:22 HTTP/1.1", 404),
        ("TRACE /gateway/rest/v1/cameras HTTP/1.1", 405),
    ];
    for (line, status) in refused {
        let (got, body) = raw_request(addr, line).await;
        assert_eq!(got, status, "{line}: {body}");
        let message: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {body}"));
        assert_eq!(message["error"], "viewer_proxy", "{line}");
        assert!(
            message["message"].as_str().is_some_and(|m| m.len() > 10),
            "{line}: {body}"
        );
    }
    assert!(
        seen.all().is_empty(),
        "reached the gateway: {:?}",
        seen.all()
    );

    // An absolute-form request naming another host still goes to the configured gateway only.
    let (status, body) = raw_request(
        addr,
        &format!("GET http://{elsewhere}/gateway/rest/v1/cameras HTTP/1.1"),
    )
    .await;
    assert_eq!(status, 418, "{body}");
    assert_eq!(seen.all(), ["GET /api/rest/v1/cameras"]);
    assert!(seen_elsewhere.all().is_empty());
    viewer.shutdown().await;
}

#[tokio::test]
async fn relays_the_signaling_websocket_frame_by_frame_and_no_other() {
    let (gateway, seen) = stand_in().await;
    let viewer = viewer_for(gateway).await;
    let url = format!("ws://{}/gateway/ws/webrtc/v1", viewer.local_addr());
    let (mut socket, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    for text in ["{\"id\":1}", "second"] {
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        let answer = tokio::time::timeout(LIMIT, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(answer.to_text().unwrap(), format!("echo:{text}"));
    }
    assert_eq!(seen.all(), ["WS xff=127.0.0.1"]);

    let other = format!("ws://{}/gateway/rest/v1/cameras", viewer.local_addr());
    match tokio_tungstenite::connect_async(other).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 404)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(seen.all().len(), 1);
    viewer.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_502_that_says_so() {
    // A port that was free a moment ago: nothing listens there.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = free.local_addr().unwrap();
    drop(free);
    let viewer = viewer_for(gateway).await;
    let (status, body) =
        raw_request(viewer.local_addr(), "GET /gateway/rest/v1/cameras HTTP/1.1").await;
    assert_eq!(status, 502);
    assert!(body.contains("cannot reach the gateway"), "{body}");
    viewer.shutdown().await;
}

#[tokio::test]
async fn answers_only_to_its_own_name_and_its_own_pages_websockets() {
    let (gateway, seen) = stand_in().await;
    let viewer = viewer_for(gateway).await;
    let addr = viewer.local_addr();
    // DNS rebinding: a foreign name resolving to 127.0.0.1.
    let (status, body) = raw_request_to(
        addr,
        "attacker.example:80",
        "GET /gateway/rest/v1/cameras HTTP/1.1",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("answers only to"), "{body}");
    let (status, _) = raw_request_to(addr, "attacker.example", "GET / HTTP/1.1").await;
    assert_eq!(status, 403);
    let localhost = format!("localhost:{}", addr.port());
    let (status, _) = raw_request_to(addr, &localhost, "GET / HTTP/1.1").await;
    assert_eq!(status, 200);
    assert!(seen.all().is_empty());

    // Browsers apply no CORS to WebSockets: a foreign page's Origin is refused.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("ws://{addr}/gateway/ws/webrtc/v1");
    let mut foreign = url.as_str().into_client_request().unwrap();
    foreign
        .headers_mut()
        .insert("origin", "https://attacker.example".parse().unwrap());
    match tokio_tungstenite::connect_async(foreign).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(seen.all().is_empty());
    let mut own = url.as_str().into_client_request().unwrap();
    own.headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    let (socket, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(own))
        .await
        .unwrap()
        .unwrap();
    drop(socket);
    assert_eq!(seen.all(), ["WS xff=127.0.0.1"]);
    viewer.shutdown().await;
}
