//! What a client must not ask of an older XProtect gateway, and how to ask the rest.
//!
//! Older gateways do not reject fields they do not know: ASP.NET model binding drops them
//! (PROTOCOL.md §8). So a playback request to 2023 R1 silently becomes **live** video, a
//! `streamId` the default stream, `includeAudio` nothing. The only defence is to know the
//! release and refuse up front, which [`ClientRules::check`] does.
//!
//! The releases themselves and what each one reads are [`xprotect_proto::release`], shared with
//! the emulator; this module adds the client's rules on top of them as [`ClientRules`].
//!
//! What can be detected without being told: whether WebSocket signaling exists (2025 R1+, older
//! gateways answer its path with 404; see [`crate::gateway::Gateway::probe_ws`]). Everything
//! older looks the same from outside, so the user names it (`--gateway-release`).

pub use xprotect_proto::release::{Release, UnknownRelease};
use xprotect_proto::signal::RestConfig;
use xprotect_proto::wire::SessionParams;
use xprotect_proto::wire::commands::CommandEnvelope;
use xprotect_proto::wire::rest::DeviceField;

use crate::session::{SessionOptions, SignalingKind};

/// A request the gateway's release would silently get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Playback before 2023 R3: the gateway would send live video instead.
    #[error(
        "XProtect {0} has no playback over WebRTC (added in 2023R3): it would ignore the start \
         time and send LIVE video; play recordings from a 2023R3 or later gateway"
    )]
    NoPlayback(Release),
    /// A stream choice before 2023 R3: the gateway would send the default stream.
    #[error(
        "XProtect {0} cannot choose a stream (streamId, added in 2023R3): it would send the \
         camera's default stream; leave out --stream"
    )]
    NoStreamChoice(Release),
    /// A microphone as the device before 2025 R2.
    #[error("XProtect {0} cannot stream a microphone (added in 2025R2); choose a camera")]
    NoMicrophones(Release),
    /// WebSocket signaling asked for where there is none.
    #[error("XProtect {0} has no WebSocket signaling (added in 2025R1); use --signaling rest")]
    NoWebSocket(Release),
}

mod sealed {
    /// Keeps [`super::ClientRules`] implemented for [`super::Release`] only.
    pub trait Sealed {}
    impl Sealed for super::Release {}
}

/// The client's rules for talking to a gateway of a given [`Release`]: what to refuse, and how
/// to phrase what it can serve. Import the trait to call them as methods on a `Release`.
pub trait ClientRules: sealed::Sealed + Copy {
    /// The `commands` data channel's envelope this release's sample sends, or `None` before
    /// the channel existed (2025 R1). Both 2025 samples send `ApiVersion` 1.0 in their code;
    /// only the 2025 R2 README shows `jsonrpc` (PROTOCOL.md §5.4).
    fn command_envelope(self) -> Option<CommandEnvelope>;

    /// How to name the device in a REST request: `cameraId` before 2025 R2, both after (a
    /// 2025 R2 gateway reads `deviceId`, and `cameraId` costs nothing).
    fn device_field(self) -> DeviceField;

    /// Refuses what this release would silently get wrong. `microphone` says whether the
    /// device is a microphone.
    ///
    /// # Errors
    ///
    /// The first [`ReleaseError`] that applies.
    fn check(self, params: &SessionParams, microphone: bool) -> Result<(), ReleaseError>;

    /// Checks `options` against this release and adapts what the release reads differently:
    /// REST signaling before 2025 R1 unless WebSocket was asked for explicitly (an error
    /// then), `cameraId` and no audio before 2025 R2, no `iceServers` before 2023 R3.
    ///
    /// # Errors
    ///
    /// As [`ClientRules::check`], and [`ReleaseError::NoWebSocket`] when
    /// `websocket_explicit` asks for what the release lacks.
    fn adapt(
        self,
        options: &mut SessionOptions,
        microphone: bool,
        websocket_explicit: bool,
    ) -> Result<(), ReleaseError>;
}

impl ClientRules for Release {
    fn command_envelope(self) -> Option<CommandEnvelope> {
        self.commands_channel()
            .then_some(CommandEnvelope::ApiVersion1)
    }

