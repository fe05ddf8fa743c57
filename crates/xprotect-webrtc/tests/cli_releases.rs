//! `record` against the gateway of every XProtect release the emulator reproduces (PROTOCOL.md
//! §8): without a signaling choice the client tries WebSocket and falls back to REST where the
//! gateway answers 404; `--gateway-release` refuses what an older gateway would silently get
//! wrong.

mod common;

use std::time::Duration;
use xprotect_emulator::release::Release;
use xprotect_emulator::{EmulatorConfig, JournalEvent, Transport};

const LIMIT: Duration = Duration::from_secs(90);

/// The fallback notice `record` prints once.
const FALLBACK: &str = "no WebSocket signaling (HTTP 404";

/// What one recording showed.
struct Outcome {
    release: Release,
    stderr: String,
    frames: usize,
    over_ws: bool,
    audio_track: bool,
}

/// `record` of 2 s on an emulator of `release`, with auto-detected signaling (audio asked for,
/// as by default).
async fn record_on(release: Release) -> Outcome {
    let emulator = common::start_emulator(EmulatorConfig {
        release,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let mut journal = common::JournalWatch::new(&emulator);
    let dir = tempfile::tempdir().unwrap();
    let times = dir.path().join("times.jsonl");
    let video = dir.path().join("video.mp4");
    let mut command = common::cli("record", &emulator.gateway_url());
    command
        .args(["--bind", "127.0.0.1", "--duration", "2s", "--camera"])
        .arg(common::first_camera().to_string())
        .args(["-o"])
        .arg(&video)
        .arg("--frame-times")
        .arg(&times);
    let output = common::run_with_password(command, LIMIT).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{release}: {stderr}");
    let frames = std::fs::read_to_string(&times)
        .unwrap()
        .lines()
        .filter(|line| line.contains(r#""type":"video""#))
        .count();
    let over_ws = journal.drain().iter().any(|event| {
        matches!(
            event,
            JournalEvent::SessionCreated {
                transport: Transport::Ws,
                ..
            }
        )
    });
    Outcome {
        release,
        stderr,
        frames,
        over_ws,
        audio_track: has_audio_track(&video),
    }
}

fn has_audio_track(path: &std::path::Path) -> bool {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=index",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (apt-get install ffmpeg); .ci/run installs it");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    !output.stdout.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_records_with_detected_signaling() {
    // All at once: each is 2 s of real WebRTC, and a release's result does not depend on another.
    let results = futures_util::future::join_all(Release::ALL.map(record_on)).await;
    for Outcome {
        release,
        stderr,
        frames,
        over_ws,
        audio_track,
    } in results
    {
        assert!(frames >= 25, "{release}: {frames} frames\n{stderr}");
        if release == Release::R2025R2 {
            assert!(audio_track, "the camera's microphone is recorded on 2025R2");
        }
        if release.websocket() {
            assert!(!stderr.contains(FALLBACK), "{release}: {stderr}");
            assert!(over_ws, "{release} has WebSocket signaling: it is used");
        } else {
            assert_eq!(
                stderr.matches(FALLBACK).count(),
                1,
                "{release}: said once:\n{stderr}"
            );
            assert!(!over_ws, "{release}");
            // Detected as older than 2025R1, so older than audio (2025R2): no audio track.
            assert!(!audio_track, "{release}: no empty audio track");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_2023r1_refuses_playback_and_stream_choice_before_logging_in() {
    let emulator = common::start_emulator(EmulatorConfig {
        release: Release::R2023R1,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let mut journal = common::JournalWatch::new(&emulator);
    for extra in [
        &["--from", "2025-01-15T12:00:00Z"][..],
        &["--stream", "28DC44C3-079E-4C94-8EC9-60363451EB40"][..],
    ] {
        let mut command = common::cli("record", &emulator.gateway_url());
        command
            .args(["--gateway-release", "2023R1", "--camera"])
            .arg(common::first_camera().to_string())
            .args(["-o", "-"])
            .args(extra);
        let output = common::run_with_password(command, LIMIT).await;
        assert!(!output.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--gateway-release"), "{stderr}");
        assert!(stderr.contains("2023R1"), "{stderr}");
        if extra[0] == "--from" {
            assert!(stderr.contains("LIVE video"), "{stderr}");
        } else {
            assert!(stderr.contains("default stream"), "{stderr}");
        }
        assert!(output.stdout.is_empty(), "no video on stdout");
    }
    assert!(
        !journal
            .drain()
            .iter()
            .any(|event| matches!(event, JournalEvent::SessionCreated { .. })),
        "refused up front: no session was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_older_release_uses_rest_and_refuses_websocket_asked_for() {
    let emulator = common::start_emulator(EmulatorConfig {
        release: Release::R2024R2,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = common::cli("record", &emulator.gateway_url());
    command
        .args([
            "--gateway-release",
            "2024R2",
            "--signaling",
            "ws",
            "--camera",
        ])
        .arg(common::first_camera().to_string())
        .arg("-o")
        .arg(dir.path().join("x.mp4"));
    let output = common::run_with_password(command, LIMIT).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no WebSocket signaling"), "{stderr}");
    assert!(stderr.contains("--signaling rest"), "{stderr}");

    // Named, without a signaling choice: REST at once, with no probe and no notice.
    let mut command = common::cli("record", &emulator.gateway_url());
    command
        .args([
            "--gateway-release",
            "2024R2",
            "--bind",
            "127.0.0.1",
            "--duration",
            "1s",
            "--camera",
        ])
        .arg(common::first_camera().to_string())
        .arg("-o")
        .arg(dir.path().join("y.mp4"));
    let output = common::run_with_password(command, LIMIT).await;
    common::assert_success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(FALLBACK), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_is_refused_up_front_on_a_release_without_the_commands_channel() {
    let emulator = common::start_emulator(EmulatorConfig {
        release: Release::R2024R2,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let mut command = common::cli("ptz", &emulator.gateway_url());
    command
        .args(["--gateway-release", "2024R2", "--move", "left", "--camera"])
        .arg(common::first_camera().to_string());
    let output = common::run_with_password(command, LIMIT).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no commands data channel"), "{stderr}");
    assert!(stderr.contains("2025R1"), "{stderr}");
}
