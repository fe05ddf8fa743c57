//! WebSocket signaling at `<gateway>/ws/webrtc/v1`: JSON-RPC 2.0 with ONVIF's method set and
//! Milestone's parameters (PROTOCOL.md §3).

use super::candidate::IceCandidateInit;
use super::ice_server::{IceServer, IceServerDialect, IceServerWire};
use super::ids::{DeviceId, Secret, SessionId, StreamId};
use super::lenient::{self, JsonError};
use super::session::{
    FieldError, Playback, SessionParams, format_iso_millis, parse_playback_time, validate_speed,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Path of the WebSocket endpoint below the gateway URL.
pub const WS_PATH: &str = "ws/webrtc/v1";

/// The request id the sample uses for `register`.
pub const REGISTER_ID: i64 = 1;
/// The request id the sample uses for `connect`; invites must use neither.
pub const CONNECT_ID: i64 = 2;

/// Which envelope marker a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Envelope {
    /// `"jsonrpc": "2.0"` (2025 R2).
    #[default]
    JsonRpc2,
    /// `"ApiVersion": "1.0"` (the 2025 R1 sample).
    ApiVersion1,
    /// Neither: accepted from peers, never sent.
    Bare,
}

impl Envelope {
    fn stamp(self, object: &mut Map<String, Value>) {
        match self {
            Envelope::JsonRpc2 => {
                object.insert("jsonrpc".into(), json!("2.0"));
            }
            Envelope::ApiVersion1 => {
                object.insert("ApiVersion".into(), json!("1.0"));
            }
            Envelope::Bare => {}
        }
    }

    fn detect(object: &Map<String, Value>) -> Self {
        let has = |name: &str| object.keys().any(|k| k.eq_ignore_ascii_case(name));
        if has("jsonrpc") {
            Envelope::JsonRpc2
        } else if has("ApiVersion") {
            Envelope::ApiVersion1
        } else {
            Envelope::Bare
        }
    }
}

/// A JSON-RPC id: the sample uses numbers, servers may use strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RpcId {
    /// A number.
    Number(i64),
    /// A string, e.g. a UUID.
    Text(String),
}

impl RpcId {
    /// True for the numeric id `n`.
    pub fn is(&self, n: i64) -> bool {
        matches!(self, RpcId::Number(v) if *v == n)
    }
}

/// The `error` member of a failed response, and the params of an `error` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// ONVIF fault (401, 403, 480, 400, 408, 410) or error code (1001–1003).
    #[serde(default)]
    pub code: i64,
    /// Text.
    #[serde(default)]
    pub message: String,
    /// The session the error concerns (notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// One message, classified by shape: request, notification, result or error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcMessage {
    /// The envelope marker it carried.
    pub envelope: Envelope,
    /// Its id, if any.
    pub id: Option<RpcId>,
    /// What it is.
    pub body: RpcBody,
}

/// The four JSON-RPC shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcBody {
    /// A method call (with an id: request; without: notification).
    Call {
        /// Method name as sent.
        method: String,
        /// Parameters (an object, or null).
        params: Value,
    },
    /// A successful response.
    Result(Value),
    /// A failed response.
    Error(RpcError),
}

/// A text frame that is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcParseError {
    /// Not JSON, or not an object.
    #[error("{0}")]
    Json(#[from] JsonError),
    /// An object with neither `method`, `result` nor `error`.
    #[error("not a JSON-RPC message: it has no `method`, `result` or `error`")]
    NotRpc,
}

