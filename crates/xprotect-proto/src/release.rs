//! The XProtect releases whose API Gateway differs on the wire, and what each one reads.
//!
//! Releases differ in what the gateway understands (PROTOCOL.md §8): REST signaling exists
//! since 2023 R1; `streamId`, playback and `iceServers` since 2023 R3; WebSocket signaling and
//! the `commands` data channel since 2025 R1; `deviceId`, audio and microphones since 2025 R2.
//! An older gateway does not reject the newer fields, it ignores them (ASP.NET model binding
//! drops unknown properties), so a request written for a newer gateway quietly gets the older
//! behaviour. The client refuses such requests up front; the emulator reproduces the behaviour.
//! Both read the facts from this one table.

use std::fmt;
use std::str::FromStr;

/// An XProtect release, as far as its API Gateway's WebRTC interface differs. Ordered oldest
/// first, so `release >= Release::R2025R1` reads "2025 R1 or later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Release {
    /// 2023 R1: REST signaling, live only, `cameraId`; ignores `streamId`, playback and
    /// `iceServers`.
    R2023R1,
    /// 2023 R3: adds `streamId`, playback (`playbackTimeNode`) and `iceServers`.
    R2023R3,
    /// 2024 R1: no gateway-visible change (fixes DTLS with Chrome 124+).
    R2024R1,
    /// 2024 R2: no gateway-visible change (the sample gains reconnect logic).
    R2024R2,
    /// 2025 R1: adds WebSocket signaling and the `commands` data channel (PTZ, aux).
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

    /// The newest release (also the [`Default`]).
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

    /// `streamId`, `playbackTimeNode` and `iceServers` are read (2023 R3+). Before, a playback
    /// request silently becomes live video on the default stream.
    pub fn playback_and_streams(self) -> bool {
        self >= Release::R2023R3
    }

    /// WebSocket signaling at `/api/ws/webrtc/v1` exists (2025 R1+); older gateways answer 404.
    pub fn websocket(self) -> bool {
        self >= Release::R2025R1
    }

    /// The `commands` data channel (PTZ moves, aux outputs) exists (2025 R1+).
    pub fn commands_channel(self) -> bool {
        self >= Release::R2025R1
    }

    /// `deviceId` is read in a REST request (2025 R2+); older gateways know only `cameraId`.
    pub fn device_id_field(self) -> bool {
        self >= Release::R2025R2
    }

    /// Audio tracks (`includeAudio`) are sent (2025 R2+).
    pub fn audio(self) -> bool {
        self >= Release::R2025R2
    }

    /// Microphones are session devices (2025 R2+); before, a session's device is a camera.
    pub fn microphones(self) -> bool {
        self >= Release::R2025R2
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
    /// What was given, shortened to [`UnknownRelease::MAX_ECHO`] characters.
    pub given: String,
}

impl UnknownRelease {
    /// How many characters of the rejected text the error repeats: enough to recognise a typo,
    /// not so many that a pasted blob floods the message.
    pub const MAX_ECHO: usize = 40;
}

impl FromStr for Release {
    type Err = UnknownRelease;

    /// Accepts `2025R1`, `2025 R1`, `2025r1` and the short `25R1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let compact = text
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
                given: text.chars().take(UnknownRelease::MAX_ECHO).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_usual_spellings_parse() {
        for release in Release::ALL {
            assert_eq!(release.to_string().parse::<Release>(), Ok(release));
            assert_eq!(
                release.name().to_lowercase().parse::<Release>(),
                Ok(release)
            );
        }
        assert_eq!("2025 R1".parse::<Release>(), Ok(Release::R2025R1));
        assert_eq!(" 2024 r2 ".parse::<Release>(), Ok(Release::R2024R2));
        assert_eq!("23R3".parse::<Release>(), Ok(Release::R2023R3));
        assert_eq!("25r2".parse::<Release>(), Ok(Release::R2025R2));
    }

    #[test]
    fn unknown_names_are_refused_naming_the_known_ones() {
        for text in ["2022R3", "2023R2", "", "R1", "2025R22", "2025R1x", "latest"] {
            let error = text.parse::<Release>().expect_err(text);
            assert_eq!(error.given, text);
            assert!(error.to_string().contains("known: 2023R1"), "{error}");
        }
    }

    #[test]
    fn a_long_unknown_name_is_shortened_in_the_error() {
        let long = "ä".repeat(100);
        let error = long.parse::<Release>().expect_err("not a release");
        assert_eq!(error.given.chars().count(), UnknownRelease::MAX_ECHO);
        assert!(long.starts_with(&error.given));
    }

    #[test]
    fn order_is_by_age_and_the_default_is_the_newest() {
        assert!(Release::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Release::ALL.last(), Some(&Release::LATEST));
        assert_eq!(Release::default(), Release::LATEST);
    }

    #[test]
    fn features_follow_the_evolution_table() {
        let features = |r: Release| {
            (
                r.playback_and_streams(),
                r.websocket(),
                r.commands_channel(),
                r.device_id_field(),
                r.audio(),
                r.microphones(),
            )
        };
        let none = (false, false, false, false, false, false);
        let streams = (true, false, false, false, false, false);
        let ws = (true, true, true, false, false, false);
        let all = (true, true, true, true, true, true);
        assert_eq!(features(Release::R2023R1), none);
        assert_eq!(features(Release::R2023R3), streams);
        assert_eq!(features(Release::R2024R1), streams);
        assert_eq!(features(Release::R2024R2), streams);
        assert_eq!(features(Release::R2025R1), ws);
        assert_eq!(features(Release::R2025R2), all);
    }
}
