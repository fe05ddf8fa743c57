//! One streaming session: signaling (REST or WebSocket) + the WebRTC peer + H.264 depacketising +
//! the frame clock, owned by one driver task that turns it all into timed frames.
//!
//! ```text
//!  Session::start ──► driver task ──┬─ Signaling (sans IO) ◄──► Gateway (HTTP / WebSocket)
//!                                   ├─ Peer (webrtc-rs)  ──► RTP ──► H264Depacketizer ──► FrameClock
//!                                   └─ TokenSource watch (REST: PATCH the new token)
//!  SessionEvent::{Created, Connected, Video, Audio, Warning, SignalingLost, Ended} ◄── mpsc
//! ```

use crate::commands::{CommandSender, CommandsChannelState};
use crate::diagnostics::{JitterEstimator, SessionStats, StatsError, StatsHandle};
use crate::gateway::Gateway;
use crate::login::{TokenSource, TokenState};
use crate::media::{DtlsRole, Peer, PeerConfig, PeerError, PeerEvent, TrackKind};
use crate::signaling_io::SignalingIo;
use std::time::{Duration, Instant, SystemTime};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use xprotect_proto::clock::{FrameClock, FrameTime, RtpUnits};
use xprotect_proto::h264::{AccessUnit, DepacketizerConfig, H264Depacketizer};
use xprotect_proto::rtp::RtpPacket;
use xprotect_proto::signal::{RestConfig, SignalError, SignalEvent, WsConfig};
use xprotect_proto::stall::StallTimeout;
use xprotect_proto::wire::{IceCandidateInit, SessionId, SessionParams};

/// Which signaling transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalingKind {
    /// REST with candidate polling (every release since 2023 R1).
    Rest,
    /// WebSocket JSON-RPC (2025 R1 and later), the faster one.
    #[default]
    WebSocket,
}

/// Everything a session needs besides the gateway and the token.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// REST or WebSocket.
    pub signaling: SignalingKind,
    /// What to ask the gateway for.
    pub params: SessionParams,
    /// Our WebRTC peer's settings.
    pub peer: PeerConfig,
    /// REST tunables.
    pub rest: RestConfig,
    /// WebSocket tunables.
    pub ws: WsConfig,
    /// From start to the first decodable frame, at most.
    pub first_frame_timeout: Duration,
    /// After the first frame, the longest silence before the session counts as lost. Live
    /// video uses it as a ceiling: the limit follows the stream, ten frame intervals but at
    /// least 1 s ([`xprotect_proto::stall::StallTimeout`]), so a 25 fps camera counts as
    /// stalled after 1 s and a 1 fps camera is given this much.
    pub media_timeout: Duration,
    /// Retry once with the DTLS `active` role when a `passive` answer never completes DTLS.
    pub dtls_fallback: bool,
}

impl SessionOptions {
    /// Defaults for these parameters.
    pub fn new(params: SessionParams) -> Self {
        Self {
            signaling: SignalingKind::default(),
            params,
            peer: PeerConfig::default(),
            rest: RestConfig::default(),
            ws: WsConfig::default(),
            first_frame_timeout: Duration::from_secs(20),
            media_timeout: Duration::from_secs(10),
            dtls_fallback: true,
        }
    }
}

/// A decodable video frame (H.264 access unit) with its wall-clock time.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// The access unit (NAL units, AVC and Annex-B forms, keyframe flag, SEI).
    pub access_unit: AccessUnit,
    /// Its time: media milliseconds since the start reference and the wall clock.
    pub time: FrameTime,
    /// When its last packet arrived, on the wall clock.
    pub received: OffsetDateTime,
}

/// One PCMU packet with its time.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    /// The RTP packet.
    pub packet: RtpPacket,
    /// Its time (8 kHz samples since the start reference).
    pub time: FrameTime,
    /// When it arrived, on the wall clock.
    pub received: OffsetDateTime,
}

