//! The muxer: turns timed H.264 access units and PCMU frames into an init segment followed by
//! self-contained movie fragments.

use crate::boxes::fragment::{
    MDAT_HEADER_BYTES, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, Traf, write_mdat_header,
    write_moof, write_prft,
};
use crate::boxes::init::{AudioInit, InitSegment, VIDEO_TIMESCALE, VideoInit, write_init_segment};
use crate::error::{MuxError, TrackKind};
use crate::pending::PendingTrack;
use crate::sps::parse_sps;
use crate::time::WallClock;

/// Largest media data of one fragment; reaching it cuts the fragment early. Keeps every box far
/// below the 4 GiB that 32-bit box sizes allow.
pub(crate) const MAX_FRAGMENT_PAYLOAD_BYTES: usize = 256 << 20;
/// Largest single sample accepted.
pub const MAX_SAMPLE_BYTES: usize = 64 << 20;
/// Most samples per track in one fragment; reaching it cuts the fragment early.
const MAX_SAMPLES_PER_FRAGMENT: usize = 16_384;
/// Largest accepted `max_fragment_duration_ms` (10 minutes).
const MAX_FRAGMENT_DURATION_LIMIT_MS: u32 = 600_000;
/// Parameter sets longer than this are not remembered for the init segment.
const MAX_PARAMETER_SET_BYTES: usize = 4096;
/// Most PPS carried in `avcC`.
const MAX_PPS_COUNT: usize = 32;
/// Duration of the very last video sample when the stream had only one frame (1/25 s).
const DEFAULT_VIDEO_SAMPLE_DURATION: u32 = VIDEO_TIMESCALE / 25;
/// Video ticks per media millisecond.
const VIDEO_TICKS_PER_MS: i64 = (VIDEO_TIMESCALE / 1000) as i64;

const NAL_TYPE_SPS: u8 = 7;
const NAL_TYPE_PPS: u8 = 8;

/// What the muxer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxerConfig {
    /// Whether there is an H.264 video track. Without it the file is audio-only.
    pub video: bool,
    /// The audio track, if any.
    pub audio: Option<AudioConfig>,
    /// A fragment is cut at every keyframe, and also once it spans this long (then at a
    /// non-keyframe). Bounds what a crash can lose. 1..=600000.
    pub max_fragment_duration_ms: u32,
    /// `creation_time` of the movie and tracks; `None` takes the first frame's wall clock.
    pub creation_time: Option<WallClock>,
}

impl Default for MuxerConfig {
    fn default() -> Self {
        Self {
            video: true,
            audio: None,
            max_fragment_duration_ms: 1000,
            creation_time: None,
        }
    }
}

/// The audio codec of the audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioConfig {
    /// G.711 µ-law, written with the `ulaw` sample entry; one byte per sample and channel,
    /// channels interleaved.
    Pcmu {
        /// Samples per second, also the track's timescale (8000 for RTP PCMU). 1..=65535.
        sample_rate: u32,
        /// Channel count (1 for RTP PCMU). At least 1.
        channels: u16,
    },
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self::Pcmu {
            sample_rate: 8000,
            channels: 1,
        }
    }
}

/// One H.264 access unit.
#[derive(Debug, Clone, Copy)]
pub struct VideoFrame<'a> {
    /// Milliseconds since the stream's start reference; increasing, and jumping over gaps in
    /// the recording. Becomes the sample's decode time (× 90 in the 90 kHz timescale).
    pub media_time_ms: i64,
    /// When the frame was recorded.
    pub wall_clock: WallClock,
    /// Whether the access unit is an IDR picture (starts a fragment).
    pub keyframe: bool,
    /// The access unit's NAL units without start codes or length prefixes. SPS and PPS are kept
    /// in the samples too (in-band), so later parameter set changes reach the decoder.
    pub nal_units: &'a [&'a [u8]],
}

/// One block of PCMU audio.
#[derive(Debug, Clone, Copy)]
pub struct AudioFrame<'a> {
    /// Samples (at the configured rate) since the stream's start reference; same origin as
    /// video media time (video ms × 8 at 8 kHz).
    pub media_time_samples: i64,
    /// When the first sample was recorded.
    pub wall_clock: WallClock,
    /// µ-law bytes, one per sample and channel.
    pub payload: &'a [u8],
}

/// Validated [`MuxerConfig`].
#[derive(Debug, Clone, Copy)]
struct Setup {
    video: bool,
    audio: Option<AudioSetup>,
    max_fragment_duration_ms: u32,
    creation_time: Option<WallClock>,
}

#[derive(Debug, Clone, Copy)]
struct AudioSetup {
    sample_rate: u16,
    channels: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The init segment has not been written.
    AwaitingInit,
    Running,
    Finished,
}

