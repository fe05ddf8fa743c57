//! Every parser of peer input, fed arbitrary text and arbitrary JSON: errors, never panics.

use proptest::prelude::*;
use serde_json::Value;
use xprotect_proto::wire::commands::Command;
use xprotect_proto::wire::idp::{TokenRequest, TokenResponse};
use xprotect_proto::wire::jsonrpc::{ConnectParams, RpcMessage, TrickleParams, decode_params};
use xprotect_proto::wire::rest::{CreateSessionRequest, IceCandidatesBody, SessionResponse};
use xprotect_proto::wire::{IceCandidateInit, SdpKind, SessionDescription, lenient};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9 :.\\-{}\"]{0,24}".prop_map(Value::String),
        // Field names the parsers know, in odd casing, to reach deeper code paths.
        prop::sample::select(vec![
            "deviceId",
            "CAMERAID",
            "streamID",
            "playbackTimeNode",
            "PlaybackTime",
            "speed",
            "skipGaps",
            "iceServers",
            "urls",
            "candidate",
            "session",
            "offer",
            "answer"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop::sample::select(vec![
            "deviceId",
            "cameraId",
            "STREAMID",
            "includeAudio",
            "playbackTimeNode",
            "playbackTime",
            "speed",
            "skipGaps",
            "iceServers",
            "url",
            "urls",
            "username",
            "credential",
            "candidate",
            "sdpMid",
            "sdpMLineIndex",
            "session",
            "offer",
            "answer",
            "method",
            "params",
            "id",
            "result",
            "error",
            "jsonrpc",
            "ApiVersion",
            "peer",
            "PlaybackSpeed",
            "authorization",
            "direction",
            "on",
            "auxNumber",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|entries| Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            )),
        ]
    })
}

fn parse_everything(text: &str) {
    let _ = lenient::from_str::<CreateSessionRequest>(text).map(|r| r.validate());
    let _ = lenient::from_str::<SessionResponse>(text);
    let _ = lenient::from_str::<IceCandidatesBody>(text);
    let _ = IceCandidateInit::from_json_string(text);
    let _ = SessionDescription::from_json_string(text, SdpKind::Offer);
    let _ = TokenRequest::from_form(text);
    let _ = serde_json::from_str::<TokenResponse>(text);
    let _ = Command::parse(text);
    if let Ok(message) = RpcMessage::parse(text) {
        let _ = message.to_text();
        if let xprotect_proto::wire::jsonrpc::RpcBody::Call { params, .. } = &message.body {
            let _ = decode_params::<ConnectParams>(params).map(|c| c.validate());
            let _ = decode_params::<TrickleParams>(params).map(|t| t.candidate());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        parse_everything(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        parse_everything(&value.to_string());
        let _ = IceCandidateInit::from_value(value.clone());
        let _ = decode_params::<ConnectParams>(&value).map(|c| c.validate());
        let _ = RpcMessage::parse(&serde_json::json!({"jsonrpc": "2.0", "method": "trickle", "params": value}).to_string());
    }

    #[test]
    fn arbitrary_form_bodies_never_panic(body in "[a-z_=&%0-9A-F+]{0,120}") {
        let _ = TokenRequest::from_form(&body);
    }
}
