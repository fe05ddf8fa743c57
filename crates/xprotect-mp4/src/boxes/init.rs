//! Init segment boxes: `ftyp` and `moov` with one `trak` per track and `mvex` announcing that
//! the samples come in movie fragments.

use super::{put_u16, put_u32, put_u64, put_zeros, write_box, write_full_box};
use crate::sps::SpsInfo;

/// Movie timescale; only used for the (zero) movie and track durations.
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;
/// Video media timescale: the usual 90 kHz, so millisecond media times map exactly.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// What the init segment needs to know about the video track.
pub(crate) struct VideoInit<'a> {
    pub(crate) track_id: u32,
    pub(crate) sps_info: SpsInfo,
    pub(crate) sps: &'a [u8],
    pub(crate) pps: &'a [Vec<u8>],
}

/// What the init segment needs to know about the PCMU audio track.
pub(crate) struct AudioInit {
    pub(crate) track_id: u32,
    pub(crate) sample_rate: u16,
    pub(crate) channels: u16,
}

/// Everything in the init segment.
pub(crate) struct InitSegment<'a> {
    /// Seconds since 1904 for `creation_time`/`modification_time`.
    pub(crate) creation_time: u64,
    pub(crate) video: Option<VideoInit<'a>>,
    pub(crate) audio: Option<AudioInit>,
}

/// Writes `ftyp` + `moov`.
pub(crate) fn write_init_segment(buf: &mut Vec<u8>, init: &InitSegment<'_>) {
    write_ftyp(buf, init.video.is_some());
    write_moov(buf, init);
}

/// `ftyp`: `iso6` (for `tfdt`) and `iso5` (for default-base-is-moof). No CMAF brand: CMAF puts
/// each track in its own file, and our files interleave video and audio.
pub(crate) fn write_ftyp(buf: &mut Vec<u8>, has_video: bool) {
    write_box(buf, *b"ftyp", |buf| {
        buf.extend_from_slice(b"iso6");
        put_u32(buf, 0);
        buf.extend_from_slice(b"iso6iso5mp41");
        if has_video {
            buf.extend_from_slice(b"avc1");
        }
    });
}

fn write_moov(buf: &mut Vec<u8>, init: &InitSegment<'_>) {
    write_box(buf, *b"moov", |buf| {
        let next_track_id = init
            .video
            .as_ref()
            .map(|v| v.track_id)
            .into_iter()
            .chain(init.audio.as_ref().map(|a| a.track_id))
            .max()
            .unwrap_or(0)
            + 1;
        write_mvhd(buf, init.creation_time, next_track_id);
        if let Some(video) = &init.video {
            write_video_trak(buf, init.creation_time, video);
        }
        if let Some(audio) = &init.audio {
            write_audio_trak(buf, init.creation_time, audio);
        }
        write_box(buf, *b"mvex", |buf| {
            if let Some(video) = &init.video {
                write_trex(buf, video.track_id);
            }
            if let Some(audio) = &init.audio {
                write_trex(buf, audio.track_id);
            }
        });
    });
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
fn put_unity_matrix(buf: &mut Vec<u8>) {
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put_u32(buf, value);
    }
}

/// `mvhd` version 1 (64-bit times); duration 0 because the samples live in fragments.
pub(crate) fn write_mvhd(buf: &mut Vec<u8>, creation_time: u64, next_track_id: u32) {
    write_full_box(buf, *b"mvhd", 1, 0, |buf| {
        put_u64(buf, creation_time);
        put_u64(buf, creation_time);
        put_u32(buf, MOVIE_TIMESCALE);
        put_u64(buf, 0);
        put_u32(buf, 0x0001_0000); // rate 1.0
        put_u16(buf, 0x0100); // volume 1.0
        put_zeros(buf, 2 + 8);
        put_unity_matrix(buf);
        put_zeros(buf, 6 * 4);
        put_u32(buf, next_track_id);
    });
}

/// `tkhd` version 1, flags enabled | in movie.
pub(crate) fn write_tkhd(
    buf: &mut Vec<u8>,
    creation_time: u64,
    track_id: u32,
    is_audio: bool,
    width: u16,
    height: u16,
) {
    write_full_box(buf, *b"tkhd", 1, 0x000003, |buf| {
        put_u64(buf, creation_time);
        put_u64(buf, creation_time);
        put_u32(buf, track_id);
        put_u32(buf, 0);
        put_u64(buf, 0);
        put_zeros(buf, 8);
        put_u16(buf, 0); // layer
        put_u16(buf, 0); // alternate_group
        put_u16(buf, if is_audio { 0x0100 } else { 0 });
        put_u16(buf, 0);
        put_unity_matrix(buf);
        put_u32(buf, u32::from(width) << 16);
        put_u32(buf, u32::from(height) << 16);
    });
}

