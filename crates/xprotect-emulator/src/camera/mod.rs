//! Synthetic cameras: a picture renderer, an H.264 encoder per camera stream and the fan-out to
//! sessions.
//!
//! Each camera has two live encodings, "Video stream 1" ([`StreamKind::Primary`], the configured
//! size) and "Video stream 2" ([`StreamKind::Secondary`], twice that, at most 1920x1080), each its
//! own [`CameraSource`] that encodes only while watched, and one [`PtzControl`] both share.
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
use xprotect_proto::wire::commands::Command;

use crate::devices::{VIDEO_STREAM_1, VIDEO_STREAM_2};
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

/// Device id of the default camera "Front Door" (a PTZ camera).
pub const FRONT_DOOR_ID: Uuid = uuid!("6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B");
/// Device id of the default camera "Parking Lot" (a fixed camera: no PTZ).
pub const PARKING_LOT_ID: Uuid = uuid!("0F7E2A9C-3B1D-4C5E-8F6A-7B8C9D0E1F2A");

/// The emulator's default cameras: "Front Door" and "Parking Lot", both 640x360 at 25 fps.
pub fn default_cameras() -> Vec<CameraConfig> {
    vec![
        CameraConfig::new(FRONT_DOOR_ID, "Front Door", 640, 360),
        CameraConfig::new(PARKING_LOT_ID, "Parking Lot", 640, 360),
    ]
}

/// Which of a camera's live encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum StreamKind {
    /// "Video stream 1": the camera's configured size; the live default, and what playback
    /// serves whatever stream a playback request names.
    #[default]
    Primary,
    /// "Video stream 2": twice the configured size, scaled down to fit 1920x1080.
    Secondary,
}

/// The largest picture of a secondary stream.
const MAX_SECONDARY_SIZE: (u32, u32) = (1920, 1080);

impl StreamKind {
    /// The encoding a `streamId` selects: "Video stream 2" gets the secondary, anything else
    /// (none, "Video stream 1", or another id a custom catalog lists) the primary. Whether the
    /// id is one of the camera's streams is the catalog's call, made before this.
    pub fn for_stream_id(stream: Option<Uuid>) -> Self {
        if stream == Some(VIDEO_STREAM_2) {
            Self::Secondary
        } else {
            Self::Primary
        }
    }

    /// The `streamReferenceId` of this encoding in the default catalog.
    pub fn stream_id(self) -> Uuid {
        match self {
            Self::Primary => VIDEO_STREAM_1,
            Self::Secondary => VIDEO_STREAM_2,
        }
    }

    /// The picture size of this encoding of `camera` (before the renderer evens it out).
    pub fn picture_size(self, camera: &CameraConfig) -> (u32, u32) {
        match self {
            Self::Primary => (camera.width, camera.height),
            Self::Secondary => {
                let (w, h) = (
                    u64::from(camera.width) * 2,
                    u64::from(camera.height.max(1)) * 2,
                );
                let (max_w, max_h) = (
                    u64::from(MAX_SECONDARY_SIZE.0),
                    u64::from(MAX_SECONDARY_SIZE.1),
                );
                // Keep the aspect ratio: shrink by whichever limit binds harder.
                let (w, h) = if w * max_h > h * max_w {
                    if w > max_w {
                        (max_w, h * max_w / w)
                    } else {
                        (w, h)
                    }
                } else if h > max_h {
                    (w * max_h / h, max_h)
                } else {
                    (w, h)
                };
                // Both are at most the limits now, which fit u32.
                (w as u32, h as u32)
            }
        }
    }
}

/// One live encoding of one camera: what a session watches and a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId {
    /// The camera.
    pub camera: Uuid,
    /// Which of its encodings.
    pub stream: StreamKind,
}

/// One camera: its encodings and the PTZ head they share.
#[derive(Debug, Clone)]
struct HubCamera {
    primary: Arc<CameraSource>,
    secondary: Arc<CameraSource>,
    ptz: Arc<PtzControl>,
}

/// All cameras of an emulator, by id.
#[derive(Debug, Clone, Default)]
pub struct CameraHub {
    cameras: HashMap<Uuid, HubCamera>,
}

