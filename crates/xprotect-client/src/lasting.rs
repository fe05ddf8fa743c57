//! A session that lasts: gateway sessions one after another behind one stream of events, with
//! no missing and no duplicate frame where the gateway allows it.
//!
//! ```text
//!  LastingSession::start ──► driver task ──┬─ current   Session ─┐ frames  ┌─────────────┐
//!                                          ├─ candidate Session ─┴───────►│  Handover   │──► events
//!                                          ├─ Backoff (after a loss)       │ (sans IO)   │
//!                                          └─ TokenSource watch (refresh ─► candidate)   │
//! ```
//!
//! - **Reconnect.** When the current session ends with an error that another session may not
//!   have (ICE/DTLS loss, no media for `media_timeout`, WebSocket or HTTP failures, 401, a
//!   restarted gateway), a new one starts after a [`Backoff`] delay: at once after a session that
//!   delivered frames, then 200 ms doubling up to the cap. Errors that retrying cannot fix (an
//!   unknown camera, a refused request, a login that failed for good) end the lasting session as
//!   they would end a plain [`Session`].
//! - **Resume.** Live resumes live. Playback resumes 1 ms after the last delivered frame's
//!   recording time at the same speed; [`Handover`] drops what was delivered already and never
//!   delivers a P-frame whose reference was dropped.
//! - **Make-before-break.** A WebSocket session cannot take a new token (PROTOCOL.md §10.6), so
//!   each token refresh starts a replacement on the new token; the old session keeps delivering
//!   until the new one's stream is spliced in (same bytes: at the first frame the old has not
//!   delivered; otherwise at the new one's first keyframe), then it is closed. REST sessions get
//!   the new token PATCHed by [`Session`] itself.
//! - **Signaling loss.** A WebSocket session whose socket closes after setup
//!   ([`SessionEvent::SignalingLost`]) keeps its media for now, but the gateway ends it once it
//!   notices, and it can no longer be closed politely: a replacement starts at once, make-
//!   before-break as on a token refresh, so a closed socket costs no frame while the media
//!   lasts (a replacement that cannot connect goes through the backoff meanwhile). A gateway
//!   that ends the media itself (DTLS `close_notify`, closing the `commands` channel) ends the
//!   session at once as a loss ([`crate::media::PeerError::ClosedByGateway`]).
//!
//! Frame times are continuous for the consumer: `media_ms` counts from the first delivered
//! frame's session start reference across all sessions, and the times of a session whose clock
//! is offset from its predecessor's (a live joiner) are moved onto the predecessor's.

use crate::commands::{CommandSender, CommandsChannelState};
use crate::diagnostics::StatsHandle;
use crate::gateway::Gateway;
use crate::login::{TokenRejections, TokenSource, TokenState};
use crate::session::{
    AudioPacket, Session, SessionCommand, SessionError, SessionEvent, SessionOptions,
    SignalingKind, VideoFrame,
};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use xprotect_proto::backoff::{Backoff, BackoffConfig};
use xprotect_proto::clock::FrameTime;
use xprotect_proto::handover::{
    CloseReason, FrameMeta, Handover, HandoverConfig, HandoverCounters, HandoverOutput, SessionKey,
};
use xprotect_proto::signal::SignalError;
use xprotect_proto::wire::Playback;

/// When a token refresh starts a replacement session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplaceOnRefresh {
    /// Over WebSocket only (REST sessions take the new token by PATCH).
    #[default]
    WebSocketOnly,
    /// Always (tests; gateways that ignore the PATCH).
    Always,
    /// Never (the session lives until the gateway ends it; then it is reconnected).
    Never,
}

/// How a lasting session behaves.
#[derive(Debug, Clone)]
pub struct LastingOptions {
    /// Each gateway session's options. For playback, the start time is the first session's;
    /// later sessions resume where the delivered frames ended.
    pub session: SessionOptions,
    /// Start new sessions after a loss; `false` ends at the first loss like a plain [`Session`].
    pub reconnect: bool,
    /// Retry spacing and the attempt limit.
    pub backoff: BackoffConfig,
    /// Splicing tunables.
    pub handover: HandoverConfig,
    /// When token refreshes start a replacement.
    pub replace_on_refresh: ReplaceOnRefresh,
    /// Playback replacements start this much recording time (times the speed) after the last
    /// delivered frame, so that their first keyframe is ahead of the old session, which fills in.
    pub playback_lead: Duration,
    /// A playback session that ends without a single frame this many times in a row ends the
    /// lasting session (nothing more is recorded after that point).
    pub max_empty_playback_sessions: u32,
}

