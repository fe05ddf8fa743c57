//! Milestone's official WebRTC sample page, unmodified, in Debian's Chromium against the emulator.
//!
//! Each case starts the emulator in this process, runs `browser/official-sample.mjs` (Playwright
//! driving `/usr/bin/chromium`), which serves one release of the sample from its own loopback
//! origin, fills the form like a user and waits until the `<video>` plays. The test then checks the
//! driver's JSON verdict and the emulator's journal: what the browser says it saw must match what
//! the emulator says happened. A last case turns CORS off and expects the page to be blocked, which
//! proves the browser really obeys the emulator's CORS answers (nothing in between fakes them).
//!
//! Needs `node`, `npm ci --prefix browser` and `apt-get install chromium`; the test fails (never
//! skips) without them. The sample is read from `../shared/reference/milestone-webrtc-sample`
//! beside the repository, or from `XPROTECT_SAMPLE_ROOT`. Screenshots are kept in
//! `target/test-artifacts/official-sample/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use xprotect_emulator::{
    DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig, JournalEntry, JournalEvent,
    RunningEmulator, Transport,
};

/// What the driver may spend on one page run (launch, login, signaling, playing, PTZ).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(30);
/// The driver's own watchdog adds 15 s to its timeout; this covers that and node's start-up.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// Journal events that follow the browser's last action (data-channel messages in flight).
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Releases with the signaling tabs, the `commands` data channel and PTZ buttons.
const FIRST_RELEASE_WITH_COMMANDS: &str = "2025R1";
/// Releases that show each frame's time above the video.
const FIRST_RELEASE_WITH_FRAME_TIME: &str = "2023R3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signaling {
    Rest,
    WebSocket,
}

impl Signaling {
    fn arg(self) -> &'static str {
        match self {
            Signaling::Rest => "rest",
            Signaling::WebSocket => "ws",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Signaling::Rest => Transport::Rest,
            Signaling::WebSocket => Transport::Ws,
        }
    }
}

/// The driver's one-line JSON verdict.
#[derive(Debug, Deserialize)]
struct PageRun {
    ok: bool,
    release: String,
    signaling: String,
    video_width: u32,
    video_height: u32,
    time_to_first_frame_ms: Option<u64>,
    time_to_playing_ms: Option<u64>,
    page_connect_ms: Option<u64>,
    page_log: Option<String>,
    frame_time_label: Option<String>,
    screenshot: Option<PathBuf>,
    #[serde(default)]
    ptz: Option<PtzRun>,
    http_errors: Vec<String>,
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PtzRun {
    sent: Vec<serde_json::Value>,
    inline_click: Option<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn driver_script() -> PathBuf {
    repo_root().join("browser/official-sample.mjs")
}

fn sample_root() -> PathBuf {
    std::env::var_os("XPROTECT_SAMPLE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/reference/milestone-webrtc-sample"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn artifacts_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; the screenshots belong beside it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")))
        .join("test-artifacts/official-sample")
}

/// Fails, with what to run, when something the browser test needs is not installed.
fn require_browser_tooling() {
    let browser = repo_root().join("browser");
    let modules = [
        "node_modules/playwright-core/package.json",
        "node_modules/webrtc-adapter/out/adapter.js",
    ];
    for module in modules {
        assert!(
            browser.join(module).is_file(),
            "{} is missing: run `npm ci --prefix browser` in the repository (CI does)",
            browser.join(module).display()
        );
    }
    assert!(
        chromium().is_file(),
        "{} is missing: run `apt-get install chromium` (Debian's package; CI installs it)",
        chromium().display()
    );
    assert!(
        sample_root().join("2025R2/index.html").is_file(),
        "the official sample is not at {}: set XPROTECT_SAMPLE_ROOT to the folder holding 2023R1 … 2025R2",
        sample_root().display()
    );
}

async fn start_emulator(cors: bool) -> RunningEmulator {
    let mut config = EmulatorConfig::ephemeral();
    config.cors = cors;
    Emulator::start(config)
        .await
        .expect("emulator starts on loopback")
}

fn camera() -> xprotect_emulator::camera::CameraConfig {
    EmulatorConfig::ephemeral().cameras.remove(0)
}

/// Runs the driver once and returns its verdict (whatever it says; callers assert).
async fn run_page(
    emulator: &RunningEmulator,
    release: &str,
    signaling: Signaling,
    ptz: bool,
    timeout: Duration,
) -> PageRun {
    require_browser_tooling();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(driver_script())
        .args(["--gateway", &emulator.gateway_url()])
        .args(["--release", release])
        .args(["--signaling", signaling.arg()])
        .args(["--camera", &camera().id.to_string()])
        .args(["--user", DEFAULT_USER, "--password", DEFAULT_PASSWORD])
        .arg("--artifacts")
        .arg(artifacts_dir())
        .arg("--sample-root")
        .arg(sample_root())
        .arg("--chromium")
        .arg(chromium())
        .args(["--timeout-ms", &timeout.as_millis().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if ptz {
        command.arg("--ptz");
    }
    let child = command
        .spawn()
        .expect("`node` runs (Node.js is needed for the browser tests)");
    let output = tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the driver did not finish within {PROCESS_TIMEOUT:?}"))
        .expect("the driver's output is readable");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "the driver printed no JSON (status {}):\n{stdout}\n{stderr}",
                output.status
            )
        });
    eprintln!("{release} {}: {line}", signaling.arg());
    let run: PageRun = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("driver JSON does not parse ({error}): {line}"));
    assert_eq!(
        output.status.success(),
        run.ok,
        "the exit status must agree with the verdict; stderr:\n{stderr}"
    );
    run
}

/// Journal entries seen so far, and the subscription to wait for more.
struct JournalWatch {
    receiver: broadcast::Receiver<JournalEntry>,
    seen: Vec<JournalEvent>,
}

impl JournalWatch {
    fn new(emulator: &RunningEmulator) -> Self {
        Self {
            receiver: emulator.journal(),
            seen: Vec::new(),
        }
    }

