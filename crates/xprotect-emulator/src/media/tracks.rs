//! Which media sections a session's offer has (PROTOCOL.md §4.1): video for a camera, PCMU audio
//! when the client asks for it and the camera has a related microphone, audio alone for a
//! microphone, and no audio in playback at any speed but 1.

use xprotect_proto::wire::Playback;

/// What the requested device is, as far as media is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    /// A camera, and whether a microphone is related to it.
    Camera {
        /// The camera has a related microphone.
        has_microphone: bool,
    },
    /// A camera's related microphone: an audio-only session on that camera's timeline.
    Microphone,
}

/// The media sections of one session's offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tracks {
    pub(crate) video: bool,
    pub(crate) audio: bool,
}

/// Why no session can be made for the request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TracksError {
    /// A microphone was asked for in playback at a speed other than 1, where no audio is sent.
    AudioOnlyAtSpeed(f64),
}

/// The tracks for `device`, the client's `includeAudio` and its playback request.
///
/// Audio in playback only at speed 1 follows the S25R2 sample, which switches audio off at any
/// other speed; what the gateway does then is unknown (PROTOCOL.md §4.1), so the emulator sends
/// no audio track, and refuses a microphone (which would leave the session without any media).
pub(crate) fn choose_tracks(
    device: DeviceKind,
    include_audio: bool,
    playback: Option<&Playback>,
) -> Result<Tracks, TracksError> {
    let speed = playback.map_or(1.0, |p| p.speed);
    #[allow(clippy::float_cmp)] // exactly 1.0 is what the sample checks too
    let audio_speed = speed == 1.0;
    match device {
        DeviceKind::Camera { has_microphone } => Ok(Tracks {
            video: true,
            audio: include_audio && has_microphone && audio_speed,
        }),
        DeviceKind::Microphone if audio_speed => Ok(Tracks {
            video: false,
            audio: true,
        }),
        DeviceKind::Microphone => Err(TracksError::AudioOnlyAtSpeed(speed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playback(speed: f64) -> Playback {
        Playback {
            start: time::macros::datetime!(2025-01-15 12:00 UTC),
            speed,
            skip_gaps: false,
        }
    }

    const WITH_MIC: DeviceKind = DeviceKind::Camera {
        has_microphone: true,
    };

    #[test]
    fn audio_needs_include_audio_a_microphone_and_speed_one() {
        let av = Tracks {
            video: true,
            audio: true,
        };
        let v = Tracks {
            video: true,
            audio: false,
        };
        assert_eq!(choose_tracks(WITH_MIC, true, None), Ok(av));
        assert_eq!(choose_tracks(WITH_MIC, true, Some(&playback(1.0))), Ok(av));
        assert_eq!(choose_tracks(WITH_MIC, false, None), Ok(v));
        assert_eq!(choose_tracks(WITH_MIC, true, Some(&playback(2.0))), Ok(v));
        assert_eq!(choose_tracks(WITH_MIC, true, Some(&playback(0.5))), Ok(v));
        let no_mic = DeviceKind::Camera {
            has_microphone: false,
        };
        assert_eq!(choose_tracks(no_mic, true, None), Ok(v));
    }

    #[test]
    fn a_microphone_is_audio_only_whatever_include_audio_says() {
        let a = Tracks {
            video: false,
            audio: true,
        };
        assert_eq!(choose_tracks(DeviceKind::Microphone, false, None), Ok(a));
        assert_eq!(
            choose_tracks(DeviceKind::Microphone, true, Some(&playback(1.0))),
            Ok(a)
        );
        assert_eq!(
            choose_tracks(DeviceKind::Microphone, true, Some(&playback(4.0))),
            Err(TracksError::AudioOnlyAtSpeed(4.0))
        );
    }
}