/// Live: a stall is noticed this fast once frames flowed (25 fps: 50 frames).
pub const LIVE_MEDIA_TIMEOUT: Duration = Duration::from_secs(2);

impl LastingOptions {
    /// Defaults for these session options: reconnect on, [`BackoffConfig::default`], live stalls
    /// noticed after [`LIVE_MEDIA_TIMEOUT`], playback replacements 2 s ahead.
    pub fn new(mut session: SessionOptions) -> Self {
        let playback = session.params.playback.is_some();
        if !playback {
            session.media_timeout = session.media_timeout.min(LIVE_MEDIA_TIMEOUT);
        }
        let handover = HandoverConfig {
            // Playback sessions of a recording may carry the same bytes, but nothing is lost
            // by splicing by time at once: the replacement starts ahead.
            hash_wait: if playback {
                Duration::ZERO
            } else {
                HandoverConfig::default().hash_wait
            },
            ..HandoverConfig::default()
        };
        Self {
            session,
            reconnect: true,
            backoff: BackoffConfig::default(),
            handover,
            replace_on_refresh: ReplaceOnRefresh::default(),
            playback_lead: Duration::from_secs(2),
            max_empty_playback_sessions: 2,
        }
    }
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastingCounters {
    /// Gateway sessions started (the first one included).
    pub sessions_started: u64,
    /// Sessions started after a loss.
    pub reconnects: u64,
    /// Make-before-break switches (a replacement took over from a live session).
    pub replacements: u64,
    /// The last error that ended a gateway session.
    pub last_error: Option<String>,
    /// The splicing machine's frame counts (duplicates dropped, frames delivered, ...).
    pub handover: HandoverCounters,
}

/// A stream of frames that outlives gateway sessions. Same interface as [`Session`]; dropping it
/// stops every session it runs.
#[derive(Debug)]
pub struct LastingSession {
    events: mpsc::Receiver<SessionEvent>,
    commands: mpsc::Sender<SessionCommand>,
    commands_channel: watch::Receiver<CommandsChannelState>,
    counters: watch::Receiver<LastingCounters>,
    task: JoinHandle<()>,
}

impl Drop for LastingSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Events towards the consumer: as a [`Session`]'s, 10 s of video at 25 fps.
const EVENT_CHANNEL_CAPACITY: usize = 256;
/// User commands are rare.
const COMMAND_CHANNEL_CAPACITY: usize = 16;
/// How long a closed session may take to say it ended before it is dropped (aborted).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

impl LastingSession {
    /// Start the first session; the lasting session runs until closed or until an error that
    /// retrying cannot fix.
    pub fn start(gateway: Gateway, tokens: &TokenSource, options: LastingOptions) -> Self {
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (commands, commands_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (channel_state, commands_channel) = watch::channel(CommandsChannelState::Pending);
        let (counters_tx, counters) = watch::channel(LastingCounters::default());
        let driver = Driver::new(
            gateway,
            (tokens.subscribe(), tokens.rejections()),
            options,
            events_tx,
            channel_state,
            counters_tx,
        );
        let task = tokio::spawn(driver.run(commands_rx));
        Self {
            events,
            commands,
            commands_channel,
            counters,
            task,
        }
    }

    /// The next event; `None` after `Ended`.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// A cloneable handle for PTZ/aux commands; they go to whichever session is current, and
    /// wait while a reconnect is under way.
    pub fn command_sender(&self) -> CommandSender {
        CommandSender::new(self.commands.clone(), self.commands_channel.clone())
    }

    /// Ask for a keyframe (PLI) on the current session.
    pub async fn request_keyframe(&self) {
        let _ = self.commands.send(SessionCommand::RequestKeyframe).await;
    }

    /// End every session; reports `Ended(Ok(()))`.
    pub async fn close(&self) {
        let _ = self.commands.send(SessionCommand::Close).await;
    }

    /// Counters so far.
    pub fn counters(&self) -> LastingCounters {
        self.counters.borrow().clone()
    }

    /// The counters as a watch (for a monitor on another task).
    pub fn counters_watch(&self) -> watch::Receiver<LastingCounters> {
        self.counters.clone()
    }

    /// Asks the current gateway session for its statistics (none while reconnecting).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle::new(self.commands.clone())
    }
}

/// One gateway session the driver runs.
struct Running {
    key: SessionKey,
    session: Session,
    commands_ready: bool,
    /// The token refresh count it was started with.
    token_refreshes: u64,
    /// Whether it delivered anything (a video frame or audio).
    delivered: bool,
    /// Its signaling WebSocket closed after setup: media may flow on, but it is doomed.
    signaling_lost: bool,
}

enum Slot {
    Current,
    Candidate,
}

struct Driver {
    gateway: Gateway,
    token_watch: watch::Receiver<TokenState>,
    /// A 401 renews the token at once instead of waiting for its schedule.
    token_rejections: TokenRejections,
    options: LastingOptions,
    events: mpsc::Sender<SessionEvent>,
    channel_state: watch::Sender<CommandsChannelState>,
    counters_tx: watch::Sender<LastingCounters>,
    counters: LastingCounters,
    handover: Handover<VideoFrame>,
    backoff: Backoff,
    rng: SmallRng,
    current: Option<Running>,
    candidate: Option<Running>,
    next_key: SessionKey,
    /// When to start the next session after a loss.
    reconnect_at: Option<tokio::time::Instant>,
    /// When the loss was noticed (for `Resumed`), and sessions tried since.
    lost_at: Option<(Instant, u32)>,
    /// Playback sessions in a row that ended without a frame.
    empty_playback_sessions: u32,
    /// The consumer timeline's zero (Unix µs): the first delivered frame's start reference.
    origin_us: Option<i64>,
    last_audio_us: Option<i64>,
    /// Audio-only streams: the session whose audio counts.
    audio_session: Option<SessionKey>,
    video_seen: bool,
    connected_once: bool,
}

enum Flow {
    Continue,
    End(Result<(), SessionError>),
}

impl Driver {
    fn new(
        gateway: Gateway,
        (token_watch, token_rejections): (watch::Receiver<TokenState>, TokenRejections),
        options: LastingOptions,
        events: mpsc::Sender<SessionEvent>,
        channel_state: watch::Sender<CommandsChannelState>,
        counters_tx: watch::Sender<LastingCounters>,
    ) -> Self {
        Self {
            gateway,
            token_watch,
            token_rejections,
            handover: Handover::new(options.handover.clone()),
            backoff: Backoff::new(options.backoff.clone()),
            options,
            events,
            channel_state,
            counters_tx,
            counters: LastingCounters::default(),
            rng: SmallRng::from_os_rng(),
            current: None,
            candidate: None,
            next_key: 1,
            reconnect_at: None,
            lost_at: None,
            empty_playback_sessions: 0,
            origin_us: None,
            last_audio_us: None,
            audio_session: None,
            video_seen: false,
            connected_once: false,
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<SessionCommand>) {
        self.token_watch.borrow_and_update();
        let first = self.start_session(self.options.session.clone());
        self.current = Some(first);
        let result = loop {
            let handover_deadline = self.handover.poll_timeout();
            let flow = tokio::select! {
                event = next_event(&mut self.current) => {
                    self.on_event(Slot::Current, event).await
                }
                event = next_event(&mut self.candidate) => {
                    self.on_event(Slot::Candidate, event).await
                }
                command = commands.recv() => self.on_command(command),
                changed = self.token_watch.changed() => {
                    if changed.is_err() {
                        Flow::End(Err(SessionError::Token("the login task ended".into())))
                    } else {
                        self.on_token_change()
                    }
                }
                () = sleep_until(self.reconnect_at) => {
                    self.reconnect_at = None;
                    self.reconnect();
                    Flow::Continue
                }
                () = sleep_until(handover_deadline.map(tokio::time::Instant::from_std)) => {
                    self.handover.handle_timeout(Instant::now());
                    self.drain_handover().await;
                    Flow::Continue
                }
            };
            self.publish_counters();
            if let Flow::End(result) = flow {
                break result;
            }
        };
        for running in [self.current.take(), self.candidate.take()]
            .into_iter()
            .flatten()
        {
            close_in_background(running.session);
        }
        self.channel_state
            .send_replace(CommandsChannelState::Closed);
        let _ = self.events.send(SessionEvent::Ended(result)).await;
    }

    fn start_session(&mut self, options: SessionOptions) -> Running {
        let key = self.next_key;
        self.next_key += 1;
        self.handover.start(Instant::now(), key);
        self.counters.sessions_started += 1;
        let token_refreshes = match &*self.token_watch.borrow() {
            TokenState::Valid { refreshes, .. } => *refreshes,
            _ => 0,
        };
        tracing::debug!(key, "starting a gateway session");
        Running {
            key,
            session: Session::start_watching(
                self.gateway.clone(),
                self.token_watch.clone(),
                options,
            ),
            commands_ready: false,
            token_refreshes,
            delivered: false,
            signaling_lost: false,
        }
    }

    /// The session options for a session that continues the stream, starting `lead` of
    /// recording time after the last delivered frame (playback).
    fn continuation(&self, lead: Duration) -> SessionOptions {
        let mut options = self.options.session.clone();
        if let (Some(playback), Some(last)) =
            (options.params.playback, self.handover.last_delivered_us())
        {
            let lead_us = i64::try_from(lead.mul_f64(playback.speed.max(0.0)).as_micros())
                .unwrap_or(i64::MAX);
            let resume_us = last.saturating_add(lead_us.max(1_000));
            if let Some(start) = time_from_us(resume_us) {
                options.params.playback = Some(Playback { start, ..playback });
            }
        }
        options
    }

    fn reconnect(&mut self) {
        if self.candidate.is_some() {
            return;
        }
        let options = self.continuation(Duration::ZERO);
        self.counters.reconnects += 1;
        if let Some((_, tries)) = self.lost_at.as_mut() {
            *tries += 1;
        }
        // With the current session gone, the handover machine treats it as a candidate that
        // resumes the stream (dropping what was delivered already).
        self.candidate = Some(self.start_session(options));
    }

    /// A refreshed token: over WebSocket, a replacement on it (make-before-break).
    fn on_token_change(&mut self) -> Flow {
        let state = self.token_watch.borrow_and_update().clone();
        match state {
            TokenState::Failed(error) => Flow::End(Err(SessionError::Token(error.to_string()))),
            TokenState::Pending => Flow::Continue,
            TokenState::Valid { refreshes, .. } => {
                let wanted = match self.options.replace_on_refresh {
                    ReplaceOnRefresh::Always => true,
                    ReplaceOnRefresh::Never => false,
                    ReplaceOnRefresh::WebSocketOnly => {
                        self.options.session.signaling == SignalingKind::WebSocket
                    }
                };
                let stale = self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.token_refreshes < refreshes);
                if wanted
                    && stale
                    && self.options.reconnect
                    && self.candidate.is_none()
                    && self.reconnect_at.is_none()
                    && self.handover.current_alive()
                {
                    let options = self.continuation(self.options.playback_lead);
                    tracing::debug!(refreshes, "token refreshed: starting a replacement session");
                    self.candidate = Some(self.start_session(options));
                }
                Flow::Continue
            }
        }
    }

