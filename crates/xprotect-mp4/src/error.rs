//! Errors of the muxer.

use crate::sps::SpsError;
use crate::time::WallClock;

/// Which track a frame or error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The H.264 video track.
    Video,
    /// The PCMU audio track.
    Audio,
}

/// Why a frame could not be muxed.
///
/// Every error from [`crate::Muxer::push_video`] and [`crate::Muxer::push_audio`] leaves the
/// muxer as it was: the frame is dropped and muxing can go on with the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// The init segment is not known yet: no keyframe with SPS and PPS has arrived (for audio
    /// in a file with video: no video keyframe yet). Expected at the start of a stream; callers
    /// normally ignore it.
    #[error("waiting for the first keyframe with SPS and PPS; frame dropped")]
    NotStarted,
    /// The configuration has no such track.
    #[error("{0:?} track is not configured")]
    TrackNotConfigured(TrackKind),
    /// [`crate::Muxer::finish`] was already called.
    #[error("muxer already finished")]
    Finished,
    /// The configuration is unusable.
    #[error("invalid muxer configuration: {0}")]
    InvalidConfig(&'static str),
    /// The first keyframe's SPS could not be parsed.
    #[error("cannot parse SPS: {0}")]
    InvalidSps(#[from] SpsError),
    /// Media time did not increase (ms for video, samples for audio).
    #[error("{track:?} media time {current} is not after the previous frame's {previous}")]
    NonMonotonicTime {
        /// The track.
        track: TrackKind,
        /// The previous frame's media time.
        previous: i64,
        /// The rejected frame's media time.
        current: i64,
    },
    /// Media time is negative or too large for the track's timescale.
    #[error("{track:?} media time {time} is out of range")]
    MediaTimeOutOfRange {
        /// The track.
        track: TrackKind,
        /// The rejected media time.
        time: i64,
    },
    /// The wall clock cannot be written as an NTP timestamp (before 1968 or after 2104).
    #[error("wall clock {0:?} is outside the NTP range 1968..2104")]
    WallClockOutOfRange(WallClock),
    /// The frame has no media data.
    #[error("{0:?} frame is empty")]
    EmptyFrame(TrackKind),
    /// The frame is larger than the muxer accepts for one sample.
    #[error("{track:?} frame of {size} bytes exceeds the {limit} byte limit")]
    SampleTooLarge {
        /// The track.
        track: TrackKind,
        /// The frame's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An audio payload's length is not a multiple of the channel count.
    #[error("audio payload of {len} bytes is not a whole number of {channels}-channel samples")]
    PartialAudioSample {
        /// Payload length in bytes.
        len: usize,
        /// Configured channel count.
        channels: u16,
    },
}
