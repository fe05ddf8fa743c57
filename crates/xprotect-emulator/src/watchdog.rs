//! The session watchdog: acts on the deadlines of [`SessionTimers`] — token enforcement and
//! scheduled drops — on one task per emulator.
//!
//! ```text
//! SessionRegistry ──changed (Notify)──▶ watchdog task ── sleep until the earliest deadline
//!                                            ├─ token expired + grace ─▶ stop media, session_token_expired
//!                                            └─ drop due (connected + drop_sessions_after,
//!                                               WebSocket linger) ─▶ faults::drop_session
//! ```
//!
//! Deadlines use `tokio::time`, as the token store does, so they follow a paused test clock.
//! The task holds no strong [`AppState`]: it upgrades a weak one only to act, and it is
//! aborted when the emulator's state is dropped.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use xprotect_proto::wire::SessionId;

use crate::faults::drop_session;
use crate::journal::JournalEvent;
use crate::sessions::{SessionRegistry, SessionTimers};
use crate::state::WeakAppState;

/// What the watchdog enforces.
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchdogConfig {
    /// Media stops this long after the session's token expired; `None`: never.
    pub token_grace: Option<Duration>,
    /// Sessions end this long after they connected; `None`: never.
    pub drop_sessions_after: Option<Duration>,
}

/// The running watchdog; dropping it stops the task.
#[derive(Debug)]
pub struct Watchdog {
    task: JoinHandle<()>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watchdog {
    /// Watch `sessions`, acting through `state` once it can be upgraded.
    pub(crate) fn spawn(
        state: WeakAppState,
        sessions: SessionRegistry,
        config: WatchdogConfig,
    ) -> Self {
        Self {
            task: tokio::spawn(run(state, sessions, config)),
        }
    }
}

/// What is due for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Its token expired and the grace period is over.
    StopMediaForToken,
    /// It is to end, for this reason.
    Drop(String),
}

async fn run(state: WeakAppState, sessions: SessionRegistry, config: WatchdogConfig) {
    let changed = sessions.changed();
    loop {
        let now = Instant::now();
        let (due, next) = sessions.with_all(|records| {
            let mut due = Vec::new();
            let mut next: Option<Instant> = None;
            for (id, record) in records.iter_mut() {
                let (action, deadline) = plan(&mut record.timers, now, config);
                due.extend(action.map(|action| (*id, action)));
                next = match (next, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            (due, next)
        });
        if !due.is_empty() {
            // The emulator is gone: nothing left to enforce.
            let Some(state) = state.upgrade() else {
                return;
            };
            for (id, action) in due {
                act(&state, id, action).await;
            }
        }
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = changed.notified() => {}
                }
            }
            None => changed.notified().await,
        }
    }
}

/// What is due for a session at `now` (marking a token expiry as handled), and its next
/// deadline.
fn plan(
    timers: &mut SessionTimers,
    now: Instant,
    config: WatchdogConfig,
) -> (Option<Action>, Option<Instant>) {
    let mut deadlines: Vec<(Instant, Action)> = Vec::new();
    if let (Some(grace), Some(expires), false) = (
        config.token_grace,
        timers.token_expires_at,
        timers.token_expired,
    ) {
        deadlines.push((expires + grace, Action::StopMediaForToken));
    }
    if let (Some(after), Some(connected)) = (config.drop_sessions_after, timers.connected_at) {
        deadlines.push((
            connected + after,
            Action::Drop(format!(
                "dropped {} after it connected (drop_sessions_after)",
                format_duration(after)
            )),
        ));
    }
    if let Some((at, reason)) = &timers.drop_at {
        deadlines.push((*at, Action::Drop(reason.clone())));
    }
    // A drop outranks stopping the media: the session ends either way.
    let due = deadlines
        .iter()
        .filter(|(at, _)| *at <= now)
        .map(|(_, action)| action)
        .max_by_key(|action| matches!(action, Action::Drop(_)))
        .cloned();
    if due == Some(Action::StopMediaForToken) {
        timers.token_expired = true;
    }
    let next = deadlines
        .iter()
        .filter(|(at, _)| *at > now)
        .map(|(at, _)| *at)
        .min();
    (due, next)
}

async fn act(state: &crate::state::AppState, id: SessionId, action: Action) {
    match action {
        Action::StopMediaForToken => {
            // A session that closed meanwhile has no media left to stop.
            if state.media().stop_media(id.0).await.is_ok() {
                state.journal().record(JournalEvent::SessionTokenExpired {
                    session: id.to_string(),
                });
            }
        }
        Action::Drop(reason) => drop_session(state, id, reason).await,
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn config() -> WatchdogConfig {
        WatchdogConfig {
            token_grace: Some(GRACE),
            drop_sessions_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_expiry_is_due_once_after_the_grace_period() {
        let start = Instant::now();
        let mut timers = SessionTimers {
            token_expires_at: Some(start + Duration::from_secs(60)),
            ..SessionTimers::default()
        };
        assert_eq!(
            plan(&mut timers, start, config()),
            (None, Some(start + Duration::from_secs(70)))
        );
        let late = start + Duration::from_secs(70);
        assert_eq!(
            plan(&mut timers, late, config()),
            (Some(Action::StopMediaForToken), None)
        );
        assert!(timers.token_expired);
        assert_eq!(plan(&mut timers, late, config()), (None, None), "only once");
    }

    #[tokio::test(start_paused = true)]
    async fn enforcement_off_never_stops_media() {
        let start = Instant::now();
        let mut timers = SessionTimers {
            token_expires_at: Some(start),
            ..SessionTimers::default()
        };
        let off = WatchdogConfig::default();
        assert_eq!(
            plan(&mut timers, start + Duration::from_secs(3600), off),
            (None, None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drops_count_from_connect_and_outrank_token_expiry() {
        let start = Instant::now();
        let mut timers = SessionTimers {
            token_expires_at: Some(start),
            ..SessionTimers::default()
        };
        let config = WatchdogConfig {
            token_grace: Some(GRACE),
            drop_sessions_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            plan(&mut timers, start, config),
            (None, Some(start + GRACE)),
            "no drop before it connected"
        );
        timers.connected_at = Some(start + Duration::from_secs(1));
        assert_eq!(
            plan(&mut timers, start, config),
            (None, Some(start + Duration::from_secs(6)))
        );
        let (due, _) = plan(&mut timers, start + Duration::from_secs(20), config);
        assert!(matches!(due, Some(Action::Drop(reason)) if reason.contains("5 s")));
    }
}