/// What a session reports.
#[derive(Debug)]
pub enum SessionEvent {
    /// The gateway created the session.
    Created(SessionId),
    /// ICE and DTLS are up.
    Connected,
    /// The `commands` data channel is open (PTZ/aux can be sent).
    CommandsReady,
    /// A video frame. The first one is always a keyframe.
    Video(VideoFrame),
    /// An audio packet.
    Audio(AudioPacket),
    /// Something odd that does not end the session (gateway error notifications, dropped frames).
    Warning(String),
    /// The signaling WebSocket closed after the session was set up (the text says how). The
    /// media keeps flowing for now (ONVIF: the peer connection survives signaling), but the
    /// session can no longer be closed politely nor take a candidate, and a gateway ends it
    /// once it notices its owner is gone. A [`crate::lasting::LastingSession`] starts a
    /// replacement at once (make-before-break) and reports this as a warning.
    ///
    /// REST sessions never report it: REST has no connection to lose. Their candidate polls
    /// failing after setup are warnings only: a poll says nothing about the media path, and a
    /// gateway that dropped the session also ends its media (DTLS `close_notify`, the
    /// `commands` channel closing, or silence), which the peer notices at least as soon as the
    /// next poll (every 2 s once connected) would.
    SignalingLost(String),
    /// A lasting session lost its gateway session and starts another after `delay`
    /// ([`crate::lasting::LastingSession`] only).
    Reconnecting {
        /// Reconnect attempts since the last frame was delivered, this one included.
        attempt: u32,
        /// The wait before this attempt (backoff with jitter).
        delay: Duration,
        /// Why the previous session ended.
        error: SessionError,
    },
    /// A lasting session delivers frames again after a loss; the next event is its first frame
    /// ([`crate::lasting::LastingSession`] only).
    Resumed {
        /// Sessions it took (1: the first reconnect worked).
        attempts: u32,
        /// From the loss being noticed to this frame.
        outage: Duration,
    },
    /// The session ended; `Ok` after [`Session::close`].
    Ended(Result<(), SessionError>),
}

/// Why a session ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// Signaling failed.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The WebRTC peer failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The gateway connection could not be opened.
    #[error("{0}")]
    Connect(String),
    /// The token is gone (login failed for good).
    #[error("no valid access token: {0}")]
    Token(String),
    /// No decodable frame arrived in time.
    #[error(
        "no video frame within {0:?} (is the camera streaming H.264? cameras with privacy masking cannot stream over WebRTC)"
    )]
    NoFirstFrame(Duration),
    /// Media stopped.
    #[error("no media for {0:?}")]
    MediaTimeout(Duration),
}

impl SessionError {
    /// True when a passive-role answer never completed DTLS.
    fn is_passive_dtls_timeout(&self) -> bool {
        matches!(
            self,
            SessionError::Peer(PeerError::DtlsTimeout {
                role: DtlsRole::Passive,
                ..
            })
        )
    }
}

pub(crate) enum SessionCommand {
    SendCommand(String, tokio::sync::oneshot::Sender<Result<(), PeerError>>),
    /// Answered by the peer driver once the `commands` channel's bytes are acknowledged.
    FlushCommands(tokio::sync::oneshot::Sender<Result<(), PeerError>>),
    RequestKeyframe,
    /// Answered by the driver with its counters and the peer's statistics.
    Stats(tokio::sync::oneshot::Sender<SessionStats>),
    Close,
}

/// A running session. Events come from [`Session::next_event`]; dropping the session stops it.
#[derive(Debug)]
pub struct Session {
    events: mpsc::Receiver<SessionEvent>,
    commands: mpsc::Sender<SessionCommand>,
    commands_channel: watch::Receiver<CommandsChannelState>,
    task: JoinHandle<()>,
}

