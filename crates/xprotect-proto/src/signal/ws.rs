//! WebSocket JSON-RPC signaling (PROTOCOL.md §3): `register` (id 1) → `connect` (id 2) → the
//! server's `invite` → our answer as the invite's response; `trickle` both ways; server errors as
//! `error` notifications without an id.

use super::{Output, SignalError, SignalEvent, TimeoutReason, excerpt, setup_operation};
use crate::wire::jsonrpc::{
    AnswerResult, CONNECT_ID, ConnectParams, ConnectResult, Envelope, InviteParams, REGISTER_ID,
    RegisterParams, RpcBody, RpcError, RpcId, RpcMessage, TrickleParams, decode_params,
    encode_params,
};
use crate::wire::{
    IceCandidateInit, SdpKind, Secret, SessionDescription, SessionId, SessionParams,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tunables of the WebSocket machine.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Envelope we send: `jsonrpc` (2025 R2) or `ApiVersion` (2025 R1).
    pub envelope: Envelope,
    /// How long `register`, `connect` and the invite may take each.
    pub response_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            envelope: Envelope::JsonRpc2,
            response_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Registering,
    Connecting,
    AwaitingInvite,
    Offered,
    Answered,
    /// Answered, then the socket closed: the media may live on, nothing can be signaled.
    Lost,
    Failed,
}

/// The WebSocket signaling machine. Start it once the socket is open.
#[derive(Debug)]
pub struct WsSignaling {
    config: WsConfig,
    state: State,
    params: Option<SessionParams>,
    token: Secret,
    session: Option<SessionId>,
    invite_id: Option<RpcId>,
    outputs: VecDeque<Output>,
    /// Candidates gathered before the session id was known.
    pending_candidates: Vec<IceCandidateInit>,
    deadline: Option<(Instant, &'static str)>,
}

impl WsSignaling {
    /// A machine that has not started yet.
    pub fn new(config: WsConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            params: None,
            token: Secret::default(),
            session: None,
            invite_id: None,
            outputs: VecDeque::new(),
            pending_candidates: Vec::new(),
            deadline: None,
        }
    }

    /// Send `register`; the socket must be open.
    pub fn start(&mut self, now: Instant, params: SessionParams, token: Secret) {
        if self.state != State::Idle {
            return;
        }
        self.params = Some(params);
        self.token = token.clone();
        self.state = State::Registering;
        self.send_call(
            Some(RpcId::Number(REGISTER_ID)),
            "register",
            encode_params(&RegisterParams {
                authorization: token,
            }),
        );
        self.deadline = Some((
            now + self.config.response_timeout,
            setup_operation::REGISTER_WS,
        ));
    }

    /// Respond to the invite with the answer.
    pub fn send_answer(&mut self, _now: Instant, sdp: &str) {
        if self.state != State::Offered {
            return;
        }
        let Some(id) = self.invite_id.clone() else {
            return;
        };
        let answer = AnswerResult {
            answer: SessionDescription::answer(sdp).to_json_string(),
        };
        let message = RpcMessage::result(self.config.envelope, id, encode_params(&answer));
        self.outputs.push_back(Output::Ws(message.to_text()));
        self.state = State::Answered;
        self.deadline = None;
        // There is no acknowledgement of an invite response in the protocol.
        self.outputs
            .push_back(Output::Event(SignalEvent::AnswerAccepted));
    }

    /// Trickle a local candidate (buffered until the session id is known).
    pub fn add_local_candidate(&mut self, _now: Instant, candidate: &IceCandidateInit) {
        if matches!(self.state, State::Failed | State::Lost) || candidate.is_end_of_candidates() {
            return;
        }
        match self.session {
            Some(session) => self.send_call(
                None,
                "trickle",
                encode_params(&TrickleParams::client(session, candidate)),
            ),
            None => self.pending_candidates.push(candidate.clone()),
        }
    }

    /// Nothing changes with media state over WebSocket.
    pub fn set_media_connected(&mut self, _now: Instant, _connected: bool) {}

    /// The protocol has no token update over WebSocket (PROTOCOL.md §3.7): callers must replace
    /// the session before the token expires.
    pub fn update_token(&mut self, _now: Instant, token: Secret) -> Result<(), SignalError> {
        self.token = token;
        Err(SignalError::Unsupported(
            "updating the token of a WebSocket session",
        ))
    }

