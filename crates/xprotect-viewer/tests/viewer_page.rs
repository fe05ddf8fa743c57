//! The viewer page in Debian's Chromium against the emulator with its CORS switched off, which is
//! the point of the same-origin proxy: the page reaches the gateway only through `/gateway/…`.
//!
//! Each case starts the emulator and the viewer in this process, runs `browser/viewer-page.mjs`
//! (Playwright driving `/usr/bin/chromium`) and checks its JSON verdict against the emulator's
//! journal. Screenshots are kept in `target/test-artifacts/viewer/` (the path is printed).
//!
//! Needs `node`, `npm ci --prefix browser` and `apt-get install chromium`; the tests fail (never
//! skip) without them.

use base64::Engine as _;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::broadcast;
use xprotect_emulator::{
    DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig, JournalEntry, JournalEvent,
    RunningEmulator, Transport,
};
use xprotect_viewer::{RunningViewer, ViewerConfig};

/// What the driver may spend on one page run.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(30);
/// The driver's watchdog adds 15 s; this covers that and node's start-up.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a journal entry that follows what the page did.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The shown time may be one frame (40 ms at 25 fps) ahead of the picture grabbed with it, when
/// a frame arrives between the page's frame callback and the grab; a second frame is margin.
const FRAME_TIME_TOLERANCE_MS: i64 = 80;
/// 2025-01-15T12:05:10Z, where the emulator's recordings resume after the first gap.
const AFTER_FIRST_GAP_MS: i64 = 1_736_942_710_000;
/// 2025-01-15T12:10:00Z, where that recording ends.
const END_OF_SECOND_RECORDING_MS: i64 = 1_736_943_000_000;
/// A live frame's (or audio packet's) time next to the page's clock when the driver read it: only
/// a plausibility bound, for the cases that grab no frames.
const LIVE_FRAME_TIME_TOLERANCE_MS: i64 = 5_000;
/// Live, the shown time is the first frame's arrival − its RTP ms + RTP ms (PROTOCOL.md §4.2), so
/// it runs behind the drawn (capture) time by the first frame's encode + loopback transit: measured
/// a steady +5 ms on every grab. On top, a grab may see the shown time up to two frames (80 ms at
/// 25 fps) off the picture, as for playback; the upper end keeps 20 ms for a loaded CI machine.
/// The page's clock at Start (the old reference) trailed by the ~220 ms set-up and fails this.
const LIVE_SHOWN_MINUS_DRAWN_MS: std::ops::RangeInclusive<i64> = -80..=100;

/// The driver's verdict.
#[derive(Debug, Deserialize)]
struct PageRun {
    ok: bool,
    error: Option<String>,
    driver_error: Option<String>,
    cameras: Option<Vec<String>>,
    video_width: Option<u32>,
    video_height: Option<u32>,
    frame_time: Option<String>,
    frame_time_ms: Option<i64>,
    page_now_ms: Option<i64>,
    commands_state: Option<String>,
    password_field_after: Option<String>,
    screenshot: Option<String>,
    gateway_requests: Vec<String>,
    outside_requests: Vec<String>,
    console_errors: Vec<String>,
    grabs: Option<Vec<Grab>>,
    streams: Option<Vec<String>>,
    snapshot: Option<Snapshot>,
    diagnostics: Option<Diagnostics>,
    audio_tracks: Option<u32>,
    grid: Option<Vec<Tile>>,
    microphones: Option<Vec<String>>,
    /// Reconnect runs: the views four times a second from before the fault to the end.
    samples: Option<Vec<Sample>>,
    /// Reconnect runs: what the page's players reported at the end (`viewerReport()`).
    players: Option<Players>,
    fault_status: Option<u16>,
    fault_at_ms: Option<i64>,
    recovered_at_ms: Option<i64>,
    diagnostics_events: Option<Vec<String>>,
}

/// The views of the page at one instant.
#[derive(Debug, Deserialize)]
struct Sample {
    at_ms: i64,
    views: Vec<ViewSample>,
}

