//! REST signaling (PROTOCOL.md §2): `POST Session` → offer, `PATCH Session/{id}` answer,
//! `POST IceCandidates/{id}` per local candidate, and `GET IceCandidates/{id}` polled for the
//! whole session because the gateway's list is cumulative and may grow late.

use super::http::{HttpBody, HttpMethod, HttpRequest, HttpResponse, RequestId};
use super::{
    Output, SignalError, SignalEvent, TimeoutReason, error_detail, excerpt, setup_operation,
};
use crate::wire::rest::{
    CreateSessionRequest, DeviceField, ICE_CANDIDATES_PATH, IceCandidatesBody, PatchSessionRequest,
    SESSION_PATH, SessionResponse,
};
use crate::wire::{
    IceCandidateInit, SdpKind, Secret, SessionDescription, SessionId, SessionParams,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Tunables of the REST machine.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// How the device is named in `POST Session`.
    pub device_field: DeviceField,
    /// Poll interval while ICE is not connected. The sample polls every 20 ms; 50 ms keeps the
    /// first frame fast without hammering the gateway.
    pub poll_interval_connecting: Duration,
    /// Poll interval once media flows (late candidates still matter for ICE restarts/roaming).
    pub poll_interval_connected: Duration,
    /// Consecutive failed polls that end the session (the 2025 R2 sample stops after 3).
    pub max_poll_failures: u32,
    /// How long any single request may take.
    pub response_timeout: Duration,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            device_field: DeviceField::default(),
            poll_interval_connecting: Duration::from_millis(50),
            poll_interval_connected: Duration::from_secs(2),
            max_poll_failures: 3,
            response_timeout: Duration::from_secs(15),
        }
    }
}

/// What an in-flight request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    CreateSession,
    SendAnswer,
    PostCandidate,
    PollCandidates,
    UpdateToken,
}

impl Purpose {
    fn operation(self) -> &'static str {
        match self {
            Purpose::CreateSession => setup_operation::CREATE_REST,
            Purpose::SendAnswer => "sending the answer (PATCH Session)",
            Purpose::PostCandidate => "sending a candidate (POST IceCandidates)",
            Purpose::PollCandidates => "reading the gateway's candidates (GET IceCandidates)",
            Purpose::UpdateToken => "updating the session token (PATCH Session)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Creating,
    Established,
    Failed,
}

/// The REST signaling machine. See the [module docs](super) for how to drive it.
#[derive(Debug)]
pub struct RestSignaling {
    config: RestConfig,
    state: State,
    token: Secret,
    session: Option<SessionId>,
    next_request: RequestId,
    in_flight: HashMap<RequestId, (Purpose, Instant)>,
    outputs: VecDeque<Output>,
    /// Candidates gathered before the session id was known.
    pending_candidates: Vec<IceCandidateInit>,
    seen_remote: HashSet<String>,
    next_poll: Option<Instant>,
    poll_failures: u32,
    media_connected: bool,
}

impl RestSignaling {
    /// A machine that has not started yet.
    pub fn new(config: RestConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            token: Secret::default(),
            session: None,
            next_request: 1,
            in_flight: HashMap::new(),
            outputs: VecDeque::new(),
            pending_candidates: Vec::new(),
            seen_remote: HashSet::new(),
            next_poll: None,
            poll_failures: 0,
            media_connected: false,
        }
    }

    /// `POST Session`.
    pub fn start(&mut self, now: Instant, params: SessionParams, token: Secret) {
        if self.state != State::Idle {
            return;
        }
        self.token = token;
        self.state = State::Creating;
        let body = CreateSessionRequest::from_params(&params, self.config.device_field);
        self.request(
            now,
            Purpose::CreateSession,
            HttpMethod::Post,
            SESSION_PATH.to_owned(),
            Some(json(&body)),
        );
    }

    /// `PATCH Session/{id}` with the answer.
    pub fn send_answer(&mut self, now: Instant, sdp: &str) {
        let Some(session) = self.live_session() else {
            return;
        };
        let body = PatchSessionRequest {
            answer_sdp: Some(SessionDescription::answer(sdp).to_json_string()),
            token: None,
        };
        self.request(
            now,
            Purpose::SendAnswer,
            HttpMethod::Patch,
            format!("{SESSION_PATH}/{session}"),
            Some(json(&body)),
        );
    }