/// Frames queued towards the consumer. At 25 fps this is 10 s of video: a slow disk must not
/// stall the WebRTC stack, and a stuck consumer is told via a warning rather than by OOM.
const EVENT_CHANNEL_CAPACITY: usize = 256;
/// Commands are rare (user actions, a stats request a second).
const COMMAND_CHANNEL_CAPACITY: usize = 16;
/// XProtect's video RTP clock counts milliseconds (PROTOCOL.md §4.2), whatever the SDP says.
const VIDEO_RTP_UNITS_PER_SECOND: f64 = 1000.0;

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Start a session; it runs until it fails or is closed.
    pub fn start(gateway: Gateway, tokens: &TokenSource, options: SessionOptions) -> Session {
        Self::start_watching(gateway, tokens.subscribe(), options)
    }

    /// [`Session::start`] with a token watch instead of the source (for drivers that start
    /// sessions from their own task, like [`crate::lasting`]).
    pub(crate) fn start_watching(
        gateway: Gateway,
        token_watch: watch::Receiver<TokenState>,
        options: SessionOptions,
    ) -> Session {
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (commands, commands_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        // The driver holds the sender; it is dropped (read as closed) when the session ends.
        let (channel_state, commands_channel) = watch::channel(CommandsChannelState::Pending);
        let task = tokio::spawn(run(
            gateway,
            token_watch,
            options,
            events_tx,
            commands_rx,
            channel_state,
        ));
        Session {
            events,
            commands,
            commands_channel,
            task,
        }
    }

    /// A cloneable handle for PTZ/aux commands on this session's `commands` data channel,
    /// usable from another task while this one consumes events (see [`crate::commands`]).
    pub fn command_sender(&self) -> CommandSender {
        CommandSender::new(self.commands.clone(), self.commands_channel.clone())
    }

    /// The next event; `None` after `Ended`.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    /// The driver's request queue (for drivers that forward commands, like [`crate::lasting`]).
    pub(crate) fn request_sender(&self) -> mpsc::Sender<SessionCommand> {
        self.commands.clone()
    }

    /// Send a text command on the `commands` data channel.
    pub async fn send_command(&self, text: String) -> Result<(), PeerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(SessionCommand::SendCommand(text, tx))
            .await
            .map_err(|_| PeerError::Closed)?;
        rx.await.map_err(|_| PeerError::Closed)?
    }

    /// A snapshot of the session's statistics (frames, bytes, jitter, and the WebRTC stack's
    /// view: losses, NACK/PLI counts, candidates and the selected pair).
    ///
    /// # Errors
    ///
    /// [`StatsError::Closed`] once the session ended.
    pub async fn stats(&self) -> Result<SessionStats, StatsError> {
        self.stats_handle().stats().await
    }

    /// A cloneable handle for [`Session::stats`], usable from another task while this one
    /// consumes events.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle::new(self.commands.clone())
    }

    /// Ask for a keyframe (PLI).
    pub async fn request_keyframe(&self) {
        let _ = self.commands.send(SessionCommand::RequestKeyframe).await;
    }

    /// Ask the session to end; it reports `Ended(Ok(()))`.
    pub async fn close(&self) {
        let _ = self.commands.send(SessionCommand::Close).await;
    }
}

async fn run(
    gateway: Gateway,
    token_watch: watch::Receiver<TokenState>,
    mut options: SessionOptions,
    events: mpsc::Sender<SessionEvent>,
    mut commands: mpsc::Receiver<SessionCommand>,
    channel_state: watch::Sender<CommandsChannelState>,
) {
    loop {
        channel_state.send_replace(CommandsChannelState::Pending);
        let result = match Driver::connect(
            gateway.clone(),
            token_watch.clone(),
            options.clone(),
            events.clone(),
        )
        .await
        {
            Ok(driver) => driver.run(&mut commands, &channel_state).await,
            Err(error) => Err((error, false)),
        };
        match result {
            // Only before anything was delivered is a retry with the other DTLS role invisible.
            Err((error, false)) if options.dtls_fallback && error.is_passive_dtls_timeout() => {
                let _ = events
                    .send(SessionEvent::Warning(format!(
                        "{error}; retrying with the DTLS role active"
                    )))
                    .await;
                options.peer.dtls_role = DtlsRole::Active;
                options.dtls_fallback = false;
            }
            Err((error, _)) => {
                let _ = events.send(SessionEvent::Ended(Err(error))).await;
                return;
            }
            Ok(()) => {
                let _ = events.send(SessionEvent::Ended(Ok(()))).await;
                return;
            }
        }
    }
}

