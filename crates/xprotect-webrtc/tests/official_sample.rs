//! Milestone's official WebRTC sample page, unmodified, in Debian's Chromium against the emulator.
//!
//! Each case starts the emulator in this process, reproducing the gateway of the page's release
//! (`EmulatorConfig::release`, the CLI's `--release`), runs `browser/official-sample.mjs`
//! (Playwright driving `/usr/bin/chromium`), which serves one release of the sample from its own
//! loopback origin, fills the form like a user and waits until the `<video>` plays. The test then
//! checks the driver's JSON verdict and the emulator's journal: what the browser says it saw must
//! match what the emulator says happened.
//!
//! Beyond live video on every release: playback across a recording gap (speed 2, skipGaps), the
//! page's token refresh with a short token lifetime, the errors a user sees (wrong password, a
//! stream of another camera), release gating as the page meets it (a 2025 R1 page in WebSocket
//! mode against a 2024 R2 gateway) and, when the emulator draws its timecode strip, that the
//! frame time the page shows is the recording time drawn in the frame on screen. A CORS-off case
//! expects the page to be blocked, which proves the browser really obeys the emulator's CORS
//! answers (nothing in between fakes them).
//!
//! Every case launches its own Chromium (nextest runs each test in its own process, so a browser
//! cannot be shared across cases); launching and closing one costs about 0.45 s of the 2–3 s a
//! live case takes, about 10 s of the 22 cases' 75 test-seconds.
//!
//! Needs `node`, `npm ci --prefix browser` and `apt-get install chromium`; the test fails (never
//! skips) without them. The sample is read from `../shared/reference/milestone-webrtc-sample`
//! beside the repository, or from `XPROTECT_SAMPLE_ROOT`. Screenshots are kept in
//! `target/test-artifacts/official-sample/`.

mod common;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::JournalWatch;
use serde::Deserialize;
use xprotect_emulator::{
    DEFAULT_PASSWORD, DEFAULT_USER, EmulatorConfig, JournalEvent, Release, RunningEmulator,
    Transport,
};

/// What the driver may spend on one page run (launch, login, signaling, playing, PTZ).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(30);
/// The driver's own watchdog adds 15 s to its timeout; this covers that and node's start-up.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Every distinct frame-time label shown while watching (`--until-frame-time`).
    #[serde(default)]
    frame_times: Option<Vec<LabelSeen>>,
    /// The video after the page logged a given text (`--wait-console`).
    #[serde(default)]
    after_wait: Option<AfterWait>,
    /// Canvas grabs of the <video> with the frame time shown at that moment (`--grab-frames`).
    #[serde(default)]
    grabs: Option<Vec<Grab>>,
    /// A microphone session's playing element (`--audio-only`).
    #[serde(default)]
    audio_only: Option<AudioOnly>,
    /// What an expected failure showed (`--expect-failure`).
    #[serde(default)]
    failure: Option<FailureSeen>,
    #[serde(default)]
    console: Vec<String>,
    http_errors: Vec<String>,
    #[serde(default)]
    http_error_bodies: Vec<String>,
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct LabelSeen {
    label: String,
    at_ms: u64,
    current_time_s: f64,
}

#[derive(Debug, Deserialize)]
struct AfterWait {
    console_at_ms: u64,
    current_time_before_s: f64,
    current_time_after_s: f64,
}

#[derive(Deserialize)]
struct Grab {
    label: String,
    frame_date_ms: Option<i64>,
    frame_start_ms: Option<i64>,
    width: usize,
    height: usize,
    rgba_base64: String,
}

impl std::fmt::Debug for Grab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grab")
            .field("label", &self.label)
            .field("frame_date_ms", &self.frame_date_ms)
            .field("frame_start_ms", &self.frame_start_ms)
            .field("size", &(self.width, self.height))
            .field("rgba_base64_chars", &self.rgba_base64.len())
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct AudioOnly {
    audio_tracks: usize,
    video_tracks: usize,
    receiver_kinds: Vec<String>,
    current_time_s: f64,
    label: Option<String>,
    page_now_ms: i64,
}

