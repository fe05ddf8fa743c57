//! The real binary recording while the gateway drops every session two seconds after it
//! connects: `record` reconnects on its own, the same MP4 goes on and stays decodable, and for
//! playback the frame times written run on in exact 40 ms steps of recording time, with no
//! frame twice and none missing across the drops.

mod common;

use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xprotect_emulator::EmulatorConfig;

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
    let errors = common::ffmpeg_decode_errors(&mp4);
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
