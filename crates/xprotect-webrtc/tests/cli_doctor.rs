//! `doctor` against the emulator: every step ok on the default gateway; a wrong password fails
//! the login step with its explanation; CORS off warns that browsers from another origin fail
//! and points to `view`; a 2024R2 gateway has no WebSocket and the test session uses REST.

mod common;

use std::process::Output;
use std::time::Duration;
use xprotect_emulator::EmulatorConfig;
use xprotect_emulator::release::Release;

/// Login, a test session to the first keyframe and the rest: well inside this on loopback.
const LIMIT: Duration = Duration::from_secs(60);

async fn doctor(gateway: &str, password: &str) -> (Output, String) {
    let mut command = common::cli("doctor", gateway);
    command.args(["--bind", "127.0.0.1"]);
    let output = common::run_with_stdin(command, &format!("{password}\n"), LIMIT).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// The report line of `step`, e.g. `ok    login: …`.
fn line<'a>(report: &'a str, step: &str) -> &'a str {
    report
        .lines()
        .find(|line| {
            line.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{step}:")))
        })
        .unwrap_or_else(|| panic!("no `{step}` line in:\n{report}"))
}

fn verdict<'a>(report: &'a str, step: &str) -> &'a str {
    line(report, step)
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_passes_against_the_default_emulator() {
    let emulator = common::emulator().await;
    let (output, report) =
        doctor(&emulator.gateway_url(), xprotect_emulator::DEFAULT_PASSWORD).await;
    common::assert_success(&output);
    assert!(!report.contains("FAIL"), "{report}");
    for step in [
        "DNS and TCP",
        "identity provider",
        "login",
        "WebSocket signaling",
        "CORS for browsers",
        "Config API cameras",
        "test session",
        "selected pair",
    ] {
        assert_eq!(verdict(&report, step), "ok", "{step}:\n{report}");
    }
    assert!(
        line(&report, "WebSocket signaling").contains("2025R1 or later"),
        "{report}"
    );
    let session = line(&report, "test session");
    assert!(
        session.contains("live over WebSocket") && session.contains("first keyframe"),
        "{session}"
    );
    // Both sides' candidates are named with their type and scope; loopback has no NAT to warn of.
    assert!(
        line(&report, "our ICE candidates").contains("host 127.0.0.1"),
        "{report}"
    );
    assert!(
        line(&report, "gateway ICE candidates").contains("host 127.0.0.1"),
        "{report}"
    );
    assert!(
        line(&report, "selected pair").contains("(loopback) <-> host 127.0.0.1"),
        "{report}"
    );
    for mode in ["mDNS", "NAT without STUN", "UDP blocked without TURN"] {
        assert_eq!(verdict(&report, mode), "note", "{mode}:\n{report}");
    }
    // Plain http is the emulator's way; the report says what that means.
    assert_eq!(verdict(&report, "TLS"), "WARN", "{report}");
    assert!(report.contains("all checks passed"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_login_step_with_what_to_do() {
    let emulator = common::emulator().await;
    let (output, report) = doctor(&emulator.gateway_url(), "not-the-password").await;
    assert!(!output.status.success(), "{report}");
    assert_eq!(verdict(&report, "login"), "FAIL", "{report}");
    assert!(
        line(&report, "login").contains("wrong user name or password"),
        "{report}"
    );
    assert!(
        report.contains("basic user"),
        "the advice follows the line:\n{report}"
    );
    // What does not need the login still runs; what does is skipped, not failed again.
    assert_eq!(verdict(&report, "WebSocket signaling"), "ok", "{report}");
    assert_eq!(verdict(&report, "test session"), "skip", "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 check(s) failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_the_report_says_browsers_fail_and_suggests_the_viewer_proxy() {
    let emulator = common::start_emulator(EmulatorConfig {
        cors: false,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let (output, report) =
        doctor(&emulator.gateway_url(), xprotect_emulator::DEFAULT_PASSWORD).await;
    // Our own client needs no CORS: a warning, not a failure.
    common::assert_success(&output);
    assert_eq!(verdict(&report, "CORS for browsers"), "WARN", "{report}");
    assert!(
        line(&report, "CORS for browsers").contains("https://viewer.example.com"),
        "{report}"
    );
    assert!(
        report.contains("Browsers on another origin will fail"),
        "{report}"
    );
    assert!(report.contains("`xprotect-webrtc view`"), "{report}");
    assert_eq!(verdict(&report, "test session"), "ok", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2024r2_gateway_has_no_websocket_and_the_test_session_uses_rest() {
    let emulator = common::start_emulator(EmulatorConfig {
        release: Release::R2024R2,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let (output, report) =
        doctor(&emulator.gateway_url(), xprotect_emulator::DEFAULT_PASSWORD).await;
    common::assert_success(&output);
    let websocket = line(&report, "WebSocket signaling");
    assert!(websocket.starts_with("ok"), "{websocket}");
    assert!(websocket.contains("absent (HTTP 404)"), "{websocket}");
    assert!(websocket.contains("REST signaling is used"), "{websocket}");
    assert!(
        line(&report, "test session").contains("live over REST"),
        "{report}"
    );
}
