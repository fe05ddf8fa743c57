//! H.264 over RTP (RFC 6184, packetization-mode 1) → access units, and the byte-stream helpers
//! around it.
//!
//! - [`H264Depacketizer`]: push RTP packets, poll [`AccessUnit`]s (reorder window, loss
//!   accounting, [`DepacketizerStats`]).
//! - [`AccessUnit`]: NAL units in AVC (MP4) and Annex-B (`.h264`) form.
//! - [`nal`]: NAL header types; [`annex_b`]: splitting start-code streams;
//!   [`emulation_prevention`]: escaping RBSP bytes.
//! - [`sei`]: the emulator's [`FrameStamp`](sei::FrameStamp), carried in an SEI NAL unit.

pub mod annex_b;
pub mod emulation_prevention;
pub mod nal;
pub mod sei;

mod access_unit;
mod depacketizer;
mod reorder;
mod stats;

pub use access_unit::{AccessUnit, NalUnits};
pub use depacketizer::{DepacketizerConfig, H264Depacketizer};
pub use nal::NalType;
pub use stats::{DepacketizerStats, MalformedCounts, MalformedReason};
