//! ICE candidates as both signaling transports carry them.

use serde::{Deserialize, Serialize};

/// A browser `RTCIceCandidateInit`: what the sample `JSON.stringify`s and `addIceCandidate` takes.
/// The default value is the end-of-candidates marker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidateInit {
    /// The `candidate:` attribute line (without `a=`); empty means end of candidates.
    #[serde(default)]
    pub candidate: String,
    /// The media section's mid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The media section's index in the SDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE ufrag the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

impl IceCandidateInit {
    /// True for the empty end-of-candidates marker (ONVIF trickle).
    pub fn is_end_of_candidates(&self) -> bool {
        self.candidate.trim().is_empty()
    }

    /// The form REST bodies and WebSocket client trickles carry: a JSON string of the object.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the JSON-string form (`"{\"candidate\":…}"`), matching keys case-insensitively.
    pub fn from_json_string(text: &str) -> Result<Self, super::JsonError> {
        super::lenient::from_str(text)
    }

    /// Parse either form a peer may send: an object, or a string holding the object's JSON
    /// (PROTOCOL.md §3.6: the sample sends strings, ONVIF and our emulator send objects).
    pub fn from_value(value: serde_json::Value) -> Result<Self, super::JsonError> {
        match value {
            serde_json::Value::String(text) => Self::from_json_string(&text),
            other => super::lenient::from_value(other),
        }
    }

    /// The address in the candidate line (5th field), e.g. `127.0.0.1` or `<uuid>.local`.
    pub fn address(&self) -> Option<&str> {
        self.candidate
            .trim_start_matches("a=")
            .split_ascii_whitespace()
            .nth(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "candidate:1840965416 1 udp 2122260223 3a4e07bd-5cb3-4a5b-b2f8-6a4c4e0d9b1e.local 54321 typ host generation 0 ufrag Fq2x network-id 1";

    #[test]
    fn both_forms_parse_to_the_same_candidate() {
        let object = serde_json::json!({"candidate": LINE, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "Fq2x"});
        let from_object = IceCandidateInit::from_value(object.clone()).unwrap();
        let from_string =
            IceCandidateInit::from_value(serde_json::Value::String(object.to_string())).unwrap();
        assert_eq!(from_object, from_string);
        assert_eq!(from_object.sdp_m_line_index, Some(0));
        assert_eq!(
            from_object.address(),
            Some("3a4e07bd-5cb3-4a5b-b2f8-6a4c4e0d9b1e.local")
        );
        let round_trip = IceCandidateInit::from_json_string(&from_object.to_json_string()).unwrap();
        assert_eq!(round_trip, from_object);
    }

    #[test]
    fn empty_candidate_is_end_of_candidates() {
        let c = IceCandidateInit::from_value(serde_json::json!({"candidate": ""})).unwrap();
        assert!(c.is_end_of_candidates());
        assert!(IceCandidateInit::from_value(serde_json::json!(42)).is_err());
    }
}
