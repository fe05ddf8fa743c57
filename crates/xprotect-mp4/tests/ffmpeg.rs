//! Muxes real H.264 (openh264) and PCMU, then checks the files with ffprobe/ffmpeg.
//! These tests fail (not skip) when ffmpeg is not installed.

mod common;

use common::*;
use xprotect_mp4::{Muxer, MuxerConfig, TrackKind, WallClock, read_frame_times};

/// Muxes `frames` at 40 ms spacing (plus `gap_ms` from frame `gap_at` on), returning every
/// non-empty chunk the muxer returned, the last one from `finish`.
fn mux_video(frames: &[EncodedFrame], gap_at: usize, gap_ms: i64) -> Vec<Vec<u8>> {
    let mut muxer = Muxer::new(MuxerConfig::default()).unwrap();
    let mut chunks = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        let gap = if index >= gap_at { gap_ms } else { 0 };
        let chunk = push_video(&mut muxer, frame, index as i64 * 40 + gap).unwrap();
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
    }
    chunks.push(muxer.finish().unwrap());
    chunks
}

#[test]
fn video_only_file_plays_with_all_frames_and_duration() {
    let frames = encode_h264(100, 320, 240, 25);
    assert!(frames[0].keyframe && frames[25].keyframe && !frames[1].keyframe);
    let chunks = mux_video(&frames, usize::MAX, 0);
    // Init segment with the first fragment's bytes only when the second keyframe arrives:
    // init (at frame 0), then fragments at frames 25, 50, 75, and the last from finish.
    assert_eq!(chunks.len(), 4 + 1);
    let path = write_temp(&chunks.concat());

    let probe = ffprobe(
        &path,
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ],
    );
    assert_eq!(values(&probe, "codec_name"), ["h264"], "{probe}");
    assert_eq!(values(&probe, "width"), ["320"]);
    assert_eq!(values(&probe, "height"), ["240"]);
    assert_eq!(values(&probe, "nb_read_frames"), ["100"]);
    let duration: f64 = values(&probe, "duration")[0].parse().unwrap();
    assert!((duration - 4.0).abs() < 1e-6, "duration {duration}");

    let (ok, stderr) = ffmpeg_decode(&path);
    assert!(ok && stderr.is_empty(), "ffmpeg decode errors: {stderr}");
}

#[test]
fn truncated_file_keeps_complete_fragments() {
    let frames = encode_h264(100, 320, 240, 25);
    let chunks = mux_video(&frames, usize::MAX, 0);
    // chunks[0] = init segment (+ nothing else); chunks[1] = fragment 1 (frames 0..25), etc.
    let init_and_two = chunks[..3].concat();
    let path = write_temp(&init_and_two);
    let probe = ffprobe(
        &path,
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=noprint_wrappers=1",
        ],
    );
    assert_eq!(values(&probe, "nb_read_frames"), ["50"]);
    let (ok, stderr) = ffmpeg_decode(&path);
    assert!(
        ok && stderr.is_empty(),
        "cut after a fragment must decode cleanly: {stderr}"
    );
    assert_eq!(read_frame_times(&init_and_two).unwrap().len(), 50);

    // Cut inside the third fragment at several points (pseudo-random but fixed, so failures
    // replay). ffmpeg must still exit successfully and decode the 50 complete frames; it may
    // report the torn trailing box, which is the only stderr content we allow.
    let third = &chunks[3];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let cut = 1 + (seed % (third.len() as u64 - 1)) as usize;
        let mut bytes = init_and_two.clone();
        bytes.extend_from_slice(&third[..cut]);
        let path = write_temp(&bytes);
        let (ok, stderr) = ffmpeg_decode(&path);
        assert!(
            ok,
            "cut at {cut} of {}: ffmpeg failed: {stderr}",
            third.len()
        );
        for line in stderr.lines() {
            assert!(
                is_truncation_message(line),
                "cut at {cut}: unexpected ffmpeg error: {line}"
            );
        }
        let probe = ffprobe(
            &path,
            &[
                "-select_streams",
                "v:0",
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "default=noprint_wrappers=1",
            ],
        );
        let decoded: usize = values(&probe, "nb_read_frames")[0].parse().unwrap();
        assert!(decoded >= 50, "cut at {cut}: only {decoded} frames decoded");
        assert_eq!(read_frame_times(&bytes).unwrap().len(), 50, "cut at {cut}");
    }
}