/// Maps `Instant`s to the wall clock through one anchor taken at start (str0m's time tricks):
/// frame times stay monotonic even if the system clock is stepped during a recording.
#[derive(Debug, Clone, Copy)]
struct WallClockAnchor {
    instant: Instant,
    wall: OffsetDateTime,
}

impl WallClockAnchor {
    fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: OffsetDateTime::from(SystemTime::now()),
        }
    }

    fn wall(&self, at: Instant) -> OffsetDateTime {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall + after,
            None => self.wall - self.instant.duration_since(at),
        }
    }
}

struct Driver {
    token_watch: watch::Receiver<TokenState>,
    options: SessionOptions,
    events: mpsc::Sender<SessionEvent>,
    io: SignalingIo,
    peer: Option<(Peer, mpsc::Receiver<PeerEvent>)>,
    early_candidates: Vec<IceCandidateInit>,
    depacketizer: H264Depacketizer,
    video_clock: Option<FrameClock>,
    audio_clock: Option<FrameClock>,
    /// Whether the gateway's offer has a video section (not for a microphone's session).
    offer_has_video: bool,
    anchor: WallClockAnchor,
    started: Instant,
    waiting_for_keyframe: bool,
    last_keyframe_request: Option<Instant>,
    last_media: Option<Instant>,
    delivered: bool,
    /// Live: the stall limit, from the video's frame rate (playback keeps `media_timeout`:
    /// its pace follows the requested speed and the recording's gaps).
    stall: Option<StallTimeout>,
    /// What [`Session::stats`] reports besides the peer's view.
    counters: SessionStats,
    /// Video RTP jitter on XProtect's millisecond clock.
    video_jitter: JitterEstimator,
}

impl Driver {
    /// A driver with its signaling transport open (the WebSocket, when that is the transport).
    async fn connect(
        gateway: Gateway,
        token_watch: watch::Receiver<TokenState>,
        options: SessionOptions,
        events: mpsc::Sender<SessionEvent>,
    ) -> Result<Self, SessionError> {
        let io = SignalingIo::connect(
            gateway,
            options.signaling,
            options.rest.clone(),
            options.ws.clone(),
        )
        .await
        .map_err(SessionError::Connect)?;
        Ok(Self {
            token_watch,
            events,
            io,
            peer: None,
            early_candidates: Vec::new(),
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            video_clock: None,
            audio_clock: None,
            offer_has_video: true,
            anchor: WallClockAnchor::now(),
            started: Instant::now(),
            waiting_for_keyframe: true,
            last_keyframe_request: None,
            last_media: None,
            delivered: false,
            stall: options
                .params
                .playback
                .is_none()
                .then(|| StallTimeout::new(options.media_timeout)),
            counters: SessionStats::default(),
            video_jitter: JitterEstimator::new(VIDEO_RTP_UNITS_PER_SECOND),
            options,
        })
    }

    /// Runs until closed (`Ok`) or failed (`Err((error, delivered_anything))`).
    async fn run(
        mut self,
        commands: &mut mpsc::Receiver<SessionCommand>,
        channel_state: &watch::Sender<CommandsChannelState>,
    ) -> Result<(), (SessionError, bool)> {
        let result = self.run_inner(commands, channel_state).await;
        // A channel that never opened stays pending: a DTLS-role retry may still open it, and
        // the session's end drops the sender, which waiters read as closed.
        channel_state.send_if_modified(|state| {
            let was_open = *state == CommandsChannelState::Open;
            if was_open {
                *state = CommandsChannelState::Closed;
            }
            was_open
        });
        if let Some((peer, _)) = self.peer.take() {
            peer.close().await;
        }
        self.io.close().await;
        result.map_err(|e| (e, self.delivered))
    }

