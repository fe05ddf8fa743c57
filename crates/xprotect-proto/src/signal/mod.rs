//! Signaling state machines, sans IO: REST and WebSocket behind one seam, and the token keeper.
//!
//! Each machine is driven the same way (the str0m loop): feed it inputs — `handle_*` with the
//! current `Instant`, or commands such as [`Signaling::send_answer`] — then drain
//! [`Signaling::poll_output`] until it returns [`Output::Timeout`]; perform each
//! [`Output::Http`] / [`Output::Ws`], report [`Output::Event`]s, and call `handle_timeout` when the
//! deadline passes.
//!
//! ```
//! use std::time::Instant;
//! use xprotect_proto::signal::{Output, RestSignaling, Signaling};
//! use xprotect_proto::wire::{Secret, SessionParams};
//!
//! let now = Instant::now();
//! let params = SessionParams::live("6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b".parse().unwrap());
//! let mut signaling = Signaling::Rest(RestSignaling::new(Default::default()));
//! signaling.start(now, params, Secret::new("token"));
//! loop {
//!     match signaling.poll_output() {
//!         Output::Http(id, request) => { /* execute; later: signaling.handle_http_response(now, id, response) */ }
//!         Output::Ws(text) => { /* send the text frame */ }
//!         Output::Event(event) => { /* offer, candidates, failure … */ }
//!         Output::Timeout(deadline, _reason) => break, // sleep until `deadline`, then handle_timeout
//!     }
//! }
//! ```

mod http;
pub mod rest;
pub mod token;
pub mod ws;

pub use http::{HttpBody, HttpMethod, HttpRequest, HttpResponse, RequestId};
pub use rest::{RestConfig, RestSignaling};
pub use token::{Credentials, LoginError, TokenEvent, TokenKeeper, TokenOutput};
pub use ws::{WsConfig, WsSignaling};

use crate::wire::{IceCandidateInit, Secret, SessionId, SessionParams};
use std::time::{Duration, Instant};

/// What a signaling machine wants done next.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Perform this HTTP request and feed the result back under the same id.
    Http(RequestId, HttpRequest),
    /// Send this text frame on the WebSocket.
    Ws(String),
    /// Something happened that the media side must act on.
    Event(SignalEvent),
    /// Nothing more to do until this instant (then call `handle_timeout`).
    Timeout(Instant, TimeoutReason),
}

/// Why a machine wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReason {
    /// Nothing scheduled.
    Idle,
    /// Next `GET IceCandidates` poll (REST).
    PollCandidates,
    /// A response the machine waits for must have arrived by then.
    ResponseDeadline,
}

/// What signaling tells the media side.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent {
    /// The gateway created the session.
    SessionCreated(SessionId),
    /// The gateway's offer (raw SDP text); answer with [`Signaling::send_answer`].
    Offer(String),
    /// A gateway candidate, new to us.
    RemoteCandidate(IceCandidateInit),
    /// The gateway said it has no more candidates.
    RemoteCandidatesDone,
    /// The gateway took the answer.
    AnswerAccepted,
    /// The gateway took a new token for the session.
    TokenUpdated,
    /// The gateway reported an error that does not end the session by itself.
    ServerError {
        /// Code (ONVIF error code, or HTTP status).
        code: i64,
        /// Its text.
        message: String,
    },
    /// The signaling transport closed after the session was set up (WebSocket only; the
    /// argument says how). The media may live on (ONVIF: the peer connection survives the loss
    /// of signaling), but nothing more can be signaled for this session: no candidate, no
    /// token, no orderly close, and a gateway may end it once it notices its owner is gone.
    /// Reported once; the machine emits nothing more after it, yet it is not
    /// [`Signaling::is_failed`].
    SignalingLost(String),
    /// Signaling failed; terminal: the machine emits nothing more.
    Failed(SignalError),
}

/// The steps that create a session, as [`SignalError`]s name them. A 404 during one of them
/// means the gateway does not know the device or stream asked for; a 404 later means it forgot
/// the session (a restarted gateway).
pub(crate) mod setup_operation {
    pub const CREATE_REST: &str = "creating the session (POST Session)";
    pub const REGISTER_WS: &str = "registering (register)";
    pub const CONNECT_WS: &str = "connecting (connect)";
    pub const AWAIT_INVITE_WS: &str = "setting up the session";
    pub const ALL: [&str; 4] = [CREATE_REST, REGISTER_WS, CONNECT_WS, AWAIT_INVITE_WS];
}

