//! The real `bench` binary's lasting-session section, briefly: one run of every fault for both
//! clients with a short cap, and one token switch each. Ours must continue the stream after a
//! dropped session within the cap without repeating a frame, and must lose no frame at a
//! make-before-break switch; every row is in the table and the JSON.

use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_xprotect-webrtc");
/// Fault cases of the section (see `bench::faults::fault_cases`).
const CASES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_fault_bench_measures_both_clients() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let child = Command::new(BIN)
        .args([
            "bench",
            "--ttff-runs",
            "0",
            "--sessions",
            "0",
            "--no-export",
            "--fault-runs",
            "1",
            // The peer notices most faults by its 10 s media timeout; 4 s keeps the test short
            // and still lets ours, which notices them itself, recover inside it.
            "--fault-cap",
            "4s",
            // 10 s tokens are refreshed at about 8 s: one switch each.
            "--switch-duration",
            "11s",
            "--json",
        ])
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("bench finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for row in [
        "| DropSessions | WS | ours: `LastingSession` |",
        "| DropSessions | REST | peer: `Session` restarted when it ends |",
        "| RestartSignaling 500 ms | WS | ours: `LastingSession` |",
        "| ours: `LastingSession` (make-before-break) |",
        "| peer: `Session`, closed and restarted on refresh |",
    ] {
        assert!(stdout.contains(row), "no row {row}:\n{stdout}");
    }

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let faults = &report["faults"];
    let cases = faults["cases"].as_array().unwrap();
    assert_eq!(cases.len(), CASES * 2, "{faults}");
    for figure in cases {
        assert!(
            figure["failures"].as_array().unwrap().is_empty(),
            "{figure}"
        );
        assert_eq!(figure["runs"].as_array().unwrap().len(), 1, "{figure}");
    }
    // Ours over WebSocket after a dropped session: a new session's frame within the cap, every
    // frame once.
    let dropped = cases
        .iter()
        .find(|f| f["case"] == "DropSessions" && f["signaling"] == "ws" && f["client"] == "lasting")
        .expect("DropSessions over WS, ours");
    let run = &dropped["runs"][0];
    let ms = run["fault_to_frame_ms"]
        .as_f64()
        .expect("recovered within the cap");
    assert!(ms > 0.0 && ms < 4_000.0, "{run}");
    assert_eq!(run["duplicates"], 0, "{run}");
    assert!(run["sessions_started"].as_u64().unwrap() >= 2, "{run}");

    // Loopback speed, then each new session's setup slowed down: ours and the peer each time.
    let switches = faults["switches"].as_array().unwrap();
    assert_eq!(switches.len(), 4, "{faults}");
    for pair in switches.chunks(2) {
        let (ours, peer) = (&pair[0], &pair[1]);
        assert_eq!(ours["client"], "lasting", "{ours}");
        assert!(ours["error"].is_null(), "{ours}");
        assert!(!ours["switches"].as_array().unwrap().is_empty(), "{ours}");
        assert_eq!(
            ours["frames_lost"], 0,
            "make-before-break loses nothing, however slow the setup: {ours}"
        );
        assert_eq!(ours["duplicates"], 0, "{ours}");
        assert!(peer["error"].is_null(), "{peer}");
        assert!(!peer["switches"].as_array().unwrap().is_empty(), "{peer}");
    }
    assert_eq!(switches[2]["setup_delay_ms"], 300, "{faults}");
}