impl RpcMessage {
    /// Classify a text frame.
    pub fn parse(text: &str) -> Result<Self, RpcParseError> {
        let value: Value = serde_json::from_str(text).map_err(|e| JsonError {
            path: String::new(),
            reason: format!("malformed JSON: {e}"),
        })?;
        let Value::Object(object) = value else {
            return Err(JsonError {
                path: String::new(),
                reason: "a JSON-RPC message must be a JSON object".into(),
            }
            .into());
        };
        let envelope = Envelope::detect(&object);
        let get = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let id = match get("id") {
            None | Some(Value::Null) => None,
            Some(raw) => Some(lenient::from_value::<RpcId>(raw).map_err(|e| JsonError {
                path: "id".into(),
                reason: e.reason,
            })?),
        };
        let body = if let Some(method) = get("method") {
            let Value::String(method) = method else {
                return Err(JsonError {
                    path: "method".into(),
                    reason: "must be a string".into(),
                }
                .into());
            };
            RpcBody::Call {
                method,
                params: get("params").unwrap_or(Value::Null),
            }
        } else if let Some(error) = get("error") {
            RpcBody::Error(lenient::from_value(error).map_err(|e| JsonError {
                path: format!("error.{}", e.path),
                reason: e.reason,
            })?)
        } else if let Some(result) = get("result") {
            RpcBody::Result(result)
        } else {
            return Err(RpcParseError::NotRpc);
        };
        Ok(RpcMessage { envelope, id, body })
    }

    /// Serialize with the given envelope.
    pub fn to_text(&self) -> String {
        let mut object = Map::new();
        self.envelope.stamp(&mut object);
        match &self.body {
            RpcBody::Call { method, params } => {
                object.insert("method".into(), json!(method));
                object.insert("params".into(), params.clone());
            }
            RpcBody::Result(result) => {
                object.insert("result".into(), result.clone());
            }
            RpcBody::Error(error) => {
                object.insert(
                    "error".into(),
                    json!({"code": error.code, "message": error.message}),
                );
            }
        }
        if let Some(id) = &self.id {
            object.insert("id".into(), json!(id));
        }
        Value::Object(object).to_string()
    }

    /// A call (request when `id` is set, notification otherwise).
    pub fn call(envelope: Envelope, id: Option<RpcId>, method: &str, params: Value) -> Self {
        Self {
            envelope,
            id,
            body: RpcBody::Call {
                method: method.to_owned(),
                params,
            },
        }
    }

    /// A successful response.
    pub fn result(envelope: Envelope, id: RpcId, result: Value) -> Self {
        Self {
            envelope,
            id: Some(id),
            body: RpcBody::Result(result),
        }
    }

    /// A failed response.
    pub fn error(
        envelope: Envelope,
        id: Option<RpcId>,
        code: i64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            envelope,
            id,
            body: RpcBody::Error(RpcError {
                code,
                message: message.into(),
                session: None,
            }),
        }
    }

    /// An `error` notification (no id), the way the sample expects server errors.
    pub fn error_notification(
        envelope: Envelope,
        code: i64,
        message: impl Into<String>,
        session: Option<SessionId>,
    ) -> Self {
        let mut params = json!({"code": code, "message": message.into()});
        if let Some(session) = session {
            params["session"] = json!(session);
        }
        Self::call(envelope, None, "error", params)
    }
}

/// `register` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterParams {
    /// The raw access token, without `Bearer `.
    #[serde(default)]
    pub authorization: Secret,
}

/// `connect` params, with the exact spelling of the 2025 samples on output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConnectParams {
    /// The raw access token.
    #[serde(default)]
    pub authorization: Secret,
    /// Camera or microphone GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Stream GUID (`streamID` in the sample, `streamId` in the README).
    #[serde(rename = "streamID", default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// Playback start; present means playback.
    #[serde(
        rename = "PlaybackTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub playback_time: Option<String>,
    /// Skip gaps (sent with `PlaybackTime`).
    #[serde(
        rename = "skipGaps",
        default,
        deserialize_with = "lenient::optional_bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_gaps: Option<bool>,
    /// Speed, the sample sends a string.
    #[serde(
        rename = "PlaybackSpeed",
        alias = "speed",
        default,
        deserialize_with = "lenient::optional_number_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub playback_speed: Option<f64>,
    /// STUN/TURN (`urls` key).
    #[serde(
        rename = "iceServers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ice_servers: Option<Vec<IceServerWire>>,
    /// Add the related microphone (2025 R2).
    #[serde(
        rename = "includeAudio",
        default,
        deserialize_with = "lenient::optional_bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_audio: Option<bool>,
    /// Reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