    /// A text frame from the gateway.
    pub fn handle_ws_text(&mut self, now: Instant, text: &str) {
        if matches!(self.state, State::Failed | State::Lost) {
            return;
        }
        let message = match RpcMessage::parse(text) {
            Ok(message) => message,
            Err(e) => {
                return self
                    .outputs
                    .push_back(Output::Event(SignalEvent::ServerError {
                        code: 0,
                        message: format!("ignored a malformed message from the gateway: {e}"),
                    }));
            }
        };
        match (&message.body, &message.id) {
            (RpcBody::Result(result), Some(id))
                if id.is(REGISTER_ID) && self.state == State::Registering =>
            {
                let _ = result; // The sample ignores register's result (ONVIF: an endpoint id).
                self.state = State::Connecting;
                let Some(params) = self.params.as_ref() else {
                    return;
                };
                let connect = ConnectParams::from_params(params, &self.token);
                self.send_call(
                    Some(RpcId::Number(CONNECT_ID)),
                    "connect",
                    encode_params(&connect),
                );
                self.deadline = Some((
                    now + self.config.response_timeout,
                    setup_operation::CONNECT_WS,
                ));
            }
            (RpcBody::Result(result), Some(id))
                if id.is(CONNECT_ID) && self.state == State::Connecting =>
            {
                match decode_params::<ConnectResult>(result) {
                    Ok(connect) => {
                        self.session = Some(connect.session);
                        self.state = State::AwaitingInvite;
                        self.deadline =
                            Some((now + self.config.response_timeout, "waiting for the invite"));
                        self.outputs
                            .push_back(Output::Event(SignalEvent::SessionCreated(connect.session)));
                        for candidate in std::mem::take(&mut self.pending_candidates) {
                            self.add_local_candidate(now, &candidate);
                        }
                    }
                    Err(e) => self.fail(SignalError::BadResponse {
                        operation: setup_operation::CONNECT_WS,
                        detail: format!("result: {e}"),
                    }),
                }
            }
            (RpcBody::Error(error), Some(id)) if id.is(REGISTER_ID) || id.is(CONNECT_ID) => {
                let operation = if id.is(REGISTER_ID) {
                    setup_operation::REGISTER_WS
                } else {
                    setup_operation::CONNECT_WS
                };
                self.fail(rpc_failure(operation, error));
            }
            (RpcBody::Call { method, params }, Some(id))
                if method.eq_ignore_ascii_case("invite") =>
            {
                self.on_invite(id.clone(), params)
            }
            (RpcBody::Call { method, params }, None) if method.eq_ignore_ascii_case("trickle") => {
                self.on_trickle(params)
            }
            (RpcBody::Call { method, params }, None) if method.eq_ignore_ascii_case("error") => {
                let error: RpcError = decode_params(params).unwrap_or(RpcError {
                    code: 0,
                    message: excerpt(&params.to_string()),
                    session: None,
                });
                // Before the offer an error means the session will not come; after, media decides.
                if matches!(
                    self.state,
                    State::Registering | State::Connecting | State::AwaitingInvite
                ) {
                    self.fail(rpc_failure(setup_operation::AWAIT_INVITE_WS, &error));
                } else {
                    self.outputs
                        .push_back(Output::Event(SignalEvent::ServerError {
                            code: error.code,
                            message: error.message,
                        }));
                }
            }
            _ => self
                .outputs
                .push_back(Output::Event(SignalEvent::ServerError {
                    code: 0,
                    message: format!(
                        "ignored an unexpected message from the gateway: {}",
                        excerpt(text)
                    ),
                })),
        }
    }

    /// The socket closed. Before the answer that ends the session; after it, media may live on
    /// (ONVIF: the peer connection survives the loss of signaling) and the loss is reported as
    /// [`SignalEvent::SignalingLost`], for the owner to decide (a lasting session replaces it).
    pub fn handle_ws_closed(&mut self, _now: Instant, reason: String) {
        match self.state {
            State::Failed | State::Lost => {}
            State::Answered => {
                self.state = State::Lost;
                self.deadline = None;
                self.pending_candidates.clear();
                self.outputs
                    .push_back(Output::Event(SignalEvent::SignalingLost(reason)));
            }
            _ => self.fail(SignalError::WsClosed(reason)),
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, operation)) = self.deadline
            && at <= now
        {
            self.fail(SignalError::Timeout {
                operation,
                after: self.config.response_timeout,
            });
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        match self.deadline {
            Some((at, _)) if self.state != State::Failed => {
                Output::Timeout(at, TimeoutReason::ResponseDeadline)
            }
            _ => Output::Timeout(super::rest::far_future(), TimeoutReason::Idle),
        }
    }