    fn on_command(&mut self, command: Option<SessionCommand>) -> Flow {
        let command = match command {
            None | Some(SessionCommand::Close) => return Flow::End(Ok(())),
            Some(command) => command,
        };
        // Commands go to the current session; its driver answers the reply channel, and a
        // session that is gone drops it, which the sender reads as "closed".
        if let Some(current) = &self.current {
            let requests = current.session.request_sender();
            tokio::spawn(async move {
                let _ = requests.send(command).await;
            });
        }
        Flow::Continue
    }

    async fn on_event(&mut self, slot: Slot, event: Option<SessionEvent>) -> Flow {
        let Some(key) = self.slot(&slot).map(|r| r.key) else {
            return Flow::Continue;
        };
        match event {
            Some(SessionEvent::Video(frame)) => {
                self.video_seen = true;
                let meta = FrameMeta {
                    time_us: unix_us(frame.time.wall_clock),
                    keyframe: frame.access_unit.keyframe,
                    hash: access_unit_hash(&frame),
                };
                if self.origin_us.is_none() {
                    self.origin_us = Some(meta.time_us - frame.time.media_us);
                }
                self.handover.push(Instant::now(), key, meta, frame);
                self.drain_handover().await;
            }
            Some(SessionEvent::Audio(packet)) => self.on_audio(key, packet).await,
            Some(SessionEvent::Created(id)) => self.emit(SessionEvent::Created(id)).await,
            Some(SessionEvent::Connected) => {
                if !self.connected_once {
                    self.connected_once = true;
                    self.emit(SessionEvent::Connected).await;
                }
            }
            Some(SessionEvent::CommandsReady) => {
                if let Some(running) = self.slot_mut(&slot) {
                    running.commands_ready = true;
                }
                if self.handover.current() == Some(key) {
                    self.channel_state.send_replace(CommandsChannelState::Open);
                    self.emit(SessionEvent::CommandsReady).await;
                }
            }
            Some(SessionEvent::Warning(warning)) => self.emit(SessionEvent::Warning(warning)).await,
            Some(SessionEvent::SignalingLost(reason)) => {
                self.on_signaling_lost(&slot, reason).await
            }
            // Only lasting sessions emit these.
            Some(SessionEvent::Reconnecting { .. } | SessionEvent::Resumed { .. }) => {}
            Some(SessionEvent::Ended(result)) => return self.on_ended(slot, key, result).await,
            None => {
                let error = SessionError::Peer(crate::media::PeerError::Closed);
                return self.on_ended(slot, key, Err(error)).await;
            }
        }
        Flow::Continue
    }