    /// Everything recorded up to now, without waiting.
    fn drain(&mut self) -> &[JournalEvent] {
        loop {
            match self.receiver.try_recv() {
                Ok(entry) => self.seen.push(entry.event),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                    panic!("the test fell {missed} journal entries behind")
                }
                Err(_) => return &self.seen,
            }
        }
    }

    /// Waits until an event matching `wanted` has been recorded.
    async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&JournalEvent) -> bool,
    ) -> JournalEvent {
        if let Some(found) = self.drain().iter().find(|event| wanted(event)) {
            return found.clone();
        }
        let deadline = tokio::time::Instant::now() + JOURNAL_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Ok(entry)) => {
                    let matched = wanted(&entry.event);
                    self.seen.push(entry.event);
                    if matched {
                        return self.seen.last().cloned().expect("just pushed");
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    panic!("the test fell {missed} journal entries behind")
                }
                Ok(Err(RecvError::Closed)) => panic!("journal closed while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} in the journal within {JOURNAL_TIMEOUT:?}; seen:\n{:#?}",
                    self.seen
                ),
            }
        }
    }
}

/// Asserts that the page played our camera and that the journal shows the whole session.
async fn assert_live_session(
    run: &PageRun,
    journal: &mut JournalWatch,
    release: &str,
    signaling: Signaling,
) -> String {
    let camera = camera();
    assert!(
        run.ok,
        "{release}/{}: the page did not play: {run:#?}",
        signaling.arg()
    );
    assert_eq!(run.release, release);
    assert_eq!(run.signaling, signaling.arg());
    assert_eq!(
        (run.video_width, run.video_height),
        (camera.width, camera.height),
        "the <video> must show the camera's picture size"
    );
    assert!(run.errors.is_empty(), "driver errors: {:?}", run.errors);
    assert!(
        run.http_errors.is_empty(),
        "the emulator refused some of the page's requests: {:?}",
        run.http_errors
    );
    let first = run.time_to_first_frame_ms.expect("time to first frame");
    let playing = run.time_to_playing_ms.expect("time to playing");
    assert!(
        first <= playing,
        "first frame {first} ms, playing {playing} ms"
    );
    let log = run.page_log.as_deref().unwrap_or_default();
    assert!(
        log.contains("Connection state: connected") && run.page_connect_ms.is_some(),
        "the page's own log must say it connected: {log}"
    );
    if release >= FIRST_RELEASE_WITH_FRAME_TIME {
        assert!(
            run.frame_time_label
                .as_deref()
                .is_some_and(|label| !label.trim().is_empty()),
            "the page shows no frame time: {:?}",
            run.frame_time_label
        );
    }
    let screenshot = run.screenshot.as_deref().expect("a screenshot path");
    let png = std::fs::read(screenshot).expect("the screenshot exists");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "the screenshot is not a real PNG: {}",
        screenshot.display()
    );

    let transport = signaling.transport();
    let created = journal
        .wait_for("session_created", |event| {
            matches!(event, JournalEvent::SessionCreated { .. })
        })
        .await;
    let JournalEvent::SessionCreated {
        session,
        device,
        transport: created_over,
        mode,
        ..
    } = created
    else {
        unreachable!("matched above")
    };
    assert_eq!(
        created_over, transport,
        "the session came over the wrong transport"
    );
    assert_eq!(device, camera.id.to_string());
    assert_eq!(mode, "live");
    journal
        .wait_for("answer_received", |event| {
            matches!(event, JournalEvent::AnswerReceived { session: s, transport: t } if *s == session && *t == transport)
        })
        .await;
    journal
        .wait_for(
            "connected",
            |event| matches!(event, JournalEvent::Connected { session: s } if *s == session),
        )
        .await;
    journal
        .wait_for("first_frame_sent", |event| {
            matches!(event, JournalEvent::FirstFrameSent { session: s, .. } if *s == session)
        })
        .await;
    if release >= FIRST_RELEASE_WITH_COMMANDS {
        journal
            .wait_for("data_channel_open commands/videoos-commands", |event| {
                matches!(event, JournalEvent::DataChannelOpen { session: s, label, protocol }
                    if *s == session && label == "commands" && protocol == "videoos-commands")
            })
            .await;
    }
    let events = journal.drain();
    let sessions = events
        .iter()
        .filter(|event| matches!(event, JournalEvent::SessionCreated { .. }))
        .count();
    assert_eq!(sessions, 1, "the page must create exactly one session");
    let refusals: Vec<_> = events
        .iter()
        .filter(|event| {
            matches!(
                event,
                JournalEvent::HttpRejected { .. } | JournalEvent::WsError { .. }
            )
        })
        .collect();
    assert!(
        refusals.is_empty(),
        "the emulator refused something: {refusals:#?}"
    );
    session
}