    /// The session id once `connect` succeeded.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session
    }

    /// True after a terminal failure.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    fn on_invite(&mut self, id: RpcId, params: &serde_json::Value) {
        let invite: InviteParams = match decode_params(params) {
            Ok(invite) => invite,
            Err(e) => {
                return self.fail(SignalError::BadResponse {
                    operation: "reading the invite",
                    detail: e.to_string(),
                });
            }
        };
        if Some(invite.session) != self.session {
            // The sample ignores invites for other sessions; so do we, but say so.
            return self
                .outputs
                .push_back(Output::Event(SignalEvent::ServerError {
                    code: 0,
                    message: format!("ignored an invite for another session ({})", invite.session),
                }));
        }
        if self.state != State::AwaitingInvite {
            return;
        }
        match SessionDescription::from_json_string(&invite.offer, SdpKind::Offer) {
            Ok(offer) => {
                self.invite_id = Some(id);
                self.state = State::Offered;
                self.deadline = None;
                self.outputs
                    .push_back(Output::Event(SignalEvent::Offer(offer.sdp)));
            }
            Err(e) => self.fail(SignalError::BadResponse {
                operation: "reading the invite",
                detail: format!("params.offer: {e}"),
            }),
        }
    }

    fn on_trickle(&mut self, params: &serde_json::Value) {
        let candidate = decode_params::<TrickleParams>(params).and_then(|t| {
            if Some(t.session) == self.session {
                t.candidate().map(Some)
            } else {
                Ok(None)
            }
        });
        match candidate {
            Ok(Some(c)) if c.is_end_of_candidates() => self
                .outputs
                .push_back(Output::Event(SignalEvent::RemoteCandidatesDone)),
            Ok(Some(c)) => self
                .outputs
                .push_back(Output::Event(SignalEvent::RemoteCandidate(c))),
            Ok(None) => {}
            Err(e) => self
                .outputs
                .push_back(Output::Event(SignalEvent::ServerError {
                    code: 1003,
                    message: format!("ignored a malformed gateway candidate: {e}"),
                })),
        }
    }

    fn send_call(&mut self, id: Option<RpcId>, method: &str, params: serde_json::Value) {
        let message = RpcMessage::call(self.config.envelope, id, method, params);
        self.outputs.push_back(Output::Ws(message.to_text()));
    }

    fn fail(&mut self, error: SignalError) {
        if self.state == State::Failed {
            return;
        }
        self.state = State::Failed;
        self.deadline = None;
        self.outputs
            .push_back(Output::Event(SignalEvent::Failed(error)));
    }
}