impl ConnectParams {
    /// Encode validated parameters in the WebSocket dialect.
    pub fn from_params(params: &SessionParams, token: &Secret) -> Self {
        Self {
            authorization: token.clone(),
            peer: Some(params.device.to_string()),
            stream_id: params.stream.map(|s| s.to_string()),
            playback_time: params.playback.map(|p| format_iso_millis(p.start)),
            skip_gaps: params.playback.map(|p| p.skip_gaps),
            playback_speed: params.playback.map(|p| p.speed),
            ice_servers: (!params.ice_servers.is_empty())
                .then(|| IceServer::to_wire(&params.ice_servers, IceServerDialect::WsUrls)),
            include_audio: Some(params.include_audio),
            resolution: None,
        }
    }

    /// Validate (the emulator's side). Speed without a playback time is ignored, as for live REST.
    pub fn validate(&self) -> Result<SessionParams, FieldError> {
        let device: DeviceId = match self.peer.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(FieldError::new(
                    "peer",
                    "missing: give the camera or microphone GUID as `peer`",
                ));
            }
            Some(text) => text
                .parse()
                .map_err(|e: super::ids::InvalidGuid| FieldError::new("peer", e.to_string()))?,
        };
        let stream = match self.stream_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<StreamId>()
                    .map_err(|e| FieldError::new("streamID", e.to_string()))?,
            ),
        };
        let start = parse_playback_time(self.playback_time.as_deref(), "PlaybackTime")?;
        let speed = validate_speed(self.playback_speed, "PlaybackSpeed")?;
        Ok(SessionParams {
            device,
            stream,
            include_audio: self.include_audio.unwrap_or(true),
            playback: start.map(|start| Playback {
                start,
                skip_gaps: self.skip_gaps.unwrap_or(false),
                speed,
            }),
            ice_servers: self
                .ice_servers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(IceServer::from)
                .collect(),
        })
    }
}

/// `connect` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectResult {
    /// The session id the invite and trickles refer to.
    pub session: SessionId,
    /// The gateway's STUN/TURN servers, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<Vec<IceServerWire>>,
}

/// `invite` params (server → client request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteParams {
    /// Session from `connect`.
    pub session: SessionId,
    /// JSON string of `{"type":"offer","sdp":…}`.
    pub offer: String,
}

/// The client's response to an invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerResult {
    /// JSON string of `{"type":"answer","sdp":…}`.
    pub answer: String,
}

/// `trickle` params, both directions. The candidate is a JSON string (sample) or object (ONVIF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrickleParams {
    /// The session.
    pub session: SessionId,
    /// The candidate, either form; see [`TrickleParams::candidate`].
    #[serde(default)]
    pub candidate: Value,
}

impl TrickleParams {
    /// The candidate, whichever form it came in. A missing or null candidate is end-of-candidates.
    pub fn candidate(&self) -> Result<IceCandidateInit, JsonError> {
        match &self.candidate {
            Value::Null => Ok(IceCandidateInit {
                candidate: String::new(),
                sdp_mid: None,
                sdp_m_line_index: None,
                username_fragment: None,
            }),
            other => IceCandidateInit::from_value(other.clone()).map_err(|e| JsonError {
                path: format!("candidate.{}", e.path)
                    .trim_end_matches('.')
                    .to_owned(),
                reason: e.reason,
            }),
        }
    }

    /// Client form: candidate as a JSON string, as the sample sends it.
    pub fn client(session: SessionId, candidate: &IceCandidateInit) -> Self {
        Self {
            session,
            candidate: Value::String(candidate.to_json_string()),
        }
    }

