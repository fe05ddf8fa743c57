//! Playback of recorded video (PROTOCOL.md §4.2–§4.4).
//!
//! ```text
//! RecordingTimeline (per camera) ─▶ PlaybackSchedule (pure: which frames, RTP, when)
//!     ─▶ GopCache (encode each recorded GOP once) ─▶ media engine's player task ─▶ session
//! ```
//!
//! Each camera has recordings with gaps ([`RecordingTimeline::default_recordings`]); a playback
//! session gets its own schedule, starting with a keyframe at the first frame at or after the
//! requested time, and ends (journal event `playback_ended`) after the last recording.

mod gop_cache;
mod schedule;
mod timeline;

pub use gop_cache::{DEFAULT_GOP_CACHE_BYTES, EncodePriority, EncodedGop, GopCache, GopCacheStats};
pub use schedule::{PacingConfig, PlannedFrame, PlannedGop, PlaybackSchedule};
pub use timeline::{Recording, RecordingTimeline, TimelineError, format_unix_ms, unix_ms};

/// The most frames per second a playback session is sent; above it frames are dropped evenly
/// (speed 4 of a 25 fps camera sends every other frame, speed 32 one in fourteen).
pub const MAX_PLAYBACK_SEND_FPS: u32 = 60;
