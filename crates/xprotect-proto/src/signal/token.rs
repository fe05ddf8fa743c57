//! The token keeper: logs in at the IDP and keeps an access token fresh (PROTOCOL.md §1).
//!
//! Refresh happens at the earlier of `expires_in − 60 s` (what the sample does) and
//! `0.8 × expires_in` (so that short test lifetimes still refresh ahead of time). With a refresh
//! token the refresh grant is used; without one, or when the refresh token is refused, the keeper
//! logs in again with the stored password. Transport failures are retried with backoff until
//! the current token expires.

use super::http::{HttpBody, HttpMethod, HttpRequest, HttpResponse, RequestId};
use super::{TimeoutReason, excerpt};
use crate::wire::Secret;
use crate::wire::idp::{OAuthError, TOKEN_PATH, TokenRequest, TokenResponse};
use std::time::{Duration, Instant};

/// Who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Basic user name.
    pub username: String,
    /// Its password (kept in memory for re-login; never printed).
    pub password: Secret,
    /// `VmsClient` (default) or `GrantValidatorClient`.
    pub client_id: String,
}

/// What the keeper wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenOutput {
    /// POST this to the IDP.
    Http(RequestId, HttpRequest),
    /// Something happened.
    Event(TokenEvent),
    /// Wake me then.
    Timeout(Instant, TimeoutReason),
}

/// Token news.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenEvent {
    /// A new access token (first login or refresh).
    Issued {
        /// The token.
        access_token: Secret,
        /// When it stops working.
        expires_at: Instant,
        /// Lifetime the IDP granted.
        lifetime: Duration,
        /// True for a refresh (not the first login).
        refreshed: bool,
    },
    /// A refresh attempt failed but the current token still works; another try is scheduled.
    RefreshDeferred(LoginError),
    /// No token can be had; terminal.
    Failed(LoginError),
}

