//! The SDP envelope both transports use: a JSON **string** holding `{"type": …, "sdp": …}`.

use serde::{Deserialize, Serialize};

/// An `RTCSessionDescriptionInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP text.
    pub sdp: String,
}

/// The `type` of a session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    /// From the gateway.
    Offer,
    /// From the client.
    Answer,
}

impl SessionDescription {
    /// An offer.
    pub fn offer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpKind::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer.
    pub fn answer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpKind::Answer,
            sdp: sdp.into(),
        }
    }

    /// The JSON string that goes into `offerSDP`, `answerSDP`, `offer` and `answer`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the JSON-string form, and check it is of the expected kind.
    pub fn from_json_string(text: &str, expected: SdpKind) -> Result<Self, super::JsonError> {
        let description: SessionDescription = super::lenient::from_str(text)?;
        if description.kind != expected {
            return Err(super::JsonError {
                path: "type".into(),
                reason: format!("expected an {expected:?} but got an {:?}", description.kind)
                    .to_lowercase(),
            });
        }
        if !description.sdp.trim_start().starts_with("v=0") {
            return Err(super::JsonError {
                path: "sdp".into(),
                reason: "not an SDP: it must start with `v=0`".into(),
            });
        }
        Ok(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_kind() {
        let offer = SessionDescription::offer("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n");
        let text = offer.to_json_string();
        assert_eq!(
            SessionDescription::from_json_string(&text, SdpKind::Offer).unwrap(),
            offer
        );
        let err = SessionDescription::from_json_string(&text, SdpKind::Answer).unwrap_err();
        assert_eq!(err.path, "type");
        assert!(
            SessionDescription::from_json_string(
                r#"{"type":"answer","sdp":"hello"}"#,
                SdpKind::Answer
            )
            .is_err()
        );
        assert!(SessionDescription::from_json_string("v=0\r\n", SdpKind::Answer).is_err());
    }
}