    /// `POST IceCandidates/{id}`, one request per candidate as the sample does.
    pub fn add_local_candidate(&mut self, now: Instant, candidate: &IceCandidateInit) {
        if candidate.is_end_of_candidates() || self.state == State::Failed {
            return;
        }
        match self.live_session() {
            Some(session) => {
                let body = IceCandidatesBody::with_candidates(std::slice::from_ref(candidate));
                self.request(
                    now,
                    Purpose::PostCandidate,
                    HttpMethod::Post,
                    format!("{ICE_CANDIDATES_PATH}/{session}"),
                    Some(json(&body)),
                );
            }
            None => self.pending_candidates.push(candidate.clone()),
        }
    }

    /// Slow the polling down once media flows.
    pub fn set_media_connected(&mut self, now: Instant, connected: bool) {
        self.media_connected = connected;
        if let Some(next) = self.next_poll {
            self.next_poll = Some(next.min(now + self.poll_interval()));
        }
    }

    /// `PATCH Session/{id}` with `{token}`, authorised by the new token itself (PROTOCOL.md §2.6).
    pub fn update_token(&mut self, now: Instant, token: Secret) -> Result<(), SignalError> {
        self.token = token.clone();
        if let Some(session) = self.live_session() {
            let body = PatchSessionRequest {
                answer_sdp: None,
                token: Some(token),
            };
            self.request(
                now,
                Purpose::UpdateToken,
                HttpMethod::Patch,
                format!("{SESSION_PATH}/{session}"),
                Some(json(&body)),
            );
        }
        Ok(())
    }

    /// A response to request `id`.
    pub fn handle_http_response(&mut self, now: Instant, id: RequestId, response: HttpResponse) {
        let Some((purpose, _)) = self.in_flight.remove(&id) else {
            return;
        };
        if self.state == State::Failed {
            return;
        }
        if !response.is_success() {
            return self.on_error_status(now, purpose, &response);
        }
        match purpose {
            Purpose::CreateSession => self.on_session_created(now, &response.body),
            Purpose::SendAnswer => self
                .outputs
                .push_back(Output::Event(SignalEvent::AnswerAccepted)),
            Purpose::PostCandidate => {}
            Purpose::UpdateToken => self
                .outputs
                .push_back(Output::Event(SignalEvent::TokenUpdated)),
            Purpose::PollCandidates => self.on_candidates(now, &response.body),
        }
    }

    /// Request `id` failed without a response.
    pub fn handle_http_failure(&mut self, now: Instant, id: RequestId, error: String) {
        let Some((purpose, _)) = self.in_flight.remove(&id) else {
            return;
        };
        if self.state == State::Failed {
            return;
        }
        if purpose == Purpose::PollCandidates {
            return self.on_poll_failure(
                now,
                SignalError::Transport {
                    operation: purpose.operation(),
                    detail: excerpt(&error),
                },
            );
        }
        self.fail(SignalError::Transport {
            operation: purpose.operation(),
            detail: excerpt(&error),
        });
    }

