//! Which XProtect release the gateway runs, and what a client must not ask of an older one.
//!
//! Older gateways do not reject fields they do not know: ASP.NET model binding drops them
//! (PROTOCOL.md §8). So a playback request to 2023 R1 silently becomes **live** video, a
//! `streamId` the default stream, `includeAudio` nothing. The only defence is to know the
//! release and refuse up front, which [`GatewayRelease::check`] does.
//!
//! What can be detected without being told: whether WebSocket signaling exists (2025 R1+, older
//! gateways answer its path with 404; see [`crate::gateway::Gateway::probe_ws`]). Everything
//! older looks the same from outside, so the user names it (`--gateway-release`).

use std::fmt;
use std::str::FromStr;

use xprotect_proto::signal::RestConfig;
use xprotect_proto::wire::SessionParams;
use xprotect_proto::wire::commands::CommandEnvelope;
use xprotect_proto::wire::rest::DeviceField;

use crate::session::{SessionOptions, SignalingKind};

/// An XProtect release, as far as its API Gateway's WebRTC interface differs. Oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GatewayRelease {
    /// 2023 R1: REST signaling, live only, `cameraId`; ignores `streamId`, playback and
    /// `iceServers`.
    R2023R1,
    /// 2023 R3: `streamId`, playback and `iceServers`.
    R2023R3,
    /// 2024 R1: as 2023 R3 (fixes DTLS with Chrome 124+).
    R2024R1,
    /// 2024 R2: as 2024 R1.
    R2024R2,
    /// 2025 R1: WebSocket signaling, the `commands` data channel (PTZ, aux).
    R2025R1,
    /// 2025 R2: `deviceId`, audio (`includeAudio`), microphones as devices.
    R2025R2,
}

/// A release name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown XProtect release `{0}` (known: 2023R1, 2023R3, 2024R1, 2024R2, 2025R1, 2025R2)")]
pub struct UnknownRelease(pub String);

/// A request the gateway's release would silently get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Playback before 2023 R3: the gateway would send live video instead.
    #[error(
        "XProtect {0} has no playback over WebRTC (added in 2023R3): it would ignore the start \
         time and send LIVE video; play recordings from a 2023R3 or later gateway"
    )]
    NoPlayback(GatewayRelease),
    /// A stream choice before 2023 R3: the gateway would send the default stream.
    #[error(
        "XProtect {0} cannot choose a stream (streamId, added in 2023R3): it would send the \
         camera's default stream; leave out --stream"
    )]
    NoStreamChoice(GatewayRelease),
    /// A microphone as the device before 2025 R2.
    #[error("XProtect {0} cannot stream a microphone (added in 2025R2); choose a camera")]
    NoMicrophones(GatewayRelease),
    /// WebSocket signaling asked for where there is none.
    #[error("XProtect {0} has no WebSocket signaling (added in 2025R1); use --signaling rest")]
    NoWebSocket(GatewayRelease),
}

impl GatewayRelease {
    /// Every release, oldest first.
    pub const ALL: [GatewayRelease; 6] = [
        Self::R2023R1,
        Self::R2023R3,
        Self::R2024R1,
        Self::R2024R2,
        Self::R2025R1,
        Self::R2025R2,
    ];

    /// The name without the space, e.g. `2025R1`.
    pub fn name(self) -> &'static str {
        match self {
            Self::R2023R1 => "2023R1",
            Self::R2023R3 => "2023R3",
            Self::R2024R1 => "2024R1",
            Self::R2024R2 => "2024R2",
            Self::R2025R1 => "2025R1",
            Self::R2025R2 => "2025R2",
        }
    }

    /// WebSocket signaling (2025 R1+).
    pub fn websocket(self) -> bool {
        self >= Self::R2025R1
    }

    /// `streamId`, playback and `iceServers` (2023 R3+).
    pub fn playback_and_streams(self) -> bool {
        self >= Self::R2023R3
    }

    /// Audio, microphones and the `deviceId` field (2025 R2+).
    pub fn audio(self) -> bool {
        self >= Self::R2025R2
    }

    /// The `commands` data channel's envelope this release's sample sends, or `None` before
    /// the channel existed (2025 R1). Both 2025 samples send `ApiVersion` 1.0 in their code;
    /// only the 2025 R2 README shows `jsonrpc` (PROTOCOL.md §5.4).
    pub fn command_envelope(self) -> Option<CommandEnvelope> {
        self.websocket().then_some(CommandEnvelope::ApiVersion1)
    }

    /// How to name the device in a REST request: `cameraId` before 2025 R2, both after (a
    /// 2025 R2 gateway reads `deviceId`, and `cameraId` costs nothing).
    pub fn device_field(self) -> DeviceField {
        if self.audio() {
            DeviceField::Both
        } else {
            DeviceField::CameraId
        }
    }

    /// Refuses what this release would silently get wrong. `microphone` says whether the
    /// device is a microphone.
    ///
    /// # Errors
    ///
    /// The first [`ReleaseError`] that applies.
    pub fn check(self, params: &SessionParams, microphone: bool) -> Result<(), ReleaseError> {
        if !self.playback_and_streams() {
            if params.playback.is_some() {
                return Err(ReleaseError::NoPlayback(self));
            }
            if params.stream.is_some() {
                return Err(ReleaseError::NoStreamChoice(self));
            }
        }
        if microphone && !self.audio() {
            return Err(ReleaseError::NoMicrophones(self));
        }
        Ok(())
    }

    /// Checks `options` against this release and adapts what the release reads differently:
    /// REST signaling before 2025 R1 unless WebSocket was asked for explicitly (an error
    /// then), `cameraId` and no audio before 2025 R2, no `iceServers` before 2023 R3.
    ///
    /// # Errors
    ///
    /// As [`GatewayRelease::check`], and [`ReleaseError::NoWebSocket`] when
    /// `websocket_explicit` asks for what the release lacks.
    pub fn adapt(
        self,
        options: &mut SessionOptions,
        microphone: bool,
        websocket_explicit: bool,
    ) -> Result<(), ReleaseError> {
        self.check(&options.params, microphone)?;
        if !self.websocket() && options.signaling == SignalingKind::WebSocket {
            if websocket_explicit {
                return Err(ReleaseError::NoWebSocket(self));
            }
            options.signaling = SignalingKind::Rest;
        }
        options.rest = RestConfig {
            device_field: self.device_field(),
            ..options.rest.clone()
        };
        if !self.audio() {
            options.params.include_audio = false;
        }
        if !self.playback_and_streams() {
            // Ignored by the gateway; our own peer keeps its servers.
            options.params.ice_servers.clear();
        }
        Ok(())
    }
}