#[derive(Debug, Deserialize)]
struct FailureSeen {
    found: Vec<String>,
    missing: Vec<String>,
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

/// The emulator as the gateway of `release` (what `--release` selects on the command line), and
/// its journal watched from before the page starts.
async fn start_gateway(release: &str) -> (RunningEmulator, JournalWatch) {
    start_gateway_with(config_for(release)).await
}

fn config_for(release: &str) -> EmulatorConfig {
    EmulatorConfig {
        release: release.parse::<Release>().expect("a known release"),
        ..EmulatorConfig::ephemeral()
    }
}

async fn start_gateway_with(config: EmulatorConfig) -> (RunningEmulator, JournalWatch) {
    let emulator = common::start_emulator(config).await;
    let journal = JournalWatch::new(&emulator);
    (emulator, journal)
}

fn camera() -> xprotect_emulator::camera::CameraConfig {
    EmulatorConfig::ephemeral().cameras.remove(0)
}

/// Runs the driver once and returns its verdict (whatever it says; callers assert). `extra` are
/// scenario flags of the driver (`--ptz`, `--playback-time …`, `--expect-failure …`).
async fn run_page(
    emulator: &RunningEmulator,
    release: &str,
    signaling: Signaling,
    extra: &[&str],
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
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
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
    // Grabs are megabytes of base64; the log gets the verdict without them.
    let shown = if line.len() > 20_000 {
        format!(
            "{}… ({} bytes)",
            line.chars().take(20_000).collect::<String>(),
            line.len()
        )
    } else {
        line.to_owned()
    };
    eprintln!("{release} {}: {shown}", signaling.arg());
    let run: PageRun = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("driver JSON does not parse ({error}): {line}"));
    assert_eq!(
        output.status.success(),
        run.ok,
        "the exit status must agree with the verdict; stderr:\n{stderr}"
    );
    run
}

/// What the journal's `session_created` entry says about the session.
struct CreatedSession {
    session: String,
    device: String,
    transport: Transport,
    mode: &'static str,
    playback: Option<serde_json::Value>,
    include_audio: bool,
}

/// Waits for the journal's (first) `session_created` entry.
async fn wait_for_session_created(journal: &mut JournalWatch) -> CreatedSession {
    journal
        .wait_for_map("session_created", |event| match event {
            JournalEvent::SessionCreated {
                session,
                device,
                transport,
                mode,
                playback,
                include_audio,
                ..
            } => Some(CreatedSession {
                session: session.clone(),
                device: device.clone(),
                transport: *transport,
                mode,
                playback: playback.clone(),
                include_audio: *include_audio,
            }),
            _ => None,
        })
        .await
}

/// Asserts that the page's failure left no session behind, and shuts the emulator down.
async fn assert_no_session_and_shut_down(emulator: RunningEmulator, mut journal: JournalWatch) {
    assert_eq!(journal.sessions_created(), 0);
    emulator.shutdown().await;
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
    let CreatedSession {
        session,
        device,
        transport: created_over,
        mode,
        ..
    } = wait_for_session_created(journal).await;
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

/// One test per `name: release, signaling;` line, each running `case(release, signaling)`: the
/// same scenario against every release and signaling that should pass it.
macro_rules! page_cases {
    ($case:ident; $($name:ident: $release:literal, $signaling:ident;)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $case($release, Signaling::$signaling).await;
            }
        )+
    };
}

async fn live_case(release: &str, signaling: Signaling) {
    let (emulator, mut journal) = start_gateway(release).await;
    let run = run_page(&emulator, release, signaling, &[], DRIVER_TIMEOUT).await;
    assert_live_session(&run, &mut journal, release, signaling).await;
    emulator.shutdown().await;
}