    /// Server form: candidate as an object, which the sample passes straight to `addIceCandidate`.
    pub fn server(session: SessionId, candidate: &IceCandidateInit) -> Self {
        Self {
            session,
            candidate: serde_json::to_value(candidate).unwrap_or(Value::Null),
        }
    }
}

/// Decode call params into `T`, case-insensitively, naming the failing field under `params`.
pub fn decode_params<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, JsonError> {
    let params = if params.is_null() {
        Value::Object(Map::new())
    } else {
        params.clone()
    };
    lenient::from_value(params).map_err(|e| JsonError {
        path: if e.path.is_empty() || e.path == "." {
            "params".into()
        } else {
            format!("params.{}", e.path)
        },
        reason: e.reason,
    })
}

/// Encode params for sending.
pub fn encode_params<T: Serialize>(params: &T) -> Value {
    serde_json::to_value(params).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_connect_with_readme_spellings_validates() {
        let text = r#"{"jsonrpc":"2.0","method":"connect","id":2,
            "params":{"authorization":"eyJ","peer":"a364956f-39a5-4cbc-9ffe-55b0c802ca77",
            "streamId":"5e9ba1dc-d012-425b-ab5a-611a5fb6dae5","playbackTime":"2025-03-01T08:00:00.000Z",
            "skipGaps":false,"playbackSpeed":"2","iceServers":[{"urls":"stun:stun.example.org:3478"}],"includeAudio":false}}"#;
        let message = RpcMessage::parse(text).unwrap();
        assert_eq!(message.envelope, Envelope::JsonRpc2);
        assert!(message.id.as_ref().unwrap().is(CONNECT_ID));
        let RpcBody::Call { method, params } = &message.body else {
            panic!("not a call")
        };
        assert_eq!(method, "connect");
        let connect: ConnectParams = decode_params(params).unwrap();
        let session = connect.validate().unwrap();
        assert_eq!(session.playback.unwrap().speed, 2.0);
        assert!(!session.include_audio);
        assert_eq!(session.ice_servers[0].urls[0], "stun:stun.example.org:3478");
    }

    #[test]
    fn api_version_envelope_and_string_ids_are_understood() {
        let message =
            RpcMessage::parse(r#"{"ApiVersion":"1.0","id":"7f1e","result":{"answer":"{}"}}"#)
                .unwrap();
        assert_eq!(message.envelope, Envelope::ApiVersion1);
        assert_eq!(message.id, Some(RpcId::Text("7f1e".into())));
        let out = RpcMessage::result(Envelope::ApiVersion1, RpcId::Number(5), json!({})).to_text();
        assert!(
            out.contains(r#""ApiVersion":"1.0""#) && !out.contains("jsonrpc"),
            "{out}"
        );
    }

    #[test]
    fn trickle_candidates_come_as_strings_or_objects() {
        let session = SessionId::random();
        let candidate = IceCandidateInit {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        for params in [
            TrickleParams::client(session, &candidate),
            TrickleParams::server(session, &candidate),
        ] {
            let decoded: TrickleParams = decode_params(&encode_params(&params)).unwrap();
            assert_eq!(decoded.candidate().unwrap(), candidate);
        }
    }

    #[test]
    fn error_notifications_have_no_id() {
        let text =
            RpcMessage::error_notification(Envelope::JsonRpc2, 1002, "Peer disconnected", None)
                .to_text();
        let parsed = RpcMessage::parse(&text).unwrap();
        assert!(parsed.id.is_none());
        assert!(matches!(parsed.body, RpcBody::Call { ref method, .. } if method == "error"));
    }

    #[test]
    fn junk_is_an_error() {
        assert!(RpcMessage::parse("[1,2]").is_err());
        assert!(matches!(
            RpcMessage::parse("{}"),
            Err(RpcParseError::NotRpc)
        ));
        assert!(RpcMessage::parse(r#"{"method":5}"#).is_err());
        let err = decode_params::<ConnectParams>(&json!({"PlaybackSpeed": "fast"})).unwrap_err();
        assert_eq!(err.path, "params.PlaybackSpeed");
    }
}
