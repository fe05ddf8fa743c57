//! The real binary against the real emulator: `record`, `login`, exit codes, a kill mid-recording.

mod common;

use common::BIN;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

fn record(gateway: &str, output: &Path, extra: &[&str]) -> Command {
    let mut command = common::cli("record", gateway);
    command
        .args([
            "--bind",
            "127.0.0.1",
            // These tests count video frames in --frame-times and the file; audio has its own
            // tests (audio_end_to_end).
            "--no-audio",
        ])
        .args([
            "--camera",
            &common::first_camera().to_string().to_uppercase(),
            "-o",
        ])
        .arg(output)
        .args(extra);
    command
}

async fn send_password(child: &mut Child, password: &str) {
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
}

async fn finish(child: Child, limit: Duration) -> std::process::Output {
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("the process ends in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_writes_playable_mp4_and_frame_times_over_both_transports() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    for signaling in ["ws", "rest"] {
        let mp4 = dir.path().join(format!("{signaling}.mp4"));
        let times = dir.path().join(format!("{signaling}.jsonl"));
        let mut command = record(
            &emulator.gateway_url(),
            &mp4,
            &[
                "--duration",
                "4s",
                "--signaling",
                signaling,
                "--frame-times",
            ],
        );
        command.arg(&times);
        let output = common::run_with_password(command, Duration::from_secs(60)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{signaling}: exit {:?}\n{stderr}",
            output.status
        );
        assert!(stderr.contains("time to first frame"), "{stderr}");
        assert!(
            !stderr.contains("admin\n"),
            "the password must not be echoed"
        );

        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&times)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert!(
            (95..=110).contains(&lines.len()),
            "{signaling}: {} frames in 4 s at 25 fps",
            lines.len()
        );
        assert_eq!(lines[0]["keyframe"], true);
        assert_eq!(lines[0]["type"], "video");
        for field in ["time", "rtp", "bytes", "received"] {
            assert!(
                !lines[0][field].is_null(),
                "frame-time line lacks `{field}`: {}",
                lines[0]
            );
        }
        let (codec, frames, _) = common::ffprobe(&mp4);
        assert_eq!(codec, "h264");
        assert_eq!(
            frames as usize,
            lines.len(),
            "every logged frame is in the file"
        );
        assert_eq!(common::ffmpeg_decode_errors(&mp4), "");

        // `frames` reads the same wall-clock times back out of the MP4.
        let output = std::process::Command::new(BIN)
            .arg("frames")
            .arg(&mp4)
            .output()
            .unwrap();
        assert!(output.status.success());
        let from_file: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(from_file.len(), lines.len());
        assert_eq!(from_file[0]["time"], lines[0]["time"]);
        assert_eq!(
            from_file.last().unwrap()["time"],
            lines.last().unwrap()["time"]
        );
    }
    emulator.shutdown().await;
}

/// Start `record` with frame times on stdout and wait until `frames` lines have come; returns
/// the still-running recorder and the rest of its frame-time lines.
async fn recording_with_frames(
    gateway: &str,
    output: &Path,
    frames: usize,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = record(gateway, output, &["--frame-times", "-"])
        .spawn()
        .unwrap();
    send_password(&mut child, "admin").await;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..frames {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("frames keep coming");
        assert!(line.unwrap().is_some(), "the recorder stopped early");
    }
    (child, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recording_stays_playable() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let mp4 = dir.path().join("killed.mp4");
    let (mut child, _lines) = recording_with_frames(&emulator.gateway_url(), &mp4, 80).await;
    child.start_kill().unwrap(); // SIGKILL: no chance to finish the file
    let _ = finish(child, Duration::from_secs(10)).await;

    let (codec, frames, _) = common::ffprobe(&mp4);
    assert_eq!(codec, "h264");
    // Complete fragments survive (one per GOP of 25 frames); only the open one is lost.
    assert!(frames >= 50, "only {frames} frames survived the kill");
    assert_eq!(common::ffmpeg_decode_errors(&mp4), "");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_file_with_every_frame() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let mp4 = dir.path().join("interrupted.mp4");
    let (child, mut lines) = recording_with_frames(&emulator.gateway_url(), &mp4, 40).await;
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut logged = 40;
    while let Some(_line) = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        logged += 1;
    }
    let output = finish(child, Duration::from_secs(10)).await;
    assert!(
        output.status.success(),
        "Ctrl-C is a normal end: {:?}",
        output.status
    );
    // The pending fragment is written on the way out: every logged frame is in the file.
    let (_, frames, _) = common::ffprobe(&mp4);
    assert_eq!(frames, logged, "frames in the file vs frames logged");
    assert_eq!(common::ffmpeg_decode_errors(&mp4), "");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_h264_and_stdout_outputs_decode() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let h264 = dir.path().join("cam.h264");
    let command = record(&emulator.gateway_url(), &h264, &["--duration", "2s"]);
    assert!(
        common::run_with_password(command, Duration::from_secs(60))
            .await
            .status
            .success()
    );
    assert_eq!(common::ffprobe(&h264).0, "h264");
    assert_eq!(common::ffmpeg_decode_errors(&h264), "");

    let command = record(
        &emulator.gateway_url(),
        Path::new("-"),
        &["--duration", "2s"],
    );
    let output = common::run_with_password(command, Duration::from_secs(60)).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(&output.stdout[4..8], b"ftyp", "stdout carries the MP4");
    let piped = dir.path().join("piped.mp4");
    std::fs::write(&piped, &output.stdout).unwrap();
    let (codec, frames, _) = common::ffprobe(&piped);
    assert_eq!(codec, "h264");
    assert!(frames >= 45, "{frames} frames in 2 s");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_camera_fail_clearly() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let out = dir.path().join("x.mp4");
    let command = record(&emulator.gateway_url(), &out, &["--duration", "1s"]);
    let output =
        common::run_with_stdin(command, "not-the-password\n", Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("wrong user name or password"), "{stderr}");
    assert!(
        !stderr.contains("not-the-password"),
        "the password must never be printed"
    );

    let mut command = common::cli("record", &emulator.gateway_url());
    command.arg("-o").arg(&out).args([
        "--camera",
        "00000000-1111-2222-3333-444444444444",
        "--duration",
        "1s",
    ]);
    let output = common::run_with_password(command, Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.to_lowercase().contains("not"), "{stderr}");

    let output = common::cli("record", &emulator.gateway_url())
        .args(["-o", "x.mp4"])
        .args(["--camera", "front-door"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr.contains("--"), "{stderr}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_expiry_but_not_the_token() {
    let emulator = common::emulator().await;
    let command = common::cli("login", &emulator.gateway_url());
    let output = common::run_with_password(command, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("token valid for 3600 s"), "{stdout}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "no token without --show-token: {stdout}"
    );
    emulator.shutdown().await;
}
