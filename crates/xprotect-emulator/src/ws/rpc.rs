//! The WebSocket JSON-RPC logic (PROTOCOL.md §3, §9.7), free of IO: text in, messages out.
//!
//! A [`WsConnection`] holds one socket's signaling state; [`WsConnection::handle_text`] takes a
//! frame and returns the frames to send, in order. It reaches the rest of the emulator only
//! through [`WsBackend`], so tests can drive it message by message.
//!
//! Failures never close the socket: a request that fails gets an error response **and** an
//! `error` notification (the sample only shows notifications), a notification that fails gets the
//! notification alone.
//!
//! Server candidates held back by a fault ([`crate::Fault::DelayCandidates`]) wait in the
//! connection: [`WsConnection::next_deferred_at`] says when the socket loop must call
//! [`WsConnection::take_due`].

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;

use tokio::time::Instant;

use serde_json::{Value, json};
use xprotect_proto::wire::jsonrpc::{
    AnswerResult, ConnectParams, ConnectResult, Envelope, InviteParams, RegisterParams, RpcBody,
    RpcId, RpcMessage, TrickleParams, decode_params, encode_params,
};
use xprotect_proto::wire::rest::SessionResponse;
use xprotect_proto::wire::{IceCandidateInit, Secret, SessionId, SessionParams};

use crate::error::EmuError;
use crate::journal::{JournalEvent, Transport};
use crate::sessions::SessionRecord;
use crate::state::AppState;
use crate::tokens::TokenOwner;

/// ONVIF error code for a malformed candidate.
pub const CODE_BAD_CANDIDATE: i64 = 1003;
/// ONVIF error code for "insufficient resources" (the media engine failed).
pub const CODE_INSUFFICIENT_RESOURCES: i64 = 1001;

/// What the JSON-RPC logic needs from the emulator.
pub trait WsBackend: Send + Sync {
    /// Who a raw access token belongs to.
    fn authenticate(&self, token: &str) -> Result<TokenOwner, EmuError>;
    /// A fresh id for an invite (a UUID string, never 1 or 2).
    fn invite_id(&self) -> String;
    /// Create a session and its offer.
    fn create_session(
        &self,
        owner: &TokenOwner,
        token: Secret,
        params: SessionParams,
    ) -> impl Future<Output = Result<SessionRecord, EmuError>> + Send;
    /// Apply an answer (JSON string of `{type:"answer",sdp}`).
    fn apply_answer(
        &self,
        owner: &str,
        session: SessionId,
        answer_json: &str,
    ) -> impl Future<Output = Result<(), EmuError>> + Send;
    /// Add a client candidate.
    fn add_candidate(
        &self,
        owner: &str,
        session: SessionId,
        candidate: &IceCandidateInit,
        twin_ip: Option<IpAddr>,
    ) -> impl Future<Output = Result<(), EmuError>> + Send;
    /// Record a journal event.
    fn journal(&self, event: JournalEvent);
    /// Whether a session still exists (a dropped one gets no more messages).
    fn session_alive(&self, session: SessionId) -> bool;
}

impl WsBackend for AppState {
    fn authenticate(&self, token: &str) -> Result<TokenOwner, EmuError> {
        AppState::authenticate(self, token)
    }

    fn invite_id(&self) -> String {
        self.new_uuid().to_string()
    }

    async fn create_session(
        &self,
        owner: &TokenOwner,
        token: Secret,
        params: SessionParams,
    ) -> Result<SessionRecord, EmuError> {
        let device = params.device.to_string();
        let echo = SessionResponse {
            device_id: Some(device.clone()),
            camera_id: Some(device),
            stream_id: params.stream.map(|s| s.to_string()),
            include_audio: Some(params.include_audio),
            ..SessionResponse::default()
        };
        AppState::create_session(self, owner, token, params, Transport::Ws, echo).await
    }