/// SPS and PPS seen before the init segment was written.
#[derive(Debug, Default)]
struct ParameterSets {
    sps: Option<Vec<u8>>,
    pps: Vec<Vec<u8>>,
}

impl ParameterSets {
    /// Remembers the access unit's parameter sets; a PPS list replaces the previous one.
    fn remember(&mut self, nal_units: &[&[u8]]) {
        let mut saw_pps = false;
        for nal in nal_units
            .iter()
            .filter(|nal| nal.len() <= MAX_PARAMETER_SET_BYTES)
        {
            match nal.first().map(|header| header & 0x1f) {
                Some(NAL_TYPE_SPS) => self.sps = Some(nal.to_vec()),
                Some(NAL_TYPE_PPS) => {
                    if !saw_pps {
                        self.pps.clear();
                        saw_pps = true;
                    }
                    if self.pps.len() < MAX_PPS_COUNT && !self.pps.iter().any(|p| p == nal) {
                        self.pps.push(nal.to_vec());
                    }
                }
                _ => {}
            }
        }
    }
}

/// The fragmented MP4 muxer. See the crate documentation for the data flow.
#[derive(Debug)]
pub struct Muxer {
    setup: Setup,
    phase: Phase,
    parameter_sets: ParameterSets,
    video: PendingTrack,
    audio: PendingTrack,
    /// `mfhd` sequence number of the next fragment.
    sequence_number: u32,
}

impl Muxer {
    /// Creates a muxer; fails if the configuration has no track or out-of-range values.
    pub fn new(config: MuxerConfig) -> Result<Self, MuxError> {
        if !config.video && config.audio.is_none() {
            return Err(MuxError::InvalidConfig(
                "neither video nor audio configured",
            ));
        }
        if !(1..=MAX_FRAGMENT_DURATION_LIMIT_MS).contains(&config.max_fragment_duration_ms) {
            return Err(MuxError::InvalidConfig(
                "max_fragment_duration_ms must be within 1..=600000",
            ));
        }
        let audio = match config.audio {
            None => None,
            Some(AudioConfig::Pcmu {
                sample_rate,
                channels,
            }) => {
                let sample_rate = u16::try_from(sample_rate)
                    .ok()
                    .filter(|&rate| rate > 0)
                    .ok_or(MuxError::InvalidConfig(
                        "PCMU sample_rate must be within 1..=65535",
                    ))?;
                if channels == 0 {
                    return Err(MuxError::InvalidConfig("PCMU channels must be at least 1"));
                }
                Some(AudioSetup {
                    sample_rate,
                    channels,
                })
            }
        };
        if let Some(creation_time) = config.creation_time {
            check_wall_clock(creation_time)?;
        }
        Ok(Self {
            setup: Setup {
                video: config.video,
                audio,
                max_fragment_duration_ms: config.max_fragment_duration_ms,
                creation_time: config.creation_time,
            },
            phase: Phase::AwaitingInit,
            parameter_sets: ParameterSets::default(),
            video: PendingTrack::default(),
            audio: PendingTrack::default(),
            sequence_number: 1,
        })
    }

    /// Track ID of the video track.
    pub fn video_track_id(&self) -> Option<u32> {
        self.setup.video.then_some(1)
    }

    /// Track ID of the audio track.
    pub fn audio_track_id(&self) -> Option<u32> {
        self.setup
            .audio
            .map(|_| if self.setup.video { 2 } else { 1 })
    }