page_cases! {
    live_case;
    rest_live_2023r1: "2023R1", Rest;
    rest_live_2023r3: "2023R3", Rest;
    rest_live_2024r1: "2024R1", Rest;
    rest_live_2024r2: "2024R2", Rest;
    rest_live_2025r1: "2025R1", Rest;
    rest_live_2025r2: "2025R2", Rest;
    websocket_live_2025r1: "2025R1", WebSocket;
    websocket_live_2025r2: "2025R2", WebSocket;
}

/// The 2025R2 page's PTZ arrows and aux buttons reach the emulator over the `commands` channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_and_aux_2025r2_reach_the_journal() {
    let (emulator, mut journal) = start_gateway("2025R2").await;
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::WebSocket,
        &["--ptz"],
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
    let (emulator, mut journal) = start_gateway_with(EmulatorConfig {
        cors: false,
        ..config_for("2025R2")
    })
    .await;
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &[],
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
    assert_eq!(
        journal.sessions_created(),
        0,
        "no session may be created without CORS"
    );
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Playback across a recording gap.

/// The default timeline records 12:00:00–12:05:00 and again from 12:05:10 (a 10 s gap).
const GAP_START: &str = "2025-01-15T12:05:00Z";
const GAP_END: &str = "2025-01-15T12:05:10Z";
/// Four recorded seconds before the gap: 2 s of wall time at speed 2.
const PLAYBACK_FROM: &str = "2025-01-15T12:04:56Z";
/// Watch until two recorded seconds after the gap are on screen.
const PLAYBACK_WATCH_UNTIL: &str = "2025-01-15T12:05:12Z";

fn unix_ms(rfc3339: &str) -> i64 {
    let time = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 constant");
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).expect("a time in range")
}

/// The page's frame-time label, `MM/DD hh:mm:ss` in UTC (no year, whole seconds), as Unix ms.
fn label_unix_ms(label: &str, year: i32) -> Option<i64> {
    let (date, clock) = label.trim().split_once(' ')?;
    let (month, day) = date.split_once('/')?;
    let mut hms = clock.split(':').map(str::parse::<u8>);
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day.parse().ok()?).ok()?;
    let time = date.with_hms(hour, minute, second).ok()?.assume_utc();
    time.unix_timestamp().checked_mul(1000)
}

async fn playback_gap_case(release: &str, signaling: Signaling) {
    let (emulator, mut journal) = start_gateway(release).await;
    let run = run_page(
        &emulator,
        release,
        signaling,
        &[
            "--playback-time",
            PLAYBACK_FROM,
            "--speed",
            "2",
            "--skip-gaps",
            "--until-frame-time",
            PLAYBACK_WATCH_UNTIL,
        ],
        DRIVER_TIMEOUT,
    )
    .await;
    assert!(
        run.ok,
        "{release}/{}: playback failed: {run:#?}",
        signaling.arg()
    );
    assert!(run.http_errors.is_empty(), "{:?}", run.http_errors);
    let labels = run.frame_times.as_ref().expect("the driver reports labels");
    let times: Vec<(i64, &LabelSeen)> = labels
        .iter()
        .map(|seen| {
            let time = label_unix_ms(&seen.label, 2025)
                .unwrap_or_else(|| panic!("the page shows an unreadable time {:?}", seen.label));
            (time, seen)
        })
        .collect();
    let (from, gap_start, gap_end) = (unix_ms(PLAYBACK_FROM), unix_ms(GAP_START), unix_ms(GAP_END));
    assert!(
        times.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "the shown time must never go back: {labels:#?}"
    );
    assert!(
        times.iter().any(|(t, _)| (from..gap_start).contains(t)),
        "no frame from before the gap was shown: {labels:#?}"
    );
    assert!(
        times.iter().any(|(t, _)| *t >= gap_end),
        "no frame from after the gap was shown: {labels:#?}"
    );
    assert!(
        !times.iter().any(|(t, _)| (gap_start..gap_end).contains(t)),
        "the page showed a time inside the gap (skipGaps jumps over it): {labels:#?}"
    );
    // Speed 2: between two label changes before the gap (both on whole-second boundaries), the
    // recording time advances twice as fast as the page's clock. A frame of jitter either side
    // (40 ms at 25 fps over a 1–2 s span) keeps it well within 1.5–2.7.
    let before_gap: Vec<_> = times
        .iter()
        .filter(|(t, _)| (from..gap_start).contains(t))
        .skip(1)
        .collect();
    if let (Some(first), Some(last)) = (before_gap.first(), before_gap.last())
        && last.0 - first.0 >= 2000
    {
        let wall = (last.1.at_ms - first.1.at_ms) as f64;
        let rate = (last.0 - first.0) as f64 / wall;
        eprintln!("playback rate seen by the page: {rate:.2}x");
        assert!(
            (1.5..=2.7).contains(&rate),
            "speed 2 must advance the recording time twice as fast as wall time, saw {rate:.2}x: {labels:#?}"
        );
    }
    let last = labels.last().expect("labels");
    assert!(
        last.current_time_s > labels[0].current_time_s,
        "the <video> must have advanced: {labels:#?}"
    );

    let CreatedSession {
        mode,
        playback,
        transport,
        ..
    } = wait_for_session_created(&mut journal).await;
    assert_eq!(mode, "playback");
    assert_eq!(transport, signaling.transport());
    let playback = playback.expect("playback details in the journal");
    assert_eq!(playback["speed"], 2.0, "{playback}");
    assert_eq!(playback["skipGaps"], true, "{playback}");
    assert_eq!(playback["start"], "2025-01-15T12:04:56.000Z", "{playback}");
    emulator.shutdown().await;
}

