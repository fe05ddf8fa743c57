//! Shared helpers: real H.264 from openh264, a synthetic µ-law tone, and ffmpeg/ffprobe runners.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output};

use openh264::OpenH264API;
use openh264::encoder::{Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod};
use openh264::formats::YUVBuffer;
use xprotect_mp4::{AudioConfig, AudioFrame, MuxError, Muxer, MuxerConfig, VideoFrame, WallClock};

/// 2023-11-14T22:13:20Z, an arbitrary recording start.
pub const START_MICROS: i64 = 1_700_000_000_000_000;

/// One encoded access unit.
pub struct EncodedFrame {
    pub keyframe: bool,
    pub nal_units: Vec<Vec<u8>>,
}

/// Encodes `count` frames of a moving gradient with openh264 at 25 fps, an IDR every
/// `keyframe_interval` frames.
pub fn encode_h264(
    count: usize,
    width: usize,
    height: usize,
    keyframe_interval: u32,
) -> Vec<EncodedFrame> {
    let config = EncoderConfig::new()
        .max_frame_rate(FrameRate::from_hz(25.0))
        .skip_frames(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(keyframe_interval));
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), config).expect("openh264 encoder");
    let mut frames = Vec::with_capacity(count);
    for index in 0..count {
        let mut yuv = vec![0u8; width * height * 3 / 2];
        for y in 0..height {
            for x in 0..width {
                yuv[y * width + x] = ((x + y + index * 4) % 256) as u8;
            }
        }
        for (offset, value) in yuv[width * height..].iter_mut().enumerate() {
            *value = (128 + (offset / width + index) % 64) as u8;
        }
        let buffer = YUVBuffer::from_vec(yuv, width, height);
        let stream = encoder.encode(&buffer).expect("encode");
        let keyframe = matches!(stream.frame_type(), FrameType::IDR);
        frames.push(EncodedFrame {
            keyframe,
            nal_units: split_annex_b(&stream.to_vec()),
        });
    }
    frames
}

/// Splits an Annex B byte stream at its start codes.
pub fn split_annex_b(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1; // the zero of a four-byte start code
        }
        nals.push(data[start..end].to_vec());
    }
    nals
}

/// Pushes one video frame at `media_time_ms`, with wall clock `START + media time`.
pub fn push_video(
    muxer: &mut Muxer,
    frame: &EncodedFrame,
    media_time_ms: i64,
) -> Result<Vec<u8>, MuxError> {
    let nal_refs: Vec<&[u8]> = frame.nal_units.iter().map(Vec::as_slice).collect();
    muxer.push_video(&VideoFrame {
        media_time_ms,
        wall_clock: WallClock::from_unix_micros(START_MICROS + media_time_ms * 1000),
        keyframe: frame.keyframe,
        nal_units: &nal_refs,
    })
}

/// Pushes 20 ms of a 440 Hz µ-law tone at `media_time_samples` (8 kHz).
pub fn push_audio(muxer: &mut Muxer, media_time_samples: i64) -> Result<Vec<u8>, MuxError> {
    let payload: Vec<u8> = (0..160)
        .map(|n| {
            let t = (media_time_samples + n) as f64 / 8000.0;
            linear_to_ulaw((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect();
    muxer.push_audio(&AudioFrame {
        media_time_samples,
        wall_clock: WallClock::from_unix_micros(START_MICROS + media_time_samples * 125),
        payload: &payload,
    })
}

/// G.711 µ-law encoding of one 16-bit sample.
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let sign = if sample < 0 { 0x80 } else { 0 };
    let magnitude = (i32::from(sample).abs().min(32635) + BIAS) as u32;
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

pub fn av_config() -> MuxerConfig {
    MuxerConfig {
        audio: Some(AudioConfig::Pcmu {
            sample_rate: 8000,
            channels: 1,
        }),
        ..MuxerConfig::default()
    }
}

/// Runs a tool from ffmpeg; fails the test (not skips) when it is missing.
fn run(tool: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(error) => {
            panic!("cannot run {tool} ({error}): install ffmpeg (e.g. apt-get install ffmpeg)")
        }
    }
}

/// `ffprobe` with the given arguments on `path`, returning stdout; panics on failure.
pub fn ffprobe(path: &Path, args: &[&str]) -> String {
    let mut all = vec!["-v", "error"];
    all.extend_from_slice(args);
    let path = path.to_str().expect("temp path is UTF-8");
    all.push(path);
    let output = run("ffprobe", &all);
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("ffprobe output is UTF-8")
}

/// Decodes the whole file with ffmpeg, returning (success, stderr).
pub fn ffmpeg_decode(path: &Path) -> (bool, String) {
    let path = path.to_str().expect("temp path is UTF-8");
    let output = run(
        "ffmpeg",
        &["-nostdin", "-v", "error", "-i", path, "-f", "null", "-"],
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes bytes to a new temporary `.mp4` file.
pub fn write_temp(bytes: &[u8]) -> tempfile::TempPath {
    let mut file = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, bytes).expect("write temp file");
    file.into_temp_path()
}

/// Value of `key=value` lines from `ffprobe -of default=noprint_wrappers=1`.
pub fn values<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}