    /// Time passed: poll, or give up on overdue requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Failed {
            return;
        }
        let overdue: Vec<(RequestId, Purpose)> = self
            .in_flight
            .iter()
            .filter(|(_, (_, sent))| {
                now.saturating_duration_since(*sent) >= self.config.response_timeout
            })
            .map(|(id, (purpose, _))| (*id, *purpose))
            .collect();
        for (id, purpose) in overdue {
            self.in_flight.remove(&id);
            let error = SignalError::Timeout {
                operation: purpose.operation(),
                after: self.config.response_timeout,
            };
            if purpose == Purpose::PollCandidates {
                self.on_poll_failure(now, error);
            } else {
                self.fail(error);
            }
            if self.state == State::Failed {
                return;
            }
        }
        if self.next_poll.is_some_and(|at| at <= now) {
            self.next_poll = None;
            self.poll(now);
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        let deadline = self
            .in_flight
            .values()
            .map(|(_, sent)| {
                (
                    *sent + self.config.response_timeout,
                    TimeoutReason::ResponseDeadline,
                )
            })
            .chain(self.next_poll.map(|at| (at, TimeoutReason::PollCandidates)))
            .min_by_key(|(at, _)| *at);
        match deadline {
            Some((at, reason)) if self.state != State::Failed => Output::Timeout(at, reason),
            _ => Output::Timeout(far_future(), TimeoutReason::Idle),
        }
    }

    /// The session id once `POST Session` succeeded.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session
    }

    /// True after a terminal failure.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    fn live_session(&self) -> Option<SessionId> {
        (self.state == State::Established)
            .then_some(self.session)
            .flatten()
    }

    fn poll_interval(&self) -> Duration {
        if self.media_connected {
            self.config.poll_interval_connected
        } else {
            self.config.poll_interval_connecting
        }
    }

    fn request(
        &mut self,
        now: Instant,
        purpose: Purpose,
        method: HttpMethod,
        path: String,
        body: Option<HttpBody>,
    ) {
        let id = self.next_request;
        self.next_request += 1;
        self.in_flight.insert(id, (purpose, now));
        self.outputs.push_back(Output::Http(
            id,
            HttpRequest {
                method,
                path,
                body,
                bearer: Some(self.token.clone()),
            },
        ));
    }

    fn poll(&mut self, now: Instant) {
        let Some(session) = self.live_session() else {
            return;
        };
        // One poll at a time: a slow gateway must not pile up GETs.
        if self
            .in_flight
            .values()
            .any(|(p, _)| *p == Purpose::PollCandidates)
        {
            return;
        }
        self.request(
            now,
            Purpose::PollCandidates,
            HttpMethod::Get,
            format!("{ICE_CANDIDATES_PATH}/{session}"),
            None,
        );
    }

    fn on_session_created(&mut self, now: Instant, body: &str) {
        let operation = Purpose::CreateSession.operation();
        let response: SessionResponse = match crate::wire::lenient::from_str(body) {
            Ok(response) => response,
            Err(e) => {
                return self.fail(SignalError::BadResponse {
                    operation,
                    detail: e.to_string(),
                });
            }
        };
        let Some(session) = response.session_id else {
            return self.fail(SignalError::BadResponse {
                operation,
                detail: "no sessionId in the response".into(),
            });
        };
        let Some(offer) = response.offer_sdp else {
            return self.fail(SignalError::BadResponse {
                operation,
                detail: "no offerSDP in the response".into(),
            });
        };
        let offer = match SessionDescription::from_json_string(&offer, SdpKind::Offer) {
            Ok(offer) => offer,
            Err(e) => {
                return self.fail(SignalError::BadResponse {
                    operation,
                    detail: format!("offerSDP: {e}"),
                });
            }
        };
        self.session = Some(session);
        self.state = State::Established;
        self.outputs
            .push_back(Output::Event(SignalEvent::SessionCreated(session)));
        self.outputs
            .push_back(Output::Event(SignalEvent::Offer(offer.sdp)));
        for candidate in std::mem::take(&mut self.pending_candidates) {
            self.add_local_candidate(now, &candidate);
        }
        self.poll(now);
    }

    fn on_candidates(&mut self, now: Instant, body: &str) {
        self.next_poll = Some(now + self.poll_interval());
        let parsed: IceCandidatesBody = match crate::wire::lenient::from_str(body) {
            Ok(parsed) => parsed,
            Err(e) => {
                let operation = Purpose::PollCandidates.operation();
                return self.on_poll_failure(
                    now,
                    SignalError::BadResponse {
                        operation,
                        detail: e.to_string(),
                    },
                );
            }
        };
        self.poll_failures = 0;
        // The list is cumulative: the same string comes back on every poll.
        for raw in parsed.candidates.unwrap_or_default() {
            if !self.seen_remote.insert(raw.clone()) {
                continue;
            }
            match IceCandidateInit::from_json_string(&raw) {
                Ok(candidate) if candidate.is_end_of_candidates() => self
                    .outputs
                    .push_back(Output::Event(SignalEvent::RemoteCandidatesDone)),
                Ok(candidate) => self
                    .outputs
                    .push_back(Output::Event(SignalEvent::RemoteCandidate(candidate))),
                Err(e) => self
                    .outputs
                    .push_back(Output::Event(SignalEvent::ServerError {
                        code: 200,
                        message: format!("ignored a malformed gateway candidate: {e}"),
                    })),
            }
        }
    }

    fn on_poll_failure(&mut self, now: Instant, error: SignalError) {
        self.poll_failures += 1;
        if self.poll_failures >= self.config.max_poll_failures && !self.media_connected {
            return self.fail(error);
        }
        self.outputs
            .push_back(Output::Event(SignalEvent::ServerError {
                code: 0,
                message: error.to_string(),
            }));
        self.next_poll = Some(now + self.poll_interval());
    }

    fn on_error_status(&mut self, now: Instant, purpose: Purpose, response: &HttpResponse) {
        let operation = purpose.operation();
        let detail = error_detail(response.status, &response.body);
        let error = match response.status {
            401 => SignalError::Unauthorized { operation, detail },
            404 => SignalError::NotFound { operation, detail },
            status => SignalError::Rejected {
                operation,
                status: i64::from(status),
                detail,
            },
        };
        match purpose {
            Purpose::PollCandidates => self.on_poll_failure(now, error),
            // A refused trickle candidate does not end the session: others may work.
            Purpose::PostCandidate => {
                self.outputs
                    .push_back(Output::Event(SignalEvent::ServerError {
                        code: i64::from(response.status),
                        message: error.to_string(),
                    }))
            }
            _ => self.fail(error),
        }
    }

    fn fail(&mut self, error: SignalError) {
        if self.state == State::Failed {
            return;
        }
        self.state = State::Failed;
        self.in_flight.clear();
        self.next_poll = None;
        self.outputs
            .push_back(Output::Event(SignalEvent::Failed(error)));
    }
}

