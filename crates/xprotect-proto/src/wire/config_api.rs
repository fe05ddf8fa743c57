//! The RESTful Config API under `<gateway>/rest/v1/` (PROTOCOL.md §11): the envelopes, the camera,
//! stream and microphone objects, and the error body. One definition for client and emulator.
//!
//! Field names and order follow the captures PROTOCOL.md §11.D–F cites ([XPR-PY] on 23.2,
//! [3P-VERIFY] on 25.1). Decoding is tolerant as §11.L.4 asks: every field has a default,
//! unknown fields are ignored, and numbers may arrive as strings (23.2 writes `"5"` where 25.1
//! writes `5`). Decode responses with [`crate::wire::lenient::from_str`] so that names match
//! case-insensitively too.

use serde::{Deserialize, Deserializer, Serialize};

use crate::wire::DeviceId;
use crate::wire::lenient::{optional_bool_or_string, optional_number_or_string};

/// The Config API base, relative to the gateway URL (no leading `/`, as `HttpRequest` paths).
pub const CONFIG_API_BASE: &str = "rest/v1";
/// `recordTo` of a stream recorded to the primary track (PROTOCOL.md §11.E, [PSTOOLS-BLOG]).
pub const RECORD_TO_PRIMARY: &str = "16ce3aa1-5f93-458a-abe5-5c95d9ed1372";
/// `recordTo` of a stream recorded to the secondary track.
pub const RECORD_TO_SECONDARY: &str = "84fff8b9-8cd1-46b2-a451-c4a87d4cbbb0";
/// .NET `DateTime.MinValue` without offset: what devices that never set a date carry (§11.C).
pub const UNSET_DATE: &str = "0001-01-01T00:00:00.0000000";
/// `gisPoint` of a device without a position.
pub const GIS_POINT_EMPTY: &str = "POINT EMPTY";

/// `GET /{collection}` and `GET /{collection}/{id}/{child}`: `{"array":[…]}` with full objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayResponse<T> {
    /// The items.
    pub array: Vec<T>,
}

/// `GET /{collection}/{id}`: `{"data":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataResponse<T> {
    /// The item.
    pub data: T,
}

/// A reference to another item: `{"type":"hardware","id":"…"}`. `type` is an open string
/// (`recordingServers` and `recorders` both occur, §11.H).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemPath {
    /// The REST collection name of the item.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Its id (a GUID for devices; task ids are numbers as text).
    #[serde(default)]
    pub id: String,
}

impl ItemPath {
    /// A path to `id` in `collection`.
    pub fn new(collection: &str, id: impl ToString) -> Self {
        Self {
            kind: collection.to_owned(),
            id: id.to_string(),
        }
    }
}

/// `relations`: the parent (absent on top-level sites) and the item itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Relations {
    /// The item this one belongs to (for devices: their hardware).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ItemPath>,
    /// The item itself.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_path: Option<ItemPath>,
}

/// A camera as `GET cameras` and `GET cameras/{id}` return it (§11.D), in the captures' field
/// order. Fields the 23.2 capture lacks are optional and left out when `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Camera {
    /// The display name.
    #[serde(default)]
    pub display_name: String,
    /// Disabled cameras are listed only with `?disabled`.
    #[serde(default = "yes", deserialize_with = "bool_lenient")]
    pub enabled: bool,
    /// The camera's id: the WebRTC `deviceId`.
    pub id: DeviceId,
    /// The name (equal to `displayName` in every capture).
    #[serde(default)]
    pub name: String,
    /// Index of the camera on its hardware.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "int_lenient"
    )]
    pub channel: Option<i64>,
    /// Free text; may contain `\r\n`.
    #[serde(default)]
    pub description: String,
    /// Creation time ([`UNSET_DATE`] when never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    /// Last change, 7 fractional digits and `Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// WKT, longitude first, or [`GIS_POINT_EMPTY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gis_point: Option<String>,
    /// Short name (often empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    /// Icon index.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "int_lenient"
    )]
    pub icon: Option<i64>,
    /// Recording frame rate (a string on 23.2, a number on 25.1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_number_or_string"
    )]
    pub recording_framerate: Option<f64>,
    /// Whether the camera has PTZ (25.1 capture; absent on older servers, §11.G).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_bool_or_string"
    )]
    pub ptz_enabled: Option<bool>,
    /// Whether the camera records.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_bool_or_string"
    )]
    pub recording_enabled: Option<bool>,
    /// Parent hardware and self.
    #[serde(default)]
    pub relations: Relations,
}

impl Camera {
    /// What to show the user: `displayName`, else `name`, else the id (§11.L.3).
    pub fn label(&self) -> String {
        [&self.display_name, &self.name]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// The id of the hardware the camera sits on, if the relations name it.
    pub fn hardware_id(&self) -> Option<&str> {
        self.relations.parent.as_ref().map(|p| p.id.as_str())
    }
}

/// A microphone as `GET microphones` returns it (§11.F.1; subset of the 23.2 capture).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Microphone {
    /// The display name.
    #[serde(default)]
    pub display_name: String,
    /// Disabled microphones are listed only with `?disabled`.
    #[serde(default = "yes", deserialize_with = "bool_lenient")]
    pub enabled: bool,
    /// The microphone's id (an audio-only WebRTC `deviceId` from 2025 R2 on).
    pub id: DeviceId,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// Index of the microphone on its hardware.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "int_lenient"
    )]
    pub channel: Option<i64>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    /// Last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Parent hardware and self.
    #[serde(default)]
    pub relations: Relations,
}