    fn device_field(self) -> DeviceField {
        if self.device_id_field() {
            DeviceField::Both
        } else {
            DeviceField::CameraId
        }
    }

    fn check(self, params: &SessionParams, microphone: bool) -> Result<(), ReleaseError> {
        if !self.playback_and_streams() {
            if params.playback.is_some() {
                return Err(ReleaseError::NoPlayback(self));
            }
            if params.stream.is_some() {
                return Err(ReleaseError::NoStreamChoice(self));
            }
        }
        if microphone && !self.microphones() {
            return Err(ReleaseError::NoMicrophones(self));
        }
        Ok(())
    }

    fn adapt(
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use xprotect_proto::wire::{DeviceId, IceServer, Playback, StreamId};

    fn params() -> SessionParams {
        SessionParams::live(DeviceId::from(uuid::Uuid::nil()))
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
            Release::R2023R1.check(&playback, false),
            Err(ReleaseError::NoPlayback(Release::R2023R1))
        );
        assert!(
            ReleaseError::NoPlayback(Release::R2023R1)
                .to_string()
                .contains("LIVE")
        );
        assert_eq!(Release::R2023R3.check(&playback, false), Ok(()));

        let mut stream = params();
        stream.stream = Some(StreamId::from(uuid::Uuid::nil()));
        assert_eq!(
            Release::R2023R1.check(&stream, false),
            Err(ReleaseError::NoStreamChoice(Release::R2023R1))
        );
        assert_eq!(Release::R2023R1.check(&params(), false), Ok(()));
    }

    #[test]
    fn microphones_need_2025r2() {
        assert_eq!(
            Release::R2025R1.check(&params(), true),
            Err(ReleaseError::NoMicrophones(Release::R2025R1))
        );
        assert_eq!(Release::R2025R2.check(&params(), true), Ok(()));
    }

    #[test]
    fn adapt_chooses_rest_camera_id_and_no_audio_for_older_releases() {
        let mut options = SessionOptions::new(params());
        options.signaling = SignalingKind::WebSocket;
        Release::R2024R2.adapt(&mut options, false, false).unwrap();
        assert_eq!(options.signaling, SignalingKind::Rest);
        assert_eq!(options.rest.device_field, DeviceField::CameraId);
        assert!(!options.params.include_audio);

        let mut explicit = SessionOptions::new(params());
        explicit.signaling = SignalingKind::WebSocket;
        assert_eq!(
            Release::R2024R2.adapt(&mut explicit, false, true),
            Err(ReleaseError::NoWebSocket(Release::R2024R2))
        );

        let mut latest = SessionOptions::new(params());
        Release::R2025R2.adapt(&mut latest, false, true).unwrap();
        assert_eq!(latest.signaling, SignalingKind::WebSocket);
        assert_eq!(latest.rest.device_field, DeviceField::Both);
        assert!(latest.params.include_audio);
    }

    #[test]
    fn adapt_drops_ice_servers_for_2023r1_only() {
        let with_servers = || {
            let mut params = params();
            params.ice_servers = vec![IceServer {
                urls: vec!["stun:127.0.0.1:3478".into()],
                ..IceServer::default()
            }];
            SessionOptions::new(params)
        };
        let mut oldest = with_servers();
        Release::R2023R1.adapt(&mut oldest, false, false).unwrap();
        assert!(oldest.params.ice_servers.is_empty());
        assert_eq!(oldest.signaling, SignalingKind::Rest);

        let mut r2023r3 = with_servers();
        Release::R2023R3.adapt(&mut r2023r3, false, false).unwrap();
        assert_eq!(r2023r3.params.ice_servers.len(), 1);
    }

    #[test]
    fn the_device_is_named_by_both_fields_from_2025r2() {
        for release in Release::ALL {
            let expected = if release >= Release::R2025R2 {
                DeviceField::Both
            } else {
                DeviceField::CameraId
            };
            assert_eq!(release.device_field(), expected, "{release}");
        }
    }

    #[test]
    fn the_commands_envelope_exists_from_2025r1() {
        assert_eq!(Release::R2024R2.command_envelope(), None);
        assert_eq!(
            Release::R2025R1.command_envelope(),
            Some(CommandEnvelope::ApiVersion1)
        );
    }
}
