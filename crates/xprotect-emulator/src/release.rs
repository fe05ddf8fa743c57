//! What an XProtect release's API Gateway does with a request it only partly understands.
//!
//! The releases and the facts about them (PROTOCOL.md §8) are [`xprotect_proto::release`],
//! shared with the client. What is the emulator's alone is reproducing the older gateways'
//! blindness: a newer field is not rejected, it is ignored (ASP.NET model binding drops unknown
//! properties), so a request written for a newer gateway quietly gets the older behaviour. That
//! lets a client (or the official sample of each release) be tested against the gateway it will
//! meet.

pub use xprotect_proto::release::{Release, UnknownRelease};
use xprotect_proto::wire::rest::CreateSessionRequest;

use crate::error::EmuError;

/// Reduces a REST `POST Session` body to the fields `release`'s gateway reads, as its model
/// binding would: newer fields vanish, so e.g. a playback request to 2023 R1 becomes live on the
/// default stream.
///
/// # Errors
///
/// A field error naming `cameraId` when a pre-2025 R2 gateway is left without a device because
/// the request named it only as `deviceId`.
pub fn restrict_rest_request(
    release: Release,
    request: &mut CreateSessionRequest,
) -> Result<(), EmuError> {
    if !release.device_id_field() {
        request.device_id = None;
        let has_camera = request
            .camera_id
            .as_deref()
            .is_some_and(|id| !id.trim().is_empty());
        if !has_camera {
            return Err(EmuError::field(
                "cameraId",
                format!(
                    "missing: give cameraId, the camera's GUID (an XProtect {release} gateway \
                     does not read deviceId, added in 2025R2)"
                ),
            ));
        }
    }
    if !release.playback_and_streams() {
        request.stream_id = None;
        request.playback_time_node = None;
        request.ice_servers = None;
    }
    if !release.audio() {
        request.include_audio = Some(false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        restrict_rest_request(Release::R2023R1, &mut request).expect("cameraId given");
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
        let error =
            restrict_rest_request(Release::R2025R1, &mut request.clone()).expect_err("no cameraId");
        assert_eq!(error.field_name(), Some("cameraId"));
        restrict_rest_request(Release::R2025R2, &mut request).expect("2025R2 reads deviceId");
        assert!(request.device_id.is_some());
        assert_eq!(
            request.include_audio, None,
            "2025R2 leaves includeAudio alone"
        );
    }
}
