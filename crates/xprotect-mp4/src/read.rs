//! Reads frame times back out of a fragmented MP4 written by this crate (or any fragmented MP4
//! with `prft` boxes): each sample's media time and wall clock.
//!
//! A truncated file (a recording cut by a crash) yields the samples of its complete fragments.

use std::collections::HashMap;

use crate::error::TrackKind;
use crate::time::WallClock;

/// One sample (frame) of a track, as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleTime {
    /// The track's ID.
    pub track_id: u32,
    /// The track's kind, from its handler (`vide`/`soun`); `None` for other handlers.
    pub kind: Option<TrackKind>,
    /// Ticks per second of `media_time` and `duration`.
    pub timescale: u32,
    /// Decode time in `timescale` ticks (90 kHz video: media ms × 90).
    pub media_time: u64,
    /// Duration in `timescale` ticks.
    pub duration: u32,
    /// Wall clock of the sample: the fragment's `prft` wall clock plus the sample's distance
    /// from the `prft` media time. `None` if the fragment has no `prft`.
    pub wall_clock: Option<WallClock>,
    /// Whether the sample is a sync sample (keyframe; every audio sample).
    pub keyframe: bool,
    /// Size of the sample data in bytes.
    pub size: u32,
}

impl SampleTime {
    /// Decode time in microseconds.
    pub fn media_time_micros(&self) -> u64 {
        (u128::from(self.media_time) * 1_000_000 / u128::from(self.timescale.max(1))) as u64
    }
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// There is no complete `moov` before the first fragment (or at all).
    #[error("no complete moov box: not an MP4 file, or cut inside the init segment")]
    NoInitSegment,
    /// A complete box is inconsistent.
    #[error("malformed {fourcc} box: {reason}")]
    Malformed {
        /// The box type, as text.
        fourcc: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A fragment refers to a track the `moov` does not declare.
    #[error("fragment refers to undeclared track {0}")]
    UnknownTrack(u32),
}

/// Reads every sample's time from a fragmented MP4 file's bytes.
///
/// Samples come in file order (fragment by fragment, track by track within a fragment). The
/// file may be truncated anywhere after the init segment: reading stops at the first incomplete
/// box or fragment whose media data is missing.
pub fn read_frame_times(file: &[u8]) -> Result<Vec<SampleTime>, ReadError> {
    let mut tracks: Option<HashMap<u32, TrackInfo>> = None;
    let mut prfts: Vec<Prft> = Vec::new();
    let mut next_decode_time: HashMap<u32, u64> = HashMap::new();
    let mut samples = Vec::new();

    for top in TopLevelBoxes::new(file) {
        match &top.fourcc {
            b"moov" => tracks = Some(parse_moov(top.payload)?),
            b"prft" => prfts.push(parse_prft(top.payload)?),
            b"moof" => {
                let tracks = tracks.as_ref().ok_or(ReadError::NoInitSegment)?;
                let context = FragmentContext {
                    file,
                    moof_start: top.start,
                    tracks,
                    prfts: &prfts,
                };
                let before = samples.len();
                let complete =
                    parse_moof(&context, top.payload, &mut next_decode_time, &mut samples)?;
                if !complete {
                    // The fragment's media data is cut off: the file ends here.
                    samples.truncate(before);
                    break;
                }
                prfts.clear();
            }
            _ => {}
        }
    }
    if tracks.is_none() {
        return Err(ReadError::NoInitSegment);
    }
    Ok(samples)
}

#[derive(Debug, Clone, Copy, Default)]
struct TrackInfo {
    timescale: u32,
    kind: Option<TrackKind>,
    default_duration: u32,
    default_size: u32,
    default_flags: u32,
}

#[derive(Debug, Clone, Copy)]
struct Prft {
    track_id: u32,
    wall_clock: WallClock,
    media_time: u64,
}

struct FragmentContext<'a> {
    file: &'a [u8],
    moof_start: usize,
    tracks: &'a HashMap<u32, TrackInfo>,
    prfts: &'a [Prft],
}

/// A box found in a buffer: its type, payload, and start offset in the buffer.
struct FoundBox<'a> {
    fourcc: [u8; 4],
    payload: &'a [u8],
    start: usize,
}

