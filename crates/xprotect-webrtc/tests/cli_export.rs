//! The real binary's `export` against the real emulator and its default recording timeline
//! (2025-01-15 12:00–12:05, 12:05:10–12:10, 12:25–12:30, 13:00–14:00 UTC, 25 fps).
//!
//! Truth comes from two places that the export cannot fake together: the `prft` frame times
//! that `frames FILE` prints, and the recording time the emulator stamped into each frame's SEI
//! (read from the H.264 in the file). They must agree frame by frame, and equal the grid of
//! recording times of the range.

mod common;

use common::BIN;
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use tokio::process::Command;
use xprotect_proto::h264::annex_b;
use xprotect_proto::h264::sei::FrameStamp;

const FRAME_MS: i64 = 40;

/// Runs `export` to `output` with `extra` flags; returns (success, stderr).
async fn export(gateway: &str, output: &Path, extra: &[&str]) -> (bool, String) {
    let mut command = common::cli("export", gateway);
    command
        .args(["--bind", "127.0.0.1", "--camera", "Front Door"])
        .arg("-o")
        .arg(output)
        .args(extra);
    let output = common::run_with_password(command, Duration::from_secs(40)).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One line of `frames FILE`.
#[derive(Debug)]
struct FileFrame {
    unix_ms: i64,
    media_ms: i64,
    keyframe: bool,
}

async fn frames_of(path: &Path) -> Vec<FileFrame> {
    let output = Command::new(BIN)
        .arg("frames")
        .arg(path)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "frames failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let time = OffsetDateTime::parse(value["time"].as_str().unwrap(), &Rfc3339).unwrap();
            FileFrame {
                unix_ms: unix_ms(time),
                media_ms: value["media_ms"].as_i64().unwrap(),
                keyframe: value["keyframe"].as_bool().unwrap(),
            }
        })
        .collect()
}

/// The recording time stamped into each frame's SEI, in file order (ffmpeg copies the H.264
/// out of the MP4 as Annex-B, untouched).
fn sei_times_of(path: &Path) -> Vec<i64> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-c:v",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            "-",
        ])
        .output()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg could not copy the H.264 out"
    );
    annex_b::split(&output.stdout)
        .filter_map(FrameStamp::from_sei_nal)
        .map(|stamp| stamp.recording_unix_ms)
        .collect()
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Every 40 ms grid time in `[from, to)` of each recording stretch.
fn grid(stretches: &[(OffsetDateTime, OffsetDateTime)]) -> Vec<i64> {
    stretches
        .iter()
        .flat_map(|&(from, to)| (unix_ms(from)..unix_ms(to)).step_by(FRAME_MS as usize))
        .collect()
}

/// The file holds exactly `expected` frames, in both the prft times and the SEI stamps.
fn assert_frames_are(frames: &[FileFrame], sei: &[i64], expected: &[i64]) {
    let times: Vec<i64> = frames.iter().map(|f| f.unix_ms).collect();
    assert_eq!(times.len(), expected.len(), "frame count");
    assert_eq!(times, expected, "prft frame times are the recording times");
    assert_eq!(sei, expected, "SEI recording stamps match, frame by frame");
    assert!(frames[0].keyframe, "the file starts with a keyframe");
}

const GAP_START: OffsetDateTime = datetime!(2025-01-15 12:05:00 UTC);
const GAP_END: OffsetDateTime = datetime!(2025-01-15 12:05:10 UTC);