    /// A session's signaling WebSocket closed after setup: its media may flow on, but the
    /// gateway ends it once it notices its owner is gone, and it can no longer be closed
    /// politely; so it is replaced at once, make-before-break as on a token refresh.
    async fn on_signaling_lost(&mut self, slot: &Slot, reason: String) {
        if let Some(running) = self.slot_mut(slot) {
            running.signaling_lost = true;
        }
        let replacing = if self.options.reconnect {
            "; starting a replacement session"
        } else {
            ""
        };
        self.emit(SessionEvent::Warning(format!(
            "the signaling WebSocket closed ({reason}){replacing}"
        )))
        .await;
        self.replace_if_signaling_lost();
    }

    /// Starts a replacement when the current session has lost its signaling and nothing else
    /// will replace it: no candidate that still has its signaling, no reconnect scheduled.
    fn replace_if_signaling_lost(&mut self) {
        let current_lost = self.current.as_ref().is_some_and(|c| c.signaling_lost);
        let candidate_usable = self.candidate.as_ref().is_some_and(|c| !c.signaling_lost);
        if !current_lost
            || candidate_usable
            || !self.options.reconnect
            || self.reconnect_at.is_some()
        {
            return;
        }
        if let Some(doomed) = self.candidate.take() {
            // It lost its signaling too; starting the next one supersedes it in the handover.
            close_in_background(doomed.session);
        }
        tracing::debug!("signaling lost: starting a replacement session");
        let options = self.continuation(self.options.playback_lead);
        self.candidate = Some(self.start_session(options));
    }