/// One view (main player or tile): the frame time shown and the connection line.
#[derive(Debug, Deserialize)]
struct ViewSample {
    /// `null` in JSON while no frame time is shown (NaN in the page).
    frame_ms: Option<f64>,
    /// The connection line (diagnostics panel or tile).
    text: String,
}

#[derive(Debug, Deserialize)]
struct Players {
    main: Option<PlayerReport>,
    tiles: Vec<PlayerReport>,
}

/// A player's own account of its sessions.
#[derive(Debug, Deserialize)]
struct PlayerReport {
    name: String,
    state: String,
    sessions: u32,
    reconnects: u32,
    replacements: u32,
    last_error: Option<String>,
    takeovers: Vec<Takeover>,
}

/// A new session took over the view: the last frame time before, the first after.
#[derive(Debug, Deserialize)]
struct Takeover {
    kind: String,
    last_shown_ms: Option<f64>,
    first_shown_ms: f64,
    at_ms: i64,
}

/// One grid tile as the page showed it.
#[derive(Debug, Deserialize)]
struct Tile {
    name: String,
    width: u32,
    frame_time_ms: i64,
}

/// The snapshot link the page made.
#[derive(Debug, Deserialize)]
struct Snapshot {
    width: u32,
    height: u32,
    bytes: u64,
    download: String,
}

/// What the diagnostics panel showed.
#[derive(Debug, Deserialize)]
struct Diagnostics {
    ice: String,
    pair: String,
    video: String,
    /// What the frame time's start reference came from.
    clock: String,
    events: Vec<String>,
}

/// A frame drawn off the page's `<video>` with the frame time the page showed for it.
#[derive(Debug, Deserialize)]
struct Grab {
    shown_ms: i64,
    width: usize,
    height: usize,
    rgba_base64: String,
}

/// What the journal said of a session the gateway created.
struct Session {
    device: String,
    transport: Transport,
    stream: Option<String>,
    mode: &'static str,
}

struct Setup {
    emulator: RunningEmulator,
    viewer: RunningViewer,
    journal: broadcast::Receiver<JournalEntry>,
}

impl Setup {
    async fn start() -> Self {
        Self::start_with(EmulatorConfig {
            cors: false,
            ..EmulatorConfig::ephemeral()
        })
        .await
    }

    async fn start_with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        let journal = emulator.journal();
        let mut viewer_config = ViewerConfig::new(
            emulator
                .gateway_url()
                .parse()
                .expect("the emulator's URL parses"),
        );
        viewer_config.listen = "127.0.0.1:0".parse().expect("a literal address");
        let viewer = xprotect_viewer::start(viewer_config)
            .await
            .expect("the viewer starts");
        Self {
            emulator,
            viewer,
            journal,
        }
    }

    async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&JournalEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + JOURNAL_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.journal.recv()).await {
                Ok(Ok(entry)) => {
                    if let Some(found) = pick(&entry.event) {
                        return found;
                    }
                    seen.push(entry.event);
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    panic!("journal closed while waiting for {what}")
                }
                Err(_) => panic!("no {what} in the journal within {JOURNAL_TIMEOUT:?}: {seen:#?}"),
            }
        }
    }

    /// The next session the gateway created, as the journal recorded it.
    async fn wait_for_session(&mut self, what: &str) -> Session {
        self.wait_for(what, |event| match event {
            JournalEvent::SessionCreated {
                device,
                transport,
                stream,
                mode,
                ..
            } => Some(Session {
                device: device.clone(),
                transport: *transport,
                stream: stream.clone(),
                mode,
            }),
            _ => None,
        })
        .await
    }

    async fn stop(self) {
        self.viewer.shutdown().await;
        self.emulator.shutdown().await;
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; the screenshots belong beside it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")))
        .join("test-artifacts/viewer")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The driver's arguments for a run logged in as the emulator's default user, signaling over
/// `signaling` (`ws` or `rest`), followed by the case's own `extra`.
fn logged_in<'a>(signaling: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--user",
        DEFAULT_USER,
        "--password",
        DEFAULT_PASSWORD,
        "--signaling",
        signaling,
    ];
    args.extend_from_slice(extra);
    args
}

