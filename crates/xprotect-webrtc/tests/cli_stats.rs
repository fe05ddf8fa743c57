//! `record --stats`: JSON lines during and at the end of a recording, with the session's and the
//! WebRTC stack's figures; no status line when stderr is not a terminal.

mod common;

use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn record(gateway: &str, extra: &[&str]) -> tokio::process::Command {
    let mut command = common::cli("record", gateway);
    command
        .args(["--bind", "127.0.0.1", "--no-audio", "--camera"])
        .arg(common::first_camera().to_string())
        .args(extra);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_lines_carry_frames_rates_losses_and_the_selected_pair() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let mp4 = dir.path().join("stats.mp4");
    let stats = dir.path().join("stats.jsonl");
    let command = record(
        &emulator.gateway_url(),
        &[
            "--duration",
            "3s",
            "-o",
            mp4.to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
            "--stats-interval",
            "1",
        ],
    );
    let output = common::run_with_password(command, LIMIT).await;
    common::assert_success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains('\r') && !stderr.contains("\x1b[K"),
        "no status line when stderr is not a terminal:\n{stderr:?}"
    );

    let text = std::fs::read_to_string(&stats).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    // One a second over ~3 s of video (after login and setup), then the final one.
    assert!(lines.len() >= 3, "{text}");
    let (last, periodic) = lines.split_last().unwrap();
    assert_eq!(last["final"], true, "{last}");
    assert!(periodic.iter().all(|line| line["final"] == false), "{text}");

    // Frames only grow; elapsed time too.
    let frames: Vec<u64> = lines
        .iter()
        .map(|l| l["frames"].as_u64().unwrap())
        .collect();
    assert!(frames.windows(2).all(|w| w[0] <= w[1]), "{frames:?}");
    let elapsed: Vec<f64> = lines
        .iter()
        .map(|l| l["elapsed_s"].as_f64().unwrap())
        .collect();
    assert!(elapsed.windows(2).all(|w| w[0] < w[1]), "{elapsed:?}");

    // A line taken while video flows: 25 fps, a bitrate, a frame time, nothing lost.
    let flowing = periodic
        .iter()
        .rev()
        .find(|line| line["fps"].as_f64().unwrap() > 0.0)
        .unwrap_or_else(|| panic!("no line with frames flowing:\n{text}"));
    let fps = flowing["fps"].as_f64().unwrap();
    assert!((15.0..=35.0).contains(&fps), "{flowing}");
    assert!(
        flowing["bitrate_bps"].as_f64().unwrap() > 10_000.0,
        "{flowing}"
    );
    assert!(flowing["last_frame_time"].is_string(), "{flowing}");
    assert_eq!(flowing["packets_lost"], 0, "{flowing}");
    assert_eq!(flowing["reconnects"], 0, "{flowing}");
    assert!(flowing["token_refreshes"].is_u64(), "{flowing}");

    let session = &flowing["session"];
    assert_eq!(session["connected"], true, "{session}");
    assert!(
        session["video_jitter_ms"].as_f64().unwrap() >= 0.0,
        "{session}"
    );
    let peer = &session["peer"];
    let video = peer["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .find(|track| track["kind"] == "video")
        .unwrap_or_else(|| panic!("no video stream:\n{peer}"));
    assert!(video["packets_received"].as_u64().unwrap() > 0, "{video}");
    assert!(video["bytes_received"].as_u64().unwrap() > 0, "{video}");
    // The client asks for a keyframe as the track starts (STACK.md).
    assert!(video["pli_count"].as_u64().unwrap() >= 1, "{video}");
    let pair = &peer["selected_pair"];
    for side in ["local", "remote"] {
        assert_eq!(pair[side]["type"], "host", "{pair}");
        assert_eq!(pair[side]["address"], "127.0.0.1", "{pair}");
        assert_eq!(pair[side]["scope"], "loopback", "{pair}");
        assert_eq!(pair[side]["protocol"], "udp", "{pair}");
    }
    assert!(
        !peer["local_candidates"].as_array().unwrap().is_empty(),
        "{peer}"
    );
    assert!(
        !peer["remote_candidates"].as_array().unwrap().is_empty(),
        "{peer}"
    );

    // The final line counts what reached the file: the summary's frame count.
    let summary_frames = stderr
        .lines()
        .find_map(|line| line.strip_prefix("frames: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no frame count in the summary:\n{stderr}"));
    assert_eq!(last["frames"].as_u64(), Some(summary_frames), "{last}");
    assert!(
        last["fps"].as_f64().unwrap() > 0.0,
        "averages over the recording: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_on_stdout_next_to_video_on_stdout_is_refused() {
    let emulator = common::emulator().await;
    let command = record(&emulator.gateway_url(), &["-o", "-", "--stats", "-"]);
    let output = common::run_with_password(command, LIMIT).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--stats - shares stdout"), "{stderr}");
    assert!(output.stdout.is_empty());
}
