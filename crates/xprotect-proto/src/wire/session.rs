//! What a WebRTC session asks the gateway for, independent of the signaling transport.
//!
//! The client builds [`SessionParams`] and encodes it in the REST or WebSocket dialect; the emulator
//! decodes either dialect back into it. Validation lives here, once, so both transports reject the
//! same things with the same words.

use super::ice_server::IceServer;
use super::ids::{DeviceId, StreamId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Highest playback speed the gateway accepts (PROTOCOL.md §2.1: `0 < speed ≤ 32`).
pub const MAX_PLAYBACK_SPEED: f64 = 32.0;

/// A validated session request.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionParams {
    /// Camera or microphone.
    pub device: DeviceId,
    /// A specific stream of the camera; the default stream when absent.
    pub stream: Option<StreamId>,
    /// Ask for the related microphone's audio (default true on the wire).
    pub include_audio: bool,
    /// Recorded video from a time, or live when absent.
    pub playback: Option<Playback>,
    /// STUN/TURN servers for the gateway's own gathering.
    pub ice_servers: Vec<IceServer>,
}

impl SessionParams {
    /// Live video from a device with defaults for everything else.
    pub fn live(device: DeviceId) -> Self {
        Self {
            device,
            stream: None,
            include_audio: true,
            playback: None,
            ice_servers: Vec::new(),
        }
    }
}

/// Playback of recorded media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Where playback starts: also the start reference of the RTP timestamps.
    pub start: OffsetDateTime,
    /// Jump over gaps between recordings instead of sending nothing for their length.
    pub skip_gaps: bool,
    /// `0 < speed ≤ 32`.
    pub speed: f64,
}

/// A request field with a value the gateway rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    /// The field as the dialect names it, e.g. `playbackTimeNode.speed` or `PlaybackSpeed`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// Build an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validate a speed value; `None` means the default 1.0.
pub fn validate_speed(speed: Option<f64>, field: &str) -> Result<f64, FieldError> {
    match speed {
        None => Ok(1.0),
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_PLAYBACK_SPEED => Ok(s),
        Some(s) => Err(FieldError::new(
            field,
            format!("speed {s} is out of range: it must be greater than 0 and at most 32"),
        )),
    }
}

/// Parse a playback time. Missing, null or empty means live (PROTOCOL.md §2.1: the sample sends
/// `"playbackTime": ""` for live).
pub fn parse_playback_time(
    text: Option<&str>,
    field: &str,
) -> Result<Option<OffsetDateTime>, FieldError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map(Some).map_err(|_| {
            FieldError::new(
                field,
                format!(
                    "`{}` is not an ISO 8601 time with an offset (e.g. 2025-03-01T08:00:00.000Z)",
                    text.chars().take(64).collect::<String>()
                ),
            )
        }),
    }
}

/// Format a time as the sample does (`Date.toISOString()`): UTC with milliseconds.
pub use crate::clock::format_rfc3339_millis as format_iso_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_range_is_enforced() {
        assert_eq!(validate_speed(None, "speed"), Ok(1.0));
        assert_eq!(validate_speed(Some(32.0), "speed"), Ok(32.0));
        for bad in [0.0, -1.0, 32.5, f64::NAN, f64::INFINITY] {
            assert!(validate_speed(Some(bad), "speed").is_err(), "{bad}");
        }
    }

    #[test]
    fn playback_time_accepts_offsets_and_treats_empty_as_live() {
        assert_eq!(parse_playback_time(Some(""), "t"), Ok(None));
        assert_eq!(parse_playback_time(None, "t"), Ok(None));
        let a = parse_playback_time(Some("2020-07-10T15:00:00.000Z"), "t").unwrap();
        let b = parse_playback_time(Some("2020-07-10T17:00:00.000+02:00"), "t").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_iso_millis(b.unwrap()), "2020-07-10T15:00:00.000Z");
        let err =
            parse_playback_time(Some("yesterday"), "playbackTimeNode.playbackTime").unwrap_err();
        assert_eq!(err.field, "playbackTimeNode.playbackTime");
    }
}
