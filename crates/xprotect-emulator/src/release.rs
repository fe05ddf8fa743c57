//! Which XProtect release the emulator pretends to be, and what that release's API Gateway reads.
//!
//! Releases differ in what the gateway understands (PROTOCOL.md §7, §8): REST signaling exists
//! since 2023 R1; `streamId`, playback and `iceServers` since 2023 R3; WebSocket signaling since
//! 2025 R1; `deviceId`, audio and microphones since 2025 R2. An older gateway does not reject the
//! newer fields, it ignores them (ASP.NET model binding drops unknown properties), so a request
//! written for a newer gateway quietly gets the older behaviour. The emulator reproduces exactly
//! that, which lets a client (or the official sample of each release) be tested against the
//! gateway it will meet.

use std::fmt;
use std::str::FromStr;

use xprotect_proto::wire::rest::CreateSessionRequest;

use crate::error::EmuError;

/// An XProtect release whose API Gateway the emulator reproduces. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Release {
    /// 2023 R1: REST signaling, live only, `cameraId`.
    R2023R1,
    /// 2023 R3: adds `streamId`, playback (`playbackTimeNode`) and `iceServers`.
    R2023R3,
    /// 2024 R1: no gateway-visible change (fixes DTLS with Chrome 124+).
    R2024R1,
    /// 2024 R2: no gateway-visible change (the sample gains reconnect logic).
    R2024R2,
    /// 2025 R1: adds WebSocket signaling and the `commands` data channel.
    R2025R1,
    /// 2025 R2: adds `deviceId`, audio (`includeAudio`) and microphones as devices.
    #[default]
    R2025R2,
}

impl Release {
    /// Every release, oldest first.
    pub const ALL: [Release; 6] = [
        Release::R2023R1,
        Release::R2023R3,
        Release::R2024R1,
        Release::R2024R2,
        Release::R2025R1,
        Release::R2025R2,
    ];

    /// The newest release (the emulator's default).
    pub const LATEST: Release = Release::R2025R2;