/// Splits the next box off `data` at `position`. `Ok(None)` if it does not fit (truncated).
fn next_box(data: &[u8], position: usize) -> Result<Option<(FoundBox<'_>, usize)>, ReadError> {
    let rest = &data[position.min(data.len())..];
    let Some(header) = rest.get(..8) else {
        return Ok(None);
    };
    let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let fourcc = [header[4], header[5], header[6], header[7]];
    let (size, header_len) = match size32 {
        0 => (rest.len() as u64, 8),
        1 => match rest.get(8..16) {
            Some(large) => (be_u64(large), 16),
            None => return Ok(None),
        },
        size => (u64::from(size), 8),
    };
    if size < header_len as u64 {
        return Err(malformed(fourcc, "box size smaller than its header"));
    }
    if size > rest.len() as u64 {
        return Ok(None);
    }
    // size ≤ rest.len(), so it fits in usize.
    let size = size as usize;
    let found = FoundBox {
        fourcc,
        payload: &rest[header_len..size],
        start: position,
    };
    Ok(Some((found, position + size)))
}

/// Iterates over the complete top-level boxes of a possibly truncated file.
struct TopLevelBoxes<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> TopLevelBoxes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }
}

impl<'a> Iterator for TopLevelBoxes<'a> {
    type Item = FoundBox<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // A malformed size at top level is where a torn write would leave garbage: stop there.
        let (found, next) = next_box(self.data, self.position).ok()??;
        self.position = next;
        Some(found)
    }
}

/// The children of a complete box; an overrun is malformed, not truncation.
fn children(payload: &[u8]) -> impl Iterator<Item = Result<FoundBox<'_>, ReadError>> {
    let mut position = 0;
    std::iter::from_fn(move || {
        if position >= payload.len() {
            return None;
        }
        match next_box(payload, position) {
            Ok(Some((found, next))) => {
                position = next;
                Some(Ok(found))
            }
            Ok(None) => {
                position = payload.len();
                Some(Err(ReadError::Malformed {
                    fourcc: "child".into(),
                    reason: "child box overruns its parent",
                }))
            }
            Err(error) => {
                position = payload.len();
                Some(Err(error))
            }
        }
    })
}

fn malformed(fourcc: [u8; 4], reason: &'static str) -> ReadError {
    ReadError::Malformed {
        fourcc: String::from_utf8_lossy(&fourcc).into_owned(),
        reason,
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut value = 0u64;
    for &byte in bytes.iter().take(8) {
        value = (value << 8) | u64::from(byte);
    }
    value
}

/// Big-endian field reader over a box payload that reports overruns as malformed boxes.
struct Fields<'a> {
    fourcc: [u8; 4],
    data: &'a [u8],
    position: usize,
}

impl<'a> Fields<'a> {
    fn new(fourcc: [u8; 4], data: &'a [u8]) -> Self {
        Self {
            fourcc,
            data,
            position: 0,
        }
    }

    fn bytes(&mut self, count: usize) -> Result<&'a [u8], ReadError> {
        let end = self.position.saturating_add(count);
        let bytes = self
            .data
            .get(self.position..end)
            .ok_or_else(|| malformed(self.fourcc, "box too short for its fields"))?;
        self.position = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(be_u64(self.bytes(4)?) as u32)
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(be_u64(self.bytes(8)?))
    }

    /// Version and flags of a full box.
    fn version_flags(&mut self) -> Result<(u8, u32), ReadError> {
        let value = self.u32()?;
        Ok(((value >> 24) as u8, value & 0x00ff_ffff))
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.position)
    }
}

fn parse_moov(payload: &[u8]) -> Result<HashMap<u32, TrackInfo>, ReadError> {
    let mut tracks = HashMap::new();
    let mut trexes = Vec::new();
    for child in children(payload) {
        let child = child?;
        match &child.fourcc {
            b"trak" => {
                let (track_id, info) = parse_trak(child.payload)?;
                tracks.insert(track_id, info);
            }
            b"mvex" => {
                for trex in children(child.payload) {
                    let trex = trex?;
                    if &trex.fourcc == b"trex" {
                        let mut f = Fields::new(trex.fourcc, trex.payload);
                        f.version_flags()?;
                        let track_id = f.u32()?;
                        let _description_index = f.u32()?;
                        trexes.push((track_id, f.u32()?, f.u32()?, f.u32()?));
                    }
                }
            }
            _ => {}
        }
    }
    for (track_id, duration, size, flags) in trexes {
        if let Some(track) = tracks.get_mut(&track_id) {
            track.default_duration = duration;
            track.default_size = size;
            track.default_flags = flags;
        }
    }
    Ok(tracks)
}

