//! The emulator's device catalog as the Config API describes it (PROTOCOL.md §11.D–G): per camera
//! its stream usages, PTZ flag and related microphone, and the REST objects built from them.
//!
//! The catalog is separate from [`CameraConfig`] (which drives the picture and the encoder)
//! because it describes what the *configuration* says; cameras without [`CameraDetails`] get
//! [`CameraDetails::default`]: two streams and PTZ. The default configuration
//! ([`default_camera_details`]) makes "Parking Lot" a fixed camera, so both kinds exist out of
//! the box.

use std::collections::HashMap;

use uuid::{Uuid, uuid};
use xprotect_proto::wire::DeviceId;
use xprotect_proto::wire::config_api::{
    Camera, GIS_POINT_EMPTY, ItemPath, Microphone, RECORD_TO_PRIMARY, Relations, StreamUsage,
    StreamsItem, UNSET_DATE,
};

use crate::camera::{CameraConfig, PARKING_LOT_ID};

/// The driver stream GUIDs of "Video stream 1" and "Video stream 2". Drivers reuse these across
/// cameras (PROTOCOL.md §11.E), so the emulator does too: a `streamId` means something only
/// together with its camera.
pub const VIDEO_STREAM_1: Uuid = uuid!("28DC44C3-079E-4C94-8EC9-60363451EB40");
/// See [`VIDEO_STREAM_1`].
pub const VIDEO_STREAM_2: Uuid = uuid!("28DC44C3-079E-4C94-8EC9-60363451EB41");

/// The microphone related to the default camera "Front Door" (see [`default_camera_details`]).
pub const FRONT_DOOR_MICROPHONE: Uuid = uuid!("9A1E4C7B-2D3F-4B6A-8C5D-0E1F2A3B4C5D");
/// Its name.
pub const FRONT_DOOR_MICROPHONE_NAME: &str = "Front Door Microphone";
/// The default camera "Front Door" (checked against `default_cameras` in the tests).
const FRONT_DOOR_CAMERA: Uuid = uuid!("6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B");

/// XOR mask that derives a camera's hardware id from its own, so relations are stable.
const HARDWARE_ID_MASK: u128 = 0x0000_0000_0000_0000_8000_0000_0000_0001;

/// One stream usage of a camera (`cameras/{id}/streams`, §11.E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// `streamReferenceId`, the value WebRTC's `streamId` takes.
    pub reference_id: Uuid,
    /// The usage's name, e.g. "Video stream 1".
    pub name: String,
    /// The default live stream (exactly one per camera should be).
    pub live_default: bool,
    /// The default playback stream.
    pub default_playback: bool,
    /// Recording track GUID, or empty for "not recorded".
    pub record_to: String,
    /// `Always`, `Never` or `WhenNeeded`.
    pub live_mode: String,
}

/// A microphone related to a camera: listed by the Config API, and streamed as PCMU audio with
/// the camera's video, or alone when a session asks for the microphone's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrophoneConfig {
    /// The microphone's device id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// What the configuration says about a camera beyond its picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraDetails {
    /// The stream usages, in the order `/streams` lists them.
    pub streams: Vec<StreamConfig>,
    /// `ptzEnabled`.
    pub ptz_enabled: bool,
    /// The related microphone, listed under `microphones` on the same hardware.
    pub microphone: Option<MicrophoneConfig>,
    /// `description`.
    pub description: String,
}

impl Default for CameraDetails {
    fn default() -> Self {
        Self {
            streams: default_streams(),
            // The emulator moves the head of every camera whose flag is set (and rejects moves
            // for the others), so the flag is truthful.
            ptz_enabled: true,
            microphone: None,
            description: String::new(),
        }
    }
}

/// The details of the default cameras ([`crate::camera::default_cameras`]): "Front Door" has a
/// related microphone ([`FRONT_DOOR_MICROPHONE`]) and PTZ; "Parking Lot" is a fixed camera
/// (`ptzEnabled: false`, PTZ moves rejected) without a microphone. Both have the default streams.
pub fn default_camera_details() -> HashMap<Uuid, CameraDetails> {
    HashMap::from([
        (
            FRONT_DOOR_CAMERA,
            CameraDetails {
                microphone: Some(MicrophoneConfig {
                    id: FRONT_DOOR_MICROPHONE,
                    name: FRONT_DOOR_MICROPHONE_NAME.to_owned(),
                }),
                ..CameraDetails::default()
            },
        ),
        (
            PARKING_LOT_ID,
            CameraDetails {
                ptz_enabled: false,
                ..CameraDetails::default()
            },
        ),
    ])
}