page_cases! {
    playback_gap_case;
    rest_playback_across_a_gap_2023r3: "2023R3", Rest;
    rest_playback_across_a_gap_2025r2: "2025R2", Rest;
    websocket_playback_across_a_gap_2025r1: "2025R1", WebSocket;
}

// ---------------------------------------------------------------------------------------------
// Token refresh.

/// The sample refreshes `expires_in − 60` s after each token. 66 s makes that 6 s: the session
/// is up by then (about 1 s here) and the test stays short. Anything up to 60 s arms a timer of
/// zero or less, and since every new token does the same, the page refreshes in a tight loop.
const SHORT_TOKEN_LIFETIME: Duration = Duration::from_secs(66);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refresh_keeps_the_2025r2_page_playing() {
    let (emulator, mut journal) = start_gateway_with(EmulatorConfig {
        token_lifetime: SHORT_TOKEN_LIFETIME,
        ..config_for("2025R2")
    })
    .await;
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &["--wait-console", "token updated successfully"],
        Duration::from_secs(40),
    )
    .await;
    let session = assert_live_session(&run, &mut journal, "2025R2", Signaling::Rest).await;
    let after = run
        .after_wait
        .as_ref()
        .expect("the driver waited for the refresh");
    // The refresh is the page's timer at expires_in − 60 s, not something done at login.
    assert!(
        after.console_at_ms >= 2000,
        "the refresh came too early to be the page's timer: {after:?}"
    );
    assert!(
        after.current_time_after_s >= after.current_time_before_s + 2.0,
        "the video must keep playing after the refresh: {after:?}"
    );
    journal
        .wait_for("token_issued by the refresh_token grant", |event| {
            matches!(event, JournalEvent::TokenIssued { grant, client_id, .. }
                if grant == "refresh_token" && client_id == "VmsClient")
        })
        .await;
    journal
        .wait_for("session_token_updated", |event| {
            matches!(event, JournalEvent::SessionTokenUpdated { session: s } if *s == session)
        })
        .await;
    let refusals: Vec<_> = journal
        .drain()
        .iter()
        .filter(|event| matches!(event, JournalEvent::HttpRejected { .. }))
        .cloned()
        .collect();
    assert!(refusals.is_empty(), "{refusals:#?}");
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Errors the page shows, and release gating as the page meets it.

/// Expected failures are quick: the page fails within a second of Start.
const FAILURE_TIMEOUT: Duration = Duration::from_secs(10);