/// `mdhd` version 1 with language `und`.
pub(crate) fn write_mdhd(buf: &mut Vec<u8>, creation_time: u64, timescale: u32) {
    write_full_box(buf, *b"mdhd", 1, 0, |buf| {
        put_u64(buf, creation_time);
        put_u64(buf, creation_time);
        put_u32(buf, timescale);
        put_u64(buf, 0);
        // ISO-639-2 "und", 5 bits per letter offset by 0x60.
        put_u16(
            buf,
            (u16::from(b'u' - 0x60) << 10) | (u16::from(b'n' - 0x60) << 5) | u16::from(b'd' - 0x60),
        );
        put_u16(buf, 0);
    });
}

/// `hdlr` with a NUL-terminated name.
pub(crate) fn write_hdlr(buf: &mut Vec<u8>, handler_type: [u8; 4], name: &str) {
    write_full_box(buf, *b"hdlr", 0, 0, |buf| {
        put_u32(buf, 0);
        buf.extend_from_slice(&handler_type);
        put_zeros(buf, 12);
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
    });
}

fn write_video_trak(buf: &mut Vec<u8>, creation_time: u64, video: &VideoInit<'_>) {
    write_box(buf, *b"trak", |buf| {
        let (width, height) = (video.sps_info.width, video.sps_info.height);
        write_tkhd(buf, creation_time, video.track_id, false, width, height);
        write_box(buf, *b"mdia", |buf| {
            write_mdhd(buf, creation_time, VIDEO_TIMESCALE);
            write_hdlr(buf, *b"vide", "VideoHandler");
            write_box(buf, *b"minf", |buf| {
                write_vmhd(buf);
                write_dinf(buf);
                write_stbl(buf, |buf| write_avc1(buf, video));
            });
        });
    });
}

fn write_audio_trak(buf: &mut Vec<u8>, creation_time: u64, audio: &AudioInit) {
    write_box(buf, *b"trak", |buf| {
        write_tkhd(buf, creation_time, audio.track_id, true, 0, 0);
        write_box(buf, *b"mdia", |buf| {
            write_mdhd(buf, creation_time, u32::from(audio.sample_rate));
            write_hdlr(buf, *b"soun", "SoundHandler");
            write_box(buf, *b"minf", |buf| {
                write_smhd(buf);
                write_dinf(buf);
                write_stbl(buf, |buf| write_ulaw(buf, audio));
            });
        });
    });
}

pub(crate) fn write_vmhd(buf: &mut Vec<u8>) {
    write_full_box(buf, *b"vmhd", 0, 1, |buf| put_zeros(buf, 8));
}

pub(crate) fn write_smhd(buf: &mut Vec<u8>) {
    write_full_box(buf, *b"smhd", 0, 0, |buf| put_zeros(buf, 4));
}

/// `dinf` with one self-contained `url ` entry (the media is in this file).
pub(crate) fn write_dinf(buf: &mut Vec<u8>) {
    write_box(buf, *b"dinf", |buf| {
        write_full_box(buf, *b"dref", 0, 0, |buf| {
            put_u32(buf, 1);
            write_full_box(buf, *b"url ", 0, 1, |_| {});
        });
    });
}

/// `stbl` with one sample entry and the empty sample tables a fragmented file requires.
fn write_stbl(buf: &mut Vec<u8>, sample_entry: impl FnOnce(&mut Vec<u8>)) {
    write_box(buf, *b"stbl", |buf| {
        write_full_box(buf, *b"stsd", 0, 0, |buf| {
            put_u32(buf, 1);
            sample_entry(buf);
        });
        write_full_box(buf, *b"stts", 0, 0, |buf| put_u32(buf, 0));
        write_full_box(buf, *b"stsc", 0, 0, |buf| put_u32(buf, 0));
        write_full_box(buf, *b"stsz", 0, 0, |buf| put_zeros(buf, 8));
        write_full_box(buf, *b"stco", 0, 0, |buf| put_u32(buf, 0));
    });
}