    async fn apply_answer(
        &self,
        owner: &str,
        session: SessionId,
        answer_json: &str,
    ) -> Result<(), EmuError> {
        AppState::apply_answer(self, owner, session, answer_json, "answer", Transport::Ws)
            .await
            .map(drop)
    }

    async fn add_candidate(
        &self,
        owner: &str,
        session: SessionId,
        candidate: &IceCandidateInit,
        twin_ip: Option<IpAddr>,
    ) -> Result<(), EmuError> {
        self.add_client_candidate(owner, session, candidate, twin_ip)
            .await
    }

    fn journal(&self, event: JournalEvent) {
        self.journal().record(event);
    }

    fn session_alive(&self, session: SessionId) -> bool {
        self.sessions().contains(session)
    }
}

/// One WebSocket's signaling state.
#[derive(Debug)]
pub struct WsConnection {
    peer_ip: Option<IpAddr>,
    owner: Option<TokenOwner>,
    /// The envelope of the client's `connect`, used for what the server starts (invite, trickle).
    session_envelope: Envelope,
    pending_invites: HashMap<RpcId, SessionId>,
    /// The sessions this socket created.
    sessions: Vec<SessionId>,
    /// Messages held back until their time (delayed server candidates), in order.
    deferred: Vec<Deferred>,
}

/// A message to send at `due` if its session still exists then.
#[derive(Debug)]
struct Deferred {
    due: Instant,
    session: SessionId,
    message: RpcMessage,
}

/// A failure to report: code, message and the session it concerns.
struct Failure {
    code: i64,
    message: String,
    session: Option<SessionId>,
}

impl Failure {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            session: None,
        }
    }

    fn about(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }
}

impl From<EmuError> for Failure {
    fn from(error: EmuError) -> Self {
        let code = match &error {
            EmuError::Media(_) => CODE_INSUFFICIENT_RESOURCES,
            other => i64::from(other.status().as_u16()),
        };
        let message = match error.field_name() {
            Some(field) => format!("{field}: {error}"),
            None => error.to_string(),
        };
        Failure::new(code, message)
    }
}

