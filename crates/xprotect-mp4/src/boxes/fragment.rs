//! Media fragment boxes: `prft` (wall clock), `moof` (`mfhd` + one `traf` per track) and the
//! `mdat` header.

use super::{box_size, patch_u32, put_u32, put_u64, write_box, write_full_box};

/// Sample flags of a sync sample: `sample_depends_on = 2` (independent).
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample: `sample_depends_on = 1`, `sample_is_non_sync_sample`.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// `prft` flags value 24: the wall-clock time has a consistent, ideally zero, offset from the
/// real time of the depicted event (the camera's capture or recording time).
const PRFT_FLAGS_CAPTURE_TIME: u32 = 24;

/// `tfhd` flag: default-sample-flags present.
const TFHD_DEFAULT_SAMPLE_FLAGS: u32 = 0x00_0020;
/// `tfhd` flag: data offsets are relative to the start of the `moof`.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;

/// Size of an `mdat` header (32-bit size and type).
pub(crate) const MDAT_HEADER_BYTES: usize = 8;

/// Duration, size and flags of one sample in a `trun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleInfo {
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

/// One track's part of a fragment. Its sample data follows the previous tracks' data in `mdat`.
pub(crate) struct Traf<'a> {
    pub(crate) track_id: u32,
    pub(crate) base_media_decode_time: u64,
    pub(crate) samples: &'a [SampleInfo],
    /// When every sample has the same flags (audio), they go once into `tfhd` instead of into
    /// each `trun` entry.
    pub(crate) uniform_flags: Option<u32>,
}

impl Traf<'_> {
    fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

/// `prft` version 1: a 64-bit NTP wall-clock time for `media_time` of `track_id`.
pub(crate) fn write_prft(buf: &mut Vec<u8>, track_id: u32, ntp_timestamp: u64, media_time: u64) {
    write_full_box(buf, *b"prft", 1, PRFT_FLAGS_CAPTURE_TIME, |buf| {
        put_u32(buf, track_id);
        put_u64(buf, ntp_timestamp);
        put_u64(buf, media_time);
    });
}