impl Microphone {
    /// `displayName`, else `name`, else the id.
    pub fn label(&self) -> String {
        [&self.display_name, &self.name]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// The one element of `GET cameras/{id}/streams`, which wraps the stream usages (§11.E).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamsItem {
    /// `"Streams"`.
    #[serde(default)]
    pub display_name: String,
    /// The stream usages the administrator enabled.
    #[serde(default)]
    pub stream: Vec<StreamUsage>,
    /// Parent camera and self (with the camera's id, §11.C).
    #[serde(default)]
    pub relations: Relations,
}

/// One stream usage of a camera (§11.E).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamUsage {
    /// The usage's name, e.g. "Video stream 1".
    #[serde(default)]
    pub display_name: String,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The driver stream's GUID, upper case in captures: the value WebRTC `streamId` takes. Not
    /// unique across cameras, so only meaningful with its camera.
    #[serde(default)]
    pub stream_reference_id: String,
    /// The default live stream (exactly one is, inferred).
    #[serde(default, deserialize_with = "bool_lenient")]
    pub live_default: bool,
    /// `Always`, `Never` or `WhenNeeded`.
    #[serde(default)]
    pub live_mode: String,
    /// Recording track ([`RECORD_TO_PRIMARY`], [`RECORD_TO_SECONDARY`]) or empty.
    #[serde(default)]
    pub record_to: String,
    /// The default stream for playback.
    #[serde(default, deserialize_with = "bool_lenient")]
    pub default_playback: bool,
    /// Whether edge storage is used.
    #[serde(default, deserialize_with = "bool_lenient")]
    pub use_edge: bool,
}

impl StreamUsage {
    /// `displayName`, else `name`, else the reference id.
    pub fn label(&self) -> String {
        [&self.display_name, &self.name]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.stream_reference_id.clone())
    }
}

/// The Config API's error body (§11.B.2):
/// `{"error":{"httpCode":404,"details":[{"errorText":"…"}]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigErrorBody {
    /// The error.
    pub error: ConfigError,
}

/// The `error` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigError {
    /// The HTTP status, repeated.
    #[serde(default)]
    pub http_code: u16,
    /// What went wrong (usually one entry).
    #[serde(default)]
    pub details: Vec<ConfigErrorDetail>,
}

/// One entry of `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigErrorDetail {
    /// The message, e.g. `Device not found. cameras/<id>`.
    #[serde(default)]
    pub error_text: String,
    /// A message id such as `VMO61008`; seen only on 403s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_text_id: Option<String>,
}

impl ConfigErrorBody {
    /// A body with one detail.
    pub fn new(http_code: u16, error_text: impl Into<String>) -> Self {
        Self {
            error: ConfigError {
                http_code,
                details: vec![ConfigErrorDetail {
                    error_text: error_text.into(),
                    error_text_id: None,
                }],
            },
        }
    }

    /// Every `errorText`, joined.
    pub fn text(&self) -> String {
        self.error
            .details
            .iter()
            .map(|d| d.error_text.as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn yes() -> bool {
    true
}

fn bool_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(optional_bool_or_string(deserializer)?.unwrap_or_default())
}

/// An integer that may arrive as a number or a string; fractions are refused.
fn int_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match optional_number_or_string(deserializer)? {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(v as i64)),
        Some(v) => Err(serde::de::Error::custom(format!("{v} is not an integer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::lenient;

    #[test]
    fn a_23_2_camera_with_string_numbers_decodes() {
        let text = r#"{"array":[{"DisplayName":"Cam","enabled":"True","id":"3F1C2B7E-9A41-4D8E-B0C2-5E6F7A8B9C01",
            "name":"Cam","channel":"0","recordingFramerate":"5","icon":0,"extra":{"x":1},
            "relations":{"parent":{"type":"hardware","id":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"},
                         "self":{"type":"cameras","id":"3f1c2b7e-9a41-4d8e-b0c2-5e6f7a8b9c01"}}}]}"#;
        let list: ArrayResponse<Camera> = lenient::from_str(text).unwrap();
        let camera = &list.array[0];
        assert!(camera.enabled);
        assert_eq!(camera.channel, Some(0));
        assert_eq!(camera.recording_framerate, Some(5.0));
        assert_eq!(camera.ptz_enabled, None);
        assert_eq!(camera.label(), "Cam");
        assert_eq!(
            camera.hardware_id(),
            Some("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
        );
    }

    #[test]
    fn streams_and_errors_round_trip() {
        let item = StreamsItem {
            display_name: "Streams".into(),
            stream: vec![StreamUsage {
                display_name: "Video stream 1".into(),
                name: "Video stream 1".into(),
                stream_reference_id: "28DC44C3-079E-4C94-8EC9-60363451EB40".into(),
                live_default: true,
                live_mode: "WhenNeeded".into(),
                record_to: RECORD_TO_PRIMARY.into(),
                default_playback: true,
                use_edge: false,
            }],
            relations: Relations::default(),
        };
        let text = serde_json::to_string(&ArrayResponse { array: vec![item] }).unwrap();
        assert!(text.contains(r#""streamReferenceId":"28DC44C3-079E-4C94-8EC9-60363451EB40""#));
        let back: ArrayResponse<StreamsItem> = lenient::from_str(&text).unwrap();
        assert!(back.array[0].stream[0].live_default);

        let error = ConfigErrorBody::new(404, "Device not found. cameras/x");
        let text = serde_json::to_string(&error).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"httpCode":404,"details":[{"errorText":"Device not found. cameras/x"}]}}"#
        );
        assert_eq!(
            lenient::from_str::<ConfigErrorBody>(&text).unwrap().text(),
            "Device not found. cameras/x"
        );
    }

    #[test]
    fn fractional_channels_are_refused() {
        let text = r#"{"id":"3f1c2b7e-9a41-4d8e-b0c2-5e6f7a8b9c01","channel":"1.5"}"#;
        assert!(lenient::from_str::<Camera>(text).is_err());
    }
}