    /// Muxes a video access unit. Returns the bytes to append to the file now: the init segment
    /// at the first keyframe, then each fragment once it is complete; often nothing.
    pub fn push_video(&mut self, frame: &VideoFrame<'_>) -> Result<Vec<u8>, MuxError> {
        if !self.setup.video {
            return Err(MuxError::TrackNotConfigured(TrackKind::Video));
        }
        if self.phase == Phase::Finished {
            return Err(MuxError::Finished);
        }
        let time = frame
            .media_time_ms
            .checked_mul(VIDEO_TICKS_PER_MS)
            .and_then(|ticks| u64::try_from(ticks).ok())
            .ok_or(MuxError::MediaTimeOutOfRange {
                track: TrackKind::Video,
                time: frame.media_time_ms,
            })?;
        check_wall_clock(frame.wall_clock)?;
        let size: usize = frame
            .nal_units
            .iter()
            .filter(|nal| !nal.is_empty())
            .map(|nal| 4 + nal.len())
            .sum();
        if size == 0 {
            return Err(MuxError::EmptyFrame(TrackKind::Video));
        }
        if size > MAX_SAMPLE_BYTES
            || frame
                .nal_units
                .iter()
                .any(|nal| nal.len() > u32::MAX as usize)
        {
            return Err(MuxError::SampleTooLarge {
                track: TrackKind::Video,
                size,
                limit: MAX_SAMPLE_BYTES,
            });
        }
        if let Some(previous) = self.video.held_time()
            && time <= previous
        {
            return Err(MuxError::NonMonotonicTime {
                track: TrackKind::Video,
                previous: (previous / VIDEO_TICKS_PER_MS as u64) as i64,
                current: frame.media_time_ms,
            });
        }

        let mut out = Vec::new();
        if self.phase == Phase::AwaitingInit {
            self.parameter_sets.remember(frame.nal_units);
            if !frame.keyframe {
                return Err(MuxError::NotStarted);
            }
            let (Some(sps), false) = (&self.parameter_sets.sps, self.parameter_sets.pps.is_empty())
            else {
                return Err(MuxError::NotStarted);
            };
            let sps_info = parse_sps(sps)?;
            write_init_segment(
                &mut out,
                &InitSegment {
                    creation_time: self
                        .setup
                        .creation_time
                        .unwrap_or(frame.wall_clock)
                        .to_mp4_seconds(),
                    video: Some(VideoInit {
                        track_id: 1,
                        sps_info,
                        sps,
                        pps: &self.parameter_sets.pps,
                    }),
                    audio: self.audio_init(),
                },
            );
            self.parameter_sets = ParameterSets::default();
            self.phase = Phase::Running;
        }

        if let Some(previous) = self.video.held_time() {
            let duration = time - previous;
            let max_ticks =
                u64::from(self.setup.max_fragment_duration_ms) * VIDEO_TICKS_PER_MS as u64;
            let cut = frame.keyframe
                || time - self.video.first_time().unwrap_or(previous) >= max_ticks
                || self.video.pending_bytes() + size > MAX_FRAGMENT_PAYLOAD_BYTES
                || self.video.complete_count() + 1 >= MAX_SAMPLES_PER_FRAGMENT
                // A gap longer than a 32-bit duration (13 h): the next fragment's tfdt carries
                // the true time.
                || duration > u64::from(u32::MAX);
            self.video
                .complete_held(u32::try_from(duration).unwrap_or(u32::MAX));
            if cut {
                let audio_cut = self.setup.audio.map(|audio| {
                    // Audio samples that start before this video frame go into the fragment.
                    (u128::from(time) * u128::from(audio.sample_rate))
                        .div_ceil(u128::from(VIDEO_TIMESCALE))
                        .try_into()
                        .unwrap_or(u64::MAX)
                });
                self.write_fragment(&mut out, audio_cut);
            }
        }
        let flags = if frame.keyframe {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        };
        self.video
            .hold(time, frame.wall_clock, flags, None, |data| {
                data.reserve(size);
                for nal in frame.nal_units.iter().filter(|nal| !nal.is_empty()) {
                    // Checked above: every NAL is shorter than 4 GiB.
                    data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    data.extend_from_slice(nal);
                }
            });
        Ok(out)
    }

    /// Muxes a block of PCMU audio. Returns the bytes to append now (see
    /// [`Muxer::push_video`]). In a file with video, audio before the first video keyframe is
    /// dropped with [`MuxError::NotStarted`].
    pub fn push_audio(&mut self, frame: &AudioFrame<'_>) -> Result<Vec<u8>, MuxError> {
        let Some(audio) = self.setup.audio else {
            return Err(MuxError::TrackNotConfigured(TrackKind::Audio));
        };
        if self.phase == Phase::Finished {
            return Err(MuxError::Finished);
        }
        let time =
            u64::try_from(frame.media_time_samples).map_err(|_| MuxError::MediaTimeOutOfRange {
                track: TrackKind::Audio,
                time: frame.media_time_samples,
            })?;
        check_wall_clock(frame.wall_clock)?;
        let size = frame.payload.len();
        if size == 0 {
            return Err(MuxError::EmptyFrame(TrackKind::Audio));
        }
        if size > MAX_SAMPLE_BYTES {
            return Err(MuxError::SampleTooLarge {
                track: TrackKind::Audio,
                size,
                limit: MAX_SAMPLE_BYTES,
            });
        }
        if !size.is_multiple_of(usize::from(audio.channels)) {
            return Err(MuxError::PartialAudioSample {
                len: size,
                channels: audio.channels,
            });
        }
        if let Some(previous) = self.audio.held_time()
            && time <= previous
        {
            return Err(MuxError::NonMonotonicTime {
                track: TrackKind::Audio,
                previous: previous as i64,
                current: frame.media_time_samples,
            });
        }

        let mut out = Vec::new();
        if self.phase == Phase::AwaitingInit {
            if self.setup.video {
                return Err(MuxError::NotStarted);
            }
            write_init_segment(
                &mut out,
                &InitSegment {
                    creation_time: self
                        .setup
                        .creation_time
                        .unwrap_or(frame.wall_clock)
                        .to_mp4_seconds(),
                    video: None,
                    audio: self.audio_init(),
                },
            );
            self.phase = Phase::Running;
        }

        if let Some(previous) = self.audio.held_time() {
            let duration = time - previous;
            let max_ticks = u64::from(self.setup.max_fragment_duration_ms)
                * u64::from(audio.sample_rate)
                / 1000;
            let span = time - self.audio.first_time().unwrap_or(previous);
            // With video, fragments are cut by video; audio cuts only if video has stalled.
            let span_limit = if self.setup.video {
                2 * max_ticks
            } else {
                max_ticks
            };
            let cut = span >= span_limit.max(1)
                || self.audio.pending_bytes() + size > MAX_FRAGMENT_PAYLOAD_BYTES
                || self.audio.complete_count() + 1 >= MAX_SAMPLES_PER_FRAGMENT
                || duration > u64::from(u32::MAX);
            self.audio
                .complete_held(u32::try_from(duration).unwrap_or(u32::MAX));
            if cut {
                self.write_fragment(&mut out, None);
            }
        }
        // Channels ≥ 1 and size ≤ MAX_SAMPLE_BYTES, so the sample count fits.
        let sample_count = (size / usize::from(audio.channels)) as u32;
        self.audio.hold(
            time,
            frame.wall_clock,
            SYNC_SAMPLE_FLAGS,
            Some(sample_count),
            |data| data.extend_from_slice(frame.payload),
        );
        Ok(out)
    }

