//! Micro benchmark: muxing throughput for 25 fps video with 20 ms PCMU blocks.
//!
//! Run with `cargo run --release -p xprotect-mp4 --example mux_throughput`.

use std::time::Instant;

use xprotect_mp4::{AudioConfig, AudioFrame, Muxer, MuxerConfig, VideoFrame, WallClock};

/// Constrained Baseline 176x144 SPS and PPS (from x264).
const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x02, 0xc4, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
    0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x92,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
const FRAMES: i64 = 200_000;

fn main() -> Result<(), xprotect_mp4::MuxError> {
    // Typical sizes for a 2 Mbit/s camera stream: 60 KB keyframes, 8 KB delta frames.
    let idr = vec![0x65u8; 60_000];
    let delta = vec![0x41u8; 8_000];
    let audio = vec![0xffu8; 160];
    let mut muxer = Muxer::new(MuxerConfig {
        audio: Some(AudioConfig::default()),
        ..MuxerConfig::default()
    })?;
    let mut written = 0usize;
    let started = Instant::now();
    for index in 0..FRAMES {
        let ms = index * 40;
        let wall_clock = WallClock::from_unix_micros(1_700_000_000_000_000 + ms * 1000);
        let keyframe = index % 25 == 0;
        let key_units: [&[u8]; 3] = [SPS, PPS, &idr];
        let delta_units: [&[u8]; 1] = [&delta];
        let frame = VideoFrame {
            media_time_ms: ms,
            wall_clock,
            keyframe,
            nal_units: if keyframe { &key_units } else { &delta_units },
        };
        written += muxer.push_video(&frame)?.len();
        for block in 0..2 {
            let samples = (ms + block * 20) * 8;
            written += muxer
                .push_audio(&AudioFrame {
                    media_time_samples: samples,
                    wall_clock: WallClock::from_unix_micros(1_700_000_000_000_000 + samples * 125),
                    payload: &audio,
                })?
                .len();
        }
    }
    written += muxer.finish()?.len();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{FRAMES} video frames + {} audio blocks in {elapsed:.3} s: {:.0} video frames/s, {:.0} MB/s ({} bytes)",
        FRAMES * 2,
        FRAMES as f64 / elapsed,
        written as f64 / elapsed / 1e6,
        written
    );
    Ok(())
}