async fn expect_page_failure(
    emulator: &RunningEmulator,
    release: &str,
    signaling: Signaling,
    extra: &[&str],
    expected: &[&str],
) -> PageRun {
    let mut args: Vec<&str> = extra.to_vec();
    for text in expected {
        args.extend(["--expect-failure", text]);
    }
    let run = run_page(emulator, release, signaling, &args, FAILURE_TIMEOUT).await;
    let failure = run
        .failure
        .as_ref()
        .expect("the driver reports the failure");
    assert!(
        failure.missing.is_empty(),
        "{release}/{}: the page did not show {:?}: {run:#?}",
        signaling.arg(),
        failure.missing
    );
    assert_eq!(run.video_width, 0, "the page must not play: {run:#?}");
    assert!(run.ok, "{run:#?}");
    eprintln!(
        "shown: {:?}; error bodies the browser received: {:?}",
        failure.found, run.http_error_bodies
    );
    run
}

/// The page shows the identity provider's `error_description` for a failed login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_shows_the_idp_error_2025r2() {
    let (emulator, mut journal) = start_gateway("2025R2").await;
    // The driver's last --password wins.
    expect_page_failure(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &["--password", "not-the-password"],
        &["Failed to retrieve token", "invalid_username_or_password"],
    )
    .await;
    journal
        .wait_for("token_refused", |event| {
            matches!(event, JournalEvent::TokenRefused { .. })
        })
        .await;
    assert_no_session_and_shut_down(emulator, journal).await;
}

/// A GUID that is no stream of the camera (e.g. a stream of another camera pasted by mistake).
const FOREIGN_STREAM: &str = "0D1E2F3A-4B5C-4D6E-8F70-8192A3B4C5D6";

/// REST: the emulator's 400 reaches the page. The sample throws `Error(body)` with the parsed
/// JSON object, so its log reads `Failed to initiate WebRTC session - Error: [object Object]`;
/// the message itself is only in the response the browser received (its network panel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stream_400_reaches_the_rest_page_2025r2() {
    let (emulator, mut journal) = start_gateway("2025R2").await;
    let run = expect_page_failure(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &["--stream", FOREIGN_STREAM],
        &["Failed to initiate WebRTC session", "has no stream"],
    )
    .await;
    assert!(
        run.http_errors
            .iter()
            .any(|e| e.starts_with("POST ") && e.ends_with("/Session -> 400")),
        "{:?}",
        run.http_errors
    );
    assert!(
        run.http_error_bodies
            .iter()
            .any(|body| body.contains(r#""field":"streamId""#)),
        "the browser must have received the emulator's JSON error naming streamId: {:?}",
        run.http_error_bodies
    );
    journal
        .wait_for("http_rejected 400 streamId", |event| {
            matches!(event, JournalEvent::HttpRejected { status: 400, field: Some(f), .. } if f == "streamId")
        })
        .await;
    assert_no_session_and_shut_down(emulator, journal).await;
}

/// WebSocket: the emulator's `error` notification is shown in the page's log, message and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stream_error_is_shown_by_the_websocket_page_2025r2() {
    let (emulator, journal) = start_gateway("2025R2").await;
    expect_page_failure(
        &emulator,
        "2025R2",
        Signaling::WebSocket,
        &["--stream", FOREIGN_STREAM],
        &["Server error: streamID:", "has no stream"],
    )
    .await;
    assert_no_session_and_shut_down(emulator, journal).await;
}

