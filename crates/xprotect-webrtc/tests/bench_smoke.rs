//! The real `bench` binary, briefly: it starts its own emulator child, measures both stacks and
//! prints every table; the JSON has a figure for every transport, stack and load step, live and
//! playback time to first frame, and a short export next to the str0m peer.

use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_xprotect-webrtc");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_bench_measures_both_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let child = Command::new(BIN)
        .args([
            "bench",
            "--ttff-runs",
            "2",
            "--sessions",
            "1,2",
            "--duration",
            "2s",
            "--export-length",
            "6s",
            // The lasting-session figures have their own smoke test (bench_faults_smoke.rs).
            "--no-faults",
            "--json",
        ])
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("bench finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    assert!(
        stdout.contains("xprotect-webrtc bench --ttff-runs 2"),
        "{stdout}"
    );
    for row in [
        "| REST | ours (webrtc-rs) |",
        "| REST | peer (str0m) |",
        "| WS | ours (webrtc-rs) |",
        "| WS | peer (str0m) |",
    ] {
        assert!(stdout.contains(row), "no TTFF row {row}:\n{stdout}");
    }
    for row in [
        "| 1 | ours (webrtc-rs) |",
        "| 1 | peer (str0m) |",
        "| 2 | ours (webrtc-rs) |",
        "| 2 | peer (str0m) |",
    ] {
        assert!(stdout.contains(row), "no load row {row}:\n{stdout}");
    }

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let ttff = report["ttff"].as_array().unwrap();
    assert_eq!(ttff.len(), 4);
    for figure in ttff {
        assert_eq!(figure["runs"].as_array().unwrap().len(), 2, "{figure}");
        let first = &figure["runs"][0];
        // The milestones come in protocol order.
        let order = ["login_ms", "created_ms", "connected_ms", "first_frame_ms"]
            .map(|k| first[k].as_f64().unwrap());
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{first}");
    }
    let playback = report["playback_ttff"].as_array().unwrap();
    assert_eq!(
        playback.len(),
        4,
        "playback TTFF for both transports and stacks"
    );
    for figure in playback {
        assert_eq!(figure["runs"].as_array().unwrap().len(), 2, "{figure}");
    }
    assert!(stdout.contains("Time to first frame, playback"), "{stdout}");

    // 6 s of recording at 25 fps: ours writes every frame in one session and in parallel chunks
    // (at the speed where the emulator's 60 frames/s cap drops none), the peer at that speed
    // receives every frame too, and the peer at speed 32 gets one frame in 14.
    let export = &report["export"];
    assert!(
        export["failures"].as_array().unwrap().is_empty(),
        "{export}"
    );
    let figures = export["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 4, "{export}");
    for ours in &figures[..2] {
        assert_eq!(ours["frames"], 150, "{ours}");
        assert_eq!(ours["speed"], 2.28, "{ours}");
    }
    assert!(figures[1]["sessions"].as_u64().unwrap() > figures[0]["sessions"].as_u64().unwrap());
    assert_eq!(figures[2]["frames"], 150, "{}", figures[2]);
    assert_eq!(figures[3]["speed"], 32.0, "{}", figures[3]);
    assert_eq!(figures[3]["frames"], 150_u64.div_ceil(14), "{}", figures[3]);
    assert!(
        stdout.contains(
            "| ours: `export --parallel 1` to MP4 (webrtc-rs, 1 chunk) | 2.28 | 150 / 150 |"
        ),
        "{stdout}"
    );

    let load = report["load"].as_array().unwrap();
    assert_eq!(load.len(), 4);
    for step in load {
        let result = &step["result"];
        assert!(result["frames"].as_u64().unwrap() > 0, "{step}");
        assert!(result["cpu_ms"].as_f64().unwrap() > 0.0, "{step}");
        assert!(result["emulator_cpu_ms"].as_f64().is_some(), "{step}");
    }
    // Two sessions of a stack have a memory-per-extra-session figure.
    assert!(
        load.iter()
            .any(|s| s["sessions"] == 2 && s["derived"]["rss_per_extra_session_bytes"].is_number())
    );
}
