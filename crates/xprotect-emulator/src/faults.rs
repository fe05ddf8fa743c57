//! Fault injection: the emulator does on purpose what a real gateway does to its clients now and
//! then (drops sessions, closes WebSockets, stalls media, fails requests, is slow with ICE
//! candidates, restarts), so clients can be tested against it.
//!
//! ```text
//! FaultControl::inject ─┬─ DropSessions ─────── forget + close every session (journal: session_dropped)
//!   (Rust, or POST      ├─ CloseWebSockets ──── SocketOrder ─▶ every ws::socket loop ─▶ close 1011,
//!    /emulator/faults)  │                        its sessions end after WEBSOCKET_LINGER
//!                       ├─ StopMedia ─────────── MediaHandle::stop_media on every session
//!                       ├─ HttpStatus ────────── FaultState::failures ─▶ http::fault_api middleware
//!                       ├─ DelayCandidates ───── FaultState::candidate_delay ─▶ AppState::create_session
//!                       └─ RestartSignaling ──── RestartRequest ─▶ emulator.rs server loop (rebind)
//! ```
//!
//! Every injection is journaled as `fault_injected`; every session a fault ends as
//! `session_dropped`.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use xprotect_proto::wire::SessionId;

use crate::config::EmulatorConfig;
use crate::journal::JournalEvent;
use crate::state::AppState;

/// How long the sessions of a WebSocket closed by [`Fault::CloseWebSockets`] stream on before
/// they are ended. Their owner is gone and, without signaling, can neither refresh a token nor
/// close them; a short linger lets a client that reconnects at once see media continue briefly,
/// as it would while a real gateway notices.
pub const WEBSOCKET_LINGER: Duration = Duration::from_secs(5);

/// WebSocket close code of [`Fault::CloseWebSockets`]: "internal error" (RFC 6455 §7.4.1).
pub const CLOSE_CODE_INTERNAL_ERROR: u16 = 1011;

/// WebSocket close code of [`Fault::RestartSignaling`]: "service restart" (IANA registry).
pub const CLOSE_CODE_SERVICE_RESTART: u16 = 1012;

/// Longest wait in [`FaultControl::inject`] for the HTTP listener to close on a restart (it
/// closes as soon as the server task sees the request; this only bounds a stuck runtime).
const LISTENER_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Something a real gateway does to its clients, done on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// End every current media session at once, as a gateway does when it drops one: media
    /// stops, the DTLS/SCTP association is closed, the session is forgotten (REST calls on it
    /// answer 404), and a WebSocket that carries it gets nothing more for it.
    DropSessions,
    /// Close every open signaling WebSocket with close code 1011. Their sessions stream on for
    /// [`WEBSOCKET_LINGER`] and then end, as their owner is gone (a WebSocket the *client*
    /// closes leaves its sessions alone: they end on the ICE timeouts, PROTOCOL.md §10.8).
    CloseWebSockets,
    /// Stop sending RTP on every current session while ICE and DTLS stay up (consent checks
    /// keep being answered, the data channel stays open). Sessions created later stream.
    StopMedia,
    /// Answer the next `count` HTTP requests to the identity provider and the API (never the
    /// control endpoint) with `status` (400–599) and a JSON error body as the gateway would:
    /// OAuth's `{"error","error_description"}` from the IDP, `{"error","message"}` from the API.
    HttpStatus {
        /// The status, e.g. 503, 500 or 401.
        status: u16,
        /// How many requests fail.
        count: u32,
    },
    /// Hold back the server's ICE candidates of sessions created from now on by `millis`: the
    /// offer carries none, REST polling returns none and the WebSocket sends no `trickle` until
    /// then. Sticky until [`FaultControl::clear`]; `0` stops delaying.
    DelayCandidates {
        /// The delay in milliseconds.
        millis: u64,
    },
    /// Restart the signaling server: close the HTTP listener and every WebSocket (close code
    /// 1012), forget every session (their media stops), and listen again on the same address
    /// after `down_millis`. Tokens survive: a restart of the API gateway keeps the IDP. The
    /// media engine's UDP socket is kept too (new sessions get new ICE credentials, so nothing
    /// of the old sessions can reach them).
    RestartSignaling {
        /// How long the listener stays closed, in milliseconds.
        down_millis: u64,
    },
}

/// Statuses [`Fault::HttpStatus`] accepts: client and server errors.
pub const INJECTABLE_STATUSES: std::ops::RangeInclusive<u16> = 400..=599;

impl Fault {
    /// Whether the fault's parameters make sense (a status in [`INJECTABLE_STATUSES`]); the
    /// message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Fault::HttpStatus { status, .. } if !INJECTABLE_STATUSES.contains(status) => Err(
                format!("status {status} is not an error status: give one in 400..=599"),
            ),
            _ => Ok(()),
        }
    }
}