/// What ffmpeg 5.1 reports about a fragment torn at end of file: the demuxer's "partial file"
/// for samples past the end, and the H.264 parser's and decoder's complaints about the one torn
/// sample. Anything else (an error in a complete fragment) fails the test.
fn is_truncation_message(line: &str) -> bool {
    [
        ": partial file",
        "Invalid NAL unit size",
        "missing picture in access unit",
        "Error splitting the input into NAL units",
        "Error while decoding stream #0:0: Invalid data found when processing input",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

#[test]
fn audio_and_video_streams_are_aligned() {
    let frames = encode_h264(100, 320, 240, 25);
    let mut muxer = Muxer::new(av_config()).unwrap();
    let mut file = Vec::new();
    // Audio 20 ms blocks interleaved with 40 ms video frames, as they arrive from the network.
    for (index, frame) in frames.iter().enumerate() {
        let ms = index as i64 * 40;
        file.extend(push_video(&mut muxer, frame, ms).unwrap());
        for block in 0..2 {
            file.extend(push_audio(&mut muxer, (ms + block * 20) * 8).unwrap());
        }
    }
    file.extend(muxer.finish().unwrap());
    let path = write_temp(&file);

    let probe = ffprobe(
        &path,
        &[
            "-show_entries",
            "stream=index,codec_name,sample_rate,channels",
            "-of",
            "default=noprint_wrappers=1",
        ],
    );
    assert_eq!(
        values(&probe, "codec_name"),
        ["h264", "pcm_mulaw"],
        "{probe}"
    );
    assert_eq!(values(&probe, "sample_rate"), ["8000"]);
    assert_eq!(values(&probe, "channels"), ["1"]);

    let packets = ffprobe(
        &path,
        &[
            "-show_entries",
            "packet=stream_index,pts_time,duration_time",
            "-of",
            "csv=p=0",
        ],
    );
    let mut end = [0f64; 2];
    let mut count = [0usize; 2];
    for line in packets.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let stream: usize = fields[0].parse().unwrap();
        let pts: f64 = fields[1].parse().unwrap();
        // ffmpeg 5.1 leaves the duration of some early video packets of interleaved fragments
        // unset ("N/A"); the stream end is what matters here.
        let duration: f64 = fields[2].parse().unwrap_or(0.0);
        end[stream] = end[stream].max(pts + duration);
        count[stream] += 1;
    }
    assert_eq!(count, [100, 200]);
    assert!(
        (end[0] - 4.0).abs() < 1e-6 && (end[1] - 4.0).abs() < 1e-6,
        "stream ends {end:?}"
    );

    let (ok, stderr) = ffmpeg_decode(&path);
    assert!(ok && stderr.is_empty(), "ffmpeg decode errors: {stderr}");

    // Frame times round-trip through prft.
    let times = read_frame_times(&file).unwrap();
    let video: Vec<_> = times
        .iter()
        .filter(|t| t.kind == Some(TrackKind::Video))
        .collect();
    let audio: Vec<_> = times
        .iter()
        .filter(|t| t.kind == Some(TrackKind::Audio))
        .collect();
    assert_eq!((video.len(), audio.len()), (100, 200));
    for (index, sample) in video.iter().enumerate() {
        let ms = index as i64 * 40;
        assert_eq!(sample.media_time, ms as u64 * 90);
        assert_eq!(
            sample.wall_clock,
            Some(WallClock::from_unix_micros(START_MICROS + ms * 1000))
        );
        assert_eq!(sample.keyframe, index % 25 == 0);
        assert_eq!(
            sample.size as usize,
            frames[index]
                .nal_units
                .iter()
                .map(|n| n.len() + 4)
                .sum::<usize>()
        );
    }
    for (index, sample) in audio.iter().enumerate() {
        let samples = index as i64 * 160;
        assert_eq!(
            (sample.media_time, sample.duration, sample.size),
            (samples as u64, 160, 160)
        );
        assert_eq!(
            sample.wall_clock,
            Some(WallClock::from_unix_micros(START_MICROS + samples * 125))
        );
    }
}

#[test]
fn audio_only_file_plays() {
    let mut muxer = Muxer::new(MuxerConfig {
        video: false,
        ..av_config()
    })
    .unwrap();
    let mut file = Vec::new();
    for block in 0..150 {
        file.extend(push_audio(&mut muxer, block * 160).unwrap());
    }
    file.extend(muxer.finish().unwrap());
    let path = write_temp(&file);
    let probe = ffprobe(
        &path,
        &[
            "-count_packets",
            "-show_entries",
            "stream=codec_name,nb_read_packets:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ],
    );
    assert_eq!(values(&probe, "codec_name"), ["pcm_mulaw"], "{probe}");
    assert_eq!(values(&probe, "nb_read_packets"), ["150"]);
    let duration: f64 = values(&probe, "duration")[0].parse().unwrap();
    assert!((duration - 3.0).abs() < 1e-6, "duration {duration}");
    let (ok, stderr) = ffmpeg_decode(&path);
    assert!(ok && stderr.is_empty(), "ffmpeg decode errors: {stderr}");
    let times = read_frame_times(&file).unwrap();
    assert_eq!(times.len(), 150);
    assert_eq!(
        times[149].wall_clock,
        Some(WallClock::from_unix_micros(START_MICROS + 149 * 160 * 125))
    );
}

#[test]
fn media_time_gap_is_preserved() {
    let frames = encode_h264(100, 320, 240, 25);
    // Frames 60.. jump 10 s ahead (a recording gap), in the middle of a GOP.
    let file = mux_video(&frames, 60, 10_000).concat();
    let path = write_temp(&file);
    let probe = ffprobe(
        &path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
        ],
    );
    let pts: Vec<f64> = probe
        .lines()
        .map(|line| line.trim_end_matches(',').parse().unwrap())
        .collect();
    assert_eq!(pts.len(), 100);
    for (index, &time) in pts.iter().enumerate() {
        let expected = index as f64 * 0.040 + if index >= 60 { 10.0 } else { 0.0 };
        assert!(
            (time - expected).abs() < 1e-6,
            "frame {index}: pts {time}, expected {expected}"
        );
    }
    let (ok, stderr) = ffmpeg_decode(&path);
    assert!(ok && stderr.is_empty(), "ffmpeg decode errors: {stderr}");

    let times = read_frame_times(&file).unwrap();
    assert_eq!(times[59].duration, 10_040 * 90);
    assert_eq!(
        times[60].wall_clock,
        Some(WallClock::from_unix_micros(
            START_MICROS + (60 * 40 + 10_000) * 1000
        ))
    );
}