    async fn on_audio(&mut self, key: SessionKey, packet: AudioPacket) {
        let allowed = if self.video_seen {
            self.handover.current() == Some(key)
                && self.current.as_ref().is_some_and(|c| c.key == key)
        } else {
            *self.audio_session.get_or_insert(key) == key
        };
        if !allowed {
            return;
        }
        let time_us =
            unix_us(packet.time.wall_clock).saturating_add(self.handover.current_offset_us());
        if self.last_audio_us.is_some_and(|last| time_us <= last) {
            return;
        }
        let origin = *self.origin_us.get_or_insert(time_us - packet.time.media_us);
        self.last_audio_us = Some(time_us);
        if let Some(running) = self.running_mut(key) {
            running.delivered = true;
        }
        let Some(time) = retimed(time_us, origin, 125) else {
            return;
        };
        self.resumed_if_lost().await;
        self.emit(SessionEvent::Audio(AudioPacket { time, ..packet }))
            .await;
    }

    async fn on_ended(
        &mut self,
        slot: Slot,
        key: SessionKey,
        result: Result<(), SessionError>,
    ) -> Flow {
        let running = match slot {
            Slot::Current => self.current.take(),
            Slot::Candidate => self.candidate.take(),
        };
        let delivered = running.as_ref().is_some_and(|r| r.delivered);
        if self.audio_session == Some(key) {
            self.audio_session = None;
        }
        let was_current = self.handover.current() == Some(key);
        self.handover.ended(key);
        self.drain_handover().await;
        let error = match result {
            Ok(()) => return Flow::Continue,
            Err(error) => error,
        };
        tracing::debug!(key, %error, "gateway session ended");
        if matches!(
            error,
            SessionError::Signal(SignalError::Unauthorized { .. })
        ) {
            self.token_rejections.report();
        }
        self.counters.last_error = Some(error.to_string());
        let playback = self.options.session.params.playback.is_some();
        if playback && !delivered && matches!(error, SessionError::NoFirstFrame(_)) {
            self.empty_playback_sessions += 1;
        } else if delivered {
            self.empty_playback_sessions = 0;
        }
        if !self.options.reconnect || !is_retryable(&error) {
            // A replacement that cannot start does not end a session that still delivers.
            if !was_current && self.handover.current_alive() && is_retryable_later(&error) {
                return Flow::Continue;
            }
            return Flow::End(Err(error));
        }
        if playback && self.empty_playback_sessions >= self.options.max_empty_playback_sessions {
            return Flow::End(Err(error));
        }
        if self.handover.current_alive() {
            // A replacement failed while the current session delivers: try again later.
            if !was_current {
                self.schedule(error).await;
            }
            return Flow::Continue;
        }
        if self.candidate.is_some() {
            // A replacement was already under way: it is the reconnect.
            self.lost_at.get_or_insert((Instant::now(), 1));
            self.channel_state
                .send_replace(CommandsChannelState::Pending);
            return Flow::Continue;
        }
        self.lost_at.get_or_insert((Instant::now(), 0));
        self.channel_state
            .send_replace(CommandsChannelState::Pending);
        self.schedule(error).await
    }