    async fn run_inner(
        &mut self,
        commands: &mut mpsc::Receiver<SessionCommand>,
        channel_state: &watch::Sender<CommandsChannelState>,
    ) -> Result<(), SessionError> {
        let token = match &*self.token_watch.borrow_and_update() {
            TokenState::Valid { token, .. } => token.clone(),
            TokenState::Failed(e) => return Err(SessionError::Token(e.to_string())),
            TokenState::Pending => return Err(SessionError::Token("not logged in yet".into())),
        };
        self.io
            .signaling()
            .start(Instant::now(), self.options.params.clone(), token);

        loop {
            let deadline = self.drain_signaling().await?;
            let media_deadline = self.media_deadline();
            tokio::select! {
                () = self.io.next_input(deadline) => {}
                event = next_peer_event(&mut self.peer) => match event {
                    Some(event) => {
                        if let Some(state) = CommandsChannelState::after(&event) {
                            channel_state.send_replace(state);
                        }
                        self.on_peer_event(event).await?
                    }
                    None => return Err(SessionError::Peer(PeerError::Closed)),
                },
                changed = self.token_watch.changed() => {
                    if changed.is_err() {
                        return Err(SessionError::Token("the login task ended".into()));
                    }
                    self.on_token_change()?;
                }
                command = commands.recv() => match command {
                    None | Some(SessionCommand::Close) => return Ok(()),
                    Some(SessionCommand::SendCommand(text, reply)) => {
                        let result = match &self.peer {
                            Some((peer, _)) => peer.send_command(text).await,
                            None => Err(PeerError::DataChannelNotOpen),
                        };
                        let _ = reply.send(result);
                    }
                    Some(SessionCommand::FlushCommands(reply)) => match &self.peer {
                        Some((peer, _)) => peer.flush_commands(reply).await,
                        None => {
                            let _ = reply.send(Err(PeerError::DataChannelNotOpen));
                        }
                    },
                    Some(SessionCommand::RequestKeyframe) => self.request_keyframe(true).await,
                    Some(SessionCommand::Stats(reply)) => {
                        let _ = reply.send(self.stats().await);
                    }
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(media_deadline.0)) => {
                    return Err(media_deadline.1);
                }
            }
        }
    }

    /// Perform everything signaling wants and act on its events; returns its next deadline.
    async fn drain_signaling(&mut self) -> Result<Instant, SessionError> {
        let mut events = Vec::new();
        loop {
            let deadline = self.io.drain(&mut events).await;
            if events.is_empty() {
                return Ok(deadline);
            }
            // Acting on an event (answering an offer) gives the machine more to send.
            for event in std::mem::take(&mut events) {
                self.on_signal_event(event).await?;
            }
        }
    }

    async fn on_signal_event(&mut self, event: SignalEvent) -> Result<(), SessionError> {
        match event {
            SignalEvent::SessionCreated(id) => {
                self.counters.session_id = Some(id.to_string());
                self.emit(SessionEvent::Created(id)).await
            }
            SignalEvent::Offer(sdp) => {
                self.offer_has_video = sdp.lines().any(|l| l.starts_with("m=video"));
                let (peer, answer, peer_events) =
                    Peer::answer(&sdp, self.options.peer.clone()).await?;
                for candidate in std::mem::take(&mut self.early_candidates) {
                    if let Err(error) = peer.add_remote_candidate(candidate).await {
                        self.emit(SessionEvent::Warning(format!(
                            "ignored a gateway candidate: {error}"
                        )))
                        .await;
                    }
                }
                self.peer = Some((peer, peer_events));
                self.io.signaling().send_answer(Instant::now(), &answer);
            }
            SignalEvent::RemoteCandidate(candidate) => {
                let added = match &self.peer {
                    Some((peer, _)) => peer.add_remote_candidate(candidate).await,
                    // A gateway may trickle before its offer has been answered (ONVIF allows it).
                    None => {
                        self.early_candidates.push(candidate);
                        Ok(())
                    }
                };
                if let Err(error) = added {
                    self.emit(SessionEvent::Warning(format!(
                        "ignored a gateway candidate: {error}"
                    )))
                    .await;
                }
            }
            SignalEvent::RemoteCandidatesDone
            | SignalEvent::AnswerAccepted
            | SignalEvent::TokenUpdated => {}
            SignalEvent::ServerError { code, message } => {
                self.emit(SessionEvent::Warning(format!(
                    "gateway: {message} (code {code})"
                )))
                .await
            }
            SignalEvent::SignalingLost(reason) => {
                tracing::debug!(%reason, "signaling lost; the media lives on");
                self.emit(SessionEvent::SignalingLost(reason)).await
            }
            SignalEvent::Failed(error) => return Err(error.into()),
        }
        Ok(())
    }