fn rpc_failure(operation: &'static str, error: &RpcError) -> SignalError {
    let detail = format!("{} (code {})", excerpt(&error.message), error.code);
    match error.code {
        401 | 403 => SignalError::Unauthorized { operation, detail },
        404 | 480 => SignalError::NotFound { operation, detail },
        code => SignalError::Rejected {
            operation,
            status: code,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SESSION: &str = "0d7c1a52-3b8e-4f7a-9a51-6c2f0e1b7a10";

    fn drain(m: &mut WsSignaling) -> (Vec<Value>, Vec<SignalEvent>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        loop {
            match m.poll_output() {
                Output::Ws(text) => sent.push(serde_json::from_str(&text).unwrap()),
                Output::Event(e) => events.push(e),
                Output::Timeout(..) => return (sent, events),
                Output::Http(..) => panic!("WebSocket machine made an HTTP request"),
            }
        }
    }

    fn params() -> SessionParams {
        SessionParams::live("6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b".parse().unwrap())
    }

    fn offered(now: Instant) -> WsSignaling {
        let mut m = WsSignaling::new(WsConfig::default());
        m.start(now, params(), Secret::new("tok"));
        let (sent, _) = drain(&mut m);
        assert_eq!(
            sent[0],
            json!({"jsonrpc":"2.0","method":"register","params":{"authorization":"tok"},"id":1})
        );
        m.handle_ws_text(now, r#"{"jsonrpc":"2.0","result":{"id":"x"},"id":1}"#);
        let (sent, _) = drain(&mut m);
        assert_eq!(sent[0]["method"], "connect");
        assert_eq!(sent[0]["id"], 2);
        assert_eq!(
            sent[0]["params"]["peer"],
            "6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b"
        );
        assert_eq!(sent[0]["params"]["authorization"], "tok");
        m.handle_ws_text(
            now,
            &json!({"jsonrpc":"2.0","id":2,"result":{"session":SESSION,"iceServers":[]}})
                .to_string(),
        );
        let offer = SessionDescription::offer("v=0\r\n").to_json_string();
        m.handle_ws_text(now, &json!({"jsonrpc":"2.0","method":"invite","id":"inv-7","params":{"session":SESSION,"offer":offer}}).to_string());
        m
    }

    #[test]
    fn register_connect_invite_answer() {
        let now = Instant::now();
        let mut m = offered(now);
        let (_, events) = drain(&mut m);
        assert!(matches!(&events[0], SignalEvent::SessionCreated(_)));
        assert_eq!(events[1], SignalEvent::Offer("v=0\r\n".into()));
        m.send_answer(now, "v=0\r\nanswer");
        let (sent, _) = drain(&mut m);
        assert_eq!(sent[0]["id"], "inv-7");
        let answer: Value =
            serde_json::from_str(sent[0]["result"]["answer"].as_str().unwrap()).unwrap();
        assert_eq!(answer["type"], "answer");
    }

    #[test]
    fn trickles_both_ways_in_both_forms() {
        let now = Instant::now();
        let mut m = offered(now);
        drain(&mut m);
        let c = json!({"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0});
        m.handle_ws_text(
            now,
            &json!({"jsonrpc":"2.0","method":"trickle","params":{"session":SESSION,"candidate":c}})
                .to_string(),
        );
        m.handle_ws_text(now, &json!({"jsonrpc":"2.0","method":"trickle","params":{"session":SESSION,"candidate":c.to_string()}}).to_string());
        m.handle_ws_text(now, &json!({"jsonrpc":"2.0","method":"trickle","params":{"session":SESSION,"candidate":{"candidate":""}}}).to_string());
        let (_, events) = drain(&mut m);
        assert!(matches!(&events[0], SignalEvent::RemoteCandidate(_)));
        assert_eq!(events[0], events[1]);
        assert_eq!(events[2], SignalEvent::RemoteCandidatesDone);
        m.add_local_candidate(now, &IceCandidateInit::from_value(c).unwrap());
        let (sent, _) = drain(&mut m);
        assert!(
            sent[0]["params"]["candidate"].is_string(),
            "client trickles strings like the sample"
        );
        assert!(sent[0].get("id").is_none());
    }

    #[test]
    fn errors_before_the_offer_are_terminal_after_are_not() {
        let now = Instant::now();
        let mut m = WsSignaling::new(WsConfig::default());
        m.start(now, params(), Secret::new("tok"));
        drain(&mut m);
        m.handle_ws_text(
            now,
            r#"{"jsonrpc":"2.0","error":{"code":401,"message":"Authorization failed"},"id":1}"#,
        );
        let (_, events) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::Unauthorized { .. })
        ));

        let mut m = offered(now);
        drain(&mut m);
        m.handle_ws_text(now, r#"{"jsonrpc":"2.0","method":"error","params":{"code":1002,"message":"Peer disconnected"}}"#);
        let (_, events) = drain(&mut m);
        assert_eq!(
            events[0],
            SignalEvent::ServerError {
                code: 1002,
                message: "Peer disconnected".into()
            }
        );
        assert!(!m.is_failed());
    }

    #[test]
    fn a_close_after_the_answer_is_signaling_lost_not_a_failure() {
        let now = Instant::now();
        let mut m = offered(now);
        drain(&mut m);
        m.handle_ws_closed(now, "closed by the gateway (1011)".into());
        let (_, events) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::WsClosed(_))
        ));
        assert!(m.is_failed());

        let mut m = offered(now);
        drain(&mut m);
        m.send_answer(now, "v=0\r\nanswer");
        drain(&mut m);
        m.handle_ws_closed(now, "closed by the gateway (1011)".into());
        let (_, events) = drain(&mut m);
        assert_eq!(
            events,
            vec![SignalEvent::SignalingLost(
                "closed by the gateway (1011)".into()
            )]
        );
        assert!(!m.is_failed(), "the media may live on");
        // Nothing more: no frames towards a closed socket, no second report, no timeout.
        let c = json!({"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"});
        m.add_local_candidate(now, &IceCandidateInit::from_value(c).unwrap());
        m.handle_ws_text(now, "{}");
        m.handle_ws_closed(now, "again".into());
        m.handle_timeout(now + Duration::from_secs(3600));
        assert_eq!(drain(&mut m), (vec![], vec![]));
    }

    #[test]
    fn garbage_frames_are_reported_not_fatal() {
        let now = Instant::now();
        let mut m = offered(now);
        drain(&mut m);
        for junk in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"method":"invite","id":3,"params":{"session":1}}"#,
        ] {
            m.handle_ws_text(now, junk);
        }
        let (_, events) = drain(&mut m);
        assert!(
            events
                .iter()
                .all(|e| matches!(e, SignalEvent::ServerError { .. } | SignalEvent::Failed(_))),
            "{events:?}"
        );
    }

    #[test]
    fn silence_times_out_and_token_update_is_unsupported() {
        let now = Instant::now();
        let mut m = WsSignaling::new(WsConfig::default());
        m.start(now, params(), Secret::new("tok"));
        drain(&mut m);
        assert!(m.update_token(now, Secret::new("x")).is_err());
        m.handle_timeout(now + Duration::from_secs(16));
        let (_, events) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::Timeout { .. })
        ));
    }
}
