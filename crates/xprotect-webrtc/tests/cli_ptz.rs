//! PTZ and aux over the data channel, end to end: the real binary (`ptz`, `aux`,
//! `record --commands -`) and the library's `Session::ptz_move` against the real emulator,
//! checked in the emulator's journal file.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;
use xprotect_client::commands::PtzDirection;
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{Session, SessionEvent, SignalingKind};
use xprotect_emulator::{EmulatorConfig, RunningEmulator};

/// Bound on one CLI run: login, session, channel, send, acknowledgement, close.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on a journal line appearing after the event that writes it.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the journal file is re-read while waiting (a bounded poll of a file another task
/// appends to; there is no event to wait on across the file).
const JOURNAL_POLL: Duration = Duration::from_millis(50);

/// An emulator that appends its journal to a file in a temporary directory.
struct Gateway {
    emulator: RunningEmulator,
    journal: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.jsonl");
        let emulator = common::start_emulator(EmulatorConfig {
            journal: Some(journal.clone()),
            ..EmulatorConfig::ephemeral()
        })
        .await;
        Self {
            emulator,
            journal,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.emulator.gateway_url()
    }

    /// The journal's entries of this `event` kind, once `done` holds for them; panics with
    /// what was seen after [`JOURNAL_TIMEOUT`].
    async fn wait_for(&self, event: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + JOURNAL_TIMEOUT;
        loop {
            let entries = journal_entries(&self.journal, event);
            if done(&entries) {
                return entries;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the journal did not get the expected `{event}` entries within {JOURNAL_TIMEOUT:?}; it has:\n{}",
                    std::fs::read_to_string(&self.journal).unwrap_or_default()
                );
            }
            tokio::time::sleep(JOURNAL_POLL).await;
        }
    }

    /// Waits for `count` data-channel messages; returns them in order.
    async fn messages(&self, count: usize) -> Vec<Value> {
        self.wait_for("data_channel_message", |m| m.len() >= count)
            .await
    }
}

/// Every complete line of the journal with this `event`. A line being written may be partial:
/// it is skipped and read whole next time.
fn journal_entries(path: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["event"] == event)
        .collect()
}

/// The binary with the connection flags, reading the password from stdin.
fn cli(gateway: &str, subcommand: &str) -> Command {
    let mut command = common::cli(subcommand, gateway);
    command.args([
        "--bind",
        "127.0.0.1",
        "--camera",
        &common::first_camera().to_string(),
    ]);
    command
}

/// Runs it with the password on stdin; asserts success; returns stdout.
async fn run_ok(command: Command) -> String {
    let output = common::run_with_password(command, RUN_TIMEOUT).await;
    common::assert_success(&output);
    String::from_utf8(output.stdout).unwrap()
}

/// A parsed message's text (the JSON the client sent).
fn text(message: &Value) -> Value {
    serde_json::from_str(message["text"].as_str().expect("a text field"))
        .expect("the client sends JSON")
}

/// Which envelope a sent message used.
fn envelope(message: &Value) -> &'static str {
    let text = text(message);
    match (text.get("ApiVersion"), text.get("jsonrpc")) {
        (Some(v), None) if v == "1.0" => "api-version",
        (None, Some(v)) if v == "2.0" => "jsonrpc",
        _ => panic!("no single known envelope in {text}"),
    }
}

/// Each message's command as the emulator understood it, and the envelope it came in.
fn commands_and_envelopes(messages: &[Value]) -> Vec<(&str, &'static str)> {
    messages
        .iter()
        .map(|m| (m["command"].as_str().unwrap(), envelope(m)))
        .collect()
}

