//! Muxer behaviour without external tools: start-up, errors, fragment cutting, chunk integrity.

use xprotect_mp4::{
    MuxError, Muxer, MuxerConfig, TrackKind, VideoFrame, WallClock, read_frame_times,
};

const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x02, 0xc4, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
    0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x92,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00];
const P: &[u8] = &[0x41, 0x9a, 0x02];

fn frame<'a>(ms: i64, keyframe: bool, nal_units: &'a [&'a [u8]]) -> VideoFrame<'a> {
    VideoFrame {
        media_time_ms: ms,
        wall_clock: WallClock::from_unix_micros(1_700_000_000_000_000 + ms * 1000),
        keyframe,
        nal_units,
    }
}

/// Asserts `chunk` is a whole number of boxes and returns their types.
fn box_types(mut chunk: &[u8]) -> Vec<[u8; 4]> {
    let mut types = Vec::new();
    while !chunk.is_empty() {
        let size = u32::from_be_bytes(chunk[..4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && size <= chunk.len(),
            "chunk does not end on a box boundary"
        );
        types.push(chunk[4..8].try_into().unwrap());
        chunk = &chunk[size..];
    }
    types
}

#[test]
fn frames_before_first_keyframe_are_not_started() {
    let mut muxer = Muxer::new(MuxerConfig::default()).unwrap();
    assert_eq!(
        muxer.push_video(&frame(0, false, &[P])),
        Err(MuxError::NotStarted)
    );
    // Keyframe without parameter sets seen anywhere yet.
    assert_eq!(
        muxer.push_video(&frame(40, true, &[IDR])),
        Err(MuxError::NotStarted)
    );
    // Parameter sets out of band, in an earlier access unit, are remembered.
    assert_eq!(
        muxer.push_video(&frame(80, false, &[SPS, PPS])),
        Err(MuxError::NotStarted)
    );
    let init = muxer.push_video(&frame(120, true, &[IDR])).unwrap();
    assert_eq!(box_types(&init), [*b"ftyp", *b"moov"]);
}

#[test]
fn invalid_input_is_rejected_without_changing_state() {
    assert!(matches!(
        Muxer::new(MuxerConfig {
            video: false,
            ..MuxerConfig::default()
        }),
        Err(MuxError::InvalidConfig(_))
    ));
    let mut muxer = Muxer::new(MuxerConfig::default()).unwrap();
    muxer.push_video(&frame(0, true, &[SPS, PPS, IDR])).unwrap();
    assert!(matches!(
        muxer.push_video(&frame(0, false, &[P])),
        Err(MuxError::NonMonotonicTime {
            track: TrackKind::Video,
            ..
        })
    ));
    assert_eq!(
        muxer.push_video(&frame(40, false, &[&[]])),
        Err(MuxError::EmptyFrame(TrackKind::Video))
    );
    assert!(matches!(
        muxer.push_video(&frame(-1, false, &[P])),
        Err(MuxError::MediaTimeOutOfRange { .. })
    ));
    let mut bad_clock = frame(40, false, &[P]);
    bad_clock.wall_clock = WallClock::from_unix_micros(i64::MIN);
    assert!(matches!(
        muxer.push_video(&bad_clock),
        Err(MuxError::WallClockOutOfRange(_))
    ));
    assert!(matches!(
        muxer.push_audio(&xprotect_mp4::AudioFrame {
            media_time_samples: 0,
            wall_clock: WallClock::from_unix_micros(0),
            payload: &[0]
        }),
        Err(MuxError::TrackNotConfigured(TrackKind::Audio))
    ));
    // Still usable.
    muxer.push_video(&frame(40, false, &[P])).unwrap();
    let last = muxer.finish().unwrap();
    assert_eq!(box_types(&last), [*b"prft", *b"moof", *b"mdat"]);
    assert_eq!(muxer.finish().unwrap(), Vec::<u8>::new());
    assert_eq!(
        muxer.push_video(&frame(80, false, &[P])),
        Err(MuxError::Finished)
    );
}

#[test]
fn long_gops_are_cut_at_max_fragment_duration_with_non_sync_start() {
    let mut muxer = Muxer::new(MuxerConfig {
        max_fragment_duration_ms: 200,
        ..MuxerConfig::default()
    })
    .unwrap();
    let mut file = Vec::new();
    let mut fragment_chunks = 0;
    for index in 0..25 {
        let ms = index * 40;
        let nal_units: &[&[u8]] = if index == 0 { &[SPS, PPS, IDR] } else { &[P] };
        let chunk = muxer.push_video(&frame(ms, index == 0, nal_units)).unwrap();
        let types = box_types(&chunk);
        if types.contains(b"moof") {
            fragment_chunks += 1;
        }
        file.extend(chunk);
    }
    file.extend(muxer.finish().unwrap());
    assert_eq!(fragment_chunks, 4, "fragments at 200, 400, 600, 800 ms");
    let times = read_frame_times(&file).unwrap();
    assert_eq!(times.len(), 25);
    assert!(times[0].keyframe && times[1..].iter().all(|t| !t.keyframe));
    assert!(times.iter().all(|t| t.duration == 3600));
}
