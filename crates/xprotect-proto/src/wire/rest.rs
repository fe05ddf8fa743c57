//! REST signaling bodies: `<gateway>/REST/v1/WebRTC/Session` and `/IceCandidates` (PROTOCOL.md §2).

use super::candidate::IceCandidateInit;
use super::ice_server::{IceServer, IceServerDialect, IceServerWire};
use super::ids::{DeviceId, SessionId, StreamId};
use super::lenient;
use super::session::{
    FieldError, Playback, SessionParams, format_iso_millis, parse_playback_time, validate_speed,
};
use serde::{Deserialize, Serialize};

/// Path of the session resource below the gateway URL.
pub const SESSION_PATH: &str = "REST/v1/WebRTC/Session";
/// Path of the candidate resource below the gateway URL.
pub const ICE_CANDIDATES_PATH: &str = "REST/v1/WebRTC/IceCandidates";

/// The `resolution` value every sample sends; the field is reserved.
pub const RESOLUTION_NOT_IN_USE: &str = "notInUse";

/// `POST Session` body. Every field optional on the wire; [`CreateSessionRequest::validate`] decides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// Camera or microphone (2025 R2+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Camera (before 2025 R2, deprecated after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    /// Reserved; the sample sends `notInUse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Stream of the camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// Add the related microphone (default true).
    #[serde(
        default,
        deserialize_with = "lenient::optional_bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_audio: Option<bool>,
    /// Present for playback; `playbackTime` empty or missing means live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_time_node: Option<PlaybackTimeNode>,
    /// STUN/TURN for the gateway's gathering (`url` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<Vec<IceServerWire>>,
}

/// `playbackTimeNode` of a session request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybackTimeNode {
    /// ISO 8601 with offset; empty means live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_time: Option<String>,
    /// Skip gaps between recordings.
    #[serde(
        default,
        deserialize_with = "lenient::optional_bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_gaps: Option<bool>,
    /// `0 < speed ≤ 32`, may arrive as a string.
    #[serde(
        default,
        deserialize_with = "lenient::optional_number_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub speed: Option<f64>,
}

/// How the client names the device in a REST request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceField {
    /// `deviceId` only (2025 R2+).
    DeviceId,
    /// `cameraId` only (2023 R1 – 2025 R1).
    CameraId,
    /// Both with the same value: works with every release, unknown fields being ignored.
    #[default]
    Both,
}

impl CreateSessionRequest {
    /// Encode validated parameters in the REST dialect.
    pub fn from_params(params: &SessionParams, device_field: DeviceField) -> Self {
        let device = params.device.to_string();
        Self {
            device_id: matches!(device_field, DeviceField::DeviceId | DeviceField::Both)
                .then(|| device.clone()),
            camera_id: matches!(device_field, DeviceField::CameraId | DeviceField::Both)
                .then_some(device),
            resolution: Some(RESOLUTION_NOT_IN_USE.to_owned()),
            stream_id: params.stream.map(|s| s.to_string()),
            include_audio: Some(params.include_audio),
            playback_time_node: params.playback.map(|p| PlaybackTimeNode {
                playback_time: Some(format_iso_millis(p.start)),
                skip_gaps: Some(p.skip_gaps),
                speed: Some(p.speed),
            }),
            ice_servers: Some(IceServer::to_wire(
                &params.ice_servers,
                IceServerDialect::RestUrl,
            )),
        }
    }

    /// Validate into session parameters (the emulator's side). `deviceId` wins over `cameraId`.
    pub fn validate(&self) -> Result<SessionParams, FieldError> {
        let (field, device) = match (&self.device_id, &self.camera_id) {
            (Some(d), _) if !d.trim().is_empty() => ("deviceId", d),
            (_, Some(c)) if !c.trim().is_empty() => ("cameraId", c),
            _ => {
                return Err(FieldError::new(
                    "deviceId",
                    "missing: give deviceId (or cameraId) of a camera or microphone",
                ));
            }
        };
        let device: DeviceId = device
            .parse()
            .map_err(|e: super::ids::InvalidGuid| FieldError::new(field, e.to_string()))?;
        let stream = match self.stream_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<StreamId>()
                    .map_err(|e| FieldError::new("streamId", e.to_string()))?,
            ),
        };
        let playback = match &self.playback_time_node {
            None => None,
            Some(node) => {
                let start = parse_playback_time(
                    node.playback_time.as_deref(),
                    "playbackTimeNode.playbackTime",
                )?;
                let speed = validate_speed(node.speed, "playbackTimeNode.speed")?;
                start.map(|start| Playback {
                    start,
                    skip_gaps: node.skip_gaps.unwrap_or(false),
                    speed,
                })
            }
        };
        Ok(SessionParams {
            device,
            stream,
            include_audio: self.include_audio.unwrap_or(true),
            playback,
            ice_servers: self
                .ice_servers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(IceServer::from)
                .collect(),
        })
    }
}