impl CameraHub {
    /// Creates every camera with both encodings (probing each encoder once: a few milliseconds
    /// per camera at 360p, a few tens at 720p; nothing is encoded after that until watched).
    pub fn new(configs: Vec<CameraConfig>) -> Result<Self, EncodeError> {
        let mut cameras = HashMap::new();
        for config in configs {
            let ptz = Arc::new(PtzControl::default());
            let primary = CameraSource::new(config.clone(), StreamKind::Primary, ptz.clone())?;
            let secondary = CameraSource::new(config.clone(), StreamKind::Secondary, ptz.clone())?;
            cameras.insert(
                config.id,
                HubCamera {
                    primary: Arc::new(primary),
                    secondary: Arc::new(secondary),
                    ptz,
                },
            );
        }
        Ok(Self { cameras })
    }

    /// The camera with `id`: its primary encoding.
    pub fn get(&self, id: &Uuid) -> Option<&Arc<CameraSource>> {
        self.cameras.get(id).map(|c| &c.primary)
    }

    /// One encoding of a camera.
    pub fn source(&self, id: &SourceId) -> Option<&Arc<CameraSource>> {
        let camera = self.cameras.get(&id.camera)?;
        Some(match id.stream {
            StreamKind::Primary => &camera.primary,
            StreamKind::Secondary => &camera.secondary,
        })
    }

    /// The PTZ head of the camera with `id`.
    pub fn ptz(&self, id: &Uuid) -> Option<&Arc<PtzControl>> {
        self.cameras.get(id).map(|c| &c.ptz)
    }

    /// Applies a `commands` data-channel message to the PTZ head of `camera`, which every
    /// session and stream of that camera shares; `ptz_enabled` is the camera's `ptzEnabled`.
    pub fn apply_command(
        &self,
        camera: &Uuid,
        command: &Command,
        ptz_enabled: bool,
    ) -> Result<PtzOutcome, PtzRejection> {
        self.ptz(camera)
            .ok_or(PtzRejection::NotACamera)?
            .apply(command, ptz_enabled)
    }

    /// Every encoding of every camera, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CameraSource>> {
        self.cameras
            .values()
            .flat_map(|c| [&c.primary, &c.secondary])
    }

    /// The encoder counters of every encoding, by camera, primary first.
    pub fn stats(&self) -> Vec<EncoderStats> {
        let mut stats: Vec<_> = self.iter().map(|c| c.stats()).collect();
        stats.sort_by_key(|s| (s.camera_id, s.stream));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_streams_are_twice_the_size_within_full_hd() {
        let size =
            |w, h| StreamKind::Secondary.picture_size(&CameraConfig::new(Uuid::nil(), "x", w, h));
        assert_eq!(size(640, 360), (1280, 720));
        assert_eq!(size(960, 540), (1920, 1080));
        assert_eq!(size(1280, 720), (1920, 1080));
        assert_eq!(size(1920, 1080), (1920, 1080));
        assert_eq!(size(640, 480), (1280, 960));
        assert_eq!(size(1000, 1000), (1080, 1080));
        assert_eq!(size(4000, 1000), (1920, 480));
        assert_eq!(
            StreamKind::Primary.picture_size(&CameraConfig::new(Uuid::nil(), "x", 640, 360)),
            (640, 360)
        );
    }

    #[test]
    fn stream_ids_select_encodings() {
        assert_eq!(StreamKind::for_stream_id(None), StreamKind::Primary);
        assert_eq!(
            StreamKind::for_stream_id(Some(VIDEO_STREAM_1)),
            StreamKind::Primary
        );
        assert_eq!(
            StreamKind::for_stream_id(Some(VIDEO_STREAM_2)),
            StreamKind::Secondary
        );
        assert_eq!(
            StreamKind::for_stream_id(Some(Uuid::nil())),
            StreamKind::Primary
        );
        for kind in [StreamKind::Primary, StreamKind::Secondary] {
            assert_eq!(StreamKind::for_stream_id(Some(kind.stream_id())), kind);
        }
    }
}