impl fmt::Display for GatewayRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GatewayRelease {
    type Err = UnknownRelease;

    /// Accepts `2025R1`, `2025 R1` and `25R1`, in any case.
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
        Self::ALL
            .into_iter()
            .find(|release| release.name() == full)
            .ok_or_else(|| UnknownRelease(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use xprotect_proto::wire::{DeviceId, Playback, StreamId};

    fn params() -> SessionParams {
        SessionParams::live(DeviceId::from(uuid::Uuid::nil()))
    }

    #[test]
    fn names_parse_in_the_usual_spellings() {
        for release in GatewayRelease::ALL {
            assert_eq!(release.name().parse::<GatewayRelease>(), Ok(release));
        }
        assert_eq!("2024 r2".parse(), Ok(GatewayRelease::R2024R2));
        assert_eq!("25R1".parse(), Ok(GatewayRelease::R2025R1));
        assert!("2023R2".parse::<GatewayRelease>().is_err());
        assert!("".parse::<GatewayRelease>().is_err());
    }

    #[test]
    fn release_2023r1_refuses_playback_and_streams_instead_of_sending_live() {
        let mut playback = params();
        playback.playback = Some(Playback {
            start: datetime!(2025-01-15 12:00 UTC),
            skip_gaps: false,
            speed: 1.0,
        });
        assert_eq!(
            GatewayRelease::R2023R1.check(&playback, false),
            Err(ReleaseError::NoPlayback(GatewayRelease::R2023R1))
        );
        assert!(
            ReleaseError::NoPlayback(GatewayRelease::R2023R1)
                .to_string()
                .contains("LIVE")
        );
        assert_eq!(GatewayRelease::R2023R3.check(&playback, false), Ok(()));

        let mut stream = params();
        stream.stream = Some(StreamId::from(uuid::Uuid::nil()));
        assert_eq!(
            GatewayRelease::R2023R1.check(&stream, false),
            Err(ReleaseError::NoStreamChoice(GatewayRelease::R2023R1))
        );
        assert_eq!(GatewayRelease::R2023R1.check(&params(), false), Ok(()));
    }

    #[test]
    fn microphones_need_2025r2() {
        assert_eq!(
            GatewayRelease::R2025R1.check(&params(), true),
            Err(ReleaseError::NoMicrophones(GatewayRelease::R2025R1))
        );
        assert_eq!(GatewayRelease::R2025R2.check(&params(), true), Ok(()));
    }

    #[test]
    fn adapt_chooses_rest_camera_id_and_no_audio_for_older_releases() {
        let mut options = SessionOptions::new(params());
        options.signaling = SignalingKind::WebSocket;
        GatewayRelease::R2024R2
            .adapt(&mut options, false, false)
            .unwrap();
        assert_eq!(options.signaling, SignalingKind::Rest);
        assert_eq!(options.rest.device_field, DeviceField::CameraId);
        assert!(!options.params.include_audio);

        let mut explicit = SessionOptions::new(params());
        explicit.signaling = SignalingKind::WebSocket;
        assert_eq!(
            GatewayRelease::R2024R2.adapt(&mut explicit, false, true),
            Err(ReleaseError::NoWebSocket(GatewayRelease::R2024R2))
        );

        let mut latest = SessionOptions::new(params());
        GatewayRelease::R2025R2
            .adapt(&mut latest, false, true)
            .unwrap();
        assert_eq!(latest.signaling, SignalingKind::WebSocket);
        assert_eq!(latest.rest.device_field, DeviceField::Both);
        assert!(latest.params.include_audio);
    }

    #[test]
    fn the_commands_envelope_exists_from_2025r1() {
        assert_eq!(GatewayRelease::R2024R2.command_envelope(), None);
        assert_eq!(
            GatewayRelease::R2025R1.command_envelope(),
            Some(CommandEnvelope::ApiVersion1)
        );
    }
}
