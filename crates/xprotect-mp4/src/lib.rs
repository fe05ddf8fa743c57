//! IO-free fragmented MP4 (ISO BMFF) muxer for H.264 video and G.711 µ-law (PCMU) audio, with
//! per-fragment wall-clock times, and a reader that gets those times back out.
//!
//! # Data flow
//!
//! The caller feeds timed frames in and appends whatever bytes come back to a file (or stdout),
//! then flushes or fsyncs according to its own policy. Every returned chunk is a whole number
//! of boxes, so a file cut after any chunk is playable and loses at most the pending fragment.
//!
//! ```
//! use xprotect_mp4::{Muxer, MuxerConfig, MuxError, VideoFrame, WallClock};
//!
//! # let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x02, 0xc4, 0xec, 0x04, 0x40, 0x00, 0x00,
//! #     0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x92];
//! # let pps: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
//! # let idr: &[u8] = &[0x65, 0x88, 0x84];
//! let mut muxer = Muxer::new(MuxerConfig::default())?;
//! let mut file = Vec::new(); // stands in for a file opened for appending
//! for (ms, keyframe) in [(0, true), (40, false), (80, false)] {
//!     let nal_units: &[&[u8]] = &[sps, pps, idr];
//!     let frame = VideoFrame {
//!         media_time_ms: ms,
//!         wall_clock: WallClock::from_unix_micros(1_700_000_000_000_000 + ms * 1000),
//!         keyframe,
//!         nal_units,
//!     };
//!     match muxer.push_video(&frame) {
//!         Ok(bytes) => file.extend_from_slice(&bytes), // then flush
//!         Err(MuxError::NotStarted) => {}              // before the first keyframe
//!         Err(other) => return Err(other.into()),
//!     }
//! }
//! file.extend_from_slice(&muxer.finish()?);
//!
//! let times = xprotect_mp4::read_frame_times(&file)?;
//! assert_eq!(times.len(), 3);
//! assert_eq!(times[1].media_time, 40 * 90);
//! assert_eq!(times[1].wall_clock, Some(WallClock::from_unix_micros(1_700_000_000_040_000)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # File layout
//!
//! - Init segment (`ftyp` + `moov`), written when the first keyframe with SPS and PPS arrives
//!   (audio-only: at the first audio frame). Video is track 1 (`avc1`/`avcC`, 90 kHz), audio is
//!   the next track (`ulaw`, timescale = sample rate).
//! - Fragments: one `prft` per track in the fragment (wall clock of the track's first sample in
//!   it, `media_time` = its `tfdt`), then `moof` (`mfhd`, one `traf` per track with `tfhd`,
//!   `tfdt`, `trun`) and `mdat`. A fragment starts at every keyframe and whenever the pending
//!   one spans `max_fragment_duration_ms`.
//! - Decode times are the caller's media times; gaps stay gaps. A sample's duration is the next
//!   sample's time minus its own, so the newest sample of each track is held back until the next
//!   one (or [`Muxer::finish`]) arrives.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bits;
mod boxes;
mod error;
mod muxer;
mod pending;
mod read;
mod sps;
mod time;

pub use error::{MuxError, TrackKind};
pub use muxer::{AudioConfig, AudioFrame, MAX_SAMPLE_BYTES, Muxer, MuxerConfig, VideoFrame};
pub use read::{ReadError, SampleTime, read_frame_times};
pub use sps::{SpsError, SpsInfo, parse_sps};
pub use time::WallClock;