impl WsConnection {
    /// A connection from `peer_ip` (the upgrade request's X-Forwarded-For or TCP peer).
    pub fn new(peer_ip: Option<IpAddr>) -> Self {
        Self {
            peer_ip,
            owner: None,
            session_envelope: Envelope::JsonRpc2,
            pending_invites: HashMap::new(),
            sessions: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// The sessions this socket created (`connect`), whether or not they still exist.
    pub fn sessions(&self) -> &[SessionId] {
        &self.sessions
    }

    /// When the earliest held-back message is due, if there is one.
    pub fn next_deferred_at(&self) -> Option<Instant> {
        self.deferred.iter().map(|d| d.due).min()
    }

    /// The held-back messages due at `now`, in the order they were made, without those of
    /// sessions that ended meanwhile.
    pub fn take_due<B: WsBackend>(&mut self, backend: &B, now: Instant) -> Vec<RpcMessage> {
        let (due, later): (Vec<Deferred>, Vec<Deferred>) =
            self.deferred.drain(..).partition(|d| d.due <= now);
        self.deferred = later;
        due.into_iter()
            .filter(|d| backend.session_alive(d.session))
            .map(|d| d.message)
            .collect()
    }

    /// Handle one text frame; returns the frames to send, in order.
    pub async fn handle_text<B: WsBackend>(&mut self, backend: &B, text: &str) -> Vec<RpcMessage> {
        let message = match RpcMessage::parse(text) {
            Ok(message) => message,
            Err(error) => {
                return self.fail(
                    backend,
                    Envelope::JsonRpc2,
                    None,
                    Failure::new(400, error.to_string()),
                );
            }
        };
        // Answer in the client's dialect; a bare message gets the current standard one.
        let envelope = match message.envelope {
            Envelope::Bare => Envelope::JsonRpc2,
            other => other,
        };
        match message.body {
            RpcBody::Call { method, params } => {
                self.handle_call(backend, envelope, message.id, &method, &params)
                    .await
            }
            RpcBody::Result(result) => {
                self.handle_result(backend, envelope, message.id, result)
                    .await
            }
            RpcBody::Error(error) => {
                let session = message
                    .id
                    .as_ref()
                    .and_then(|id| self.pending_invites.remove(id));
                backend.journal(JournalEvent::WsError {
                    session: session.map(|s| s.to_string()),
                    code: error.code,
                    message: format!("client reported: {}", error.message),
                });
                Vec::new()
            }
        }
    }

    /// A binary frame: the protocol is text only.
    pub fn handle_binary<B: WsBackend>(&mut self, backend: &B, length: usize) -> Vec<RpcMessage> {
        self.fail(
            backend,
            self.session_envelope,
            None,
            Failure::new(400, format!("binary frames are not supported ({length} bytes ignored); send JSON-RPC text frames")),
        )
    }

    async fn handle_call<B: WsBackend>(
        &mut self,
        backend: &B,
        envelope: Envelope,
        id: Option<RpcId>,
        method: &str,
        params: &Value,
    ) -> Vec<RpcMessage> {
        let outcome = match method.to_ascii_lowercase().as_str() {
            "register" => self.register(backend, envelope, id.clone(), params),
            "connect" => self.connect(backend, envelope, id.clone(), params).await,
            "trickle" => self.trickle(backend, params).await,
            // A peer's error notification is journaled, never answered (no error ping-pong).
            "error" => {
                backend.journal(JournalEvent::WsError {
                    session: None,
                    code: params
                        .get("code")
                        .and_then(Value::as_i64)
                        .unwrap_or_default(),
                    message: format!(
                        "client reported: {}",
                        params
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    ),
                });
                Ok(Vec::new())
            }
            _ => Err(Failure::new(
                400,
                format!(
                    "unknown method `{}`; this gateway speaks register, connect and trickle",
                    method.chars().take(40).collect::<String>()
                ),
            )),
        };
        match outcome {
            Ok(out) => out,
            Err(failure) => self.fail(backend, envelope, id, failure),
        }
    }

    fn register<B: WsBackend>(
        &mut self,
        backend: &B,
        envelope: Envelope,
        id: Option<RpcId>,
        params: &Value,
    ) -> Result<Vec<RpcMessage>, Failure> {
        let register: RegisterParams =
            decode_params(params).map_err(|e| Failure::new(400, e.to_string()))?;
        let owner = backend
            .authenticate(register.authorization.expose())
            .map_err(|_| Failure::new(401, "Authorization failed"))?;
        self.owner = Some(owner);
        Ok(id
            .map(|id| RpcMessage::result(envelope, id, json!({"id": backend.invite_id()})))
            .into_iter()
            .collect())
    }

    async fn connect<B: WsBackend>(
        &mut self,
        backend: &B,
        envelope: Envelope,
        id: Option<RpcId>,
        params: &Value,
    ) -> Result<Vec<RpcMessage>, Failure> {
        let connect: ConnectParams =
            decode_params(params).map_err(|e| Failure::new(400, e.to_string()))?;
        let owner = backend
            .authenticate(connect.authorization.expose())
            .map_err(|_| Failure::new(401, "Authorization failed"))?;
        let session_params = connect
            .validate()
            .map_err(|e| Failure::from(EmuError::from(e)))?;
        let record = backend
            .create_session(&owner, connect.authorization.clone(), session_params)
            .await?;
        self.owner = Some(owner);
        self.session_envelope = envelope;
        self.sessions.push(record.id);
        let mut out = Vec::with_capacity(2 + record.server_candidates.len());
        // The sample learns the session id from the connect result, so it must come first.
        if let Some(id) = id {
            let result = ConnectResult {
                session: record.id,
                ice_servers: Some(Vec::new()),
            };
            out.push(RpcMessage::result(envelope, id, encode_params(&result)));
        }
        let invite_id = RpcId::Text(backend.invite_id());
        self.pending_invites.insert(invite_id.clone(), record.id);
        let invite = InviteParams {
            session: record.id,
            offer: record.offer_json.clone(),
        };
        out.push(RpcMessage::call(
            envelope,
            Some(invite_id),
            "invite",
            encode_params(&invite),
        ));
        // Objects, not strings: the sample hands `params.candidate` straight to addIceCandidate.
        let trickles = record.server_candidates.iter().map(|candidate| {
            RpcMessage::call(
                envelope,
                None,
                "trickle",
                encode_params(&TrickleParams::server(record.id, candidate)),
            )
        });
        match record.timers.candidates_from {
            Some(due) => self.deferred.extend(trickles.map(|message| Deferred {
                due,
                session: record.id,
                message,
            })),
            None => out.extend(trickles),
        }
        Ok(out)
    }

    async fn trickle<B: WsBackend>(
        &mut self,
        backend: &B,
        params: &Value,
    ) -> Result<Vec<RpcMessage>, Failure> {
        let trickle: TrickleParams =
            decode_params(params).map_err(|e| Failure::new(CODE_BAD_CANDIDATE, e.to_string()))?;
        let session = trickle.session;
        let owner = self.owner.as_ref().ok_or_else(|| {
            Failure::new(401, "register or connect before trickling").about(session)
        })?;
        let candidate = trickle
            .candidate()
            .map_err(|e| Failure::new(CODE_BAD_CANDIDATE, e.to_string()).about(session))?;
        backend
            .add_candidate(&owner.user, session, &candidate, self.peer_ip)
            .await
            .map_err(|error| {
                let bad_candidate = matches!(error, EmuError::BadRequest { .. });
                let mut failure = Failure::from(error).about(session);
                if bad_candidate {
                    failure.code = CODE_BAD_CANDIDATE;
                }
                failure
            })?;
        Ok(Vec::new())
    }

    async fn handle_result<B: WsBackend>(
        &mut self,
        backend: &B,
        envelope: Envelope,
        id: Option<RpcId>,
        result: Value,
    ) -> Vec<RpcMessage> {
        let Some(session) = id.as_ref().and_then(|id| self.pending_invites.remove(id)) else {
            return self.fail(
                backend,
                envelope,
                None,
                Failure::new(400, "a response to no request of this server"),
            );
        };
        let Some(owner) = self.owner.clone() else {
            return self.fail(
                backend,
                envelope,
                None,
                Failure::new(401, "not registered").about(session),
            );
        };
        let answer: AnswerResult = match decode_params(&result) {
            Ok(answer) => answer,
            Err(error) => {
                // Keep the invite open: the client may answer again correctly.
                if let Some(id) = id {
                    self.pending_invites.insert(id, session);
                }
                let message = error.to_string().replace("params", "result");
                return self.fail(
                    backend,
                    envelope,
                    None,
                    Failure::new(400, message).about(session),
                );
            }
        };
        match backend
            .apply_answer(&owner.user, session, &answer.answer)
            .await
        {
            Ok(()) => Vec::new(),
            Err(error) => self.fail(backend, envelope, None, Failure::from(error).about(session)),
        }
    }

    /// The error notification (always) and the error response (for requests), journaled.
    fn fail<B: WsBackend>(
        &self,
        backend: &B,
        envelope: Envelope,
        id: Option<RpcId>,
        failure: Failure,
    ) -> Vec<RpcMessage> {
        backend.journal(JournalEvent::WsError {
            session: failure.session.map(|s| s.to_string()),
            code: failure.code,
            message: failure.message.clone(),
        });
        let mut out = vec![RpcMessage::error_notification(
            envelope,
            failure.code,
            failure.message.clone(),
            failure.session,
        )];
        if let Some(id) = id {
            out.push(RpcMessage::error(
                envelope,
                Some(id),
                failure.code,
                failure.message,
            ));
        }
        out
    }
}
