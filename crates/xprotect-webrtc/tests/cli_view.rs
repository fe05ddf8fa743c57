//! `xprotect-webrtc view`: the binary prints the viewer's URL, serves the page there and
//! forwards the IDP and the Config API to the emulator (CORS off) under /gateway/, and nothing
//! else. The page itself is exercised in Chromium by the xprotect-viewer crate's tests.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use xprotect_emulator::{DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig};

const BIN: &str = env!("CARGO_BIN_EXE_xprotect-webrtc");
const LIMIT: Duration = Duration::from_secs(20);

/// One HTTP/1.1 request on a fresh connection; the status and the body.
async fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("the viewer accepts");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the viewer answers in time")
        .expect("the answer is readable");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_serves_the_page_and_proxies_the_gateway_only() {
    let emulator = Emulator::start(EmulatorConfig {
        cors: false,
        ..EmulatorConfig::ephemeral()
    })
    .await
    .expect("the emulator starts");
    let mut child = tokio::process::Command::new(BIN)
        // Debug logging on: the proxy's logs must still hold no token or password.
        .args([
            "-vv",
            "view",
            "--gateway",
            &emulator.gateway_url(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("the URL is printed in time")
        .expect("stdout is readable")
        .expect("a first line");
    // "viewer for <gateway> at <viewer URL>"
    let url = first
        .rsplit(' ')
        .next()
        .filter(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no viewer URL at the end of {first:?}"));
    assert!(first.contains(&emulator.gateway_url()), "{first}");
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    let (status, page) = http(&host, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("XProtect WebRTC viewer"), "{page}");
    let (status, _) = http(&host, "GET", "/viewer.js", &[], "").await;
    assert_eq!(status, 200);

    let form = format!(
        "grant_type=password&username={DEFAULT_USER}&password={DEFAULT_PASSWORD}&client_id=VmsClient"
    );
    let (status, token) = http(
        &host,
        "POST",
        "/gateway/IDP/connect/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let token: serde_json::Value = serde_json::from_str(&token).expect("the token answer is JSON");
    let access = token["access_token"].as_str().expect("an access token");
    let bearer = format!("Bearer {access}");
    let (status, cameras) = http(
        &host,
        "GET",
        "/gateway/rest/v1/cameras",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{cameras}");
    assert!(cameras.contains("Front Door"), "{cameras}");

    for (path, expected) in [
        ("/gateway/../rest/v1/cameras", 400),
        ("/rest/v1/cameras", 404),
    ] {
        let (status, body) = http(&host, "GET", path, &[("Authorization", &bearer)], "").await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body.contains("viewer_proxy"), "{path}: {body}");
    }

    child.start_kill().expect("the viewer can be stopped");
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("the viewer stops")
        .expect("its output is readable");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains(access),
        "the token reached the log: {stderr}"
    );
    assert!(
        !stderr.contains("password="),
        "the login form reached the log: {stderr}"
    );
    assert!(stderr.contains("proxied"), "debug logging was on: {stderr}");
    assert!(
        !stderr.contains("warning"),
        "no warning on loopback: {stderr}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_records_then_serves_the_viewer_on_its_emulator() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = dir.path().join("demo.mp4");
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "-o"])
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    // Ten seconds of recording come first.
    let viewer_line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stderr is readable") {
            if line.starts_with("viewer:") {
                return line;
            }
        }
        panic!("the demo ended without serving the viewer");
    })
    .await
    .expect("the viewer is served after the recording");
    assert!(
        std::fs::metadata(&output).is_ok_and(|m| m.len() > 10_000),
        "the clip is written before the viewer starts"
    );
    let url = viewer_line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no viewer URL in {viewer_line:?}"));
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let (status, page) = http(&host, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("XProtect WebRTC viewer"));
    // The embedded emulator answers through the proxy: without a token, its 401.
    let (status, _) = http(&host, "GET", "/gateway/rest/v1/cameras", &[], "").await;
    assert_eq!(status, 401);
    child.start_kill().expect("the demo can be stopped");
    let _ = tokio::time::timeout(LIMIT, child.wait()).await;
}
