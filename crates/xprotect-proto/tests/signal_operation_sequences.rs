//! Operation-sequence property tests of both signaling machines (quinn style): arbitrary server
//! messages, responses, timeouts and commands in any order. Invariants: no panic, and `Failed`
//! is terminal — after it the machine emits no request, no frame and no further event.

use proptest::prelude::*;
use std::time::{Duration, Instant};
use xprotect_proto::signal::{
    HttpResponse, Output, RestConfig, RestSignaling, SignalEvent, Signaling, WsConfig, WsSignaling,
};
use xprotect_proto::wire::{IceCandidateInit, Secret, SessionDescription, SessionParams};

#[derive(Debug, Clone)]
enum Op {
    ServerText(String),
    Response {
        pick: usize,
        status: u16,
        body: String,
    },
    TransportFailure {
        pick: usize,
    },
    Advance(u16),
    SendAnswer,
    LocalCandidate,
    MediaConnected(bool),
    UpdateToken,
    WsClosed,
}

const SESSION: &str = "0d7c1a52-3b8e-4f7a-9a51-6c2f0e1b7a10";

fn plausible_server_text() -> impl Strategy<Value = String> {
    let offer = SessionDescription::offer("v=0\r\n").to_json_string();
    prop_oneof![
        Just(r#"{"jsonrpc":"2.0","result":{"id":"x"},"id":1}"#.to_owned()),
        Just(format!(r#"{{"jsonrpc":"2.0","result":{{"session":"{SESSION}"}},"id":2}}"#)),
        Just(serde_json::json!({"jsonrpc":"2.0","method":"invite","id":"i","params":{"session":SESSION,"offer":offer}}).to_string()),
        Just(format!(r#"{{"jsonrpc":"2.0","method":"trickle","params":{{"session":"{SESSION}","candidate":{{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}}}}}"#)),
        Just(r#"{"jsonrpc":"2.0","method":"error","params":{"code":1002,"message":"Peer disconnected"}}"#.to_owned()),
        Just(r#"{"jsonrpc":"2.0","error":{"code":401,"message":"no"},"id":2}"#.to_owned()),
        ".{0,60}",
    ]
}

fn plausible_body() -> impl Strategy<Value = String> {
    let offer = SessionDescription::offer("v=0\r\n").to_json_string();
    prop_oneof![
        Just(serde_json::json!({"sessionId": SESSION, "offerSDP": offer}).to_string()),
        Just(r#"{"candidates":["{\"candidate\":\"candidate:1 1 udp 1 127.0.0.1 9 typ host\",\"sdpMid\":\"0\"}"]}"#.to_owned()),
        Just(r#"{"candidates":null}"#.to_owned()),
        Just("{}".to_owned()),
        ".{0,60}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        plausible_server_text().prop_map(Op::ServerText),
        (
            0usize..4,
            prop::sample::select(vec![200u16, 204, 400, 401, 404, 500, 502]),
            plausible_body()
        )
            .prop_map(|(pick, status, body)| Op::Response { pick, status, body }),
        (0usize..4).prop_map(|pick| Op::TransportFailure { pick }),
        any::<u16>().prop_map(Op::Advance),
        Just(Op::SendAnswer),
        Just(Op::LocalCandidate),
        any::<bool>().prop_map(Op::MediaConnected),
        Just(Op::UpdateToken),
        Just(Op::WsClosed),
    ]
}

fn run(mut machine: Signaling, ops: Vec<Op>) {
    let mut now = Instant::now();
    let params = SessionParams::live("6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b".parse().unwrap());
    machine.start(now, params, Secret::new("t"));
    let candidate = IceCandidateInit::from_json_string(
        r#"{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}"#,
    )
    .unwrap();
    let mut in_flight = Vec::new();
    let mut failed = false;
    for op in ops {
        match op {
            Op::ServerText(text) => machine.handle_ws_text(now, &text),
            Op::Response { pick, status, body } if !in_flight.is_empty() => {
                let id = in_flight.remove(pick % in_flight.len());
                machine.handle_http_response(now, id, HttpResponse { status, body });
            }
            Op::TransportFailure { pick } if !in_flight.is_empty() => {
                let id = in_flight.remove(pick % in_flight.len());
                machine.handle_http_failure(now, id, "reset".into());
            }
            Op::Response { .. } | Op::TransportFailure { .. } => {}
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                machine.handle_timeout(now);
            }
            Op::SendAnswer => machine.send_answer(now, "v=0\r\n"),
            Op::LocalCandidate => machine.add_local_candidate(now, &candidate),
            Op::MediaConnected(up) => machine.set_media_connected(now, up),
            Op::UpdateToken => {
                let _ = machine.update_token(now, Secret::new("t2"));
            }
            Op::WsClosed => machine.handle_ws_closed(now, "gone".into()),
        }
        loop {
            match machine.poll_output() {
                Output::Timeout(..) => break,
                Output::Http(id, _) => {
                    assert!(!failed, "an HTTP request after Failed");
                    in_flight.push(id);
                }
                Output::Ws(_) => assert!(!failed, "a WebSocket frame after Failed"),
                Output::Event(SignalEvent::Failed(_)) => {
                    assert!(!failed, "Failed twice");
                    failed = true;
                }
                Output::Event(event) => assert!(!failed, "event after Failed: {event:?}"),
            }
        }
        assert_eq!(machine.is_failed(), failed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn websocket_machine_survives_any_sequence(ops in prop::collection::vec(op(), 0..40)) {
        run(Signaling::Ws(WsSignaling::new(WsConfig::default())), ops);
    }

    #[test]
    fn rest_machine_survives_any_sequence(ops in prop::collection::vec(op(), 0..40)) {
        run(Signaling::Rest(RestSignaling::new(RestConfig::default())), ops);
    }
}
