//! One playback stream as a stream of frames, with "nothing for `end_wait`" as its end. It runs
//! on a [`LastingSession`]: a gateway session lost half-way (dropped, its DTLS closed, a failed
//! request) is followed by one that resumes 1 ms after the last frame delivered, so an export has
//! no hole where the gateway had recordings.

use crate::gateway::Gateway;
use crate::lasting::{LastingOptions, LastingSession};
use crate::login::TokenSource;
use crate::session::{SessionError, SessionEvent, SessionOptions, VideoFrame};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use time::OffsetDateTime;
use xprotect_proto::wire::Playback;

/// How long a closed session may take to end before we move on (the gateway frees it then).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct PlaybackStream {
    session: LastingSession,
    end_wait: Duration,
    connected: bool,
    last_activity: tokio::time::Instant,
}

pub(crate) enum Next {
    Frame(VideoFrame),
    /// Connected, but no frame for `end_wait`: the gateway has nothing more to send.
    Quiet,
    Cancelled,
}

impl PlaybackStream {
    /// Starts a skipGaps session from `start` at `speed`; `options` are the camera's (their
    /// playback parameters are replaced).
    pub(crate) fn start(
        gateway: Gateway,
        tokens: &TokenSource,
        options: &SessionOptions,
        start: OffsetDateTime,
        speed: f64,
        end_wait: Duration,
    ) -> Self {
        let mut options = options.clone();
        options.params.playback = Some(Playback {
            start,
            // Gaps cost no time this way; the file keeps them (or not) from the frame times.
            skip_gaps: true,
            speed,
        });
        let mut lasting = LastingOptions::new(options);
        // A resumed session without a single frame means the recordings ended there: no more
        // tries (the first session's too: a start past the recordings is an error as before).
        lasting.max_empty_playback_sessions = 1;
        Self {
            session: LastingSession::start(gateway, tokens, lasting),
            end_wait,
            connected: false,
            last_activity: tokio::time::Instant::now(),
        }
    }

    /// The next frame; gateway warnings go to `warn`.
    pub(crate) async fn next<C: Future<Output = ()>>(
        &mut self,
        mut cancel: Pin<&mut C>,
        warn: &mut impl FnMut(String),
    ) -> Result<Next, SessionError> {
        loop {
            // Before media is connected the session's own first-frame timeout applies.
            let quiet_at = self.connected.then(|| self.last_activity + self.end_wait);
            let event = tokio::select! {
                event = self.session.next_event() => event,
                () = cancel.as_mut() => return Ok(Next::Cancelled),
                () = sleep_until(quiet_at) => return Ok(Next::Quiet),
            };
            match event {
                Some(SessionEvent::Video(frame)) => {
                    self.last_activity = tokio::time::Instant::now();
                    return Ok(Next::Frame(frame));
                }
                Some(SessionEvent::Connected) => {
                    self.connected = true;
                    self.last_activity = tokio::time::Instant::now();
                }
                Some(SessionEvent::Warning(warning)) => warn(warning),
                Some(SessionEvent::SignalingLost(reason)) => {
                    warn(format!("the signaling WebSocket closed ({reason})"))
                }
                Some(SessionEvent::Reconnecting { attempt, error, .. }) => warn(format!(
                    "playback session lost ({error}); resuming after the last frame (attempt {attempt})"
                )),
                // The session that resumed after a loss had nothing more: the recordings ended
                // there (a gateway may close the connection at their end rather than go quiet).
                Some(SessionEvent::Ended(Err(SessionError::NoFirstFrame(_)))) if self.connected => {
                    return Ok(Next::Quiet);
                }
                Some(SessionEvent::Ended(Err(error))) => return Err(error),
                // Only after our own close.
                Some(SessionEvent::Ended(Ok(()))) | None => return Ok(Next::Quiet),
                Some(
                    SessionEvent::Created(_)
                    | SessionEvent::CommandsReady
                    | SessionEvent::Audio(_)
                    | SessionEvent::Resumed { .. },
                ) => {}
            }
        }
    }

    /// Closes the session and waits (bounded) until it has ended, so that the gateway has let
    /// go of it before the next one starts.
    pub(crate) async fn close(mut self) {
        self.session.close().await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(event) = self.session.next_event().await {
                if matches!(event, SessionEvent::Ended(_)) {
                    return;
                }
            }
        })
        .await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