/// `avc1` visual sample entry (ISO/IEC 14496-15 §5.4.2) containing `avcC`.
pub(crate) fn write_avc1(buf: &mut Vec<u8>, video: &VideoInit<'_>) {
    write_box(buf, *b"avc1", |buf| {
        put_zeros(buf, 6);
        put_u16(buf, 1); // data_reference_index
        put_zeros(buf, 16); // pre_defined, reserved
        put_u16(buf, video.sps_info.width);
        put_u16(buf, video.sps_info.height);
        put_u32(buf, 0x0048_0000); // 72 dpi
        put_u32(buf, 0x0048_0000);
        put_u32(buf, 0);
        put_u16(buf, 1); // frame_count
        put_zeros(buf, 32); // compressorname: empty Pascal string
        put_u16(buf, 0x0018); // depth
        put_u16(buf, 0xffff); // pre_defined = -1
        write_avcc(buf, video);
    });
}

/// `avcC`: AVCDecoderConfigurationRecord with 4-byte NAL lengths.
pub(crate) fn write_avcc(buf: &mut Vec<u8>, video: &VideoInit<'_>) {
    write_box(buf, *b"avcC", |buf| {
        let info = &video.sps_info;
        buf.push(1); // configurationVersion
        buf.push(info.profile_idc);
        buf.push(info.constraint_flags);
        buf.push(info.level_idc);
        buf.push(0xfc | 3); // lengthSizeMinusOne = 3
        buf.push(0xe0 | 1); // one SPS
        put_parameter_set(buf, video.sps);
        // The muxer keeps at most 32 PPS (pic_parameter_set_id ≤ 255, but we cap the list).
        buf.push(video.pps.len().min(usize::from(u8::MAX)) as u8);
        for pps in video.pps.iter().take(usize::from(u8::MAX)) {
            put_parameter_set(buf, pps);
        }
        if info.has_avcc_extension() {
            buf.push(0xfc | info.chroma_format_idc);
            buf.push(0xf8 | info.bit_depth_luma_minus8);
            buf.push(0xf8 | info.bit_depth_chroma_minus8);
            buf.push(0); // numOfSequenceParameterSetExt
        }
    });
}

fn put_parameter_set(buf: &mut Vec<u8>, nal: &[u8]) {
    // Parameter sets are limited to MAX_PARAMETER_SET_BYTES by the muxer, far below 64 KiB.
    put_u16(buf, u16::try_from(nal.len()).unwrap_or(u16::MAX));
    buf.extend_from_slice(nal);
}

/// `ulaw` audio sample entry: G.711 µ-law, one byte per sample and channel. ffmpeg's MP4/MOV
/// demuxer maps this four-character code to `pcm_mulaw`.
pub(crate) fn write_ulaw(buf: &mut Vec<u8>, audio: &AudioInit) {
    write_box(buf, *b"ulaw", |buf| {
        put_zeros(buf, 6);
        put_u16(buf, 1); // data_reference_index
        put_zeros(buf, 8); // version, revision, vendor (ISO: reserved)
        put_u16(buf, audio.channels);
        put_u16(buf, 16); // samplesize: ISO template value; the codec fixes 8 bits coded
        put_u16(buf, 0);
        put_u16(buf, 0);
        put_u32(buf, u32::from(audio.sample_rate) << 16);
    });
}