    /// The next session after the backoff delay; ends when attempts are used up.
    async fn schedule(&mut self, error: SessionError) -> Flow {
        let Some(delay) = self.backoff.next_delay(self.rng.next_u64()) else {
            return Flow::End(Err(error));
        };
        let attempt = self.backoff.attempts();
        self.reconnect_at = Some(tokio::time::Instant::now() + delay);
        self.emit(SessionEvent::Reconnecting {
            attempt,
            delay,
            error,
        })
        .await;
        Flow::Continue
    }

    async fn drain_handover(&mut self) {
        while let Some(output) = self.handover.poll_output() {
            match output {
                HandoverOutput::Deliver(delivery) => {
                    let Some(origin) = self.origin_us else {
                        continue;
                    };
                    let Some(time) = retimed(delivery.time_us, origin, 1_000) else {
                        continue;
                    };
                    if let Some(running) = self.running_mut(delivery.session) {
                        running.delivered = true;
                    }
                    self.resumed_if_lost().await;
                    self.emit(SessionEvent::Video(VideoFrame {
                        time,
                        ..delivery.frame
                    }))
                    .await;
                }
                HandoverOutput::Switched { from, to, kind, .. } => {
                    tracing::debug!(?from, to, ?kind, "switched sessions");
                    if from.is_some() {
                        self.counters.replacements += 1;
                    }
                    if let Some(candidate) = self.candidate.take_if(|c| c.key == to) {
                        if let Some(old) = self.current.take() {
                            close_in_background(old.session);
                        }
                        let ready = candidate.commands_ready;
                        self.current = Some(candidate);
                        self.channel_state.send_replace(if ready {
                            CommandsChannelState::Open
                        } else {
                            CommandsChannelState::Pending
                        });
                        // A session that lost its signaling while it was the candidate.
                        self.replace_if_signaling_lost();
                    }
                    // Before the new session's first frame goes out: a consumer that reads the
                    // counters on each frame sees the switch at the right one.
                    self.publish_counters();
                }
                HandoverOutput::Close { session, reason } => {
                    if let Some(running) = self.take_running(session) {
                        close_in_background(running.session);
                    }
                    if reason == CloseReason::NoUsableKeyframe {
                        // The replacement found nothing to splice on; the next refresh or loss
                        // tries again.
                        self.emit(SessionEvent::Warning(
                            "a replacement session had no usable keyframe in time; keeping the current one"
                                .into(),
                        ))
                        .await;
                    }
                }
            }
        }
    }

