//! PCMU audio end to end: the real binary records from the in-process emulator; ffprobe sees the
//! streams, ffmpeg decodes the audio, and the emulator's clicks (one at every whole second of
//! recording time) sit on whole seconds of the file's timeline, in step with the video.

mod common;

use common::JournalWatch;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use xprotect_emulator::JournalEvent;
use xprotect_emulator::devices::FRONT_DOOR_MICROPHONE;

/// Between the emulator's tone (peak 1000) and its clicks (peak 20000).
const CLICK_THRESHOLD: i16 = 8_000;

/// Records `camera` to `out` with `args`; asserts that it succeeds within 30 s.
async fn record(gateway: &str, camera: &str, out: &Path, args: &[&str]) -> Output {
    let mut command = common::cli("record", gateway);
    command
        .args(["--bind", "127.0.0.1", "--camera", camera, "-o"])
        .arg(out)
        .args(args);
    let output = common::run_with_password(command, Duration::from_secs(30)).await;
    common::assert_success(&output);
    output
}

/// Codec names of the file's streams, in order, as `type:codec`.
fn stream_codecs(path: &Path) -> Vec<String> {
    let output = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let mut parts: Vec<&str> = l.split(',').collect();
            parts.sort();
            parts.join(":")
        })
        .collect()
}

/// The audio decoded to 8 kHz mono s16le on the file's timeline (`-copyts`, so sample 0 is the
/// track's media time 0), and the start of the audio track in seconds.
fn decoded_audio(path: &Path) -> (Vec<i16>, f64) {
    let start = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=start_time",
        ])
        .args(["-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let start: f64 = String::from_utf8_lossy(&start.stdout)
        .trim()
        .parse()
        .expect("audio start time");
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", "8000", "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples = output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (samples, start)
}

fn clicks(samples: &[i16]) -> Vec<usize> {
    xprotect_emulator::audio::tone::find_clicks(samples, CLICK_THRESHOLD)
}

/// Frame-times lines of one kind.
fn lines(text: &str, kind: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// The recording time of the session's first video frame, from the emulator's journal.
fn first_frame_recording_ms(journal: &mut JournalWatch) -> i64 {
    journal
        .drain()
        .iter()
        .find_map(|event| match event {
            JournalEvent::FirstFrameSent {
                recording_unix_ms, ..
            } => Some(*recording_unix_ms),
            _ => None,
        })
        .expect("the journal has the first frame")
}

/// A live recording with audio: both streams, clicks on whole seconds of the frame clock, and
/// each click within 40 ms of the video frame of that second in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_recording_has_aligned_audio_with_clicks_on_whole_seconds() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let mut journal = JournalWatch::new(&emulator);
    let out = dir.path().join("av.mp4");
    let times = dir.path().join("times.jsonl");
    let camera = common::first_camera().to_string();
    let times_arg = times.to_str().unwrap();
    let args = ["--duration", "2500ms", "--frame-times", times_arg];
    record(&emulator.gateway_url(), &camera, &out, &args).await;
    assert_eq!(stream_codecs(&out), ["h264:video", "audio:pcm_mulaw"]);
    let log = std::fs::read_to_string(&times).unwrap();
    let video = lines(&log, "video");
    let audio = lines(&log, "audio");
    assert!(
        !video.is_empty() && audio.len() > 50,
        "{} audio lines",
        audio.len()
    );
    assert!(
        audio
            .iter()
            .all(|a| a["samples"] == 160 && a["type"] == "audio")
    );
    // Live, the client's start reference is its own clock (arrival − rtp), a few ms off the
    // camera's; the camera's is the recording time of the first frame (RTP 0), which the
    // emulator journals. On the file's timeline media time 0 is that frame.
    let camera_start_ms = first_frame_recording_ms(&mut journal);
    assert_eq!(video[0]["media_ms"], 0);
    let (samples, audio_start) = decoded_audio(&out);
    let found = clicks(&samples);
    assert!(!found.is_empty(), "2.5 s of audio holds a whole second");
    for c in found {
        let media_ms = (audio_start + c as f64 / 8_000.0) * 1_000.0;
        let click_ms = camera_start_ms as f64 + media_ms;
        let off = (click_ms - (click_ms / 1_000.0).round() * 1_000.0).abs();
        assert!(
            off <= 1.0,
            "click at {click_ms} ms is {off} ms off a whole second"
        );
        // The video frame of that second sits within a frame of the click in the file.
        let nearest = video
            .iter()
            .map(|v| (v["media_ms"].as_f64().unwrap() - media_ms).abs())
            .fold(f64::MAX, f64::min);
        assert!(nearest <= 40.0, "nearest frame {nearest} ms from the click");
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audio_flag_records_video_only() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let out = dir.path().join("v.mp4");
    let camera = common::first_camera().to_string();
    let args = ["--duration", "1s", "--no-audio"];
    record(&emulator.gateway_url(), &camera, &out, &args).await;
    assert_eq!(stream_codecs(&out), ["h264:video"]);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_records_an_audio_only_file() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let out = dir.path().join("mic.mp4");
    let mic = FRONT_DOOR_MICROPHONE.to_string();
    record(
        &emulator.gateway_url(),
        &mic,
        &out,
        &["--duration", "1500ms"],
    )
    .await;
    assert_eq!(stream_codecs(&out), ["audio:pcm_mulaw"]);
    let (samples, _) = decoded_audio(&out);
    assert!(samples.len() > 8_000, "{} samples", samples.len());
    assert!(!clicks(&samples).is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_at_speed_one_has_audio_from_the_requested_time() {
    let (emulator, dir) = common::emulator_and_scratch_dir().await;
    let out = dir.path().join("pb.mp4");
    let camera = common::first_camera().to_string();
    let args = ["--from", "2025-01-15T12:00:00.5Z", "--duration", "2s"];
    record(&emulator.gateway_url(), &camera, &out, &args).await;
    assert_eq!(stream_codecs(&out), ["h264:video", "audio:pcm_mulaw"]);
    let (samples, audio_start) = decoded_audio(&out);
    let found = clicks(&samples);
    assert!(!found.is_empty());
    // Start reference 12:00:00.5: whole seconds are at media time 0.5 s, 1.5 s, …
    for c in found {
        let media = audio_start + c as f64 / 8_000.0;
        let off = ((media - 0.5) - (media - 0.5).round()).abs();
        assert!(off <= 0.001, "click at media time {media} s");
    }
    emulator.shutdown().await;
}
