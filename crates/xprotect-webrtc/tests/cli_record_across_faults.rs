//! The real binary recording while the gateway drops every session two seconds after it
//! connects: `record` reconnects on its own, the same MP4 goes on and stays decodable, and for
//! playback the frame times written run on in exact 40 ms steps of recording time, with no
//! frame twice and none missing across the drops. And when no token can be had any more, the
//! recording ends with a clear error and exit code 3, its file finished and playable.

mod common;

use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xprotect_emulator::{EmulatorConfig, Fault, JournalEvent};

/// Every session is dropped this long after it connected.
const DROP_AFTER: Duration = Duration::from_secs(2);

/// The video frame times of a `--frame-times` file.
fn video_times(path: &Path) -> Vec<OffsetDateTime> {
    std::fs::read_to_string(path)
        .expect("the frame times file exists")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|line| line["kind"] == "video")
        .map(|line| {
            let time = line["time"].as_str().expect("a time string");
            OffsetDateTime::parse(time, &Rfc3339).expect("an RFC 3339 time")
        })
        .collect()
}

async fn record_across_drops(extra: &[&str]) -> (Vec<OffsetDateTime>, String) {
    let emulator = common::start_emulator(EmulatorConfig {
        drop_sessions_after: Some(DROP_AFTER),
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mp4 = dir.path().join("out.mp4");
    let times = dir.path().join("out.jsonl");
    let mut command = common::cli("record", &emulator.gateway_url());
    command
        .args(["--bind", "127.0.0.1", "--no-audio", "--duration", "7s"])
        .args(["--camera", &common::first_camera().to_string()])
        .arg("-o")
        .arg(&mp4)
        .arg("--frame-times")
        .arg(&times)
        .args(extra);
    let output = common::run_with_password(command, Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    common::assert_success(&output);
    let errors = decode_errors_keeping_frame_times(&mp4);
    assert!(errors.is_empty(), "the MP4 decodes cleanly: {errors}");
    let (_, decoded, _) = common::ffprobe(&mp4);
    let times = video_times(&times);
    assert_eq!(
        decoded,
        times.len() as u64,
        "every frame written is in the file"
    );
    emulator.shutdown().await;
    (times, stderr)
}

/// Decode the whole file with every frame at its own time. Across a live reconnect two frames
/// can be closer than the camera's frame interval (the new session's first picture is taken when
/// it starts), which is right for a variable-frame-rate MP4; ffmpeg's default output, on a time
/// base of one frame interval, would call that a muxing error.
fn decode_errors_keeping_frame_times(path: &Path) -> String {
    common::ffmpeg_decode_errors_with(
        path,
        &["-fps_mode", "passthrough", "-enc_time_base", "1:90000"],
    )
}

fn reconnects_reported(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("reconnects: "))
        .and_then(|rest| rest.split(';').next())
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("the summary counts reconnects:\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_recording_survives_dropped_sessions_without_a_missing_or_repeated_frame() {
    let (times, stderr) =
        record_across_drops(&["--from", "2025-01-15T12:00:00Z", "--signaling", "ws"]).await;
    assert!(
        reconnects_reported(&stderr) >= 2,
        "7 s with drops every 2 s:\n{stderr}"
    );
    assert!(times.len() > 100, "{} frames:\n{stderr}", times.len());
    let start = time::macros::datetime!(2025-01-15 12:00:00 UTC);
    for (index, time) in times.iter().enumerate() {
        assert_eq!(
            *time,
            start + Duration::from_millis(40 * index as u64),
            "frame {index}: recording time runs on in 40 ms steps across every reconnect"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_recording_survives_dropped_sessions_over_rest() {
    let (times, stderr) = record_across_drops(&["--signaling", "rest"]).await;
    assert!(
        reconnects_reported(&stderr) >= 2,
        "7 s with drops every 2 s:\n{stderr}"
    );
    assert!(times.len() > 100, "{} frames:\n{stderr}", times.len());
    assert!(
        times.windows(2).all(|pair| pair[0] < pair[1]),
        "live frame times only go forward"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_that_can_no_longer_get_a_token_ends_cleanly_with_exit_code_3() {
    let emulator = common::start_emulator(EmulatorConfig {
        token_lifetime: Duration::from_secs(4),
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let mut journal = common::JournalWatch::new(&emulator);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mp4 = dir.path().join("out.mp4");
    let mut command = common::cli("record", &emulator.gateway_url());
    command
        .args(["--bind", "127.0.0.1", "--no-audio", "--signaling", "ws"])
        .args(["--camera", &common::first_camera().to_string()])
        .arg("-o")
        .arg(&mp4);
    let mut child = command.spawn().expect("the binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"admin\n")
        .await
        .expect("the binary reads its password");
    drop(stdin);
    journal
        .wait_for("the recording's first frame", |event| {
            matches!(event, JournalEvent::FirstFrameSent { .. })
        })
        .await;
    // The identity provider goes down for good: the refresh (due at 80 % of 4 s) and every
    // login after it fail until the token has expired.
    emulator
        .faults()
        .inject(Fault::HttpStatus {
            status: 503,
            count: 100_000,
        })
        .await;
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the recording ends once the token has expired")
        .expect("the binary's output is readable");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("could not be renewed"),
        "the error says what happened: {stderr}"
    );
    assert!(
        !stderr.contains("admin\n"),
        "no password in the output: {stderr}"
    );
    let errors = common::ffmpeg_decode_errors(&mp4);
    assert!(errors.is_empty(), "the MP4 was finished: {errors}");
    let (_, frames, _) = common::ffprobe(&mp4);
    assert!(
        frames >= 50,
        "about 4 s of video before the token ran out: {frames}"
    );
    emulator.shutdown().await;
}