fn json<T: serde::Serialize>(value: &T) -> HttpBody {
    HttpBody::Json(serde_json::to_string(value).unwrap_or_default())
}

/// "Never" for the timeout output, far enough to never fire, near enough not to overflow.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Signaling;
    use serde_json::json;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    const SESSION: &str = "0d7c1a52-3b8e-4f7a-9a51-6c2f0e1b7a10";

    fn drain(m: &mut RestSignaling) -> (Vec<(RequestId, HttpRequest)>, Vec<SignalEvent>, Output) {
        let (mut http, mut events) = (Vec::new(), Vec::new());
        loop {
            match m.poll_output() {
                Output::Http(id, r) => http.push((id, r)),
                Output::Event(e) => events.push(e),
                timeout @ Output::Timeout(..) => return (http, events, timeout),
                Output::Ws(_) => panic!("REST sent a WebSocket frame"),
            }
        }
    }

    fn ok(body: serde_json::Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            body: body.to_string(),
        }
    }

    fn started(now: Instant) -> (RestSignaling, RequestId) {
        let mut m = RestSignaling::new(RestConfig::default());
        let params = SessionParams::live("6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b".parse().unwrap());
        m.start(now, params, Secret::new("tok"));
        let (http, _, _) = drain(&mut m);
        assert_eq!(http.len(), 1);
        let (id, request) = &http[0];
        assert_eq!(request.method, HttpMethod::Post);
        assert_eq!(request.path, "REST/v1/WebRTC/Session");
        let Some(HttpBody::Json(body)) = &request.body else {
            panic!("no body")
        };
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["deviceId"], body["cameraId"]);
        assert_eq!(body["resolution"], "notInUse");
        (m, *id)
    }

    fn established(now: Instant) -> RestSignaling {
        let (mut m, id) = started(now);
        let offer = SessionDescription::offer(OFFER).to_json_string();
        m.handle_http_response(
            now,
            id,
            ok(json!({"sessionId": SESSION, "offerSDP": offer})),
        );
        m
    }

    #[test]
    fn a_404_on_create_names_an_unknown_device_but_a_later_one_a_forgotten_session() {
        let now = Instant::now();
        let (mut m, id) = started(now);
        let not_found = HttpResponse {
            status: 404,
            body: "no such device".into(),
        };
        m.handle_http_response(now, id, not_found.clone());
        let (_, events, _) = drain(&mut m);
        let Some(SignalEvent::Failed(error)) = events.last() else {
            panic!("{events:?}")
        };
        assert!(error.is_unknown_device(), "{error}");

        let mut m = established(now);
        let (_, _, _) = drain(&mut m);
        m.send_answer(now, "v=0\r\n");
        let (http, _, _) = drain(&mut m);
        let (answer_id, _) = http
            .iter()
            .find(|(_, r)| r.method == HttpMethod::Patch)
            .expect("the answer is PATCHed");
        m.handle_http_response(now, *answer_id, not_found);
        let (_, events, _) = drain(&mut m);
        let Some(SignalEvent::Failed(error)) = events.last() else {
            panic!("{events:?}")
        };
        assert!(!error.is_unknown_device(), "{error}");
    }

    #[test]
    fn create_session_yields_offer_then_polls_candidates() {
        let now = Instant::now();
        let mut m = established(now);
        let (http, events, _) = drain(&mut m);
        assert!(matches!(&events[0], SignalEvent::SessionCreated(s) if s.to_string() == SESSION));
        assert_eq!(events[1], SignalEvent::Offer(OFFER.into()));
        assert_eq!(http[0].1.method, HttpMethod::Get);
        assert_eq!(
            http[0].1.path,
            format!("REST/v1/WebRTC/IceCandidates/{SESSION}")
        );
    }

    #[test]
    fn cumulative_candidates_are_reported_once_and_polling_continues() {
        let now = Instant::now();
        let mut m = established(now);
        let (http, _, _) = drain(&mut m);
        let c1 = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}).to_string();
        m.handle_http_response(now, http[0].0, ok(json!({"candidates": [c1]})));
        let (_, events, timeout) = drain(&mut m);
        assert_eq!(events.len(), 1);
        let Output::Timeout(at, TimeoutReason::PollCandidates) = timeout else {
            panic!("{timeout:?}")
        };
        m.handle_timeout(at);
        let (http, _, _) = drain(&mut m);
        let c2 = json!({"candidate": "candidate:2 1 udp 1 127.0.0.2 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}).to_string();
        m.handle_http_response(at, http[0].0, ok(json!({"candidates": [c1, c2]})));
        let (_, events, _) = drain(&mut m);
        assert_eq!(events.len(), 1, "only the new candidate: {events:?}");
    }

    #[test]
    fn answer_and_candidates_go_to_the_session() {
        let now = Instant::now();
        let mut m = established(now);
        drain(&mut m);
        m.send_answer(now, "v=0\r\nanswer");
        m.add_local_candidate(now, &IceCandidateInit::from_json_string(r#"{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}"#).unwrap());
        let (http, _, _) = drain(&mut m);
        assert_eq!(http[0].1.method, HttpMethod::Patch);
        let Some(HttpBody::Json(patch)) = &http[0].1.body else {
            panic!()
        };
        let patch: serde_json::Value = serde_json::from_str(patch).unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(patch["answerSDP"].as_str().unwrap()).unwrap();
        assert_eq!(answer["type"], "answer");
        assert_eq!(
            http[1].1.path,
            format!("REST/v1/WebRTC/IceCandidates/{SESSION}")
        );
        m.handle_http_response(now, http[0].0, ok(json!({})));
        let (_, events, _) = drain(&mut m);
        assert_eq!(events, vec![SignalEvent::AnswerAccepted]);
    }

    #[test]
    fn errors_are_typed_and_terminal() {
        let now = Instant::now();
        let (mut m, id) = started(now);
        m.handle_http_response(
            now,
            id,
            HttpResponse {
                status: 401,
                body: String::new(),
            },
        );
        let (_, events, _) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::Unauthorized { .. })
        ));
        assert!(m.is_failed());

        let (mut m, id) = started(now);
        m.handle_http_response(
            now,
            id,
            HttpResponse {
                status: 400,
                body: r#"{"error":"bad_request","message":"field `streamId`: unknown stream"}"#
                    .into(),
            },
        );
        let (_, events, _) = drain(&mut m);
        let SignalEvent::Failed(e) = &events[0] else {
            panic!()
        };
        assert!(e.to_string().contains("unknown stream"), "{e}");

        let (mut m, id) = started(now);
        m.handle_http_response(
            now,
            id,
            ok(json!({"sessionId": SESSION, "offerSDP": "v=0 raw sdp, not JSON"})),
        );
        let (_, events, _) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::BadResponse { .. })
        ));
    }

    #[test]
    fn a_silent_gateway_times_out() {
        let now = Instant::now();
        let (mut m, _) = started(now);
        let Output::Timeout(at, TimeoutReason::ResponseDeadline) = m.poll_output() else {
            panic!()
        };
        m.handle_timeout(at);
        let (_, events, _) = drain(&mut m);
        assert!(matches!(
            &events[0],
            SignalEvent::Failed(SignalError::Timeout { .. })
        ));
    }

    #[test]
    fn three_failed_polls_end_an_unconnected_session() {
        let now = Instant::now();
        let mut m = established(now);
        let mut t = now;
        for _ in 0..3 {
            let (http, _, _) = drain(&mut m);
            let poll = http
                .iter()
                .find(|(_, r)| r.method == HttpMethod::Get)
                .unwrap()
                .0;
            m.handle_http_failure(t, poll, "connection refused".into());
            t += Duration::from_secs(1);
            m.handle_timeout(t);
        }
        let (_, events, _) = drain(&mut m);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, SignalEvent::Failed(SignalError::Transport { .. }))),
            "{events:?}"
        );
    }

    #[test]
    fn token_update_patches_the_session_with_the_new_bearer() {
        let now = Instant::now();
        let mut s = Signaling::Rest(established(now));
        while !matches!(s.poll_output(), Output::Timeout(..)) {}
        s.update_token(now, Secret::new("new")).unwrap();
        let Output::Http(_, request) = s.poll_output() else {
            panic!()
        };
        assert_eq!(request.bearer, Some(Secret::new("new")));
        assert_eq!(
            request.body,
            Some(HttpBody::Json(r#"{"token":"new"}"#.into()))
        );
    }
}
