//! The task that owns the `webrtc` peer connection and everything about the session's state.
//!
//! One loop, one owner: commands from the [`Peer`](super::Peer) handle, callbacks forwarded by
//! the [adapter](super::adapter), the received tracks and the `commands` data channel are all
//! `select!`ed here, so no state is shared between tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, SelectAll, StreamExt};
use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::StatsSelector;
use tokio::sync::{mpsc, oneshot};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCIceConnectionState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use xprotect_proto::rtp::RtpPacket;

use super::adapter::StackEvent;
use super::config::DtlsRole;
use super::error::PeerError;
use super::events::{ConnectionState, IceCandidateInit, PeerEvent, TrackKind};
use crate::diagnostics::PeerStats;

/// Bound on one `webrtc` call made from the driver (each is a round trip to `webrtc`'s own
/// driver task, normally well under a millisecond); it only trips when that task is wedged.
const STACK_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long DTLS may take after ICE connected before we give up and say which role failed.
/// A handshake is two round trips plus retransmits (first retransmit after 1 s); 5 s covers
/// a lossy WAN, and a gateway that ignores our role never completes at all.
pub const DTLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request from the [`Peer`](super::Peer) handle, with the channel its answer goes back on.
pub(crate) enum Command {
    AddRemoteCandidate(IceCandidateInit, oneshot::Sender<Result<(), PeerError>>),
    SendText(String, oneshot::Sender<Result<(), PeerError>>),
    /// Answered once SCTP has released (acknowledged) every byte sent on the `commands` channel.
    FlushCommands(oneshot::Sender<Result<(), PeerError>>),
    RequestKeyframe(oneshot::Sender<Result<(), PeerError>>),
    /// A snapshot of webrtc-rs' statistics (`getStats()`).
    Stats(oneshot::Sender<Result<PeerStats, PeerError>>),
    Close(oneshot::Sender<()>),
}

/// Where local candidates belong in the answer (the bundle's first section).
pub(crate) struct CandidateTag {
    pub(crate) sdp_mid: Option<String>,
    pub(crate) username_fragment: Option<String>,
}

/// A received track and what we know about it.
struct Track {
    remote: Arc<dyn TrackRemote>,
    kind: TrackKind,
    ssrc: u32,
    codec: String,
    /// Whether `TrackStarted` went out (it waits for the first packet, which names the PT).
    announced: bool,
}

/// An event of one of our tracks, tagged with the track's index in [`Driver::tracks`].
type TrackItem = (usize, TrackRemoteEvent);