/// The session object the gateway returns from `POST Session` and `PATCH Session/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse {
    /// The session's id.
    pub session_id: Option<SessionId>,
    /// Echo of the device.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Echo of the device, old name.
    #[serde(default)]
    pub camera_id: Option<String>,
    /// Echo.
    #[serde(default)]
    pub resolution: Option<String>,
    /// Echo.
    #[serde(default)]
    pub stream_id: Option<String>,
    /// Write-only on the gateway: always null in responses.
    #[serde(default)]
    pub token: Option<String>,
    /// A JSON **string** holding `{"type":"offer","sdp":"…"}`.
    #[serde(default, rename = "offerSDP")]
    pub offer_sdp: Option<String>,
    /// A JSON string holding the answer, once set.
    #[serde(default, rename = "answerSDP")]
    pub answer_sdp: Option<String>,
    /// Echo.
    #[serde(default)]
    pub include_audio: Option<bool>,
    /// Echo.
    #[serde(default)]
    pub playback_time_node: Option<PlaybackTimeNode>,
    /// Echo.
    #[serde(default)]
    pub ice_servers: Option<Vec<IceServerWire>>,
}

/// `PATCH Session/{id}` body: the answer, a new token, or both.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchSessionRequest {
    /// A JSON string holding `{"type":"answer","sdp":"…"}`.
    #[serde(default, rename = "answerSDP", skip_serializing_if = "Option::is_none")]
    pub answer_sdp: Option<String>,
    /// A fresh access token for the session's media authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<super::ids::Secret>,
}

/// `POST IceCandidates/{id}` body and `GET IceCandidates/{id}` response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidatesBody {
    /// Optional echo of the session (a 2022 R3 leftover in requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Each element is the JSON string of an `RTCIceCandidateInit`. Never null in responses.
    #[serde(default)]
    pub candidates: Option<Vec<String>>,
}

impl IceCandidatesBody {
    /// A request body carrying candidates.
    pub fn with_candidates(candidates: &[IceCandidateInit]) -> Self {
        Self {
            session_id: None,
            candidates: Some(
                candidates
                    .iter()
                    .map(IceCandidateInit::to_json_string)
                    .collect(),
            ),
        }
    }
}

/// The JSON error body our emulator sends for REST failures (PROTOCOL.md §2.7 leaves the real
/// format open; clients show the raw body when it is something else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestErrorBody {
    /// Short code: `bad_request`, `unauthorized`, `not_found`, `method_not_allowed`, …
    pub error: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sample_2025r2_playback_request_validates() {
        let body = r#"{"deviceId":"a364956f-39a5-4cbc-9ffe-55b0c802ca77","resolution":"notInUse",
            "streamId":"5e9ba1dc-d012-425b-ab5a-611a5fb6dae5","includeAudio":true,
            "playbackTimeNode":{"playbackTime":"2025-03-01T08:00:00.000Z","speed":"1.0","skipGaps":true},
            "iceServers":[{"url":"stun:stun.example.org:3478"}]}"#;
        let request: CreateSessionRequest = lenient::from_str(body).unwrap();
        let params = request.validate().unwrap();
        let playback = params.playback.unwrap();
        assert_eq!(playback.start, datetime!(2025-03-01 08:00:00 UTC));
        assert!(playback.skip_gaps);
        assert_eq!(
            params.ice_servers[0].urls,
            vec!["stun:stun.example.org:3478".to_owned()]
        );
    }

    #[test]
    fn sample_2024r2_live_with_empty_playback_time_is_live() {
        let body = r#"{"cameraId":"A364956F-39A5-4CBC-9FFE-55B0C802CA77","resolution":"notInUse",
            "PlaybackTimeNode":{"playbackTime":"","skipGaps":false},"iceServers":[]}"#;
        let request: CreateSessionRequest = lenient::from_str(body).unwrap();
        let params = request.validate().unwrap();
        assert!(params.playback.is_none());
        assert!(params.include_audio);
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (r#"{}"#, "deviceId"),
            (r#"{"deviceId":"nope"}"#, "deviceId"),
            (r#"{"cameraId":"nope"}"#, "cameraId"),
            (
                r#"{"deviceId":"a364956f-39a5-4cbc-9ffe-55b0c802ca77","streamId":"x"}"#,
                "streamId",
            ),
            (
                r#"{"deviceId":"a364956f-39a5-4cbc-9ffe-55b0c802ca77","playbackTimeNode":{"playbackTime":"2025-03-01T08:00:00Z","speed":64}}"#,
                "playbackTimeNode.speed",
            ),
        ];
        for (body, field) in cases {
            let request: CreateSessionRequest = lenient::from_str(body).unwrap();
            assert_eq!(request.validate().unwrap_err().field, field, "{body}");
        }
    }

    #[test]
    fn client_encoding_round_trips() {
        let mut params =
            SessionParams::live("6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b".parse().unwrap());
        params.playback = Some(Playback {
            start: datetime!(2025-01-15 12:04:54.120 UTC),
            skip_gaps: true,
            speed: 8.0,
        });
        let request = CreateSessionRequest::from_params(&params, DeviceField::Both);
        let json = serde_json::to_string(&request).unwrap();
        assert!(
            json.contains(r#""playbackTime":"2025-01-15T12:04:54.120Z""#),
            "{json}"
        );
        let back: CreateSessionRequest = lenient::from_str(&json).unwrap();
        assert_eq!(back.validate().unwrap(), params);
    }
}