/// Why signaling failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The gateway refused the token (HTTP 401 / JSON-RPC 401).
    #[error("the gateway rejected the access token during {operation} ({detail}); log in again")]
    Unauthorized {
        /// What we were doing.
        operation: &'static str,
        /// What the gateway said.
        detail: String,
    },
    /// The gateway does not know the device or session (404, 480).
    #[error("{operation}: the gateway does not know it ({detail}); check the camera GUID")]
    NotFound {
        /// What we were doing.
        operation: &'static str,
        /// What the gateway said.
        detail: String,
    },
    /// Any other error status or JSON-RPC error.
    #[error("{operation} failed with {status}: {detail}")]
    Rejected {
        /// What we were doing.
        operation: &'static str,
        /// HTTP status or JSON-RPC code.
        status: i64,
        /// What the gateway said.
        detail: String,
    },
    /// The gateway answered something we cannot read.
    #[error("{operation}: unexpected response from the gateway: {detail}")]
    BadResponse {
        /// What we were doing.
        operation: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The request did not reach the gateway or no response came.
    #[error("{operation}: {detail}")]
    Transport {
        /// What we were doing.
        operation: &'static str,
        /// The transport's error.
        detail: String,
    },
    /// The gateway did not answer in time.
    #[error("{operation}: no answer from the gateway within {after:?}")]
    Timeout {
        /// What we were waiting for.
        operation: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The WebSocket closed before the session was set up.
    #[error("the signaling WebSocket closed: {0}")]
    WsClosed(String),
    /// The transport cannot do this (e.g. token update over WebSocket).
    #[error("{0} is not possible over this signaling transport")]
    Unsupported(&'static str),
}

impl SignalError {
    /// True when the gateway refused to create the session because it does not know the device
    /// or stream: asking again cannot help, unlike a 404 for a session it forgot.
    pub fn is_unknown_device(&self) -> bool {
        matches!(self, SignalError::NotFound { operation, .. } if setup_operation::ALL.contains(operation))
    }
}

/// The one seam between the media driver and the two signaling dialects.
#[derive(Debug)]
pub enum Signaling {
    /// REST with candidate polling.
    Rest(RestSignaling),
    /// WebSocket JSON-RPC.
    Ws(WsSignaling),
}

macro_rules! both {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Signaling::Rest($m) => $e,
            Signaling::Ws($m) => $e,
        }
    };
}

impl Signaling {
    /// Start a session. For WebSocket, call once the socket is open.
    pub fn start(&mut self, now: Instant, params: SessionParams, token: Secret) {
        both!(self, m => m.start(now, params, token))
    }
    /// The answer SDP (raw text).
    pub fn send_answer(&mut self, now: Instant, sdp: &str) {
        both!(self, m => m.send_answer(now, sdp))
    }
    /// A local candidate to trickle to the gateway.
    pub fn add_local_candidate(&mut self, now: Instant, candidate: &IceCandidateInit) {
        both!(self, m => m.add_local_candidate(now, candidate))
    }
    /// Media is connected: polling can slow down, missing responses matter less.
    pub fn set_media_connected(&mut self, now: Instant, connected: bool) {
        both!(self, m => m.set_media_connected(now, connected))
    }
    /// Hand the session a fresh access token.
    pub fn update_token(&mut self, now: Instant, token: Secret) -> Result<(), SignalError> {
        both!(self, m => m.update_token(now, token))
    }
    /// An HTTP response for request `id` (REST only; WebSocket ignores it).
    pub fn handle_http_response(&mut self, now: Instant, id: RequestId, response: HttpResponse) {
        if let Signaling::Rest(m) = self {
            m.handle_http_response(now, id, response)
        }
    }
    /// An HTTP request that failed without a response.
    pub fn handle_http_failure(&mut self, now: Instant, id: RequestId, error: String) {
        if let Signaling::Rest(m) = self {
            m.handle_http_failure(now, id, error)
        }
    }
    /// A WebSocket text frame (WebSocket only).
    pub fn handle_ws_text(&mut self, now: Instant, text: &str) {
        if let Signaling::Ws(m) = self {
            m.handle_ws_text(now, text)
        }
    }
    /// The WebSocket closed.
    pub fn handle_ws_closed(&mut self, now: Instant, reason: String) {
        if let Signaling::Ws(m) = self {
            m.handle_ws_closed(now, reason)
        }
    }
    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        both!(self, m => m.handle_timeout(now))
    }
    /// The next thing to do.
    pub fn poll_output(&mut self) -> Output {
        both!(self, m => m.poll_output())
    }
    /// The gateway's session id once known.
    pub fn session_id(&self) -> Option<SessionId> {
        both!(self, m => m.session_id())
    }
    /// True once the machine has failed (it emits nothing more).
    pub fn is_failed(&self) -> bool {
        both!(self, m => m.is_failed())
    }
}

/// Shorten a gateway's error text for messages: the first line, at most 300 characters.
pub(crate) fn excerpt(text: &str) -> String {
    let line = text.trim();
    let mut out: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// The message to show for an error body: our emulator's `message`, an OAuth
/// `error_description`/`error`, ProblemDetails `title`/`detail`, or the raw text.
pub(crate) fn error_detail(status: u16, body: &str) -> String {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["message", "error_description", "detail", "title", "error"] {
            if let Some(serde_json::Value::String(text)) = object.get(key) {
                return excerpt(text);
            }
        }
    }
    if body.trim().is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        excerpt(body)
    }
}
