//! The real binary against the real emulator: `cameras` (table and JSON lines), `record --camera`
//! by name, `record --stream` with a listed and an unknown stream.

mod common;

use std::process::Output;
use std::time::Duration;

const STREAM_2: &str = "28DC44C3-079E-4C94-8EC9-60363451EB41";

/// Run the binary with `args` after the connection flags, `admin` on stdin.
async fn run(gateway: &str, command: &str, args: &[&str]) -> Output {
    let mut cli = common::cli(command, gateway);
    cli.args(args);
    common::run_with_password(cli, Duration::from_secs(60)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_lists_both_cameras_as_a_table_and_as_json_lines() {
    let emulator = common::emulator().await;
    let gateway = emulator.gateway_url();

    let output = run(&gateway, "cameras", &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout.lines().next().unwrap_or_default();
    for column in ["ID", "NAME", "PTZ", "MICROPHONE", "STREAMS"] {
        assert!(header.contains(column), "{stdout}");
    }
    for name in ["Front Door", "Parking Lot"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert!(
        stdout.contains(&format!("* {}", STREAM_2.replace("EB41", "EB40"))),
        "the live default is marked: {stdout}"
    );
    assert!(
        stdout.contains(&format!("  {STREAM_2}  Video stream 2")),
        "{stdout}"
    );

    let output = run(&gateway, "cameras", &["--json"]).await;
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], common::first_camera().to_string());
    assert_eq!(lines[0]["name"], "Front Door");
    assert_eq!(lines[0]["ptz"], true);
    assert_eq!(lines[0]["microphone"]["name"], "Front Door Microphone");
    assert_eq!(lines[1]["microphone"], serde_json::Value::Null);
    assert_eq!(lines[0]["streams"][0]["liveDefault"], true);
    assert_eq!(lines[0]["streams"][1]["streamId"], STREAM_2);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_takes_a_camera_name_and_a_listed_stream() {
    let emulator = common::emulator().await;
    let gateway = emulator.gateway_url();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("by-name.mp4");
    let out = out.to_str().unwrap();
    let common_args = ["--bind", "127.0.0.1", "--duration", "1s", "-o", out];

    let output = run(
        &gateway,
        "record",
        &[&["--camera", "front door"][..], &common_args].concat(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("frames: "), "{stderr}");
    assert!(std::fs::metadata(out).unwrap().len() > 0);

    let output = run(
        &gateway,
        "record",
        &[
            &["--camera", "Front Door", "--stream", STREAM_2][..],
            &common_args,
        ]
        .concat(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let output = run(
        &gateway,
        "record",
        &[
            &[
                "--camera",
                "FRONT DOOR",
                "--stream",
                "00000000-1111-2222-3333-444444444444",
                "--signaling",
                "rest",
            ][..],
            &common_args,
        ]
        .concat(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("streamId"), "{stderr}");

    let output = run(
        &gateway,
        "record",
        &[&["--camera", "Back Door"][..], &common_args].concat(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"Front Door\", \"Parking Lot\""),
        "the error lists the names: {stderr}"
    );
    emulator.shutdown().await;
}