async fn live_case(release: &str, signaling: Signaling) {
    let emulator = start_emulator(true).await;
    let mut journal = JournalWatch::new(&emulator);
    let run = run_page(&emulator, release, signaling, false, DRIVER_TIMEOUT).await;
    assert_live_session(&run, &mut journal, release, signaling).await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2023r1() {
    live_case("2023R1", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2023r3() {
    live_case("2023R3", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2024r1() {
    live_case("2024R1", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2024r2() {
    live_case("2024R2", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2025r1() {
    live_case("2025R1", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_live_2025r2() {
    live_case("2025R2", Signaling::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_live_2025r1() {
    live_case("2025R1", Signaling::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_live_2025r2() {
    live_case("2025R2", Signaling::WebSocket).await;
}

/// The 2025R2 page's PTZ arrows and aux buttons reach the emulator over the `commands` channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_and_aux_2025r2_reach_the_journal() {
    let emulator = start_emulator(true).await;
    let mut journal = JournalWatch::new(&emulator);
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::WebSocket,
        true,
        DRIVER_TIMEOUT,
    )
    .await;
    let session = assert_live_session(&run, &mut journal, "2025R2", Signaling::WebSocket).await;
    let ptz = run.ptz.as_ref().expect("the driver reports its PTZ run");
    eprintln!("inline PTZ button click: {:?}", ptz.inline_click);
    assert!(!ptz.sent.is_empty(), "the driver sent no commands: {ptz:?}");
    for sent in &ptz.sent {
        let method = sent["method"].as_str().expect("method").to_owned();
        let wanted_params = match method.as_str() {
            "ptzMove" => serde_json::json!({ "direction": sent["direction"] }),
            "setAux" => serde_json::json!({ "on": sent["on"], "auxNumber": sent["auxNumber"] }),
            other => panic!("unexpected command {other}"),
        };
        let what = format!("data_channel_message {sent}");
        let event = journal
            .wait_for(&what, |event| match event {
                JournalEvent::DataChannelMessage {
                    session: s, text, ..
                } if *s == session => {
                    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|message| {
                        message["method"] == method.as_str() && message["params"] == wanted_params
                    })
                }
                _ => false,
            })
            .await;
        let JournalEvent::DataChannelMessage {
            command,
            error,
            text,
            ..
        } = event
        else {
            unreachable!("matched above")
        };
        assert!(
            command.is_some() && error.is_none(),
            "the emulator did not understand {text}: {error:?}"
        );
    }
    emulator.shutdown().await;
}

/// With CORS off (the real gateway's default) the browser must block the page: proof that the
/// passing cases really depend on the emulator's own preflight answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_off_blocks_the_page() {
    let emulator = start_emulator(false).await;
    let mut journal = JournalWatch::new(&emulator);
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::Rest,
        false,
        Duration::from_secs(5),
    )
    .await;
    assert!(!run.ok, "the page must not play without CORS: {run:#?}");
    assert_eq!(run.video_width, 0);
    let log = run.page_log.as_deref().unwrap_or_default();
    assert!(
        log.contains("Failed to initiate WebRTC session"),
        "the page must report the blocked session request: {log}"
    );
    // The token POST is a simple request and gets through; the session POST needs a preflight
    // (Authorization header), which fails, so no session may exist.
    let sessions = journal
        .drain()
        .iter()
        .filter(|event| matches!(event, JournalEvent::SessionCreated { .. }))
        .count();
    assert_eq!(sessions, 0, "no session may be created without CORS");
    emulator.shutdown().await;
}