/// `trex` with neutral defaults; every fragment states durations, sizes and flags itself.
pub(crate) fn write_trex(buf: &mut Vec<u8>, track_id: u32) {
    write_full_box(buf, *b"trex", 0, 0, |buf| {
        put_u32(buf, track_id);
        put_u32(buf, 1); // default_sample_description_index
        put_zeros(buf, 12);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::tests::{children, single};

    fn video_init(pps: &[Vec<u8>]) -> VideoInit<'_> {
        VideoInit {
            track_id: 1,
            sps_info: SpsInfo {
                profile_idc: 100,
                constraint_flags: 0,
                level_idc: 31,
                chroma_format_idc: 1,
                bit_depth_luma_minus8: 0,
                bit_depth_chroma_minus8: 0,
                width: 1280,
                height: 720,
            },
            sps: &[0x67, 0x64, 0x00, 0x1f],
            pps,
        }
    }

    #[test]
    fn ftyp_brands() {
        let mut buf = Vec::new();
        write_ftyp(&mut buf, true);
        assert_eq!(single(&buf, b"ftyp"), b"iso6\0\0\0\0iso6iso5mp41avc1");
        buf.clear();
        write_ftyp(&mut buf, false);
        assert_eq!(single(&buf, b"ftyp"), b"iso6\0\0\0\0iso6iso5mp41");
    }

    #[test]
    fn mvhd_layout() {
        let mut buf = Vec::new();
        write_mvhd(&mut buf, 0x0102_0304_0506_0708, 3);
        let body = single(&buf, b"mvhd");
        assert_eq!(body.len(), 4 + 8 + 8 + 4 + 8 + 80);
        assert_eq!(body[0], 1);
        assert_eq!(&body[4..12], &0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(&body[20..24], &MOVIE_TIMESCALE.to_be_bytes());
        assert_eq!(&body[body.len() - 4..], &3u32.to_be_bytes());
    }

    #[test]
    fn tkhd_layout() {
        let mut buf = Vec::new();
        write_tkhd(&mut buf, 9, 2, false, 320, 240);
        let body = single(&buf, b"tkhd");
        assert_eq!(body.len(), 4 + 8 + 8 + 4 + 4 + 8 + 8 + 8 + 36 + 8);
        assert_eq!(&body[0..4], &[1, 0, 0, 3]);
        assert_eq!(&body[20..24], &2u32.to_be_bytes());
        assert_eq!(&body[body.len() - 8..], &[1, 64, 0, 0, 0, 240, 0, 0]);
    }

    #[test]
    fn mdhd_language_is_und() {
        let mut buf = Vec::new();
        write_mdhd(&mut buf, 0, 8000);
        let body = single(&buf, b"mdhd");
        assert_eq!(&body[20..24], &8000u32.to_be_bytes());
        assert_eq!(&body[32..34], &[0x55, 0xc4]);
    }

    #[test]
    fn hdlr_name_is_nul_terminated() {
        let mut buf = Vec::new();
        write_hdlr(&mut buf, *b"soun", "S");
        assert_eq!(
            single(&buf, b"hdlr"),
            b"\0\0\0\0\0\0\0\0soun\0\0\0\0\0\0\0\0\0\0\0\0S\0"
        );
    }

    #[test]
    fn avcc_high_profile_has_extension() {
        let pps = vec![vec![0x68, 0xee, 0x3c, 0x80]];
        let mut buf = Vec::new();
        write_avcc(&mut buf, &video_init(&pps));
        assert_eq!(
            single(&buf, b"avcC"),
            [
                1, 100, 0, 31, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0x00, 0x1f, 1, 0, 4, 0x68, 0xee, 0x3c,
                0x80, 0xfd, 0xf8, 0xf8, 0
            ]
        );
    }

    #[test]
    fn avc1_carries_dimensions_and_avcc() {
        let pps = vec![vec![0x68, 0xee]];
        let mut buf = Vec::new();
        write_avc1(&mut buf, &video_init(&pps));
        let body = single(&buf, b"avc1");
        assert_eq!(&body[24..28], &[5, 0, 2, 208]);
        let inner = children(&body[78..]);
        assert_eq!(inner.len(), 1);
        assert_eq!(&inner[0].0, b"avcC");
    }

    #[test]
    fn ulaw_sample_entry() {
        let mut buf = Vec::new();
        write_ulaw(
            &mut buf,
            &AudioInit {
                track_id: 2,
                sample_rate: 8000,
                channels: 1,
            },
        );
        let body = single(&buf, b"ulaw");
        assert_eq!(body.len(), 28);
        assert_eq!(&body[16..20], &[0, 1, 0, 16]);
        assert_eq!(&body[24..28], &[0x1f, 0x40, 0, 0]);
    }

    #[test]
    fn trex_and_dinf() {
        let mut buf = Vec::new();
        write_trex(&mut buf, 7);
        assert_eq!(
            single(&buf, b"trex"),
            [
                0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        buf.clear();
        write_dinf(&mut buf);
        let dref = single(&single(&buf, b"dinf"), b"dref");
        assert_eq!(&dref[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(single(&dref[8..], b"url "), [0, 0, 0, 1]);
    }

    #[test]
    fn moov_structure_for_audio_and_video() {
        let pps = vec![vec![0x68, 0xee]];
        let mut buf = Vec::new();
        write_init_segment(
            &mut buf,
            &InitSegment {
                creation_time: 1,
                video: Some(video_init(&pps)),
                audio: Some(AudioInit {
                    track_id: 2,
                    sample_rate: 8000,
                    channels: 1,
                }),
            },
        );
        let top: Vec<_> = children(&buf).into_iter().map(|(t, _)| t).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        let moov = children(&buf)[1].1;
        let names: Vec<_> = children(moov).into_iter().map(|(t, _)| t).collect();
        assert_eq!(names, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        let mvex = children(moov)[3].1;
        assert_eq!(children(mvex).len(), 2);
    }
}