/// The emulator's PTZ state entries (`ptz_moved`, `aux_set`), where this emulator journals
/// them, must agree with the messages. They are read once every session that sent a message has
/// been journalled as closed, so that none of them can still be on its way to the file.
async fn also_in_ptz_state(gateway: &Gateway, event: &str, expected: usize) {
    let sessions: std::collections::HashSet<String> =
        journal_entries(&gateway.journal, "data_channel_message")
            .iter()
            .filter_map(|m| m["session"].as_str().map(str::to_owned))
            .collect();
    gateway
        .wait_for("closed", |closed| {
            sessions
                .iter()
                .all(|s| closed.iter().any(|c| c["session"].as_str() == Some(s)))
        })
        .await;
    let entries = journal_entries(&gateway.journal, event);
    if !entries.is_empty() {
        assert_eq!(entries.len(), expected, "{event}: {entries:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_left_goes_out_on_the_commands_channel_in_the_sample_envelope() {
    let gateway = Gateway::start().await;
    let mut command = cli(&gateway.url(), "ptz");
    command.args(["--move", "left"]);
    let stdout = run_ok(command).await;

    let messages = gateway.messages(1).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let message = &messages[0];
    assert_eq!(message["command"], "PtzMove(Left)");
    assert!(message.get("error").is_none(), "{message}");
    let sent = text(message);
    assert_eq!(sent["ApiVersion"], "1.0");
    assert_eq!(sent["type"], "request");
    assert_eq!(sent["method"], "ptzMove");
    assert_eq!(sent["params"]["direction"], "left");
    // stdout is exactly what went over the wire.
    assert_eq!(stdout.trim_end(), message["text"].as_str().unwrap());

    let opened = gateway
        .wait_for("data_channel_open", |o| !o.is_empty())
        .await;
    assert_eq!(opened[0]["label"], "commands");
    assert_eq!(opened[0]["protocol"], "videoos-commands");
    assert_eq!(opened[0]["session"], message["session"]);
    // The session was closed, not abandoned.
    gateway
        .wait_for("closed", |c| {
            c.iter().any(|c| c["session"] == message["session"])
        })
        .await;
    also_in_ptz_state(&gateway, "ptz_moved", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_direction_in_both_envelopes() {
    let gateway = Gateway::start().await;
    let directions = [
        ("up", "Up"),
        ("down", "Down"),
        ("left", "Left"),
        ("right", "Right"),
        ("upLeft", "UpLeft"),
        ("upRight", "UpRight"),
        ("downLeft", "DownLeft"),
        ("downRight", "DownRight"),
        ("home", "Home"),
    ];
    // Alternate the envelopes, so each one carries four or five of the directions.
    let runs: Vec<_> = directions
        .iter()
        .zip(["api-version", "jsonrpc"].into_iter().cycle())
        .collect();
    // Three processes at a time: each is a whole login and session, and the machine is small.
    for batch in runs.chunks(3) {
        futures_util::future::join_all(batch.iter().map(|((flag, _), envelope)| {
            let mut command = cli(&gateway.url(), "ptz");
            command.args(["--move", flag, "--envelope", envelope]);
            run_ok(command)
        }))
        .await;
    }
    let mut expected: Vec<_> = runs
        .iter()
        .map(|((flag, debug), envelope)| (flag.to_string(), format!("PtzMove({debug})"), *envelope))
        .collect();
    expected.sort();

    let messages = gateway.messages(directions.len()).await;
    let mut seen: Vec<_> = messages
        .iter()
        .map(|m| {
            (
                text(m)["params"]["direction"].as_str().unwrap().to_owned(),
                m["command"].as_str().unwrap().to_owned(),
                envelope(m),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, expected);
    also_in_ptz_state(&gateway, "ptz_moved", directions.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_sends_every_step_and_aux_switches_on_and_off() {
    let gateway = Gateway::start().await;
    let mut ptz = cli(&gateway.url(), "ptz");
    ptz.args([
        "--move",
        "downRight",
        "--repeat",
        "3",
        "--envelope",
        "jsonrpc",
    ]);
    let stdout = run_ok(ptz).await;
    assert_eq!(stdout.lines().count(), 3, "{stdout}");

    let mut on = cli(&gateway.url(), "aux");
    on.args(["--number", "2", "--on"]);
    let stdout = run_ok(on).await;
    assert!(stdout.contains(r#""auxNumber":"2""#), "{stdout}");

    let mut off = cli(&gateway.url(), "aux");
    off.args(["--number", "4", "--off", "--envelope", "jsonrpc"]);
    run_ok(off).await;

    let messages = gateway.messages(5).await;
    let commands = commands_and_envelopes(&messages);
    assert_eq!(
        commands,
        [
            ("PtzMove(DownRight)", "jsonrpc"),
            ("PtzMove(DownRight)", "jsonrpc"),
            ("PtzMove(DownRight)", "jsonrpc"),
            ("SetAux { number: 2, on: true }", "api-version"),
            ("SetAux { number: 4, on: false }", "jsonrpc"),
        ]
    );
    // The three steps are one session; the aux calls one session each.
    let sessions: std::collections::HashSet<_> =
        messages.iter().map(|m| m["session"].to_string()).collect();
    assert_eq!(sessions.len(), 3);
    // auxNumber is a string on the wire, as in the sample.
    let aux = text(&messages[3]);
    assert_eq!(aux["method"], "setAux");
    assert_eq!(aux["params"]["auxNumber"], "2");
    assert_eq!(aux["params"]["on"], true);
    also_in_ptz_state(&gateway, "aux_set", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_sends_piped_commands_and_skips_bad_lines() {
    let gateway = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("ptz.mp4");
    let mut command = cli(&gateway.url(), "record");
    command
        .args(["--duration", "3s", "--commands", "-", "-o"])
        .arg(&mp4);
    let input = concat!(
        "admin\n",
        "{\"ptz\":\"left\"}\n",
        "not json\n",
        "\n",
        "# a comment\n",
        "{\"aux\":2,\"on\":true}\n",
        "{\"ptz\":\"sideways\"}\n",
        "{\"ptz\":\"up\",\"envelope\":\"jsonrpc\"}\n",
        "{\"ApiVersion\":\"1.0\",\"type\":\"request\",\"method\":\"setAux\",\"params\":{\"on\":false,\"auxNumber\":\"2\"}}\n",
    );
    let output = common::run_with_stdin(command, input, RUN_TIMEOUT).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Lines count from the first command line (the password line is not one).
    assert!(
        stderr.contains("--commands line 2 skipped: not JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--commands line 6 skipped") && stderr.contains("`sideways`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("frames:"),
        "the recording went on: {stderr}"
    );

    let messages = gateway.messages(4).await;
    let commands = commands_and_envelopes(&messages);
    assert_eq!(
        commands,
        [
            ("PtzMove(Left)", "api-version"),
            ("SetAux { number: 2, on: true }", "api-version"),
            ("PtzMove(Up)", "jsonrpc"),
            ("SetAux { number: 2, on: false }", "api-version"),
        ]
    );
    // The raw wire line went out exactly as written.
    assert_eq!(
        messages[3]["text"],
        r#"{"ApiVersion":"1.0","type":"request","method":"setAux","params":{"on":false,"auxNumber":"2"}}"#
    );
    let (codec, frames, _) = common::ffprobe(&mp4);
    assert_eq!(codec, "h264");
    assert!(frames >= 50, "3 s at 25 fps, got {frames}");
    also_in_ptz_state(&gateway, "ptz_moved", 2).await;
}

/// The library call made right after `Session::start`, long before the channel exists, waits
/// for it instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ptz_move_waits_for_the_channel() {
    let gateway = Gateway::start().await;
    let (client_gateway, tokens) = common::login(&gateway.emulator).await;
    let mut session = Session::start(
        client_gateway,
        &tokens,
        common::live_options(SignalingKind::WebSocket, DtlsRole::Passive),
    );
    let commands = session.command_sender();
    let sending = tokio::spawn(async move {
        let text = commands.ptz_move(PtzDirection::Home).await?;
        commands.set_aux(1, true).await?;
        commands.flush(Duration::from_secs(5)).await?;
        Ok::<_, xprotect_client::commands::CommandSendError>(text)
    });
    // The session's events must be consumed meanwhile, as in any real use.
    let mut sending = std::pin::pin!(sending);
    let mut ready = false;
    let text = loop {
        tokio::select! {
            sent = &mut sending => break sent.unwrap().expect("sent and acknowledged"),
            event = tokio::time::timeout(RUN_TIMEOUT, session.next_event()) => {
                match event.expect("session events keep coming").expect("the session runs") {
                    SessionEvent::CommandsReady => ready = true,
                    SessionEvent::Ended(result) => panic!("the session ended: {result:?}"),
                    _ => {}
                }
            }
        }
    };
    assert!(ready, "sent only after the channel opened");
    let messages = gateway.messages(2).await;
    assert_eq!(messages[0]["text"].as_str(), Some(text.as_str()));
    assert_eq!(messages[0]["command"], "PtzMove(Home)");
    assert_eq!(messages[1]["command"], "SetAux { number: 1, on: true }");
    session.close().await;
}

/// A commands file that cannot be opened stops `record` before it logs in, naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_commands_file_fails_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    // Nothing listens on port 9 (discard): reaching the network would fail differently.
    let mut command = cli("http://127.0.0.1:9/api", "record");
    command
        .args(["-o", "never.mp4", "--commands"])
        .arg(&missing);
    let output = common::run_with_stdin(command, "", RUN_TIMEOUT).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--commands: cannot open") && stderr.contains("missing.jsonl"),
        "{stderr}"
    );
}