    async fn on_peer_event(&mut self, event: PeerEvent) -> Result<(), SessionError> {
        match event {
            PeerEvent::LocalCandidate(candidate) => self
                .io
                .signaling()
                .add_local_candidate(Instant::now(), &candidate),
            PeerEvent::ConnectionState(crate::media::ConnectionState::Connected) => {
                self.io
                    .signaling()
                    .set_media_connected(Instant::now(), true);
                self.counters.connected = true;
                self.emit(SessionEvent::Connected).await;
            }
            PeerEvent::ConnectionState(
                crate::media::ConnectionState::Disconnected
                | crate::media::ConnectionState::Failed
                | crate::media::ConnectionState::Closed,
            ) => self.counters.connected = false,
            PeerEvent::CommandsChannelOpen => self.emit(SessionEvent::CommandsReady).await,
            PeerEvent::Rtp {
                kind: TrackKind::Video,
                packet,
            } => self.on_video_packet(packet).await,
            PeerEvent::Rtp {
                kind: TrackKind::Audio,
                packet,
            } => self.on_audio_packet(packet).await,
            PeerEvent::Failed(error) => return Err(error.into()),
            _ => {}
        }
        Ok(())
    }

    async fn on_video_packet(&mut self, packet: RtpPacket) {
        self.last_media = Some(packet.arrival);
        self.video_jitter
            .on_packet(packet.arrival, packet.timestamp);
        self.depacketizer.push(packet);
        while let Some(access_unit) = self.depacketizer.poll() {
            self.on_access_unit(access_unit).await;
        }
    }

    async fn on_access_unit(&mut self, access_unit: AccessUnit) {
        if !access_unit.complete {
            // A decoder would show corruption until the next IDR: skip to it and ask for one.
            if !self.waiting_for_keyframe {
                self.emit(SessionEvent::Warning(
                    "lost packets: skipping to the next keyframe".into(),
                ))
                .await;
            }
            self.waiting_for_keyframe = true;
            self.request_keyframe(false).await;
            return;
        }
        if self.waiting_for_keyframe {
            if !access_unit.keyframe {
                self.request_keyframe(false).await;
                return;
            }
            self.waiting_for_keyframe = false;
        }
        let clock = self.video_clock.get_or_insert_with(|| {
            FrameClock::new(
                start_reference(&self.options.params, &self.anchor, &access_unit),
                RtpUnits::VideoMilliseconds,
            )
        });
        let time = clock.frame_time(access_unit.rtp_timestamp);
        let received = self.anchor.wall(access_unit.arrival);
        if let Some(stall) = &mut self.stall {
            stall.on_frame(access_unit.rtp_timestamp);
        }
        self.delivered = true;
        self.counters.frames += 1;
        self.counters.keyframes += u64::from(access_unit.keyframe);
        self.counters.video_bytes += access_unit.byte_len() as u64;
        self.counters.last_frame_time = Some(time.wall_clock);
        self.emit(SessionEvent::Video(VideoFrame {
            access_unit,
            time,
            received,
        }))
        .await;
    }