/// Everything the driver owns.
pub(crate) struct Driver {
    pc: Box<dyn PeerConnection>,
    dtls_role: DtlsRole,
    candidate_tag: CandidateTag,
    commands: mpsc::Receiver<Command>,
    stack_events: mpsc::Receiver<StackEvent>,
    events: mpsc::Sender<PeerEvent>,
    tracks: Vec<Track>,
    track_events: SelectAll<BoxStream<'static, TrackItem>>,
    commands_channel: Arc<dyn DataChannel>,
    commands_channel_events: BoxStream<'static, DataChannelEvent>,
    commands_channel_open: bool,
    /// Callers waiting for the `commands` channel's sent bytes to be acknowledged.
    pending_flushes: Vec<oneshot::Sender<Result<(), PeerError>>>,
    /// Set when ICE connects before DTLS; cleared when the connection connects.
    dtls_deadline: Option<tokio::time::Instant>,
    dtls_connected: bool,
    failed: bool,
    /// RTP packets dropped because the owner did not drain events (reported, then reset).
    rtp_dropped: u64,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pc: Box<dyn PeerConnection>,
        dtls_role: DtlsRole,
        candidate_tag: CandidateTag,
        commands: mpsc::Receiver<Command>,
        stack_events: mpsc::Receiver<StackEvent>,
        events: mpsc::Sender<PeerEvent>,
        commands_channel: Arc<dyn DataChannel>,
    ) -> Self {
        let commands_channel_events = data_channel_events(Arc::clone(&commands_channel));
        Self {
            pc,
            dtls_role,
            candidate_tag,
            commands,
            stack_events,
            events,
            tracks: Vec::new(),
            track_events: SelectAll::new(),
            commands_channel,
            commands_channel_events,
            commands_channel_open: false,
            pending_flushes: Vec::new(),
            dtls_deadline: None,
            dtls_connected: false,
            failed: false,
            rtp_dropped: 0,
        }
    }

    /// Runs until the handle closes the peer or is dropped.
    pub(crate) async fn run(mut self) {
        loop {
            let dtls_deadline = self.dtls_deadline;
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if let Some(done) = self.handle_command(command).await {
                            self.shutdown().await;
                            let _ = done.send(());
                            return;
                        }
                    }
                    // The handle was dropped without `close()`: close anyway.
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(event) = self.stack_events.recv() => self.handle_stack_event(event).await,
                Some((index, event)) = self.track_events.next(), if !self.track_events.is_empty() => {
                    self.handle_track_event(index, event).await;
                }
                event = self.commands_channel_events.next() => self.handle_channel_event(event).await,
                () = sleep_until_or_forever(dtls_deadline) => {
                    self.dtls_deadline = None;
                    self.fail(PeerError::DtlsTimeout { role: self.dtls_role, waited: DTLS_HANDSHAKE_TIMEOUT }).await;
                }
            }
        }
    }

    /// Executes a command; a close request is handed back, for `run` to end the loop.
    async fn handle_command(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::AddRemoteCandidate(candidate, reply) => {
                let _ = reply.send(self.add_remote_candidate(candidate).await);
            }
            Command::SendText(text, reply) => {
                let _ = reply.send(self.send_text(&text).await);
            }
            Command::FlushCommands(reply) => self.flush_commands(reply).await,
            Command::RequestKeyframe(reply) => {
                let _ = reply.send(self.request_keyframe().await);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats().await);
            }
            Command::Close(done) => return Some(done),
        }
        None
    }

    async fn add_remote_candidate(&mut self, candidate: IceCandidateInit) -> Result<(), PeerError> {
        if candidate.is_end_of_candidates() {
            // webrtc-rs has no end-of-candidates input; ICE fails by its own timers instead.
            return Ok(());
        }
        let line = candidate.candidate.clone();
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: candidate.username_fragment,
            url: None,
        };
        bounded(
            "adding a remote ICE candidate",
            self.pc.add_ice_candidate(init),
        )
        .await?
        .map_err(|error| PeerError::BadCandidate {
            candidate: line,
            reason: error.to_string(),
        })?;
        self.wake_stack().await;
        Ok(())
    }

    /// Makes `webrtc`'s driver recompute its next deadline now.
    ///
    /// webrtc 0.21.1's `add_ice_candidate` does not wake its driver, which keeps sleeping on
    /// the deadline it computed before the candidate existed (an idle ICE tick), so the
    /// first connectivity check for a trickled candidate left up to ~500 ms late — and DTLS
    /// another ~500 ms after it (measured: offer → first RTP 1 s instead of 4 ms). Setting
    /// the data channel's low-water mark to its current value changes nothing but is one of
    /// the calls that does wake the driver.
    async fn wake_stack(&mut self) {
        let channel = &self.commands_channel;
        let nudge = async {
            let threshold = channel.buffered_amount_low_threshold().await?;
            channel.set_buffered_amount_low_threshold(threshold).await
        };
        match bounded("waking the WebRTC driver", nudge).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "could not wake the WebRTC driver"),
            Err(error) => tracing::debug!(%error, "could not wake the WebRTC driver"),
        }
    }

    async fn send_text(&mut self, text: &str) -> Result<(), PeerError> {
        if self.failed && !self.commands_channel_open {
            return Err(PeerError::Closed);
        }
        if !self.commands_channel_open {
            return Err(PeerError::DataChannelNotOpen);
        }
        bounded("sending a command", self.commands_channel.send_text(text))
            .await?
            .map_err(|error| PeerError::DataChannelSend {
                reason: error.to_string(),
            })
    }

    /// Answers `reply` now if nothing sent on the `commands` channel is unacknowledged, or
    /// else once the `OnBufferedAmountLow` event says it has been (the low-water mark stays 0,
    /// so that event fires exactly when the last outstanding byte is acknowledged).
    async fn flush_commands(&mut self, reply: oneshot::Sender<Result<(), PeerError>>) {
        if !self.commands_channel_open {
            let _ = reply.send(Err(if self.failed {
                PeerError::Closed
            } else {
                PeerError::DataChannelNotOpen
            }));
            return;
        }
        match self.outstanding_command_bytes().await {
            Ok(0) => {
                let _ = reply.send(Ok(()));
            }
            Ok(_) => {
                // Callers that gave up waiting leave closed senders behind; do not hoard them.
                self.pending_flushes.retain(|waiting| !waiting.is_closed());
                self.pending_flushes.push(reply);
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    async fn outstanding_command_bytes(&mut self) -> Result<usize, PeerError> {
        bounded(
            "reading the commands channel's outstanding bytes",
            self.commands_channel.outstanding_bytes(),
        )
        .await?
        .map_err(|_| PeerError::Closed)
    }

    /// Re-checks the waiting flushes after SCTP released bytes, or fails them on close.
    async fn settle_flushes(&mut self, closed: bool) {
        if self.pending_flushes.is_empty() {
            return;
        }
        let outcome = if closed {
            Err(PeerError::Closed)
        } else {
            match self.outstanding_command_bytes().await {
                Ok(0) => Ok(()),
                Ok(_) => return,
                Err(error) => Err(error),
            }
        };
        for waiting in self.pending_flushes.drain(..) {
            let _ = waiting.send(outcome.clone());
        }
    }

    /// webrtc-rs' statistics report, with the selected pair taken from the ICE transport: the
    /// report cannot name a remote candidate that was learnt (peer-reflexive) rather than
    /// signaled, which on a trickling gateway is often the one in use.
    async fn stats(&mut self) -> Result<PeerStats, PeerError> {
        let report = bounded(
            "reading the connection's statistics",
            self.pc.get_stats(Instant::now(), StatsSelector::None),
        )
        .await?;
        let mut stats = super::stats::peer_stats(&report);
        if let Some(sctp) = bounded("reading the SCTP transport", self.pc.sctp()).await? {
            let ice = sctp.transport().ice_transport();
            match bounded(
                "reading the selected candidate pair",
                ice.get_selected_candidate_pair(),
            )
            .await?
            {
                Ok(Some(pair)) => super::stats::apply_selected_pair(&mut stats, &pair),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "no selected candidate pair"),
            }
        }
        Ok(stats)
    }

    /// Sends a PLI for every video track (there is one in practice).
    async fn request_keyframe(&mut self) -> Result<(), PeerError> {
        for index in 0..self.tracks.len() {
            if self.tracks[index].kind == TrackKind::Video {
                self.send_pli(index).await?;
            }
        }
        Ok(())
    }

    async fn send_pli(&mut self, index: usize) -> Result<(), PeerError> {
        let Some(track) = self.tracks.get(index) else {
            return Ok(());
        };
        let (remote, ssrc) = (Arc::clone(&track.remote), track.ssrc);
        let pli = PictureLossIndication {
            // We send no media, so we have no SSRC of our own; 0 is what browsers use then.
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        tracing::debug!(ssrc, "sending PLI");
        bounded("sending a PLI", remote.write_rtcp(vec![Box::new(pli)]))
            .await?
            .map_err(|_| PeerError::Closed)
    }

    async fn handle_stack_event(&mut self, event: StackEvent) {
        match event {
            StackEvent::LocalCandidate(event) => self.local_candidate(event).await,
            StackEvent::GatheringComplete => self.emit(PeerEvent::LocalCandidatesDone).await,
            StackEvent::IceState(state) => {
                tracing::debug!(%state, "ICE connection state");
                self.emit(PeerEvent::IceState(state.to_string())).await;
                match state {
                    RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
                        if !self.dtls_connected && self.dtls_deadline.is_none() =>
                    {
                        self.dtls_deadline =
                            Some(tokio::time::Instant::now() + DTLS_HANDSHAKE_TIMEOUT);
                    }
                    RTCIceConnectionState::Failed => self.fail(PeerError::IceFailed).await,
                    _ => {}
                }
            }
            StackEvent::ConnectionState(state) => self.connection_state(state).await,
            StackEvent::Track(remote) => self.track_started(remote).await,
        }
    }

    async fn local_candidate(&mut self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let candidate = IceCandidateInit {
                    candidate: init.candidate,
                    sdp_mid: self.candidate_tag.sdp_mid.clone(),
                    sdp_m_line_index: Some(0),
                    username_fragment: self.candidate_tag.username_fragment.clone(),
                };
                self.emit(PeerEvent::LocalCandidate(candidate)).await;
            }
            Err(error) => tracing::warn!(%error, "could not serialise a local ICE candidate"),
        }
    }

    async fn connection_state(&mut self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        let state = match state {
            RTCPeerConnectionState::New => ConnectionState::New,
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => return,
        };
        self.emit(PeerEvent::ConnectionState(state)).await;
        match state {
            // webrtc-rs reports DTLS completion only through the aggregate state.
            ConnectionState::Connected if !self.dtls_connected => {
                self.dtls_connected = true;
                self.dtls_deadline = None;
                self.emit(PeerEvent::DtlsConnected).await;
            }
            ConnectionState::Failed => self.fail(PeerError::ConnectionFailed).await,
            // Our own close ends the loop before webrtc-rs reports it, so this one is not ours.
            ConnectionState::Closed => {
                let how = "the peer connection closed";
                self.fail(PeerError::ClosedByGateway { how }).await;
            }
            _ => {}
        }
    }

    /// Registers a new remote track, and asks for a keyframe at once: the first IDR can be
    /// lost (STACK.md), and a gateway relaying a camera would otherwise make us wait a GOP.
    async fn track_started(&mut self, remote: Arc<dyn TrackRemote>) {
        let kind = match remote.kind().await {
            RtpCodecKind::Video => TrackKind::Video,
            RtpCodecKind::Audio => TrackKind::Audio,
            other => {
                tracing::debug!(?other, "ignoring a track of unexpected kind");
                return;
            }
        };
        let Some(ssrc) = remote.ssrcs().await.first().copied() else {
            tracing::debug!("ignoring a track without SSRC");
            return;
        };
        let codec = remote
            .codec(ssrc)
            .await
            .map(|codec| codec.mime_type)
            .unwrap_or_default();
        let index = self.tracks.len();
        self.track_events
            .push(track_events(index, Arc::clone(&remote)));
        self.tracks.push(Track {
            remote,
            kind,
            ssrc,
            codec,
            announced: false,
        });
        if kind == TrackKind::Video
            && let Err(error) = self.send_pli(index).await
        {
            tracing::debug!(%error, "the first PLI could not be sent");
        }
    }

    async fn handle_track_event(&mut self, index: usize, event: TrackRemoteEvent) {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            return;
        };
        let arrival = Instant::now();
        let Some(track) = self.tracks.get_mut(index) else {
            return;
        };
        let kind = track.kind;
        if !track.announced {
            track.announced = true;
            let started = PeerEvent::TrackStarted {
                kind,
                codec: track.codec.clone(),
                payload_type: packet.header.payload_type,
            };
            self.emit(started).await;
        }
        let packet = RtpPacket {
            sequence: packet.header.sequence_number,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload_type: packet.header.payload_type,
            ssrc: packet.header.ssrc,
            // Reuses the buffer when the packet owns it whole, copies once otherwise.
            payload: Vec::from(packet.payload),
            arrival,
        };
        // Media has no flow control upstream (UDP); a consumer that stops draining loses
        // packets here rather than stalling the session's control traffic behind them.
        match self.events.try_send(PeerEvent::Rtp { kind, packet }) {
            Ok(()) => {
                if self.rtp_dropped > 0 {
                    tracing::warn!(
                        dropped = self.rtp_dropped,
                        "RTP packets dropped because the event receiver was not drained"
                    );
                    self.rtp_dropped = 0;
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.rtp_dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    async fn handle_channel_event(&mut self, event: Option<DataChannelEvent>) {
        if let Some(event) = &event
            && !matches!(event, DataChannelEvent::OnMessage(_))
        {
            tracing::debug!(?event, "commands channel event");
        }
        match event {
            Some(DataChannelEvent::OnOpen) => {
                self.commands_channel_open = true;
                self.emit(PeerEvent::CommandsChannelOpen).await;
            }
            Some(DataChannelEvent::OnClose) | None => {
                let was_open = self.commands_channel_open;
                self.commands_channel_open = false;
                // The stream has ended; keep polling a stream that never yields again.
                self.commands_channel_events = futures_util::stream::pending().boxed();
                self.settle_flushes(true).await;
                if was_open {
                    self.emit(PeerEvent::CommandsChannelClosed).await;
                    // Our own close ends the loop before the channel reports closing, so the
                    // gateway closed it: the SCTP stream alone, or the whole DTLS transport.
                    let how = self.remote_close_cause().await;
                    tracing::debug!(how, "the gateway closed the commands channel");
                    self.fail(PeerError::ClosedByGateway { how }).await;
                }
            }
            Some(DataChannelEvent::OnBufferedAmountLow) => self.settle_flushes(false).await,
            Some(DataChannelEvent::OnMessage(message)) => {
                // PROTOCOL.md §5.4: the gateway is not known to reply; log what it sends.
                tracing::debug!(
                    bytes = message.data.len(),
                    "message on the commands channel ignored"
                );
            }
            Some(_) => {}
        }
    }

    /// Why a channel we had open closed, told by the DTLS transport's state: webrtc-rs (0.21)
    /// reports a peer's `close_notify` only by closing every data channel (the aggregate
    /// connection state stays `connected`, as W3C counts a closed DTLS transport as connected).
    async fn remote_close_cause(&mut self) -> &'static str {
        const CHANNEL: &str = "it closed the `commands` data channel";
        let dtls_state = async {
            let sctp = bounded("reading the SCTP transport", self.pc.sctp()).await?;
            match sctp {
                Some(sctp) => bounded("reading the DTLS state", sctp.transport().state())
                    .await?
                    .map(Some)
                    .map_err(|_| PeerError::Closed),
                None => Ok(None),
            }
        };
        match dtls_state.await {
            Ok(Some(RTCDtlsTransportState::Closed)) => "DTLS close_notify",
            Ok(Some(RTCDtlsTransportState::Failed)) => "DTLS failed",
            Ok(_) => CHANNEL,
            Err(error) => {
                tracing::debug!(%error, "no DTLS state");
                CHANNEL
            }
        }
    }

    async fn fail(&mut self, error: PeerError) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.dtls_deadline = None;
        self.emit(PeerEvent::Failed(error)).await;
    }

    /// Delivers a lifecycle event, waiting for room: these must not be lost.
    async fn emit(&mut self, event: PeerEvent) {
        // A closed receiver means the owner no longer listens; the handle still works.
        let _ = self.events.send(event).await;
    }

    async fn shutdown(&mut self) {
        match bounded("closing the peer connection", self.pc.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "closing the peer connection failed"),
            Err(error) => tracing::debug!(%error, "closing the peer connection"),
        }
    }
}

/// A track's events as a stream, tagged with its index.
fn track_events(index: usize, remote: Arc<dyn TrackRemote>) -> BoxStream<'static, TrackItem> {
    futures_util::stream::unfold(remote, move |remote| async move {
        let event = remote.poll().await?;
        Some(((index, event), remote))
    })
    .boxed()
}

/// A data channel's events as a stream.
fn data_channel_events(channel: Arc<dyn DataChannel>) -> BoxStream<'static, DataChannelEvent> {
    futures_util::stream::unfold(channel, |channel| async move {
        let event = channel.poll().await?;
        Some((event, channel))
    })
    .boxed()
}

async fn sleep_until_or_forever(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs a `webrtc` call under [`STACK_CALL_TIMEOUT`].
pub(crate) async fn bounded<T>(
    operation: &'static str,
    call: impl Future<Output = T>,
) -> Result<T, PeerError> {
    tokio::time::timeout(STACK_CALL_TIMEOUT, call)
        .await
        .map_err(|_| PeerError::Timeout {
            operation,
            limit: STACK_CALL_TIMEOUT,
        })
}