/// Fails with the page's and the driver's errors unless the driver reports the run as played.
fn assert_played(run: &PageRun) {
    assert!(
        run.ok,
        "page did not play: {:?} {:?}",
        run.error, run.driver_error
    );
}

/// Fails unless a live time `shown` (epoch ms) is near the page's clock `now` when it was read.
fn assert_near_page_clock(what: impl std::fmt::Debug, shown: i64, now: i64) {
    assert!(
        (now - shown).abs() < LIVE_FRAME_TIME_TOLERANCE_MS,
        "{what:?} is {} ms from the page's clock",
        now - shown
    );
}

/// Fails unless the page showed a live frame (or audio) time near its own clock; `what` names
/// that time in the failure.
fn assert_shown_time_is_live(run: &PageRun, what: &str) {
    let (Some(shown), Some(now)) = (run.frame_time_ms, run.page_now_ms) else {
        panic!("no {what} shown: {run:?}");
    };
    assert_near_page_clock(format_args!("{what} {:?}", run.frame_time), shown, now);
}

async fn run_page(viewer: &RunningViewer, case: &str, extra: &[&str]) -> PageRun {
    run_page_for(viewer, case, extra, DRIVER_TIMEOUT).await
}

/// `run_page` with a longer budget for the driver (the runs that watch sessions be replaced).
async fn run_page_for(
    viewer: &RunningViewer,
    case: &str,
    extra: &[&str],
    driver_timeout: Duration,
) -> PageRun {
    // The driver's watchdog adds 15 s to its budget; the rest covers node's start-up.
    let process_timeout = driver_timeout + (PROCESS_TIMEOUT - DRIVER_TIMEOUT);
    let browser = repo_root().join("browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "run `npm ci --prefix browser` first"
    );
    assert!(
        chromium().exists(),
        "install chromium (apt-get install chromium)"
    );
    let screenshot = artifacts_dir().join(format!("{case}.png"));
    let mut command = tokio::process::Command::new("node");
    command
        .arg(browser.join("viewer-page.mjs"))
        .args(["--url", &viewer.url()])
        .arg("--chromium")
        .arg(chromium())
        .arg("--screenshot")
        .arg(&screenshot)
        .args(["--timeout", &driver_timeout.as_millis().to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("`node` runs");
    let output = tokio::time::timeout(process_timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the driver did not finish within {process_timeout:?}"))
        .expect("the driver's output is readable");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("the driver printed no JSON:\n{stdout}\n{stderr}"));
    eprintln!("{case}: {line}");
    let run: PageRun = serde_json::from_str(line).expect("the driver's JSON parses");
    if let Some(path) = &run.screenshot {
        println!("screenshot of {case}: {path}");
    }
    assert!(
        run.outside_requests.is_empty(),
        "the page left its origin: {:?}",
        run.outside_requests
    );
    run
}

/// `size`: the picture of the stream played (the emulator's "Video stream 2" is 1280x720).
fn assert_playing_live(run: &PageRun, size: (u32, u32)) {
    assert_played(run);
    assert_eq!(
        run.cameras.as_deref(),
        Some(&["Front Door".to_owned(), "Parking Lot".to_owned()][..]),
        "camera names from the Config API"
    );
    assert!(
        run.console_errors.is_empty(),
        "errors in the page's console: {:?}",
        run.console_errors
    );
    assert_eq!(
        (run.video_width, run.video_height),
        (Some(size.0), Some(size.1))
    );
    assert_eq!(
        run.streams.as_deref(),
        Some(
            &[
                "camera default".to_owned(),
                "Video stream 1 (live default)".to_owned(),
                "Video stream 2".to_owned()
            ][..]
        ),
        "stream names from the Config API"
    );
    // The camera's related microphone comes with the video (audio is on by default).
    assert_eq!(run.audio_tracks, Some(1));
    let diagnostics = run.diagnostics.as_ref().expect("the diagnostics panel");
    assert_eq!(diagnostics.ice, "connected");
    assert!(diagnostics.pair.contains("127.0.0.1"), "{diagnostics:?}");
    assert!(
        diagnostics
            .video
            .contains(&format!("{}x{}", size.0, size.1)),
        "{diagnostics:?}"
    );
    assert!(
        diagnostics
            .events
            .iter()
            .any(|e| e.ends_with("video playing")),
        "{diagnostics:?}"
    );
    assert_shown_time_is_live(run, "live frame time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_websocket_with_cors_off_plays_and_ptz_and_aux_reach_the_camera() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "live-ws-ptz",
        &logged_in(
            "ws",
            &["--ptz", "left", "--aux", "2", "--snapshot", "--grabs", "5"],
        ),
    )
    .await;
    assert_playing_live(&run, (640, 360));
    let diagnostics = run.diagnostics.as_ref().expect("the diagnostics panel");
    // Chromium gives WebRTC frames a receiveTime, the best of the page's anchors.
    assert_eq!(
        diagnostics.clock, "live: first frame receiveTime − RTP",
        "the live clock is anchored at the first frame's arrival"
    );
    let diffs = shown_minus_drawn(run.grabs.as_deref().unwrap_or_default(), 5);
    eprintln!("live: shown − drawn per grab (ms): {diffs:?}");
    assert!(
        diffs.iter().all(|d| LIVE_SHOWN_MINUS_DRAWN_MS.contains(d)),
        "the live frame time is not the time drawn in the frame: {diffs:?}, allowed {LIVE_SHOWN_MINUS_DRAWN_MS:?}"
    );
    assert!(
        run.gateway_requests
            .iter()
            .any(|r| r == "WEBSOCKET /gateway/ws/webrtc/v1"),
        "{:?}",
        run.gateway_requests
    );
    let session = setup.wait_for_session("a WebSocket session").await;
    assert_eq!(session.transport, Transport::Ws);
    let direction = setup
        .wait_for("ptzMove", |event| match event {
            JournalEvent::PtzMoved { direction, .. } => Some(direction.clone()),
            _ => None,
        })
        .await;
    assert_eq!(direction, "left");
    let aux = setup
        .wait_for("setAux", |event| match event {
            JournalEvent::AuxSet { aux, on, .. } => Some((*aux, *on)),
            _ => None,
        })
        .await;
    assert_eq!(aux, (2, true));
    let snapshot = run.snapshot.as_ref().expect("a snapshot was taken");
    assert_eq!((snapshot.width, snapshot.height), (640, 360));
    assert!(snapshot.bytes > 1000, "{snapshot:?}");
    assert!(
        snapshot.download.starts_with("snapshot-") && snapshot.download.ends_with(".png"),
        "{snapshot:?}"
    );
    assert!(
        run.commands_state
            .as_deref()
            .is_some_and(|s| s.contains("setAux")),
        "{:?}",
        run.commands_state
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_rest_with_cors_off_plays_the_chosen_stream_with_a_frame_time() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "live-rest",
        &logged_in("rest", &["--stream", "Video stream 2"]),
    )
    .await;
    assert_playing_live(&run, (1280, 720));
    let session = setup.wait_for_session("a REST session").await;
    assert_eq!(session.transport, Transport::Rest);
    assert!(
        session.stream.is_some(),
        "the chosen stream reached the gateway"
    );
    for call in [
        "POST /gateway/IDP/connect/token",
        "GET /gateway/rest/v1/cameras",
        "POST /gateway/REST/v1/WebRTC/Session",
    ] {
        assert!(
            run.gateway_requests.iter().any(|r| r == call),
            "{call} missing from {:?}",
            run.gateway_requests
        );
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_shown_as_the_idp_said_it() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "wrong-password",
        &[
            "--user",
            DEFAULT_USER,
            "--password",
            "not-the-password",
            "--expect-login-error",
        ],
    )
    .await;
    assert!(run.ok, "{run:?}");
    let error = run.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("Login refused: HTTP 400")
            && error.contains("invalid_grant")
            && error.contains("invalid_username_or_password"),
        "{error}"
    );
    assert_eq!(run.password_field_after.as_deref(), Some(""));
    setup
        .wait_for("the refused token", |event| {
            matches!(event, JournalEvent::TokenRefused { .. }).then_some(())
        })
        .await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_across_a_gap_at_speed_2_shows_the_time_drawn_in_the_frame() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "playback-gap-speed2",
        &logged_in(
            "rest",
            &[
                "--playback-time",
                "2025-01-15T12:04:56Z",
                "--speed",
                "2",
                "--skip-gaps",
                "--no-audio",
                "--wait-frame-time-at-least",
                "2025-01-15T12:05:10Z",
                "--grabs",
                "3",
            ],
        ),
    )
    .await;
    assert_played(&run);
    let session = setup.wait_for_session("the playback session").await;
    assert_eq!(session.mode, "playback");
    let grabs = run.grabs.as_deref().unwrap_or_default();
    for grab in grabs {
        let drawn = drawn_time(grab);
        assert!(
            (AFTER_FIRST_GAP_MS..END_OF_SECOND_RECORDING_MS).contains(&drawn),
            "the frame on screen ({drawn}) is not from the recording after the gap"
        );
    }
    let diffs = shown_minus_drawn(grabs, 3);
    eprintln!("playback: shown − drawn per grab (ms): {diffs:?}");
    assert!(
        diffs.iter().all(|d| d.abs() <= FRAME_TIME_TOLERANCE_MS),
        "the page's frame time is not the time drawn in the frame: {diffs:?}"
    );
    setup.stop().await;
}