fn parse_trak(payload: &[u8]) -> Result<(u32, TrackInfo), ReadError> {
    let mut track_id = None;
    let mut info = TrackInfo::default();
    for child in children(payload) {
        let child = child?;
        match &child.fourcc {
            b"tkhd" => {
                let mut f = Fields::new(child.fourcc, child.payload);
                let (version, _) = f.version_flags()?;
                f.bytes(if version == 1 { 16 } else { 8 })?;
                track_id = Some(f.u32()?);
            }
            b"mdia" => {
                for mdia_child in children(child.payload) {
                    let mdia_child = mdia_child?;
                    let mut f = Fields::new(mdia_child.fourcc, mdia_child.payload);
                    match &mdia_child.fourcc {
                        b"mdhd" => {
                            let (version, _) = f.version_flags()?;
                            f.bytes(if version == 1 { 16 } else { 8 })?;
                            info.timescale = f.u32()?;
                        }
                        b"hdlr" => {
                            f.version_flags()?;
                            f.u32()?;
                            info.kind = match f.bytes(4)? {
                                b"vide" => Some(TrackKind::Video),
                                b"soun" => Some(TrackKind::Audio),
                                _ => None,
                            };
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let track_id = track_id.ok_or_else(|| malformed(*b"trak", "no tkhd"))?;
    if info.timescale == 0 {
        return Err(malformed(*b"mdhd", "missing or zero timescale"));
    }
    Ok((track_id, info))
}

fn parse_prft(payload: &[u8]) -> Result<Prft, ReadError> {
    let mut f = Fields::new(*b"prft", payload);
    let (version, _) = f.version_flags()?;
    let track_id = f.u32()?;
    let wall_clock = WallClock::from_ntp64(f.u64()?);
    let media_time = if version == 0 {
        u64::from(f.u32()?)
    } else {
        f.u64()?
    };
    Ok(Prft {
        track_id,
        wall_clock,
        media_time,
    })
}

const TFHD_BASE_DATA_OFFSET: u32 = 0x00_0001;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x00_0002;
const TFHD_DEFAULT_DURATION: u32 = 0x00_0008;
const TFHD_DEFAULT_SIZE: u32 = 0x00_0010;
const TFHD_DEFAULT_FLAGS: u32 = 0x00_0020;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x00_0004;
const TRUN_DURATION: u32 = 0x00_0100;
const TRUN_SIZE: u32 = 0x00_0200;
const TRUN_FLAGS: u32 = 0x00_0400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x00_0800;
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;
/// Bound on field-less `trun` entries, which cost no bytes and could otherwise claim billions.
const MAX_EMPTY_TRUN_ENTRIES: u32 = 1 << 20;

/// Parses one `moof` and appends its samples. Returns `false` if its media data extends past
/// the end of the file.
fn parse_moof(
    context: &FragmentContext<'_>,
    payload: &[u8],
    next_decode_time: &mut HashMap<u32, u64>,
    out: &mut Vec<SampleTime>,
) -> Result<bool, ReadError> {
    let mut previous_traf_data_end = context.moof_start as u64;
    for traf in children(payload) {
        let traf = traf?;
        if &traf.fourcc != b"traf" {
            continue;
        }
        let mut track: Option<(u32, TrackInfo)> = None;
        let mut data_base = previous_traf_data_end;
        let mut decode_time = None;
        for child in children(traf.payload) {
            let child = child?;
            let mut f = Fields::new(child.fourcc, child.payload);
            match &child.fourcc {
                b"tfhd" => {
                    let (_, flags) = f.version_flags()?;
                    let track_id = f.u32()?;
                    let mut info = *context
                        .tracks
                        .get(&track_id)
                        .ok_or(ReadError::UnknownTrack(track_id))?;
                    if flags & TFHD_BASE_DATA_OFFSET != 0 {
                        data_base = f.u64()?;
                    } else if flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
                        data_base = context.moof_start as u64;
                    }
                    if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
                        f.u32()?;
                    }
                    if flags & TFHD_DEFAULT_DURATION != 0 {
                        info.default_duration = f.u32()?;
                    }
                    if flags & TFHD_DEFAULT_SIZE != 0 {
                        info.default_size = f.u32()?;
                    }
                    if flags & TFHD_DEFAULT_FLAGS != 0 {
                        info.default_flags = f.u32()?;
                    }
                    decode_time = next_decode_time.get(&track_id).copied();
                    track = Some((track_id, info));
                }
                b"tfdt" => {
                    let (version, _) = f.version_flags()?;
                    decode_time = Some(if version == 1 {
                        f.u64()?
                    } else {
                        u64::from(f.u32()?)
                    });
                }
                b"trun" => {
                    let (track_id, info) =
                        track.ok_or_else(|| malformed(*b"traf", "trun before tfhd"))?;
                    let (_, flags) = f.version_flags()?;
                    let count = f.u32()?;
                    let mut data_position = data_base;
                    if flags & TRUN_DATA_OFFSET != 0 {
                        let offset = i64::from(f.u32()? as i32);
                        data_position = data_base
                            .checked_add_signed(offset)
                            .ok_or_else(|| malformed(*b"trun", "data offset before file start"))?;
                    }
                    let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
                        Some(f.u32()?)
                    } else {
                        None
                    };
                    let entry_bytes = 4 * [
                        TRUN_DURATION,
                        TRUN_SIZE,
                        TRUN_FLAGS,
                        TRUN_COMPOSITION_OFFSET,
                    ]
                    .iter()
                    .filter(|&&bit| flags & bit != 0)
                    .count();
                    let fits = match f.remaining().checked_div(entry_bytes) {
                        Some(max_entries) => count as usize <= max_entries,
                        None => count <= MAX_EMPTY_TRUN_ENTRIES,
                    };
                    if !fits {
                        return Err(malformed(*b"trun", "sample count exceeds the box"));
                    }
                    let mut time = decode_time.unwrap_or(0);
                    for index in 0..count {
                        let duration = if flags & TRUN_DURATION != 0 {
                            f.u32()?
                        } else {
                            info.default_duration
                        };
                        let size = if flags & TRUN_SIZE != 0 {
                            f.u32()?
                        } else {
                            info.default_size
                        };
                        let sample_flags = if flags & TRUN_FLAGS != 0 {
                            f.u32()?
                        } else if index == 0 {
                            first_flags.unwrap_or(info.default_flags)
                        } else {
                            info.default_flags
                        };
                        if flags & TRUN_COMPOSITION_OFFSET != 0 {
                            f.u32()?;
                        }
                        let data_end = data_position.saturating_add(u64::from(size));
                        if data_end > context.file.len() as u64 {
                            return Ok(false);
                        }
                        out.push(SampleTime {
                            track_id,
                            kind: info.kind,
                            timescale: info.timescale,
                            media_time: time,
                            duration,
                            wall_clock: wall_clock_of(context, track_id, info.timescale, time),
                            keyframe: sample_flags & SAMPLE_IS_NON_SYNC == 0,
                            size,
                        });
                        data_position = data_end;
                        time = time.saturating_add(u64::from(duration));
                    }
                    decode_time = Some(time);
                    data_base = data_position;
                    previous_traf_data_end = data_position;
                    next_decode_time.insert(track_id, time);
                }
                _ => {}
            }
        }
    }
    Ok(true)
}

/// A sample's wall clock from the fragment's `prft` for its own track, or else from the first
/// `prft` (the reference track's), converting between the tracks' timescales.
fn wall_clock_of(
    context: &FragmentContext<'_>,
    track_id: u32,
    timescale: u32,
    decode_time: u64,
) -> Option<WallClock> {
    let prft = context
        .prfts
        .iter()
        .find(|prft| prft.track_id == track_id)
        .or(context.prfts.first())?;
    let reference_timescale = context.tracks.get(&prft.track_id)?.timescale;
    let sample_micros = i128::from(decode_time) * 1_000_000 / i128::from(timescale);
    let reference_micros =
        i128::from(prft.media_time) * 1_000_000 / i128::from(reference_timescale);
    let offset = i64::try_from(sample_micros - reference_micros).ok()?;
    prft.wall_clock.checked_add_micros(offset)
}