/// Why a login failed, in words that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// `invalid_grant` on a password grant.
    #[error(
        "wrong user name or password (the IDP said: {0}); note that WebRTC needs an XProtect basic user"
    )]
    WrongCredentials(String),
    /// `invalid_client`.
    #[error(
        "the IDP does not know client id `{client_id}` ({detail}); try --client-id GrantValidatorClient"
    )]
    UnknownClient {
        /// The client id we sent.
        client_id: String,
        /// What the IDP said.
        detail: String,
    },
    /// Any other OAuth error code.
    #[error("the IDP refused the login: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// OAuth error code.
        error: String,
        /// Its description.
        description: Option<String>,
    },
    /// A non-JSON body, typically an HTML error page from IIS or a proxy.
    #[error(
        "the IDP answered HTTP {status} with something that is not JSON ({snippet}); check the gateway URL (it usually ends in /api)"
    )]
    NotJson {
        /// Status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// A JSON body that is not a token response.
    #[error("the IDP's token response is malformed: {0}")]
    BadResponse(String),
    /// No answer.
    #[error("cannot reach the IDP: {0}")]
    Transport(String),
    /// The token expired while refreshes kept failing.
    #[error("the access token expired and could not be renewed: {0}")]
    Expired(Box<LoginError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    FirstLogin,
    Refresh,
    Relogin,
}

/// Logs in and keeps the token fresh; sans IO.
#[derive(Debug)]
pub struct TokenKeeper {
    credentials: Credentials,
    refresh_token: Option<Secret>,
    expires_at: Option<Instant>,
    in_flight: Option<(RequestId, Attempt)>,
    next_request: RequestId,
    wake_at: Option<Instant>,
    retry_delay: Duration,
    outputs: std::collections::VecDeque<TokenOutput>,
    failed: bool,
    last_forced: Option<Instant>,
}

/// Refresh this long before expiry at most (the sample's margin).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// … or at this fraction of the lifetime, whichever is earlier.
const REFRESH_FRACTION: f64 = 0.8;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// A token the gateway refuses is renewed at once, but not more often than this: a fresh token
/// refused again means something a new token does not fix (permissions), not a stale one.
const FORCED_RENEWAL_SPACING: Duration = Duration::from_secs(10);

impl TokenKeeper {
    /// A keeper for these credentials; call [`TokenKeeper::start`] to log in.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            refresh_token: None,
            expires_at: None,
            in_flight: None,
            next_request: 1,
            wake_at: None,
            retry_delay: FIRST_RETRY,
            outputs: Default::default(),
            failed: false,
            last_forced: None,
        }
    }

    /// First login.
    pub fn start(&mut self, _now: Instant) {
        if self.in_flight.is_none() && self.expires_at.is_none() && !self.failed {
            self.send(Attempt::FirstLogin);
        }
    }

    /// The gateway refused the current access token (HTTP 401) before its expiry: a restarted
    /// gateway that forgot it, clock skew, revocation. Renew it now (refresh grant, or a new login
    /// without a refresh token) instead of at the scheduled time; at most once per
    /// `FORCED_RENEWAL_SPACING`, and never while a request is in flight.
    pub fn token_rejected(&mut self, now: Instant) {
        if self.failed || self.in_flight.is_some() || self.expires_at.is_none() {
            return;
        }
        if self
            .last_forced
            .is_some_and(|at| now.saturating_duration_since(at) < FORCED_RENEWAL_SPACING)
        {
            return;
        }
        self.last_forced = Some(now);
        self.wake_at = None;
        let attempt = if self.refresh_token.is_some() {
            Attempt::Refresh
        } else {
            Attempt::Relogin
        };
        self.send(attempt);
    }

    /// When the refresh for a token of `lifetime` issued at `issued` is due.
    pub fn refresh_due(issued: Instant, lifetime: Duration) -> Instant {
        let by_fraction = lifetime.mul_f64(REFRESH_FRACTION);
        // A lifetime shorter than the margin would mean "refresh now, forever": use the fraction.
        match lifetime.checked_sub(REFRESH_MARGIN) {
            Some(by_margin) if !by_margin.is_zero() => issued + by_margin.min(by_fraction),
            _ => issued + by_fraction,
        }
    }

    /// The IDP answered.
    pub fn handle_http_response(&mut self, now: Instant, id: RequestId, response: HttpResponse) {
        let Some((expected, attempt)) = self.in_flight else {
            return;
        };
        if expected != id {
            return;
        }
        self.in_flight = None;
        if response.is_success() {
            return match serde_json::from_str::<TokenResponse>(&response.body) {
                Ok(token) => self.on_token(now, attempt, token),
                Err(e) if looks_like_json(&response.body) => {
                    self.on_failure(now, attempt, LoginError::BadResponse(e.to_string()))
                }
                Err(_) => self.on_failure(now, attempt, not_json(&response)),
            };
        }
        let error = match serde_json::from_str::<OAuthError>(&response.body) {
            Ok(oauth) => self.classify(attempt, oauth),
            Err(_) => not_json(&response),
        };
        self.on_failure(now, attempt, error);
    }

    /// The request failed without a response.
    pub fn handle_http_failure(&mut self, now: Instant, id: RequestId, error: String) {
        let Some((expected, attempt)) = self.in_flight else {
            return;
        };
        if expected == id {
            self.in_flight = None;
            self.on_failure(now, attempt, LoginError::Transport(excerpt(&error)));
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed || self.in_flight.is_some() {
            return;
        }
        if let Some(expires_at) = self.expires_at
            && now >= expires_at
            && self.wake_at.is_none()
        {
            return self.fail(LoginError::Expired(Box::new(LoginError::Transport(
                "no refresh succeeded in time".into(),
            ))));
        }
        if self.wake_at.is_some_and(|at| at <= now) {
            self.wake_at = None;
            let attempt = match (&self.refresh_token, self.expires_at) {
                (_, None) => Attempt::FirstLogin,
                (Some(_), Some(_)) => Attempt::Refresh,
                (None, Some(_)) => Attempt::Relogin,
            };
            self.send(attempt);
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> TokenOutput {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        match self.wake_at {
            Some(at) if !self.failed => TokenOutput::Timeout(at, TimeoutReason::Idle),
            _ => TokenOutput::Timeout(super::rest::far_future(), TimeoutReason::Idle),
        }
    }

    /// True once no token can be had.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn send(&mut self, attempt: Attempt) {
        let request = match (attempt, &self.refresh_token) {
            (Attempt::Refresh, Some(refresh_token)) => TokenRequest::RefreshToken {
                refresh_token: refresh_token.clone(),
                client_id: self.credentials.client_id.clone(),
            },
            _ => TokenRequest::Password {
                username: self.credentials.username.clone(),
                password: self.credentials.password.clone(),
                client_id: self.credentials.client_id.clone(),
            },
        };
        let id = self.next_request;
        self.next_request += 1;
        self.in_flight = Some((id, attempt));
        self.outputs.push_back(TokenOutput::Http(
            id,
            HttpRequest {
                method: HttpMethod::Post,
                path: TOKEN_PATH.to_owned(),
                body: Some(HttpBody::Form(Secret::new(request.to_form()))),
                bearer: None,
            },
        ));
    }

    fn on_token(&mut self, now: Instant, attempt: Attempt, token: TokenResponse) {
        let lifetime = Duration::from_secs(token.expires_in.max(1));
        // Single-use refresh tokens rotate: keep the newest, drop a consumed one.
        self.refresh_token = token.refresh_token.filter(|t| !t.is_empty());
        self.expires_at = Some(now + lifetime);
        self.wake_at = Some(Self::refresh_due(now, lifetime));
        self.retry_delay = FIRST_RETRY;
        self.outputs
            .push_back(TokenOutput::Event(TokenEvent::Issued {
                access_token: token.access_token,
                expires_at: now + lifetime,
                lifetime,
                refreshed: attempt != Attempt::FirstLogin,
            }));
    }

    fn on_failure(&mut self, now: Instant, attempt: Attempt, error: LoginError) {
        match (attempt, &error) {
            // Nothing to fall back on at first login, and a wrong password stays wrong.
            (Attempt::FirstLogin, _)
            | (
                Attempt::Relogin,
                LoginError::WrongCredentials(_) | LoginError::UnknownClient { .. },
            ) => self.fail(error),
            // A refused refresh token: log in again with the password right away.
            (Attempt::Refresh, LoginError::Refused { .. } | LoginError::WrongCredentials(_)) => {
                self.refresh_token = None;
                self.outputs
                    .push_back(TokenOutput::Event(TokenEvent::RefreshDeferred(error)));
                self.send(Attempt::Relogin);
            }
            _ => {
                let retry_at = now + self.retry_delay;
                self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
                match self.expires_at {
                    Some(expires_at) if retry_at < expires_at => {
                        self.wake_at = Some(retry_at);
                        self.outputs
                            .push_back(TokenOutput::Event(TokenEvent::RefreshDeferred(error)));
                    }
                    _ => self.fail(LoginError::Expired(Box::new(error))),
                }
            }
        }
    }

    fn classify(&self, attempt: Attempt, oauth: OAuthError) -> LoginError {
        let detail = oauth
            .error_description
            .clone()
            .unwrap_or_else(|| oauth.error.clone());
        match oauth.error.as_str() {
            "invalid_grant" if attempt != Attempt::Refresh => {
                LoginError::WrongCredentials(excerpt(&detail))
            }
            "invalid_client" => LoginError::UnknownClient {
                client_id: self.credentials.client_id.clone(),
                detail: excerpt(&detail),
            },
            _ => LoginError::Refused {
                error: excerpt(&oauth.error),
                description: oauth.error_description.map(|d| excerpt(&d)),
            },
        }
    }

    fn fail(&mut self, error: LoginError) {
        self.failed = true;
        self.wake_at = None;
        self.outputs
            .push_back(TokenOutput::Event(TokenEvent::Failed(error)));
    }
}

fn looks_like_json(body: &str) -> bool {
    body.trim_start().starts_with('{')
}

fn not_json(response: &HttpResponse) -> LoginError {
    if looks_like_json(&response.body) {
        return LoginError::BadResponse(format!(
            "HTTP {}: {}",
            response.status,
            excerpt(&response.body)
        ));
    }
    LoginError::NotJson {
        status: response.status,
        snippet: excerpt(&response.body.chars().take(80).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keeper() -> TokenKeeper {
        TokenKeeper::new(Credentials {
            username: "u".into(),
            password: Secret::new("pw!"),
            client_id: "VmsClient".into(),
        })
    }

    fn next_request(k: &mut TokenKeeper) -> (RequestId, String) {
        match k.poll_output() {
            TokenOutput::Http(
                id,
                HttpRequest {
                    body: Some(HttpBody::Form(form)),
                    path,
                    ..
                },
            ) => {
                assert_eq!(path, "IDP/connect/token");
                (id, form.expose().to_owned())
            }
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn token(access: &str, expires_in: u64, refresh: Option<&str>) -> HttpResponse {
        let mut body =
            json!({"access_token": access, "expires_in": expires_in, "token_type": "Bearer"});
        if let Some(r) = refresh {
            body["refresh_token"] = json!(r);
        }
        HttpResponse {
            status: 200,
            body: body.to_string(),
        }
    }

    fn next_event(k: &mut TokenKeeper) -> TokenEvent {
        match k.poll_output() {
            TokenOutput::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn refresh_is_due_at_the_earlier_of_margin_and_fraction() {
        let t = Instant::now();
        assert_eq!(
            TokenKeeper::refresh_due(t, Duration::from_secs(3600)),
            t + Duration::from_secs(2880)
        );
        assert_eq!(
            TokenKeeper::refresh_due(t, Duration::from_secs(10)),
            t + Duration::from_secs(8)
        );
        assert_eq!(
            TokenKeeper::refresh_due(t, Duration::from_secs(600)),
            t + Duration::from_secs(480)
        );
    }

    #[test]
    fn logs_in_then_refreshes_with_the_rotating_refresh_token() {
        let t0 = Instant::now();
        let mut k = keeper();
        k.start(t0);
        let (id, form) = next_request(&mut k);
        assert!(form.starts_with("grant_type=password&username=u&password=pw%21"));
        k.handle_http_response(t0, id, token("a1", 100, Some("r1")));
        assert!(matches!(
            next_event(&mut k),
            TokenEvent::Issued {
                refreshed: false,
                ..
            }
        ));
        let TokenOutput::Timeout(due, _) = k.poll_output() else {
            panic!()
        };
        assert_eq!(due, t0 + Duration::from_secs(40));
        k.handle_timeout(due);
        let (id, form) = next_request(&mut k);
        assert_eq!(
            form,
            "grant_type=refresh_token&refresh_token=r1&client_id=VmsClient"
        );
        k.handle_http_response(due, id, token("a2", 100, Some("r2")));
        let TokenEvent::Issued {
            access_token,
            refreshed: true,
            ..
        } = next_event(&mut k)
        else {
            panic!()
        };
        assert_eq!(access_token.expose(), "a2");
        let TokenOutput::Timeout(due2, _) = k.poll_output() else {
            panic!()
        };
        k.handle_timeout(due2);
        assert!(next_request(&mut k).1.contains("refresh_token=r2"));
    }

    #[test]
    fn refused_refresh_token_falls_back_to_password() {
        let t0 = Instant::now();
        let mut k = keeper();
        k.start(t0);
        let (id, _) = next_request(&mut k);
        k.handle_http_response(t0, id, token("a1", 100, Some("r1")));
        next_event(&mut k);
        let TokenOutput::Timeout(due, _) = k.poll_output() else {
            panic!()
        };
        k.handle_timeout(due);
        let (id, _) = next_request(&mut k);
        k.handle_http_response(
            due,
            id,
            HttpResponse {
                status: 400,
                body: r#"{"error":"invalid_grant"}"#.into(),
            },
        );
        assert!(matches!(next_event(&mut k), TokenEvent::RefreshDeferred(_)));
        let (_, form) = next_request(&mut k);
        assert!(form.starts_with("grant_type=password"));
    }

    #[test]
    fn without_refresh_token_it_logs_in_again() {
        let t0 = Instant::now();
        let mut k = keeper();
        k.start(t0);
        let (id, _) = next_request(&mut k);
        k.handle_http_response(t0, id, token("a1", 10, None));
        next_event(&mut k);
        let TokenOutput::Timeout(due, _) = k.poll_output() else {
            panic!()
        };
        k.handle_timeout(due);
        assert!(next_request(&mut k).1.starts_with("grant_type=password"));
    }

    #[test]
    fn a_rejected_token_is_renewed_at_once_but_not_in_a_storm() {
        let t0 = Instant::now();
        let mut k = keeper();
        k.start(t0);
        let (id, _) = next_request(&mut k);
        k.handle_http_response(t0, id, token("a1", 3600, Some("r1")));
        next_event(&mut k);

        let t1 = t0 + Duration::from_secs(5);
        k.token_rejected(t1);
        let (id, form) = next_request(&mut k);
        assert!(form.starts_with("grant_type=refresh_token"), "{form}");
        // Reported again while the renewal is in flight, or right after it: nothing more.
        k.token_rejected(t1);
        k.handle_http_response(t1, id, token("a2", 3600, Some("r2")));
        assert!(matches!(
            next_event(&mut k),
            TokenEvent::Issued {
                refreshed: true,
                ..
            }
        ));
        k.token_rejected(t1 + Duration::from_secs(1));
        assert!(matches!(k.poll_output(), TokenOutput::Timeout(..)));
        // Later, a refusal renews again; without a refresh token by logging in.
        let t2 = t1 + FORCED_RENEWAL_SPACING;
        k.token_rejected(t2);
        let (id, form) = next_request(&mut k);
        assert!(form.starts_with("grant_type=refresh_token"), "{form}");
        k.handle_http_response(t2, id, token("a3", 3600, None));
        next_event(&mut k);
        k.token_rejected(t2 + FORCED_RENEWAL_SPACING);
        assert!(next_request(&mut k).1.starts_with("grant_type=password"));
    }

    #[test]
    fn login_errors_say_what_to_fix() {
        let cases = [
            (HttpResponse { status: 400, body: r#"{"error":"invalid_grant","error_description":"invalid_username_or_password"}"#.into() }, "wrong user name or password"),
            (HttpResponse { status: 400, body: r#"{"error":"invalid_client"}"#.into() }, "client id `VmsClient`"),
            (HttpResponse { status: 502, body: "<html>Bad Gateway</html>".into() }, "not JSON"),
            (HttpResponse { status: 200, body: r#"{"access_token":5}"#.into() }, "malformed"),
        ];
        for (response, expected) in cases {
            let t0 = Instant::now();
            let mut k = keeper();
            k.start(t0);
            let (id, _) = next_request(&mut k);
            k.handle_http_response(t0, id, response);
            let TokenEvent::Failed(e) = next_event(&mut k) else {
                panic!()
            };
            assert!(e.to_string().contains(expected), "{e}");
            assert!(k.is_failed());
        }
    }

    #[test]
    fn unreachable_idp_is_retried_until_the_token_expires() {
        let t0 = Instant::now();
        let mut k = keeper();
        k.start(t0);
        let (id, _) = next_request(&mut k);
        k.handle_http_response(t0, id, token("a1", 10, None));
        next_event(&mut k);
        let mut now = t0;
        loop {
            let out = k.poll_output();
            match out {
                TokenOutput::Timeout(at, _) => {
                    now = at;
                    k.handle_timeout(now);
                }
                TokenOutput::Http(id, _) => {
                    k.handle_http_failure(now, id, "connection refused".into())
                }
                TokenOutput::Event(TokenEvent::RefreshDeferred(_)) => {}
                TokenOutput::Event(TokenEvent::Failed(e)) => {
                    assert!(matches!(e, LoginError::Expired(_)), "{e}");
                    assert!(now <= t0 + Duration::from_secs(10));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