/// The time the emulator drew into a grabbed frame's timecode strip.
fn drawn_time(grab: &Grab) -> i64 {
    let rgba = base64::engine::general_purpose::STANDARD
        .decode(&grab.rgba_base64)
        .expect("the driver sends standard base64");
    xprotect_emulator::camera::decode_timecode_from_rgba(&rgba, grab.width, grab.height)
        .unwrap_or_else(|| {
            panic!(
                "no timecode strip readable in a grab of {}x{}",
                grab.width, grab.height
            )
        })
}

/// Per grab: the frame time the page showed minus the time drawn in the frame grabbed with it.
fn shown_minus_drawn(grabs: &[Grab], expected: usize) -> Vec<i64> {
    assert_eq!(grabs.len(), expected, "grabs");
    grabs
        .iter()
        .map(|grab| grab.shown_ms - drawn_time(grab))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_before_expiry_and_pushed_to_the_rest_session() {
    // The page refreshes 60 s before expiry, at the earliest after 5 s: a 62 s token is
    // refreshed 5 s after login.
    let mut setup = Setup::start_with(EmulatorConfig {
        cors: false,
        token_lifetime: Duration::from_secs(62),
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let run = run_page(
        &setup.viewer,
        "token-refresh",
        &logged_in("rest", &["--wait-token-refresh"]),
    )
    .await;
    assert_playing_live(&run, (640, 360));
    let grant = setup
        .wait_for("a refresh grant", |event| match event {
            JournalEvent::TokenIssued { grant, .. } if grant == "refresh_token" => {
                Some(grant.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(grant, "refresh_token");
    setup
        .wait_for("the session's token update", |event| {
            matches!(event, JournalEvent::SessionTokenUpdated { .. }).then_some(())
        })
        .await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_plays_both_cameras_at_once_each_with_its_frame_time() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "grid",
        &logged_in("ws", &["--grid", "Front Door,Parking Lot"]),
    )
    .await;
    assert_played(&run);
    let grid = run.grid.as_deref().unwrap_or_default();
    let names: Vec<&str> = grid.iter().map(|tile| tile.name.as_str()).collect();
    assert_eq!(names, ["Front Door", "Parking Lot"]);
    let now = run.page_now_ms.expect("the page's clock");
    for tile in grid {
        assert_eq!(tile.width, 640, "{tile:?}");
        assert_near_page_clock(tile, tile.frame_time_ms, now);
    }
    let mut devices = Vec::new();
    for _ in 0..2 {
        devices.push(setup.wait_for_session("a grid session").await.device);
    }
    devices.sort();
    devices.dedup();
    assert_eq!(devices.len(), 2, "one session per camera: {devices:?}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_plays_alone_with_its_audio_time() {
    let mut setup = Setup::start().await;
    let run = run_page(
        &setup.viewer,
        "microphone",
        &logged_in("rest", &["--camera", "Front Door Microphone"]),
    )
    .await;
    assert_played(&run);
    assert_eq!(
        run.microphones.as_deref(),
        Some(&["Front Door Microphone".to_owned()][..])
    );
    assert_eq!(run.audio_tracks, Some(1));
    assert_eq!(run.video_width, Some(0), "audio only");
    let diagnostics = run.diagnostics.as_ref().expect("the diagnostics panel");
    assert_eq!(
        diagnostics.clock, "live: first audio packet timestamp − RTP/8",
        "the audio clock is anchored at the first audio packet's arrival"
    );
    // Live audio: the first packet's arrival − its RTP/8, plus RTP samples / 8.
    assert_shown_time_is_live(&run, "audio time");
    let session = setup.wait_for_session("the microphone session").await;
    assert_eq!(
        session.device.to_lowercase(),
        xprotect_emulator::devices::FRONT_DOOR_MICROPHONE
            .to_string()
            .to_lowercase()
    );
    setup.stop().await;
}

// --- reconnects: the emulator's faults, injected through its control endpoint ---------------

/// From the fault to a new session on screen with the frame time 2 s past where it was: the
/// loss is noticed (the gateway closing the channel, socket close, 2 s without a frame), the retry
/// waits 100–200 ms, a live session settles 0.5 s unseen: measured 2.0–3.3 s. Generous for a
/// loaded 2-core machine.
const RECOVERY_BOUND_MS: i64 = 8_000;

impl Setup {
    /// The emulator with its fault control endpoint on, and `config`'s other fields.
    async fn start_for_faults(config: EmulatorConfig) -> Self {
        Self::start_with(EmulatorConfig {
            cors: false,
            fault_control: true,
            ..config
        })
        .await
    }

    /// The control endpoint the driver posts `--fault` to.
    fn fault_url(&self) -> String {
        format!("http://{}/emulator/faults", self.emulator.local_addr())
    }

    /// Waits for `count` sessions the gateway created and returns their transports.
    async fn wait_for_sessions(&mut self, count: usize, what: &str) -> Vec<Transport> {
        let mut transports = Vec::with_capacity(count);
        for _ in 0..count {
            transports.push(self.wait_for_session(what).await.transport);
        }
        transports
    }
}

fn fault_json(fault: &xprotect_emulator::Fault) -> String {
    serde_json::to_string(fault).expect("a fault serialises")
}

/// Fails unless the fault was taken, every view got a new session on screen within
/// RECOVERY_BOUND_MS and the diagnostics say so; returns the main player's report.
fn assert_recovered<'a>(run: &'a PageRun, case: &str) -> &'a PlayerReport {
    assert_played(run);
    assert_eq!(run.fault_status, Some(204), "the emulator took the fault");
    let (Some(fault), Some(recovered)) = (run.fault_at_ms, run.recovered_at_ms) else {
        panic!("no recovery: {run:?}");
    };
    eprintln!(
        "{case}: fault → new session on screen and frame time 2 s on: {} ms",
        recovered - fault
    );
    assert!(
        recovered - fault < RECOVERY_BOUND_MS,
        "recovery took {} ms",
        recovered - fault
    );
    let player = run
        .players
        .as_ref()
        .and_then(|players| players.main.as_ref())
        .expect("the main player's report");
    assert_eq!(player.state, "playing", "{player:?}");
    assert!(player.sessions >= 2, "{player:?}");
    assert!(player.reconnects + player.replacements >= 1, "{player:?}");
    assert!(player.last_error.is_some(), "the loss is shown: {player:?}");
    let events = run.diagnostics_events.as_deref().unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| e.contains("the new session is on screen")),
        "no take-over in the diagnostics: {events:#?}"
    );
    let last = run
        .samples
        .as_deref()
        .and_then(|samples| samples.last())
        .expect("samples");
    assert!(
        last.views
            .iter()
            .all(|view| view.text.starts_with("playing (session ")),
        "the connection line: {last:?}"
    );
    player
}

/// Live: a fault, and the page plays on with a new session (`advance`: how far past its
/// pre-fault value the frame time must get).
async fn live_recovers(signaling: &str, fault: xprotect_emulator::Fault, case: &str) {
    let mut setup = Setup::start_for_faults(EmulatorConfig::ephemeral()).await;
    let url = setup.fault_url();
    let fault = fault_json(&fault);
    let run = run_page(
        &setup.viewer,
        case,
        &logged_in(
            signaling,
            &[
                "--fault-url",
                &url,
                "--fault",
                &fault,
                "--advance-ms",
                "2000",
            ],
        ),
    )
    .await;
    let player = assert_recovered(&run, case);
    for takeover in &player.takeovers {
        let jump = takeover
            .last_shown_ms
            .map(|last| takeover.first_shown_ms - last);
        eprintln!(
            "{case}: {} at {}: frame time jump {jump:?} ms",
            takeover.kind, takeover.at_ms
        );
    }
    let expected = if signaling == "ws" {
        Transport::Ws
    } else {
        Transport::Rest
    };
    let transports = setup
        .wait_for_sessions(2, "the first and the new session")
        .await;
    assert!(transports.iter().all(|t| *t == expected), "{transports:?}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_websocket_plays_on_after_the_gateway_drops_the_session() {
    live_recovers(
        "ws",
        xprotect_emulator::Fault::DropSessions,
        "reconnect-ws-drop",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_rest_plays_on_after_the_gateway_drops_the_session() {
    live_recovers(
        "rest",
        xprotect_emulator::Fault::DropSessions,
        "reconnect-rest-drop",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_websocket_plays_on_after_the_signaling_socket_closes() {
    live_recovers(
        "ws",
        xprotect_emulator::Fault::CloseWebSockets,
        "reconnect-ws-socket-closed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_over_rest_plays_on_after_media_stops() {
    live_recovers(
        "rest",
        xprotect_emulator::Fault::StopMedia,
        "reconnect-rest-media-stopped",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_resumes_just_after_the_last_frame_shown_when_the_session_is_dropped() {
    let mut setup = Setup::start_for_faults(EmulatorConfig::ephemeral()).await;
    let url = setup.fault_url();
    let fault = fault_json(&xprotect_emulator::Fault::DropSessions);
    let run = run_page(
        &setup.viewer,
        "reconnect-playback-drop",
        &logged_in(
            "rest",
            &[
                "--playback-time",
                "2025-01-15T12:00:30Z",
                // Without skip-gaps a stall counts only after 30 s (a gap sends nothing).
                "--skip-gaps",
                "--no-audio",
                "--fault-url",
                &url,
                "--fault",
                &fault,
                "--advance-ms",
                "2000",
            ],
        ),
    )
    .await;
    let player = assert_recovered(&run, "reconnect-playback-drop");
    let takeover = player.takeovers.first().expect("a take-over");
    assert_eq!(takeover.kind, "reconnect", "{takeover:?}");
    let last = takeover.last_shown_ms.expect("a frame was shown before");
    let jump = takeover.first_shown_ms - last;
    eprintln!("playback: first frame after the reconnect − last before: {jump} ms");
    // The gateway resumes at the last frame + 1 ms; the page shows nothing at or before it.
    assert!(
        jump > 0.0 && jump <= 1000.0,
        "playback jumped {jump} ms across the reconnect"
    );
    let times: Vec<f64> = run
        .samples
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|sample| sample.views.first().and_then(|view| view.frame_ms))
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[1] >= pair[0]),
        "the playback time went back: {times:?}"
    );
    for _ in 0..2 {
        assert_eq!(
            setup.wait_for_session("the playback sessions").await.mode,
            "playback"
        );
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grid_tile_reconnects_on_its_own() {
    let mut setup = Setup::start_for_faults(EmulatorConfig::ephemeral()).await;
    let url = setup.fault_url();
    let fault = fault_json(&xprotect_emulator::Fault::DropSessions);
    let run = run_page(
        &setup.viewer,
        "reconnect-grid",
        &logged_in(
            "ws",
            &[
                "--grid",
                "Front Door,Parking Lot",
                "--fault-url",
                &url,
                "--fault",
                &fault,
            ],
        ),
    )
    .await;
    assert_played(&run);
    assert_eq!(run.fault_status, Some(204));
    let tiles = &run.players.as_ref().expect("the players' reports").tiles;
    assert_eq!(tiles.len(), 2, "{tiles:?}");
    for tile in tiles {
        assert_eq!(tile.state, "playing", "{tile:?}");
        assert_eq!(tile.reconnects + tile.replacements, 1, "{tile:?}");
        assert_eq!(tile.sessions, 2, "one new session per tile: {tile:?}");
        eprintln!("grid: {} took {:?}", tile.name, tile.takeovers);
    }
    setup.wait_for_sessions(4, "two sessions per tile").await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_are_replaced_before_their_token_expires_and_video_plays_on() {
    // 20 s tokens enforced 2 s after expiry: the page refreshes every 5 s (the 60 s margin is
    // longer than the lifetime), and replaces its WebSocket session 5 s before the token it was
    // made with expires. Three replacements take the video past two expiries (20 s, 30 s).
    let mut setup = Setup::start_for_faults(EmulatorConfig {
        token_lifetime: Duration::from_secs(20),
        token_grace: Some(Duration::from_secs(2)),
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let run = run_page_for(
        &setup.viewer,
        "ws-token-replacement",
        &logged_in("ws", &["--no-audio", "--wait-replacements", "3"]),
        Duration::from_secs(75),
    )
    .await;
    assert_played(&run);
    let player = run
        .players
        .as_ref()
        .and_then(|players| players.main.as_ref())
        .expect("the main player's report");
    assert!(player.replacements >= 3, "{player:?}");
    assert_eq!(player.reconnects, 0, "no session was lost: {player:?}");
    for takeover in &player.takeovers {
        assert_eq!(takeover.kind, "replacement", "{takeover:?}");
        let jump = takeover
            .last_shown_ms
            .map(|last| takeover.first_shown_ms - last);
        eprintln!(
            "token replacement at {}: frame time jump {jump:?} ms",
            takeover.at_ms
        );
    }
    // Never 2 s without the frame time moving on.
    let samples = run.samples.as_deref().unwrap_or_default();
    let timeline: Vec<(i64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.at_ms, s.views.first()?.frame_ms?)))
        .collect();
    let span =
        timeline.last().map_or(0, |last| last.0) - timeline.first().map_or(0, |first| first.0);
    assert!(span >= 25_000, "watched only {span} ms");
    for (i, &(at, shown)) in timeline.iter().enumerate() {
        if let Some(&(later_at, later_shown)) = timeline[i..].iter().find(|(t, _)| *t >= at + 2000)
        {
            assert!(
                later_shown > shown,
                "the frame time stood still from {at} to {later_at}: {shown}"
            );
        }
    }
    let transports = setup
        .wait_for_sessions(4, "the first session and three replacements")
        .await;
    assert!(
        transports.iter().all(|t| *t == Transport::Ws),
        "{transports:?}"
    );
    setup.stop().await;
}
