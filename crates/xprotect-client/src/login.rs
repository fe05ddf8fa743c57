//! Logging in and keeping the token fresh: the IO driver around the sans-IO [`TokenKeeper`].

use crate::gateway::Gateway;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use xprotect_proto::signal::{Credentials, LoginError, TokenEvent, TokenKeeper, TokenOutput};
use xprotect_proto::wire::Secret;

/// The current token, as every session sees it.
#[derive(Debug, Clone)]
pub enum TokenState {
    /// Logging in.
    Pending,
    /// A usable token.
    Valid {
        /// The access token.
        token: Secret,
        /// When it expires.
        expires_at: Instant,
        /// Lifetime the IDP granted.
        lifetime: Duration,
        /// How many refreshes so far.
        refreshes: u64,
    },
    /// No token can be had any more.
    Failed(LoginError),
}

/// A logged-in identity whose token a background task keeps fresh. Dropping it stops the task.
#[derive(Debug)]
pub struct TokenSource {
    state: watch::Receiver<TokenState>,
    rejected: TokenRejections,
    task: JoinHandle<()>,
}

/// Tells the token task that the gateway refused the current token (HTTP 401), so that it is
/// renewed now rather than at its scheduled time. Cheap to clone; see
/// [`TokenSource::rejections`].
#[derive(Debug, Clone, Default)]
pub struct TokenRejections(Arc<Notify>);

impl TokenRejections {
    /// The gateway refused the current token.
    pub fn report(&self) {
        // A stored permit: a report while the task is busy is seen when it next waits.
        self.0.notify_one();
    }
}

impl Drop for TokenSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenSource {
    /// Log in and return once the first token is there (or the login failed).
    pub async fn login(gateway: Gateway, credentials: Credentials) -> Result<Self, LoginError> {
        let (tx, mut rx) = watch::channel(TokenState::Pending);
        let rejected = TokenRejections::default();
        let task = tokio::spawn(drive(gateway, credentials, tx, rejected.clone()));
        let source = TokenSource {
            state: rx.clone(),
            rejected,
            task,
        };
        loop {
            match &*rx.borrow_and_update() {
                TokenState::Valid { .. } => return Ok(source),
                TokenState::Failed(e) => return Err(e.clone()),
                TokenState::Pending => {}
            }
            if rx.changed().await.is_err() {
                return Err(LoginError::Transport("the login task ended".into()));
            }
        }
    }

    /// The current access token, if there is one.
    pub fn current(&self) -> Option<Secret> {
        match &*self.state.borrow() {
            TokenState::Valid { token, .. } => Some(token.clone()),
            _ => None,
        }
    }

    /// The full current state.
    pub fn state(&self) -> TokenState {
        self.state.borrow().clone()
    }

    /// Watch for refreshes and failures.
    pub fn subscribe(&self) -> watch::Receiver<TokenState> {
        self.state.clone()
    }

    /// Where sessions report a refused token.
    pub fn rejections(&self) -> TokenRejections {
        self.rejected.clone()
    }
}

async fn drive(
    gateway: Gateway,
    credentials: Credentials,
    tx: watch::Sender<TokenState>,
    rejected: TokenRejections,
) {
    let mut keeper = TokenKeeper::new(credentials);
    keeper.start(Instant::now());
    let mut refreshes = 0;
    loop {
        match keeper.poll_output() {
            TokenOutput::Http(id, request) => {
                // The keeper has at most one request in flight, so awaiting it here is enough.
                match gateway.execute(&request).await {
                    Ok(response) => keeper.handle_http_response(Instant::now(), id, response),
                    Err(error) => keeper.handle_http_failure(Instant::now(), id, error),
                }
            }
            TokenOutput::Event(TokenEvent::Issued {
                access_token,
                expires_at,
                lifetime,
                refreshed,
            }) => {
                if refreshed {
                    refreshes += 1;
                }
                tracing::debug!(?lifetime, refreshed, "access token issued");
                let _ = tx.send(TokenState::Valid {
                    token: access_token,
                    expires_at,
                    lifetime,
                    refreshes,
                });
            }
            TokenOutput::Event(TokenEvent::RefreshDeferred(error)) => {
                tracing::debug!(%error, "token refresh failed; retrying");
            }
            TokenOutput::Event(TokenEvent::Failed(error)) => {
                let _ = tx.send(TokenState::Failed(error));
                return;
            }
            TokenOutput::Timeout(at, _) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                        keeper.handle_timeout(Instant::now());
                    }
                    () = rejected.0.notified() => {
                        tracing::debug!("the gateway refused the access token; renewing it now");
                        keeper.token_rejected(Instant::now());
                    }
                    _ = tx.closed() => return,
                }
            }
        }
    }
}