/// The first `count` IDP/API requests fail with `status` (`EmulatorConfig::fail_requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct RequestFailures {
    /// The status (400–599; anything else is answered as 500).
    pub status: u16,
    /// How many requests are left to fail.
    pub count: u32,
}

impl std::str::FromStr for RequestFailures {
    type Err = String;

    /// `STATUS:COUNT`, e.g. `503:2`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (status, count) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not STATUS:COUNT, e.g. 503:2"))?;
        let status: u16 = status
            .trim()
            .parse()
            .map_err(|_| format!("`{status}` is not an HTTP status"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{count}` is not a count"))?;
        Fault::HttpStatus { status, count }.check()?;
        Ok(Self { status, count })
    }
}

/// What every open signaling WebSocket is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketOrder {
    /// Send a close frame with `code` and `reason` and stop serving. When `linger` is set, the
    /// sessions the socket created end that long afterwards.
    Close {
        /// The close code.
        code: u16,
        /// The close reason (short, sent to the client).
        reason: &'static str,
        /// How long the socket's sessions stream on; `None`: they are left alone.
        linger: Option<Duration>,
    },
}

/// A request to the server loop (emulator.rs) to close its listener and listen again.
#[derive(Debug)]
pub(crate) struct RestartRequest {
    /// How long to stay down after the listener closed.
    pub down: Duration,
    /// Told once the listener is closed (new connections are refused).
    pub listener_closed: oneshot::Sender<()>,
}

/// The fault settings every handler consults; one per emulator, inside its [`AppState`].
#[derive(Debug)]
pub struct FaultState {
    /// Pending `HttpStatus` failures.
    failures: Mutex<Option<RequestFailures>>,
    /// Candidate hold-back of sessions created from now on.
    candidate_delay: Mutex<Option<Duration>>,
    /// The configured hold-back, which [`FaultControl::clear`] returns to.
    configured_delay: Option<Duration>,
    sockets: watch::Sender<Option<SocketOrder>>,
    restart: Mutex<Option<mpsc::Sender<RestartRequest>>>,
    control_endpoint: bool,
}

impl FaultState {
    /// The settings `config` starts with.
    pub fn new(config: &EmulatorConfig) -> Self {
        let configured_delay = config.delay_candidates.filter(|d| !d.is_zero());
        Self {
            failures: Mutex::new(config.fail_requests.filter(|f| f.count > 0)),
            candidate_delay: Mutex::new(configured_delay),
            configured_delay,
            sockets: watch::Sender::new(None),
            restart: Mutex::new(None),
            control_endpoint: config.fault_control,
        }
    }

    /// Whether `POST`/`DELETE /emulator/faults` is served.
    pub fn control_endpoint(&self) -> bool {
        self.control_endpoint
    }

    /// Takes one pending failure: the status the current request must be answered with.
    pub fn take_failure(&self) -> Option<u16> {
        let mut failures = lock(&self.failures);
        let pending = failures.as_mut()?;
        let status = pending.status;
        pending.count = pending.count.saturating_sub(1);
        if pending.count == 0 {
            *failures = None;
        }
        Some(status)
    }

    /// How long the candidates of a session created now are held back.
    pub fn candidate_delay(&self) -> Option<Duration> {
        *lock(&self.candidate_delay)
    }

    /// Orders to open WebSockets, from now on (orders given before are not seen).
    pub fn socket_orders(&self) -> watch::Receiver<Option<SocketOrder>> {
        self.sockets.subscribe()
    }

    /// Where restart requests go; set by [`crate::Emulator::start`], which owns the listener.
    pub(crate) fn set_restarter(&self, restarter: mpsc::Sender<RestartRequest>) {
        *lock(&self.restart) = Some(restarter);
    }

    fn order_sockets(&self, order: SocketOrder) {
        // `send_replace` stores the order even with no socket open (then nobody acts on it).
        self.sockets.send_replace(Some(order));
    }

    fn restarter(&self) -> Option<mpsc::Sender<RestartRequest>> {
        lock(&self.restart).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each guarded value is replaced whole, so it is consistent even after a panic elsewhere.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Injects faults into a running emulator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultControl {
    state: AppState,
}

impl FaultControl {
    /// Control over the emulator behind `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Applies `fault` now and journals it; returns once it took effect: sessions are
    /// forgotten, media stopped, orders given to the WebSockets, and for a restart the listener
    /// is closed (it listens again `down_millis` later, in the background).
    pub async fn inject(&self, fault: Fault) {
        let state = &self.state;
        state.journal().record(JournalEvent::FaultInjected {
            fault: fault.clone(),
        });
        match fault {
            Fault::DropSessions => drop_all_sessions(state, "dropped by an injected fault").await,
            Fault::CloseWebSockets => state.faults().order_sockets(SocketOrder::Close {
                code: CLOSE_CODE_INTERNAL_ERROR,
                reason: "closed by an injected fault",
                linger: Some(WEBSOCKET_LINGER),
            }),
            Fault::StopMedia => {
                for id in state.sessions().ids() {
                    // A session that closed meanwhile has nothing left to stop.
                    let _ = state.media().stop_media(id.0).await;
                }
            }
            Fault::HttpStatus { status, count } => {
                *lock(&state.faults().failures) =
                    (count > 0).then_some(RequestFailures { status, count });
            }
            Fault::DelayCandidates { millis } => {
                *lock(&state.faults().candidate_delay) =
                    (millis > 0).then(|| Duration::from_millis(millis));
            }
            Fault::RestartSignaling { down_millis } => {
                restart_signaling(state, Duration::from_millis(down_millis)).await;
            }
        }
    }

    /// Undoes the sticky faults: the candidate delay returns to the configured one
    /// (`EmulatorConfig::delay_candidates`), pending request failures are forgotten.
    pub fn clear(&self) {
        let faults = self.state.faults();
        *lock(&faults.failures) = None;
        *lock(&faults.candidate_delay) = faults.configured_delay;
        tracing::debug!("faults cleared");
    }
}

/// Close the listener, close every WebSocket, forget every session.
async fn restart_signaling(state: &AppState, down: Duration) {
    match state.faults().restarter() {
        Some(restarter) => {
            let (closed, wait_closed) = oneshot::channel();
            let request = RestartRequest {
                down,
                listener_closed: closed,
            };
            if restarter.send(request).await.is_ok()
                && tokio::time::timeout(LISTENER_CLOSE_WAIT, wait_closed)
                    .await
                    .is_err()
            {
                tracing::debug!("the listener did not report closing in time");
            }
        }
        // A bare router (no Emulator::start) has no listener of its own to restart.
        None => tracing::debug!("no listener to restart; closing sockets and sessions only"),
    }
    state.faults().order_sockets(SocketOrder::Close {
        code: CLOSE_CODE_SERVICE_RESTART,
        reason: "the signaling server restarts",
        linger: None,
    });
    drop_all_sessions(state, "the signaling server restarted").await;
}

async fn drop_all_sessions(state: &AppState, reason: &str) {
    for id in state.sessions().ids() {
        drop_session(state, id, reason.to_owned()).await;
    }
}

/// Ends one session for `reason`: forgotten first (so REST answers 404 at once and a WebSocket
/// sends nothing more for it), then its media is closed; journaled as `session_dropped`.
pub(crate) async fn drop_session(state: &AppState, id: SessionId, reason: String) {
    if state.sessions().remove(id).is_none() {
        return;
    }
    state.media().close_session(id.0).await;
    state.journal().record(JournalEvent::SessionDropped {
        session: id.to_string(),
        reason,
    });
}

/// `sdp` without its `a=candidate` and `a=end-of-candidates` lines, for an offer whose
/// candidates are held back (they then come only by trickle, late).
pub(crate) fn without_candidates(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("a=candidate:") || line.starts_with("a=end-of-candidates"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_have_the_documented_json() {
        let fault: Fault =
            serde_json::from_str(r#"{"fault":"http_status","status":503,"count":2}"#).unwrap();
        assert_eq!(
            fault,
            Fault::HttpStatus {
                status: 503,
                count: 2
            }
        );
        assert_eq!(
            serde_json::to_string(&Fault::RestartSignaling { down_millis: 300 }).unwrap(),
            r#"{"fault":"restart_signaling","down_millis":300}"#
        );
        assert_eq!(
            serde_json::from_str::<Fault>(r#"{"fault":"drop_sessions"}"#).unwrap(),
            Fault::DropSessions
        );
        assert!(serde_json::from_str::<Fault>(r#"{"fault":"explode"}"#).is_err());
    }

    #[test]
    fn request_failures_parse_and_check() {
        assert_eq!(
            "503:2".parse::<RequestFailures>(),
            Ok(RequestFailures {
                status: 503,
                count: 2
            })
        );
        assert!("200:1".parse::<RequestFailures>().is_err());
        assert!("503".parse::<RequestFailures>().is_err());
        assert!("x:1".parse::<RequestFailures>().is_err());
    }

    #[test]
    fn held_back_offers_lose_only_their_candidates() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\na=sendonly\r\n";
        assert_eq!(
            without_candidates(sdp),
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n"
        );
    }
}