/// A 2025 R1 page in WebSocket mode against a 2024 R2 gateway: there is no WebSocket endpoint,
/// the handshake gets a 404, and the page (which has no socket error handler) never plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_page_2025r1_fails_against_a_2024r2_gateway() {
    let (emulator, mut journal) = start_gateway("2024R2").await;
    let run = expect_page_failure(
        &emulator,
        "2025R1",
        Signaling::WebSocket,
        &[],
        &["Unexpected response code: 404"],
    )
    .await;
    // Chromium reports the failed handshake on the page's console; the page itself says nothing.
    assert!(
        run.console
            .iter()
            .any(|line| line.contains("WebSocket connection to") && line.contains("/ws/webrtc/v1")),
        "{:?}",
        run.console
    );
    journal
        .wait_for("http_rejected 404 for the WebSocket path", |event| {
            matches!(event, JournalEvent::HttpRejected { status: 404, path, .. }
                if path.to_ascii_lowercase().contains("/ws/webrtc/v1"))
        })
        .await;
    assert_no_session_and_shut_down(emulator, journal).await;
}

/// The 2025 R2 page names the camera only as `deviceId`, which a 2025 R1 gateway does not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_page_2025r2_is_refused_by_a_2025r1_gateway_naming_camera_id() {
    let (emulator, mut journal) = start_gateway("2025R1").await;
    expect_page_failure(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &[],
        &["Failed to initiate WebRTC session", "cameraId"],
    )
    .await;
    journal
        .wait_for("http_rejected 400 cameraId", |event| {
            matches!(event, JournalEvent::HttpRejected { status: 400, field: Some(f), .. } if f == "cameraId")
        })
        .await;
    assert_no_session_and_shut_down(emulator, journal).await;
}

// ---------------------------------------------------------------------------------------------
// The frame time the page shows against the recording time drawn in the frame on screen.

/// How far the page's frame time may be from the time drawn in the frame it shows, once the
/// page's own start reference is accounted for: two frames at the cameras' 25 fps. The page
/// reads its time in an animation frame from `getSynchronizationSources()[0].rtpTimestamp`,
/// Chromium's record of the last frame handed to the renderer, while the canvas gets the frame
/// the compositor shows: when a new frame arrives between the two, the page is one frame ahead.
/// Measured (36 grabs, live and playback, on a loaded 2-core machine): 33 exact, 3 at +40 ms,
/// none behind. The second frame of margin is for slower CI machines.
const FRAME_TIME_TOLERANCE_MS: i64 = 80;

