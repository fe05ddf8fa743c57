//! Identifiers and secrets: GUID newtypes and a token type that never prints itself.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A GUID as XProtect writes it: hyphenated, case-insensitive on input, lower case on output.
macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidGuid;
            fn from_str(s: &str) -> Result<Self, InvalidGuid> {
                parse_guid(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0.hyphenated())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                parse_guid(&text).map(Self).map_err(serde::de::Error::custom)
            }
        }
    };
}

guid_newtype!(
    /// A camera or microphone (REST `deviceId`/`cameraId`, WebSocket `peer`).
    DeviceId
);
guid_newtype!(
    /// One of a camera's streams (`streamId`), the `<referenceid>` of the stream.
    StreamId
);
guid_newtype!(
    /// A WebRTC session on the gateway (`sessionId`, WebSocket `session`).
    SessionId
);

/// A string that is not a GUID where one is required.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GUID (expected e.g. 6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b)")]
pub struct InvalidGuid(pub String);

/// Accepts the hyphenated form, with or without braces; the gateway writes and expects hyphens.
fn parse_guid(text: &str) -> Result<Uuid, InvalidGuid> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(trimmed);
    if inner.len() != 36 {
        return Err(InvalidGuid(shorten(text)));
    }
    Uuid::parse_str(inner).map_err(|_| InvalidGuid(shorten(text)))
}

/// Error messages quote what the peer sent, but never a whole megabyte of it.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A secret (access token, refresh token, password): `Debug` and `Display` print `[redacted]`, so
/// it cannot leak into logs by accident. [`Secret::expose`] is the one deliberate way out.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when there is no secret at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_parse_in_either_case_and_print_lower() {
        let id: DeviceId = "6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B".parse().unwrap();
        assert_eq!(id.to_string(), "6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b");
        let braced: DeviceId = "{6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b}".parse().unwrap();
        assert_eq!(id, braced);
    }

    #[test]
    fn non_guids_are_rejected_with_the_value() {
        let err = "camera-1".parse::<DeviceId>().unwrap_err();
        assert!(err.to_string().contains("`camera-1` is not a GUID"));
        assert!(
            "6c2f3b1e5a4d4e8f9b7a1c2d3e4f5a6b"
                .parse::<DeviceId>()
                .is_err()
        );
        let long = "x".repeat(10_000);
        assert!(long.parse::<SessionId>().unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn secrets_never_print() {
        let token = Secret::new("eyJhbGciOi.secret");
        assert_eq!(format!("{token:?} {token}"), "[redacted] [redacted]");
        assert_eq!(token.expose(), "eyJhbGciOi.secret");
    }
}
