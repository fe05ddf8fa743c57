//! Synthetic cameras: a picture renderer, an H.264 encoder per camera and the fan-out to sessions.
//!
//! ```text
//! CameraSource::subscribe ──▶ encoder thread (only while subscribed)
//!     FrameRenderer (I420 + time overlay + timecode strip) ─▶ CameraEncoder (openh264, SEI FrameStamp)
//!         ─▶ broadcast<Arc<EncodedFrame>> ─▶ every CameraSubscription
//! ```

mod encoder;
mod font;
pub mod ptz;
mod render;
mod source;
pub mod timecode;

use std::collections::HashMap;
use std::sync::Arc;

use uuid::{Uuid, uuid};

use crate::playback::RecordingTimeline;

pub(crate) use encoder::CameraEncoder;
pub use encoder::{EncodeError, EncodedFrame, TARGET_BITRATE_BPS, split_annex_b};
pub use ptz::{PtzControl, PtzOutcome, PtzRejection, PtzState};
pub use render::{FrameRenderer, format_recording_time};
pub use source::{CameraSource, CameraSubscription, EncoderStats, FRAME_BROADCAST_CAPACITY};
pub use timecode::{decode_timecode_from_luma, decode_timecode_from_rgba};

/// Description of one synthetic camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraConfig {
    /// The camera's device id, as clients request it.
    pub id: Uuid,
    /// Display name, drawn into the picture and carried in the SEI stamp.
    pub name: String,
    /// Picture width in pixels (even).
    pub width: u32,
    /// Picture height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Distance between scheduled keyframes, in frames.
    pub keyframe_interval_frames: u32,
    /// What playback can serve: the camera's recordings and the gaps between them.
    pub recordings: RecordingTimeline,
}

impl CameraConfig {
    /// A 25 fps camera with one keyframe a second.
    pub fn new(id: Uuid, name: impl Into<String>, width: u32, height: u32) -> Self {
        Self {
            id,
            name: name.into(),
            width,
            height,
            fps: 25,
            keyframe_interval_frames: 25,
            recordings: RecordingTimeline::default_recordings(),
        }
    }
}

/// The emulator's default cameras: "Front Door" and "Parking Lot", both 640x360 at 25 fps.
pub fn default_cameras() -> Vec<CameraConfig> {
    vec![
        CameraConfig::new(
            uuid!("6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B"),
            "Front Door",
            640,
            360,
        ),
        CameraConfig::new(
            uuid!("0F7E2A9C-3B1D-4C5E-8F6A-7B8C9D0E1F2A"),
            "Parking Lot",
            640,
            360,
        ),
    ]
}

/// All cameras of an emulator, by id.
#[derive(Debug, Clone, Default)]
pub struct CameraHub {
    cameras: HashMap<Uuid, Arc<CameraSource>>,
}

impl CameraHub {
    /// Creates every camera (probing each encoder once; a few milliseconds per camera).
    pub fn new(configs: Vec<CameraConfig>) -> Result<Self, EncodeError> {
        let mut cameras = HashMap::new();
        for config in configs {
            cameras.insert(config.id, Arc::new(CameraSource::new(config)?));
        }
        Ok(Self { cameras })
    }

    /// The camera with `id`.
    pub fn get(&self, id: &Uuid) -> Option<&Arc<CameraSource>> {
        self.cameras.get(id)
    }

    /// Every camera, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CameraSource>> {
        self.cameras.values()
    }

    /// The encoder counters of every camera.
    pub fn stats(&self) -> Vec<EncoderStats> {
        let mut stats: Vec<_> = self.cameras.values().map(|c| c.stats()).collect();
        stats.sort_by_key(|s| s.camera_id);
        stats
    }
}