async fn export_across_the_gap(close_gaps: bool) {
    let emulator = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let mut flags = vec![
        "--from",
        "2025-01-15T12:04:50Z",
        "--to",
        "2025-01-15T12:05:20Z",
    ];
    if close_gaps {
        flags.push("--close-gaps");
    }
    let (ok, stderr) = export(&emulator.gateway_url(), &path, &flags).await;
    emulator.shutdown().await;
    assert!(ok, "export failed:\n{stderr}");

    let frames = frames_of(&path).await;
    let expected = grid(&[
        (datetime!(2025-01-15 12:04:50 UTC), GAP_START),
        (GAP_END, datetime!(2025-01-15 12:05:20 UTC)),
    ]);
    // 10 s before the gap and 10 s after it at 25 fps; the frame at --to is not exported.
    assert_eq!(expected.len(), 500);
    assert_frames_are(&frames, &sei_times_of(&path), &expected);
    assert!(
        frames
            .iter()
            .all(|f| f.unix_ms < unix_ms(GAP_START) || f.unix_ms >= unix_ms(GAP_END)),
        "no frame inside the gap"
    );

    let first = unix_ms(datetime!(2025-01-15 12:04:50 UTC));
    let gap_ms = unix_ms(GAP_END) - unix_ms(GAP_START);
    for frame in &frames {
        let preserved = frame.unix_ms - first;
        let expected_media = if close_gaps && frame.unix_ms >= unix_ms(GAP_END) {
            preserved - gap_ms
        } else {
            preserved
        };
        assert_eq!(frame.media_ms, expected_media, "media time of {frame:?}");
    }
    let (codec, decoded, duration) = common::ffprobe(&path);
    assert_eq!((codec.as_str(), decoded), ("h264", 500));
    let expected_duration = if close_gaps { 20.0 } else { 30.0 };
    assert!(
        (duration - expected_duration).abs() < 0.1,
        "duration {duration} s, expected {expected_duration} s"
    );
    let errors = common::ffmpeg_decode_errors(&path);
    assert!(errors.is_empty(), "decode errors:\n{errors}");

    assert!(stderr.contains("frames: 500 "), "{stderr}");
    assert!(
        stderr.contains("gaps: 1 (10.000 s in all")
            && stderr.contains("from 2025-01-15T12:05:00.000Z for 10.000 s"),
        "{stderr}"
    );
    // The emulator sends at most 60 frames/s: at speed 32 it keeps one frame in 14, so the
    // export must have noticed and slowed down to 2.28 (57 frames/s).
    assert!(
        stderr.contains("speed: 2.28 — at speed 32 the gateway sent one frame per 560 ms"),
        "{stderr}"
    );
    assert!(
        stderr.contains("complete: reached the end of the range"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_across_a_gap_keeps_the_gap_in_the_timeline() {
    export_across_the_gap(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_with_close_gaps_closes_it_but_keeps_true_times() {
    export_across_the_gap(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_past_the_last_recording_ends_cleanly() {
    let emulator = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("end.mp4");
    let flags = [
        "--from",
        "2025-01-15T13:59:57Z",
        "--to",
        "2025-01-15T14:00:30Z",
        "--end-wait",
        "2s",
    ];
    let (ok, stderr) = export(&emulator.gateway_url(), &path, &flags).await;
    emulator.shutdown().await;
    assert!(ok, "export failed:\n{stderr}");
    assert!(
        stderr.contains(
            "complete: the recordings end at 2025-01-15T14:00:00.000Z (no recording after it up to 2025-01-15T14:00:30.000Z)"
        ),
        "{stderr}"
    );
    let expected = grid(&[(
        datetime!(2025-01-15 13:59:57 UTC),
        datetime!(2025-01-15 14:00:00 UTC),
    )]);
    assert_frames_are(&frames_of(&path).await, &sei_times_of(&path), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_inside_a_gap_starts_at_the_next_recording() {
    let emulator = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gap.mp4");
    let flags = [
        "--from",
        "2025-01-15T12:05:05Z",
        "--to",
        "2025-01-15T12:05:12Z",
    ];
    let (ok, stderr) = export(&emulator.gateway_url(), &path, &flags).await;
    emulator.shutdown().await;
    assert!(ok, "export failed:\n{stderr}");
    let frames = frames_of(&path).await;
    let expected = grid(&[(GAP_END, datetime!(2025-01-15 12:05:12 UTC))]);
    assert_frames_are(&frames, &sei_times_of(&path), &expected);
    assert_eq!(frames[0].media_ms, 0, "the file starts at its first frame");
    assert!(stderr.contains("gaps: none"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_fail_clearly_and_leave_no_file() {
    let emulator = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.mp4");
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--from",
                "2025-01-15T12:01:00Z",
                "--to",
                "2025-01-15T12:01:00Z",
            ],
            "the range is empty: 2025-01-15T12:01:00.000Z is not before 2025-01-15T12:01:00.000Z",
        ),
        (
            &[
                "--from",
                "2025-01-15T12:10:00Z",
                "--to",
                "2025-01-15T12:20:00Z",
            ],
            "no recording from 2025-01-15T12:10:00.000Z to 2025-01-15T12:20:00.000Z: the next recording starts at 2025-01-15T12:25:00.000Z",
        ),
        (
            &[
                "--from",
                "2025-01-15T15:00:00Z",
                "--to",
                "2025-01-15T16:00:00Z",
                "--end-wait",
                "1s",
            ],
            "no recording from 2025-01-15T15:00:00.000Z to 2025-01-15T16:00:00.000Z, nor after it",
        ),
    ];
    for (flags, message) in cases {
        let (ok, stderr) = export(&emulator.gateway_url(), &path, flags).await;
        assert!(!ok, "{flags:?} succeeded:\n{stderr}");
        assert!(stderr.contains(message), "{flags:?}:\n{stderr}");
        assert!(!path.exists(), "{flags:?} left a file behind");
    }
    emulator.shutdown().await;
}

/// What one export produced, for comparing two of them.
struct Exported {
    frames: Vec<FileFrame>,
    sei: Vec<i64>,
    stderr: String,
}

/// Exports the same range with `--parallel 1` and `--parallel 4`, at once, from one emulator.
async fn export_sequential_and_parallel(range: [&str; 4], extra: &[&str]) -> [Exported; 2] {
    let emulator = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let paths = [dir.path().join("one.mp4"), dir.path().join("four.mp4")];
    let flags = |parallel: &'static str| {
        let mut flags: Vec<&str> = range.to_vec();
        flags.extend_from_slice(extra);
        flags.extend(["--parallel", parallel]);
        flags
    };
    let (one, four) = (flags("1"), flags("4"));
    let gateway = emulator.gateway_url();
    let ((ok_one, stderr_one), (ok_four, stderr_four)) = tokio::join!(
        export(&gateway, &paths[0], &one),
        export(&gateway, &paths[1], &four)
    );
    emulator.shutdown().await;
    assert!(ok_one, "--parallel 1 failed:\n{stderr_one}");
    assert!(ok_four, "--parallel 4 failed:\n{stderr_four}");
    let mut exported = Vec::new();
    for (path, stderr) in paths.iter().zip([stderr_one, stderr_four]) {
        let errors = common::ffmpeg_decode_errors(path);
        assert!(errors.is_empty(), "decode errors in {path:?}:\n{errors}");
        exported.push(Exported {
            frames: frames_of(path).await,
            sei: sei_times_of(path),
            stderr,
        });
    }
    let [one, four]: [Exported; 2] = exported.try_into().ok().unwrap();
    assert!(one.stderr.contains("1 chunks"), "{}", one.stderr);
    assert!(four.stderr.contains("4 chunks"), "{}", four.stderr);
    [one, four]
}

/// The two files hold the same frames at the same media times, every frame once, 40 ms apart
/// except across the gaps listed (start ms, end ms).
fn assert_same_frames(one: &Exported, four: &Exported, gaps: &[(i64, i64)]) {
    let times = |e: &Exported| e.frames.iter().map(|f| f.unix_ms).collect::<Vec<_>>();
    let media = |e: &Exported| e.frames.iter().map(|f| f.media_ms).collect::<Vec<_>>();
    assert_eq!(times(four), times(one), "prft frame times");
    assert_eq!(four.sei, one.sei, "SEI recording stamps");
    assert_eq!(four.sei, times(four), "SEI stamps match the prft times");
    assert_eq!(media(four), media(one), "media times");
    for pair in times(four).windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            step == FRAME_MS || gaps.contains(&(pair[0] + FRAME_MS, pair[1])),
            "a step of {step} ms after {} (a duplicate or a hole)",
            pair[0]
        );
    }
    let gap_lines = |stderr: &str| {
        stderr
            .lines()
            .filter(|line| line.starts_with("gaps:") || line.starts_with("  from "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        gap_lines(&four.stderr),
        gap_lines(&one.stderr),
        "gap report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_export_equals_sequential_across_a_gap_with_chunk_starts_mid_gop_and_in_the_gap() {
    // 4 chunks of 5.3 s: 12:04:53.300, 12:04:58.600 (mid-GOP), 12:05:03.900 (in the gap: its
    // session jumps to 12:05:10) and 12:05:09.200 (in the gap too, and also jumps to
    // 12:05:10): chunk 1 stops at 12:05:10, chunk 2 contributes nothing.
    let range = [
        "--from",
        "2025-01-15T12:04:53.3Z",
        "--to",
        "2025-01-15T12:05:14.5Z",
    ];
    let [one, four] = export_sequential_and_parallel(range, &[]).await;
    let expected = grid(&[
        (datetime!(2025-01-15 12:04:53.320 UTC), GAP_START),
        (GAP_END, datetime!(2025-01-15 12:05:14.5 UTC)),
    ]);
    assert_frames_are(&four.frames, &four.sei, &expected);
    assert_same_frames(&one, &four, &[(unix_ms(GAP_START), unix_ms(GAP_END))]);
    assert!(
        four.stderr
            .contains("from 2025-01-15T12:05:00.000Z for 10.000 s"),
        "{}",
        four.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_export_with_chunks_inside_a_gap_closes_it_like_sequential() {
    // 4 chunks of 3.5 s: 12:04:58, then 12:05:01.5, 12:05:05 and 12:05:08.5, all three in the
    // gap: their sessions all start at 12:05:10.
    let range = [
        "--from",
        "2025-01-15T12:04:58Z",
        "--to",
        "2025-01-15T12:05:12Z",
    ];
    let [one, four] = export_sequential_and_parallel(range, &["--close-gaps"]).await;
    let expected = grid(&[
        (datetime!(2025-01-15 12:04:58 UTC), GAP_START),
        (GAP_END, datetime!(2025-01-15 12:05:12 UTC)),
    ]);
    assert_frames_are(&four.frames, &four.sei, &expected);
    assert_same_frames(&one, &four, &[(unix_ms(GAP_START), unix_ms(GAP_END))]);
    // Closed: 4 s of frames, one after the other.
    let media: Vec<i64> = four.frames.iter().map(|f| f.media_ms).collect();
    assert_eq!(media, (0..100).map(|i| i * FRAME_MS).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_export_past_the_last_recording_ends_cleanly() {
    // Chunks from 13:59:56, 14:00:02, 14:00:08, 14:00:14: the last three have no recording.
    let range = [
        "--from",
        "2025-01-15T13:59:56Z",
        "--to",
        "2025-01-15T14:00:20Z",
    ];
    let [one, four] = export_sequential_and_parallel(range, &["--end-wait", "2s"]).await;
    let expected = grid(&[(
        datetime!(2025-01-15 13:59:56 UTC),
        datetime!(2025-01-15 14:00:00 UTC),
    )]);
    assert_frames_are(&four.frames, &four.sei, &expected);
    assert_same_frames(&one, &four, &[]);
    assert!(
        four.stderr
            .contains("complete: the recordings end at 2025-01-15T14:00:00.000Z"),
        "{}",
        four.stderr
    );
}

/// The gateway drops every session a second after it connects: each chunk's playback resumes
/// 1 ms after the last frame it delivered, and the file still holds every recorded frame of the
/// range exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_across_dropped_sessions_keeps_every_frame_once() {
    let emulator = common::start_emulator(xprotect_emulator::EmulatorConfig {
        drop_sessions_after: Some(Duration::from_secs(1)),
        ..xprotect_emulator::EmulatorConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dropped.mp4");
    let from = datetime!(2025-01-15 12:01:00 UTC);
    let to = datetime!(2025-01-15 12:02:00 UTC);
    let (ok, stderr) = export(
        &emulator.gateway_url(),
        &out,
        &[
            "--from",
            "2025-01-15T12:01:00Z",
            "--to",
            "2025-01-15T12:02:00Z",
            "--parallel",
            "2",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("resuming after the last frame"),
        "the sessions were dropped and resumed: {stderr}"
    );
    let frames = frames_of(&out).await;
    assert_frames_are(&frames, &sei_times_of(&out), &grid(&[(from, to)]));
    emulator.shutdown().await;
}