/// Writes a `moof` whose `trun` data offsets point into an `mdat` written right after it, where
/// the trafs' sample data is laid out in order.
pub(crate) fn write_moof(buf: &mut Vec<u8>, sequence_number: u32, trafs: &[Traf<'_>]) {
    let moof_start = buf.len();
    let mut data_offset_positions = Vec::with_capacity(trafs.len());
    write_box(buf, *b"moof", |buf| {
        write_mfhd(buf, sequence_number);
        for traf in trafs {
            data_offset_positions.push(write_traf(buf, traf));
        }
    });
    let moof_len = buf.len() - moof_start;
    let mut data_start = (moof_len + MDAT_HEADER_BYTES) as u64;
    for (traf, position) in trafs.iter().zip(data_offset_positions) {
        // Bounded by the box size limit (see `write_box`).
        let offset = box_size(data_start as usize);
        patch_u32(buf, position, offset);
        data_start += traf.data_len();
    }
}

pub(crate) fn write_mfhd(buf: &mut Vec<u8>, sequence_number: u32) {
    write_full_box(buf, *b"mfhd", 0, 0, |buf| put_u32(buf, sequence_number));
}

/// Writes a `traf` and returns the position of its `trun` data offset, to be patched.
fn write_traf(buf: &mut Vec<u8>, traf: &Traf<'_>) -> usize {
    let mut data_offset_position = 0;
    write_box(buf, *b"traf", |buf| {
        write_tfhd(buf, traf.track_id, traf.uniform_flags);
        write_tfdt(buf, traf.base_media_decode_time);
        data_offset_position = write_trun(buf, traf.samples, traf.uniform_flags.is_none());
    });
    data_offset_position
}

pub(crate) fn write_tfhd(buf: &mut Vec<u8>, track_id: u32, default_sample_flags: Option<u32>) {
    let flags = TFHD_DEFAULT_BASE_IS_MOOF
        | if default_sample_flags.is_some() {
            TFHD_DEFAULT_SAMPLE_FLAGS
        } else {
            0
        };
    write_full_box(buf, *b"tfhd", 0, flags, |buf| {
        put_u32(buf, track_id);
        if let Some(sample_flags) = default_sample_flags {
            put_u32(buf, sample_flags);
        }
    });
}

/// `tfdt` version 1 (64-bit base media decode time).
pub(crate) fn write_tfdt(buf: &mut Vec<u8>, base_media_decode_time: u64) {
    write_full_box(buf, *b"tfdt", 1, 0, |buf| {
        put_u64(buf, base_media_decode_time)
    });
}

/// Writes a version 0 `trun` (no composition offsets: the streams have no B-frames) with a
/// zero data offset, returning the offset's position.
pub(crate) fn write_trun(
    buf: &mut Vec<u8>,
    samples: &[SampleInfo],
    per_sample_flags: bool,
) -> usize {
    let flags = TRUN_DATA_OFFSET
        | TRUN_SAMPLE_DURATION
        | TRUN_SAMPLE_SIZE
        | if per_sample_flags {
            TRUN_SAMPLE_FLAGS
        } else {
            0
        };
    let mut data_offset_position = 0;
    write_full_box(buf, *b"trun", 0, flags, |buf| {
        // The muxer caps samples per fragment far below u32::MAX.
        put_u32(buf, box_size(samples.len()));
        data_offset_position = buf.len();
        put_u32(buf, 0);
        buf.reserve(samples.len() * if per_sample_flags { 12 } else { 8 });
        for sample in samples {
            put_u32(buf, sample.duration);
            put_u32(buf, sample.size);
            if per_sample_flags {
                put_u32(buf, sample.flags);
            }
        }
    });
    data_offset_position
}

/// Writes the header of an `mdat` holding `payload_len` bytes; the caller appends the payload.
pub(crate) fn write_mdat_header(buf: &mut Vec<u8>, payload_len: usize) {
    put_u32(buf, box_size(payload_len + MDAT_HEADER_BYTES));
    buf.extend_from_slice(b"mdat");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::tests::{children, single};

    #[test]
    fn prft_layout() {
        let mut buf = Vec::new();
        write_prft(&mut buf, 1, 0x1122_3344_5566_7788, 90_000);
        let body = single(&buf, b"prft");
        assert_eq!(&body[..4], &[1, 0, 0, 24]);
        assert_eq!(&body[4..8], &1u32.to_be_bytes());
        assert_eq!(&body[8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(&body[16..24], &90_000u64.to_be_bytes());
    }

    #[test]
    fn tfhd_with_and_without_default_flags() {
        let mut buf = Vec::new();
        write_tfhd(&mut buf, 3, None);
        assert_eq!(single(&buf, b"tfhd"), [0, 2, 0, 0, 0, 0, 0, 3]);
        buf.clear();
        write_tfhd(&mut buf, 3, Some(SYNC_SAMPLE_FLAGS));
        assert_eq!(
            single(&buf, b"tfhd"),
            [0, 2, 0, 0x20, 0, 0, 0, 3, 2, 0, 0, 0]
        );
    }

    #[test]
    fn tfdt_is_64_bit() {
        let mut buf = Vec::new();
        write_tfdt(&mut buf, 1 << 40);
        assert_eq!(single(&buf, b"tfdt"), [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn trun_entries() {
        let samples = [
            SampleInfo {
                duration: 3000,
                size: 10,
                flags: SYNC_SAMPLE_FLAGS,
            },
            SampleInfo {
                duration: 3600,
                size: 7,
                flags: NON_SYNC_SAMPLE_FLAGS,
            },
        ];
        let mut buf = Vec::new();
        let position = write_trun(&mut buf, &samples, true);
        assert_eq!(position, 16);
        let body = single(&buf, b"trun");
        assert_eq!(&body[..4], &[0, 0, 0x07, 0x01]);
        assert_eq!(&body[4..8], &2u32.to_be_bytes());
        assert_eq!(&body[12..24], &[0, 0, 0x0b, 0xb8, 0, 0, 0, 10, 2, 0, 0, 0]);
        assert_eq!(&body[24..36], &[0, 0, 0x0e, 0x10, 0, 0, 0, 7, 1, 1, 0, 0]);

        buf.clear();
        write_trun(&mut buf, &samples, false);
        let body = single(&buf, b"trun");
        assert_eq!(&body[..4], &[0, 0, 0x03, 0x01]);
        assert_eq!(body.len(), 12 + 2 * 8);
    }

    #[test]
    fn moof_data_offsets_point_into_following_mdat() {
        let video = [
            SampleInfo {
                duration: 3600,
                size: 5,
                flags: SYNC_SAMPLE_FLAGS,
            },
            SampleInfo {
                duration: 3600,
                size: 3,
                flags: NON_SYNC_SAMPLE_FLAGS,
            },
        ];
        let audio = [SampleInfo {
            duration: 160,
            size: 4,
            flags: SYNC_SAMPLE_FLAGS,
        }];
        let mut buf = Vec::new();
        write_moof(
            &mut buf,
            7,
            &[
                Traf {
                    track_id: 1,
                    base_media_decode_time: 0,
                    samples: &video,
                    uniform_flags: None,
                },
                Traf {
                    track_id: 2,
                    base_media_decode_time: 0,
                    samples: &audio,
                    uniform_flags: Some(SYNC_SAMPLE_FLAGS),
                },
            ],
        );
        let moof_len = buf.len();
        write_mdat_header(&mut buf, 12);
        buf.extend_from_slice(b"VVVVVvvvAAAA");

        let top = children(&buf);
        assert_eq!(top.len(), 2);
        let moof = top[0].1;
        let parts = children(moof);
        assert_eq!(&parts[0].0, b"mfhd");
        assert_eq!(parts[0].1, [0, 0, 0, 0, 0, 0, 0, 7]);
        let offsets: Vec<usize> = parts[1..]
            .iter()
            .map(|(name, traf)| {
                assert_eq!(name, b"traf");
                let trun = children(traf)[2].1;
                u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize
            })
            .collect();
        assert_eq!(&buf[offsets[0]..offsets[0] + 5], b"VVVVV");
        assert_eq!(&buf[offsets[1]..offsets[1] + 4], b"AAAA");
        assert_eq!(offsets[0], moof_len + 8);
    }
}