    /// Ends the stream: writes the pending samples as a last fragment. The last video sample
    /// gets the previous sample's duration; the last audio sample its own length. Later pushes
    /// fail with [`MuxError::Finished`]; calling `finish` again returns nothing.
    pub fn finish(&mut self) -> Result<Vec<u8>, MuxError> {
        let mut out = Vec::new();
        if self.phase == Phase::Running {
            let video_fallback = self
                .video
                .last_duration()
                .unwrap_or(DEFAULT_VIDEO_SAMPLE_DURATION);
            self.video.complete_held_at_end(video_fallback);
            self.audio.complete_held_at_end(1);
            self.write_fragment(&mut out, None);
        }
        self.phase = Phase::Finished;
        Ok(out)
    }

    fn audio_init(&self) -> Option<AudioInit> {
        let audio = self.setup.audio?;
        Some(AudioInit {
            track_id: self.audio_track_id()?,
            sample_rate: audio.sample_rate,
            channels: audio.channels,
        })
    }

    /// Writes every complete video sample and the complete audio samples starting before
    /// `audio_cut` (all if `None`) as one fragment: `prft` per track, `moof`, `mdat`.
    fn write_fragment(&mut self, out: &mut Vec<u8>, audio_cut: Option<u64>) {
        let video_count = self.video.complete_count();
        let audio_count = match audio_cut {
            Some(cut) => self.audio.count_before(cut),
            None => self.audio.complete_count(),
        };
        let video = self.video_track_id().zip(
            self.video
                .prefix(video_count)
                .filter(|(_, s, _)| !s.is_empty()),
        );
        let audio = self.audio_track_id().zip(
            self.audio
                .prefix(audio_count)
                .filter(|(_, s, _)| !s.is_empty()),
        );
        if video.is_none() && audio.is_none() {
            return;
        }

        let parts = [video, audio];
        let parts = parts.iter().flatten();
        let payload_len: usize = parts.clone().map(|(_, (_, _, data))| data.len()).sum();
        let sample_count: usize = parts
            .clone()
            .map(|(_, (_, samples, _))| samples.len())
            .sum();
        out.reserve(256 + 12 * sample_count + MDAT_HEADER_BYTES + payload_len);

        let mut trafs = Vec::with_capacity(2);
        for &(track_id, ((base_time, wall_clock), samples, _)) in parts.clone() {
            if let Some(ntp) = wall_clock.to_ntp64() {
                write_prft(out, track_id, ntp, base_time);
            }
            trafs.push(Traf {
                track_id,
                base_media_decode_time: base_time,
                samples,
                uniform_flags: (Some(track_id) == self.audio_track_id())
                    .then_some(SYNC_SAMPLE_FLAGS),
            });
        }
        write_moof(out, self.sequence_number, &trafs);
        write_mdat_header(out, payload_len);
        for (_, (_, _, data)) in parts {
            out.extend_from_slice(data);
        }

        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.video.drain_prefix(video_count);
        self.audio.drain_prefix(audio_count);
    }
}

fn check_wall_clock(wall_clock: WallClock) -> Result<(), MuxError> {
    wall_clock
        .to_ntp64()
        .map(|_| ())
        .ok_or(MuxError::WallClockOutOfRange(wall_clock))
}