/// "Video stream 1" (live and playback default, recorded) and "Video stream 2".
///
/// Live, "Video stream 1" is the camera's configured size and "Video stream 2" a second encoding
/// at twice that size (at most 1920x1080, see [`crate::camera::StreamKind`]); playback serves
/// the recording of "Video stream 1" whichever is asked for.
pub fn default_streams() -> Vec<StreamConfig> {
    vec![
        StreamConfig {
            reference_id: VIDEO_STREAM_1,
            name: "Video stream 1".to_owned(),
            live_default: true,
            default_playback: true,
            record_to: RECORD_TO_PRIMARY.to_owned(),
            live_mode: "WhenNeeded".to_owned(),
        },
        StreamConfig {
            reference_id: VIDEO_STREAM_2,
            name: "Video stream 2".to_owned(),
            live_default: false,
            default_playback: false,
            record_to: String::new(),
            live_mode: "WhenNeeded".to_owned(),
        },
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    id: Uuid,
    name: String,
    fps: u32,
    hardware: Uuid,
    details: CameraDetails,
}

/// Every camera and microphone of the emulator, as Config API objects.
#[derive(Debug, Clone)]
pub struct DeviceCatalog {
    entries: Vec<Entry>,
    last_modified: String,
}

impl DeviceCatalog {
    /// The catalog of `cameras`, with `details` where given and defaults elsewhere.
    /// `last_modified` is written into every object (7 fractional digits and `Z`, §11.C).
    pub fn new(
        cameras: &[CameraConfig],
        details: &HashMap<Uuid, CameraDetails>,
        last_modified: String,
    ) -> Self {
        let entries = cameras
            .iter()
            .map(|camera| Entry {
                id: camera.id,
                name: camera.name.clone(),
                fps: camera.fps,
                hardware: Uuid::from_u128(camera.id.as_u128() ^ HARDWARE_ID_MASK),
                details: details.get(&camera.id).cloned().unwrap_or_default(),
            })
            .collect();
        Self {
            entries,
            last_modified,
        }
    }

    fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Whether `id` is a camera or microphone of this catalog.
    pub fn contains_device(&self, id: Uuid) -> bool {
        self.entries
            .iter()
            .any(|e| e.id == id || e.details.microphone.as_ref().is_some_and(|m| m.id == id))
    }

    /// `GET cameras`.
    pub fn cameras(&self) -> Vec<Camera> {
        self.entries.iter().map(|e| self.camera_object(e)).collect()
    }

    /// `GET cameras/{id}`.
    pub fn camera(&self, id: Uuid) -> Option<Camera> {
        self.entry(id).map(|e| self.camera_object(e))
    }

    /// `GET cameras/{id}/streams`: the one wrapper element.
    pub fn streams(&self, id: Uuid) -> Option<StreamsItem> {
        let entry = self.entry(id)?;
        Some(StreamsItem {
            display_name: "Streams".to_owned(),
            stream: entry
                .details
                .streams
                .iter()
                .map(|s| StreamUsage {
                    display_name: s.name.clone(),
                    name: s.name.clone(),
                    // Upper case, as in the captures.
                    stream_reference_id: s
                        .reference_id
                        .hyphenated()
                        .to_string()
                        .to_ascii_uppercase(),
                    live_default: s.live_default,
                    live_mode: s.live_mode.clone(),
                    record_to: s.record_to.clone(),
                    default_playback: s.default_playback,
                    use_edge: false,
                })
                .collect(),
            relations: Relations {
                parent: Some(ItemPath::new("cameras", entry.id)),
                self_path: Some(ItemPath::new("streams", entry.id)),
            },
        })
    }

    /// Whether `id` is a PTZ camera (`None`: no such camera).
    pub fn ptz_enabled(&self, id: Uuid) -> Option<bool> {
        self.entry(id).map(|e| e.details.ptz_enabled)
    }

    /// `GET microphones`.
    pub fn microphones(&self) -> Vec<Microphone> {
        self.entries
            .iter()
            .filter_map(|e| self.microphone_object(e))
            .collect()
    }

    /// `GET microphones/{id}`.
    pub fn microphone(&self, id: Uuid) -> Option<Microphone> {
        self.microphones().into_iter().find(|m| m.id.0 == id)
    }

    /// Accept `stream` for `device` if it is one of the camera's stream usages; the error says
    /// which streams exist.
    pub fn check_stream(&self, device: Uuid, stream: Uuid) -> Result<(), String> {
        let Some(entry) = self.entry(device) else {
            return Err(format!("device {device} has no streams"));
        };
        if entry
            .details
            .streams
            .iter()
            .any(|s| s.reference_id == stream)
        {
            return Ok(());
        }
        let known: Vec<String> = entry
            .details
            .streams
            .iter()
            .map(|s| format!("{} ({})", s.reference_id.hyphenated(), s.name))
            .collect();
        Err(format!(
            "device {device} has no stream {stream}; its streams are {} (omit streamId for the default)",
            known.join(", ")
        ))
    }

    fn camera_object(&self, entry: &Entry) -> Camera {
        Camera {
            display_name: entry.name.clone(),
            enabled: true,
            id: DeviceId(entry.id),
            name: entry.name.clone(),
            channel: Some(0),
            description: entry.details.description.clone(),
            created_date: Some(UNSET_DATE.to_owned()),
            last_modified: Some(self.last_modified.clone()),
            gis_point: Some(GIS_POINT_EMPTY.to_owned()),
            short_name: Some(String::new()),
            icon: Some(0),
            recording_framerate: Some(f64::from(entry.fps)),
            ptz_enabled: Some(entry.details.ptz_enabled),
            recording_enabled: Some(true),
            relations: Relations {
                parent: Some(ItemPath::new("hardware", entry.hardware)),
                self_path: Some(ItemPath::new("cameras", entry.id)),
            },
        }
    }

    fn microphone_object(&self, entry: &Entry) -> Option<Microphone> {
        let microphone = entry.details.microphone.as_ref()?;
        Some(Microphone {
            display_name: microphone.name.clone(),
            enabled: true,
            id: DeviceId(microphone.id),
            name: microphone.name.clone(),
            channel: Some(0),
            description: String::new(),
            created_date: Some(UNSET_DATE.to_owned()),
            last_modified: Some(self.last_modified.clone()),
            relations: Relations {
                parent: Some(ItemPath::new("hardware", entry.hardware)),
                self_path: Some(ItemPath::new("microphones", microphone.id)),
            },
        })
    }
}

/// `2026-11-25T19:26:53.1230000Z`: the Config API's `lastModified` form (7 fractional digits).
pub fn format_last_modified(time: time::OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.nanosecond() / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::default_cameras;

    #[test]
    fn streams_are_per_camera_and_upper_case() {
        let cameras = default_cameras();
        let catalog = DeviceCatalog::new(&cameras, &HashMap::new(), "x".into());
        let id = cameras[0].id;
        let streams = catalog.streams(id).unwrap();
        assert_eq!(
            streams.stream[1].stream_reference_id,
            "28DC44C3-079E-4C94-8EC9-60363451EB41"
        );
        assert!(catalog.check_stream(id, VIDEO_STREAM_2).is_ok());
        let error = catalog.check_stream(id, Uuid::nil()).unwrap_err();
        assert!(error.contains("Video stream 1"), "{error}");
        assert!(catalog.check_stream(Uuid::nil(), VIDEO_STREAM_1).is_err());
    }

    #[test]
    fn microphones_sit_on_their_camera_s_hardware() {
        let cameras = default_cameras();
        let mic = Uuid::from_u128(7);
        let details = HashMap::from([(
            cameras[1].id,
            CameraDetails {
                microphone: Some(MicrophoneConfig {
                    id: mic,
                    name: "Parking Lot Microphone".into(),
                }),
                ..CameraDetails::default()
            },
        )]);
        let catalog = DeviceCatalog::new(&cameras, &details, "x".into());
        let microphones = catalog.microphones();
        assert_eq!(microphones.len(), 1);
        assert_eq!(
            microphones[0].relations.parent,
            catalog.camera(cameras[1].id).unwrap().relations.parent
        );
        assert!(catalog.contains_device(mic));
    }

    #[test]
    fn by_default_front_door_has_a_microphone_and_parking_lot_none() {
        let cameras = default_cameras();
        let catalog = DeviceCatalog::new(&cameras, &default_camera_details(), "x".into());
        let microphones = catalog.microphones();
        assert_eq!(microphones.len(), 1);
        assert_eq!(microphones[0].id.0, FRONT_DOOR_MICROPHONE);
        assert_eq!(microphones[0].name, FRONT_DOOR_MICROPHONE_NAME);
        assert_eq!(cameras[0].name, "Front Door");
        assert_eq!(
            microphones[0].relations.parent,
            catalog.camera(cameras[0].id).unwrap().relations.parent
        );
    }

    #[test]
    fn parking_lot_is_a_fixed_camera_by_default() {
        let cameras = default_cameras();
        let catalog = DeviceCatalog::new(&cameras, &default_camera_details(), "x".into());
        assert_eq!(catalog.ptz_enabled(cameras[0].id), Some(true));
        assert_eq!(catalog.ptz_enabled(PARKING_LOT_ID), Some(false));
        assert_eq!(catalog.ptz_enabled(Uuid::nil()), None);
        // Cameras without details are PTZ cameras.
        let catalog = DeviceCatalog::new(&cameras, &HashMap::new(), "x".into());
        assert_eq!(catalog.ptz_enabled(PARKING_LOT_ID), Some(true));
    }

    #[test]
    fn last_modified_has_seven_fractional_digits() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(format_last_modified(t), "2023-11-14T22:13:20.1234567Z");
    }
}