    async fn on_audio_packet(&mut self, packet: RtpPacket) {
        self.last_media = Some(packet.arrival);
        // Audio is timed against the same start reference as video (PROTOCOL.md §4.2), so with
        // video it waits for the video's first frame; an audio-only (microphone) session takes
        // its start reference from the audio itself.
        let start_ref = match (&self.video_clock, &self.audio_clock) {
            (Some(video), _) => video.start_ref(),
            (None, Some(audio)) if !self.offer_has_video => audio.start_ref(),
            (None, None) if !self.offer_has_video => match self.options.params.playback {
                Some(playback) => playback.start,
                None => {
                    self.anchor.wall(packet.arrival)
                        - Duration::from_micros(u64::from(packet.timestamp) * 125)
                }
            },
            _ => return,
        };
        let clock = self
            .audio_clock
            .get_or_insert_with(|| FrameClock::new(start_ref, RtpUnits::AudioSamples8k));
        let time = clock.frame_time(packet.timestamp);
        let received = self.anchor.wall(packet.arrival);
        self.counters.audio_packets += 1;
        self.emit(SessionEvent::Audio(AudioPacket {
            packet,
            time,
            received,
        }))
        .await;
    }

    /// PLI, at most every 500 ms unless the user asked.
    async fn request_keyframe(&mut self, forced: bool) {
        let now = Instant::now();
        if !forced
            && self
                .last_keyframe_request
                .is_some_and(|at| now.duration_since(at) < Duration::from_millis(500))
        {
            return;
        }
        self.last_keyframe_request = Some(now);
        if let Some((peer, _)) = &self.peer {
            let _ = peer.request_keyframe().await;
        }
    }

    fn on_token_change(&mut self) -> Result<(), SessionError> {
        let state = self.token_watch.borrow_and_update().clone();
        match state {
            TokenState::Valid { token, .. } => {
                // Over WebSocket the protocol has no token update; the session lives on until the
                // gateway ends it (reconnect logic replaces it before that).
                if let Err(error) = self.io.signaling().update_token(Instant::now(), token) {
                    tracing::debug!(%error, "token not handed to the session");
                }
                Ok(())
            }
            TokenState::Failed(error) => Err(SessionError::Token(error.to_string())),
            TokenState::Pending => Ok(()),
        }
    }

    fn media_deadline(&self) -> (Instant, SessionError) {
        match self.last_media.filter(|_| self.delivered) {
            Some(last) => {
                let timeout = self
                    .stall
                    .as_ref()
                    .map_or(self.options.media_timeout, StallTimeout::timeout);
                (last + timeout, SessionError::MediaTimeout(timeout))
            }
            None => (
                self.started + self.options.first_frame_timeout,
                SessionError::NoFirstFrame(self.options.first_frame_timeout),
            ),
        }
    }

    /// The counters, with the peer's statistics when there is a peer (a peer that cannot
    /// answer leaves them out rather than failing the request).
    async fn stats(&mut self) -> SessionStats {
        let mut stats = self.counters.clone();
        stats.video_jitter_ms = self.video_jitter.jitter_ms();
        if let Some((peer, _)) = &self.peer {
            match peer.stats().await {
                Ok(peer_stats) => stats.peer = Some(peer_stats),
                Err(error) => tracing::debug!(%error, "no peer statistics"),
            }
        }
        stats
    }

    async fn emit(&mut self, event: SessionEvent) {
        if matches!(event, SessionEvent::Warning(_)) {
            self.counters.warnings += 1;
        }
        // A consumer that stopped listening only loses events; the driver keeps the session clean.
        let _ = self.events.send(event).await;
    }
}

/// Live: the wall-clock arrival of the first frame minus its RTP milliseconds (RTP counts from
/// the first frame the gateway sent). Playback: the requested start time (PROTOCOL.md §4.2).
fn start_reference(
    params: &SessionParams,
    anchor: &WallClockAnchor,
    first: &AccessUnit,
) -> OffsetDateTime {
    match params.playback {
        Some(playback) => playback.start,
        None => anchor.wall(first.arrival) - Duration::from_millis(u64::from(first.rtp_timestamp)),
    }
}

async fn next_peer_event(
    peer: &mut Option<(Peer, mpsc::Receiver<PeerEvent>)>,
) -> Option<PeerEvent> {
    match peer {
        Some((_, events)) => events.recv().await,
        None => std::future::pending().await,
    }
}