    /// The release's name as Milestone writes it without the space, e.g. `2025R1`.
    pub fn name(self) -> &'static str {
        match self {
            Release::R2023R1 => "2023R1",
            Release::R2023R3 => "2023R3",
            Release::R2024R1 => "2024R1",
            Release::R2024R2 => "2024R2",
            Release::R2025R1 => "2025R1",
            Release::R2025R2 => "2025R2",
        }
    }

    /// WebSocket signaling at `/api/ws/webrtc/v1` exists (2025 R1+); older gateways answer 404.
    pub fn websocket(self) -> bool {
        self >= Release::R2025R1
    }

    /// `streamId`, `playbackTimeNode` and `iceServers` are read (2023 R3+).
    pub fn playback_and_streams(self) -> bool {
        self >= Release::R2023R3
    }

    /// `deviceId` is read (2025 R2+); older gateways know only `cameraId`.
    pub fn device_id_field(self) -> bool {
        self >= Release::R2025R2
    }

    /// Audio tracks (`includeAudio`) and microphones as session devices (2025 R2+).
    pub fn audio(self) -> bool {
        self >= Release::R2025R2
    }

    /// Reduce a REST `POST Session` body to the fields this release's gateway reads, as its model
    /// binding would: newer fields vanish, so e.g. a playback request to 2023 R1 becomes live on
    /// the default stream. Fails, naming `cameraId`, when a pre-2025 R2 gateway is left without a
    /// device because the request named it only as `deviceId`.
    pub fn restrict_rest_request(self, request: &mut CreateSessionRequest) -> Result<(), EmuError> {
        if !self.device_id_field() {
            request.device_id = None;
            let has_camera = request
                .camera_id
                .as_deref()
                .is_some_and(|id| !id.trim().is_empty());
            if !has_camera {
                return Err(EmuError::field(
                    "cameraId",
                    format!(
                        "missing: give cameraId, the camera's GUID (an XProtect {self} gateway does \
                         not read deviceId, added in 2025R2)"
                    ),
                ));
            }
        }
        if !self.playback_and_streams() {
            request.stream_id = None;
            request.playback_time_node = None;
            request.ice_servers = None;
        }
        if !self.audio() {
            request.include_audio = Some(false);
        }
        Ok(())
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A release name that is not one of [`Release::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown XProtect release `{given}`; known: 2023R1, 2023R3, 2024R1, 2024R2, 2025R1, 2025R2"
)]
pub struct UnknownRelease {
    /// What was given (shortened).
    pub given: String,
}

impl FromStr for Release {
    type Err = UnknownRelease;

    /// Accepts `2025R1`, `2025 R1`, `2025r1` and the short `25R1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let full = if compact.len() == 4 {
            format!("20{compact}")
        } else {
            compact
        };
        Release::ALL
            .into_iter()
            .find(|release| release.name() == full)
            .ok_or_else(|| UnknownRelease {
                given: text.chars().take(40).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_spellings_parse() {
        for release in Release::ALL {
            assert_eq!(release.to_string().parse::<Release>(), Ok(release));
        }
        assert_eq!("2025 R1".parse::<Release>(), Ok(Release::R2025R1));
        assert_eq!("2024r2".parse::<Release>(), Ok(Release::R2024R2));
        assert_eq!("23R3".parse::<Release>(), Ok(Release::R2023R3));
        assert!("2022R3".parse::<Release>().is_err());
        assert!("".parse::<Release>().is_err());
        assert!("2025R22".parse::<Release>().is_err());
    }

    #[test]
    fn order_and_features_follow_the_evolution_table() {
        assert!(Release::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Release::default(), Release::LATEST);
        let features = |r: Release| {
            (
                r.playback_and_streams(),
                r.websocket(),
                r.device_id_field(),
                r.audio(),
            )
        };
        assert_eq!(features(Release::R2023R1), (false, false, false, false));
        assert_eq!(features(Release::R2023R3), (true, false, false, false));
        assert_eq!(features(Release::R2024R2), (true, false, false, false));
        assert_eq!(features(Release::R2025R1), (true, true, false, false));
        assert_eq!(features(Release::R2025R2), (true, true, true, true));
    }

    #[test]
    fn old_gateways_drop_what_they_do_not_know() {
        let mut request: CreateSessionRequest = serde_json::from_value(serde_json::json!({
            "deviceId": "6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B",
            "cameraId": "6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B",
            "streamId": "not even a GUID",
            "includeAudio": true,
            "playbackTimeNode": {"playbackTime": "2025-01-15T12:00:00Z", "speed": 99},
            "iceServers": [{"url": "stun:127.0.0.1:3478"}]
        }))
        .expect("request");
        Release::R2023R1
            .restrict_rest_request(&mut request)
            .expect("cameraId given");
        assert_eq!(request.device_id, None);
        assert_eq!(request.stream_id, None);
        assert_eq!(request.playback_time_node, None);
        assert_eq!(request.ice_servers, None);
        assert_eq!(request.include_audio, Some(false));
        assert!(
            request.validate().is_ok(),
            "what is left is a valid live request"
        );
    }

    #[test]
    fn device_id_alone_is_refused_before_2025r2_naming_camera_id() {
        let mut request = CreateSessionRequest {
            device_id: Some("6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B".into()),
            ..CreateSessionRequest::default()
        };
        let error = Release::R2025R1
            .restrict_rest_request(&mut request.clone())
            .expect_err("no cameraId");
        assert_eq!(error.field_name(), Some("cameraId"));
        Release::R2025R2
            .restrict_rest_request(&mut request)
            .expect("2025R2 reads deviceId");
        assert!(request.device_id.is_some());
        assert_eq!(
            request.include_audio, None,
            "2025R2 leaves includeAudio alone"
        );
    }
}