    async fn resumed_if_lost(&mut self) {
        self.backoff.reset();
        self.empty_playback_sessions = 0;
        if let Some((at, tries)) = self.lost_at.take() {
            self.emit(SessionEvent::Resumed {
                attempts: tries.max(1),
                outage: at.elapsed(),
            })
            .await;
        }
    }

    fn slot(&self, slot: &Slot) -> Option<&Running> {
        match slot {
            Slot::Current => self.current.as_ref(),
            Slot::Candidate => self.candidate.as_ref(),
        }
    }

    fn slot_mut(&mut self, slot: &Slot) -> Option<&mut Running> {
        match slot {
            Slot::Current => self.current.as_mut(),
            Slot::Candidate => self.candidate.as_mut(),
        }
    }

    fn running_mut(&mut self, key: SessionKey) -> Option<&mut Running> {
        [self.current.as_mut(), self.candidate.as_mut()]
            .into_iter()
            .flatten()
            .find(|r| r.key == key)
    }

    fn take_running(&mut self, key: SessionKey) -> Option<Running> {
        if let Some(running) = self.current.take_if(|r| r.key == key) {
            return Some(running);
        }
        self.candidate.take_if(|r| r.key == key)
    }

    fn publish_counters(&mut self) {
        self.counters.handover = self.handover.counters().clone();
        let counters = &self.counters;
        self.counters_tx.send_if_modified(|published| {
            let changed = published != counters;
            if changed {
                *published = counters.clone();
            }
            changed
        });
    }

    async fn emit(&mut self, event: SessionEvent) {
        let _ = self.events.send(event).await;
    }
}

/// Whether another session may not have this error.
fn is_retryable(error: &SessionError) -> bool {
    match error {
        SessionError::Token(_) => false,
        SessionError::Signal(signal) => match signal {
            // Unknown camera or stream; a forgotten session (gateway restart) is worth a retry.
            SignalError::NotFound { .. } => !signal.is_unknown_device(),
            SignalError::Rejected { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
            }
            SignalError::Unsupported(_) => false,
            // 401: the token source was told to renew the token at once; the backoff spaces
            // the retries until the new one is there.
            SignalError::Unauthorized { .. }
            | SignalError::BadResponse { .. }
            | SignalError::Transport { .. }
            | SignalError::Timeout { .. }
            | SignalError::WsClosed(_) => true,
        },
        SessionError::Connect(_)
        | SessionError::Peer(_)
        | SessionError::NoFirstFrame(_)
        | SessionError::MediaTimeout(_) => true,
    }
}

/// Errors of a replacement that do not doom the current session.
fn is_retryable_later(error: &SessionError) -> bool {
    !matches!(error, SessionError::Token(_))
}

/// A hash of the access unit's bytes: equal frames from two sessions hash equal.
fn access_unit_hash(frame: &VideoFrame) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    frame.access_unit.avcc().hash(&mut hasher);
    hasher.finish()
}

fn unix_us(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn time_from_us(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok()
}

/// A frame time on the consumer's timeline; `micros_per_tick`: 1000 for video, 125 for audio.
fn retimed(time_us: i64, origin_us: i64, micros_per_tick: i64) -> Option<FrameTime> {
    let media_us = time_us.saturating_sub(origin_us);
    Some(FrameTime {
        extended: media_us.div_euclid(micros_per_tick),
        media_ms: media_us.div_euclid(1_000),
        media_us,
        wall_clock: time_from_us(time_us)?,
    })
}

/// Close a session and let it end on its own time (bounded), so the gateway frees it.
fn close_in_background(mut session: Session) {
    tokio::spawn(async move {
        session.close().await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(event) = session.next_event().await {
                if matches!(event, SessionEvent::Ended(_)) {
                    return;
                }
            }
        })
        .await;
    });
}

async fn next_event(running: &mut Option<Running>) -> Option<SessionEvent> {
    match running {
        Some(running) => running.session.next_event().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