/// Grabs frames off the 2025 R2 page and compares each grab's shown time with the drawn one.
/// `playback`: from a recorded time (the page's reference is the requested time, so the shown
/// time must equal the drawn time); live: the page's reference is `Date.now()` at Start, the
/// stream's is its first frame, so the shown time trails the drawn one by the session set-up
/// time, which the journal's `first_frame_sent` and the page's `frameStartTime` give exactly.
async fn frame_time_case(playback: Option<&str>) {
    let (emulator, mut journal) = start_gateway("2025R2").await;
    // Without audio the page's first receiver is the video one, so it shows the video clock.
    let mut args = vec![
        "--no-audio",
        "--grab-frames",
        "6",
        "--grab-interval-ms",
        "150",
    ];
    if let Some(from) = playback {
        args.extend(["--playback-time", from]);
    }
    let run = run_page(&emulator, "2025R2", Signaling::Rest, &args, DRIVER_TIMEOUT).await;
    assert!(run.ok, "the page did not play: {run:#?}");
    let first = journal
        .wait_for("first_frame_sent", |event| {
            matches!(event, JournalEvent::FirstFrameSent { .. })
        })
        .await;
    let JournalEvent::FirstFrameSent {
        rtp,
        recording_unix_ms,
        ..
    } = first
    else {
        unreachable!("matched above")
    };
    let stream_reference_ms = recording_unix_ms - i64::from(rtp);
    let grabs = run.grabs.as_ref().expect("the driver grabbed frames");
    let mut diffs = Vec::new();
    let mut raw_offsets = Vec::new();
    for grab in grabs {
        let rgba = base64::engine::general_purpose::STANDARD
            .decode(&grab.rgba_base64)
            .expect("the driver sends standard base64");
        assert_eq!(rgba.len(), grab.width * grab.height * 4, "{grab:?}");
        let drawn =
            xprotect_emulator::camera::decode_timecode_from_rgba(&rgba, grab.width, grab.height)
                .unwrap_or_else(|| {
                    panic!("no readable timecode strip in the browser's frame: {grab:?}")
                });
        let shown = grab.frame_date_ms.expect("the 2025R2 page keeps frameDate");
        let year = time::OffsetDateTime::from_unix_timestamp(shown.div_euclid(1000))
            .expect("a time in range")
            .year();
        assert_eq!(
            label_unix_ms(&grab.label, year),
            Some(shown - shown.rem_euclid(1000)),
            "the label is the page's frameDate to the second: {grab:?}"
        );
        let page_reference = grab.frame_start_ms.expect("the page's frameStartTime");
        let expected_offset = match playback {
            Some(from) => {
                assert_eq!(page_reference, unix_ms(from), "playback reference");
                0
            }
            None => page_reference - stream_reference_ms,
        };
        raw_offsets.push(shown - drawn);
        diffs.push(shown - drawn - expected_offset);
    }
    eprintln!(
        "{}: shown − drawn − reference offset, per grab (ms): diffs {diffs:?}; raw shown − drawn {raw_offsets:?}",
        if playback.is_some() {
            "playback"
        } else {
            "live"
        }
    );
    assert!(
        diffs
            .iter()
            .all(|diff| diff.abs() <= FRAME_TIME_TOLERANCE_MS),
        "the page's frame time is more than {FRAME_TIME_TOLERANCE_MS} ms from the time drawn in the frame: {diffs:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_frame_time_is_the_drawn_time_live_2025r2() {
    frame_time_case(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_frame_time_is_the_drawn_time_playback_2025r2() {
    frame_time_case(Some("2025-01-15T12:01:00Z")).await;
}

// ---------------------------------------------------------------------------------------------
// A microphone as the device (2025 R2).

/// The 2025 R2 page with Front Door's microphone as its device: an audio-only session whose
/// clock advances in the <video> element, and whose frame time (the page divides the audio RTP
/// timestamp by 8) is the live time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microphone_device_plays_audio_only_2025r2() {
    let (emulator, mut journal) = start_gateway("2025R2").await;
    let microphone = xprotect_emulator::devices::FRONT_DOOR_MICROPHONE.to_string();
    // The driver's last --camera wins: the page's DeviceId field gets the microphone.
    let run = run_page(
        &emulator,
        "2025R2",
        Signaling::Rest,
        &["--camera", &microphone, "--audio-only"],
        DRIVER_TIMEOUT,
    )
    .await;
    assert!(run.ok, "the microphone session did not play: {run:#?}");
    let audio = run
        .audio_only
        .as_ref()
        .expect("the driver reports the audio session");
    assert_eq!(
        (audio.audio_tracks, audio.video_tracks),
        (1, 0),
        "{audio:?}"
    );
    assert!(
        audio.receiver_kinds.iter().all(|kind| kind == "audio"),
        "{audio:?}"
    );
    assert!(audio.current_time_s > 0.5, "{audio:?}");
    let label = audio.label.as_deref().expect("a frame-time label");
    let year = time::OffsetDateTime::from_unix_timestamp(audio.page_now_ms.div_euclid(1000))
        .expect("now is in range")
        .year();
    let shown = label_unix_ms(label, year)
        .unwrap_or_else(|| panic!("the page shows an unreadable time {label:?}"));
    // Live audio time: the page's start reference plus RTP/8, a few seconds at most from now.
    assert!(
        (shown - audio.page_now_ms).abs() < 5_000,
        "the audio time shown ({label}) is not the live time: {audio:?}"
    );
    let CreatedSession {
        session,
        device,
        include_audio,
        ..
    } = wait_for_session_created(&mut journal).await;
    assert_eq!(device.to_ascii_lowercase(), microphone.to_ascii_lowercase());
    assert!(include_audio);
    journal
        .wait_for("first_audio_sent", |event| {
            matches!(event, JournalEvent::FirstAudioSent { session: s, .. } if *s == session)
        })
        .await;
    emulator.shutdown().await;
}
