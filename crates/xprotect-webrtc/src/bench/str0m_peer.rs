//! The benchmark's peer: a receive-only session over **str0m** that reuses everything else our
//! client uses — the sans-IO signaling machines, the gateway's HTTP/WebSocket helpers and the
//! H.264 depacketiser — so that, measured side by side, the WebRTC stack (webrtc-rs in
//! `xprotect_client::session` versus str0m here) is the only difference.
//!
//! One task per session owns a str0m `Rtc` in RTP mode on one loopback UDP socket and drives it
//! the sans-IO way: feed input, then `poll_output` until `Timeout`. It answers the gateway's
//! `actpass` offer as str0m does by default, `passive`, which is also our client's default role.
//! The token is taken once at start; a benchmark session ends long before it expires.

use super::session::ProbeEvent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::KeyframeRequestKind;
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket as Str0mRtpPacket, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use xprotect_client::gateway::Gateway;
use xprotect_client::session::SessionOptions;
use xprotect_client::signaling_io::SignalingIo;
use xprotect_proto::h264::{AccessUnit, DepacketizerConfig, H264Depacketizer};
use xprotect_proto::rtp::RtpPacket;
use xprotect_proto::signal::SignalEvent;
use xprotect_proto::wire::{IceCandidateInit, Secret};

/// Events queued towards the consumer: as in our client's session.
const EVENT_CHANNEL_CAPACITY: usize = 256;
/// Largest UDP datagram we accept (str0m's MTU is far below).
const RECEIVE_BUFFER_BYTES: usize = 2048;
/// At most one PLI per this interval while waiting for a keyframe, as our client does.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// A running str0m session. Dropping it stops the task.
#[derive(Debug)]
pub struct Str0mSession {
    events: mpsc::Receiver<ProbeEvent>,
    close: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Str0mSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Str0mSession {
    /// Start a session with `token`, gathering one host candidate on `bind` (an IP with port 0).
    pub fn start(
        gateway: Gateway,
        token: Secret,
        options: SessionOptions,
        bind: SocketAddr,
    ) -> Self {
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (close, close_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            match Driver::connect(gateway, options, bind, events_tx.clone()).await {
                Ok(driver) => driver.run(token, close_rx).await,
                Err(error) => {
                    let _ = events_tx.send(ProbeEvent::Ended(Err(error))).await;
                }
            }
        });
        Self {
            events,
            close: Some(close),
            task,
        }
    }

    /// The next event; `None` after `Ended`.
    pub async fn next_event(&mut self) -> Option<ProbeEvent> {
        self.events.recv().await
    }

    /// Ask the session to end; it reports `Ended(Ok(()))`.
    pub fn close(&mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}

/// The str0m side of a session, once the offer is answered.
struct Media {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    next_timeout: Instant,
    buffer: Vec<u8>,
    /// Whether an incoming SSRC carries video (looked up once per SSRC).
    video_ssrcs: HashMap<Ssrc, bool>,
    video_ssrc: Option<Ssrc>,
}

struct Driver {
    options: SessionOptions,
    bind: SocketAddr,
    events: mpsc::Sender<ProbeEvent>,
    io: SignalingIo,
    media: Option<Media>,
    /// Gateway candidates that arrived before the offer was answered.
    early_candidates: Vec<IceCandidateInit>,
    depacketizer: H264Depacketizer,
    waiting_for_keyframe: bool,
    last_keyframe_request: Option<Instant>,
    started: Instant,
    last_media: Option<Instant>,
    delivered: bool,
    /// Events produced while draining str0m (which is synchronous), sent right after.
    outbox: Vec<ProbeEvent>,
}

impl Driver {
    async fn connect(
        gateway: Gateway,
        options: SessionOptions,
        bind: SocketAddr,
        events: mpsc::Sender<ProbeEvent>,
    ) -> Result<Self, String> {
        let io = SignalingIo::connect(
            gateway,
            options.signaling,
            options.rest.clone(),
            options.ws.clone(),
        )
        .await?;
        Ok(Self {
            bind,
            events,
            io,
            media: None,
            early_candidates: Vec::new(),
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            waiting_for_keyframe: true,
            last_keyframe_request: None,
            started: Instant::now(),
            last_media: None,
            delivered: false,
            outbox: Vec::new(),
            options,
        })
    }

    async fn run(mut self, token: Secret, mut close: oneshot::Receiver<()>) {
        let result = self.run_inner(token, &mut close).await;
        if let Some(media) = self.media.as_mut() {
            close_rtc(media, &mut self.depacketizer);
        }
        self.io.close().await;
        let _ = self.events.send(ProbeEvent::Ended(result)).await;
    }

    async fn run_inner(
        &mut self,
        token: Secret,
        close: &mut oneshot::Receiver<()>,
    ) -> Result<(), String> {
        self.io
            .signaling()
            .start(Instant::now(), self.options.params.clone(), token);
        loop {
            let signal_deadline = self.drain_signaling().await?;
            let rtc_deadline = match self.media.as_mut() {
                Some(media) => {
                    let mut drained = Drained::default();
                    drain_rtc(media, &mut self.depacketizer, &mut drained)?;
                    let next_timeout = media.next_timeout;
                    if drained.connected {
                        self.io
                            .signaling()
                            .set_media_connected(Instant::now(), true);
                        self.outbox.push(ProbeEvent::Connected);
                    }
                    for access_unit in drained.access_units {
                        self.on_access_unit(access_unit);
                    }
                    next_timeout
                }
                None => far_future(),
            };
            for event in std::mem::take(&mut self.outbox) {
                let _ = self.events.send(event).await;
            }
            let (media_deadline, media_error) = self.media_deadline();
            tokio::select! {
                () = self.io.next_input(signal_deadline) => {}
                received = receive(&mut self.media) => {
                    let (length, source) = received.map_err(|e| format!("UDP receive failed: {e}"))?;
                    self.on_datagram(length, source)?;
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(rtc_deadline)) => {
                    if let Some(media) = self.media.as_mut() {
                        media.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| format!("str0m: {e}"))?;
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(media_deadline)) => return Err(media_error),
                _ = &mut *close => return Ok(()),
            }
        }
    }

    async fn drain_signaling(&mut self) -> Result<Instant, String> {
        let mut events = Vec::new();
        loop {
            let deadline = self.io.drain(&mut events).await;
            if events.is_empty() {
                return Ok(deadline);
            }
            for event in std::mem::take(&mut events) {
                self.on_signal_event(event).await?;
            }
        }
    }

    async fn on_signal_event(&mut self, event: SignalEvent) -> Result<(), String> {
        match event {
            SignalEvent::SessionCreated(_) => {
                let _ = self.events.send(ProbeEvent::Created).await;
            }
            SignalEvent::Offer(sdp) => {
                let (media, answer, local) = answer_offer(&sdp, self.bind).await?;
                self.media = Some(media);
                self.io.signaling().send_answer(Instant::now(), &answer);
                self.io
                    .signaling()
                    .add_local_candidate(Instant::now(), &local);
                for candidate in std::mem::take(&mut self.early_candidates) {
                    self.add_remote_candidate(&candidate);
                }
            }
            SignalEvent::RemoteCandidate(candidate) => match self.media {
                Some(_) => self.add_remote_candidate(&candidate),
                None => self.early_candidates.push(candidate),
            },
            SignalEvent::ServerError { code, message } => {
                let _ = self
                    .events
                    .send(ProbeEvent::Warning(format!(
                        "gateway: {message} (code {code})"
                    )))
                    .await;
            }
            // Like the client's own session, the media lives on without its signaling.
            SignalEvent::SignalingLost(reason) => {
                let _ = self
                    .events
                    .send(ProbeEvent::Warning(format!(
                        "the signaling WebSocket closed ({reason})"
                    )))
                    .await;
            }
            SignalEvent::Failed(error) => return Err(error.to_string()),
            SignalEvent::RemoteCandidatesDone
            | SignalEvent::AnswerAccepted
            | SignalEvent::TokenUpdated => {}
        }
        Ok(())
    }

    fn add_remote_candidate(&mut self, candidate: &IceCandidateInit) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        let text = candidate.candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        match Candidate::from_sdp_string(text) {
            Ok(parsed) => media.rtc.add_remote_candidate(parsed),
            // An mDNS (.local) candidate, for one: the gateway sends a usable twin as well.
            Err(error) => self.outbox.push(ProbeEvent::Warning(format!(
                "ignored a gateway candidate: {error}"
            ))),
        }
    }

    fn on_datagram(&mut self, length: usize, source: SocketAddr) -> Result<(), String> {
        let Some(media) = self.media.as_mut() else {
            return Ok(());
        };
        let Some(datagram) = media.buffer.get(..length) else {
            return Ok(());
        };
        // Anything that is not STUN, DTLS, RTP or RTCP is not for us.
        let Ok(contents) = datagram.try_into() else {
            return Ok(());
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: media.local,
                contents,
            },
        );
        media
            .rtc
            .handle_input(input)
            .map_err(|e| format!("str0m: {e}"))
    }

    fn on_access_unit(&mut self, access_unit: AccessUnit) {
        self.last_media = Some(access_unit.arrival);
        if !access_unit.complete || (self.waiting_for_keyframe && !access_unit.keyframe) {
            self.waiting_for_keyframe = true;
            self.request_keyframe();
            return;
        }
        self.waiting_for_keyframe = false;
        self.delivered = true;
        self.outbox.push(ProbeEvent::Frame {
            keyframe: access_unit.keyframe,
            bytes: access_unit.byte_len(),
            rtp_timestamp: access_unit.rtp_timestamp,
        });
    }

    fn request_keyframe(&mut self) {
        let now = Instant::now();
        if self
            .last_keyframe_request
            .is_some_and(|at| now.duration_since(at) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        self.last_keyframe_request = Some(now);
        if let Some(media) = self.media.as_mut()
            && let Some(ssrc) = media.video_ssrc
            && let Some(stream) = media.rtc.direct_api().stream_rx(&ssrc)
        {
            stream.request_keyframe(KeyframeRequestKind::Pli);
        }
    }

    /// Until the first frame: the session's first-frame timeout; then its media timeout.
    fn media_deadline(&self) -> (Instant, String) {
        match self.last_media.filter(|_| self.delivered) {
            Some(last) => (
                last + self.options.media_timeout,
                format!("no media for {:?}", self.options.media_timeout),
            ),
            None => (
                self.started + self.options.first_frame_timeout,
                format!(
                    "no video frame within {:?}",
                    self.options.first_frame_timeout
                ),
            ),
        }
    }
}

/// A str0m `Rtc` in RTP mode (so that our depacketiser does the H.264 work, as in our client)
/// that answers `offer`, with one host candidate on a fresh socket at `bind`.
async fn answer_offer(
    offer: &str,
    bind: SocketAddr,
) -> Result<(Media, String, IceCandidateInit), String> {
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| format!("cannot parse the gateway's offer: {e}"))?;
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot bind a UDP socket on {bind}: {e}"))?;
    let local = socket
        .local_addr()
        .map_err(|e| format!("UDP socket address: {e}"))?;
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    let candidate =
        Candidate::host(local, "udp").map_err(|e| format!("host candidate {local}: {e}"))?;
    let candidate = rtc
        .add_local_candidate(candidate)
        .map(|c| c.to_sdp_string())
        .ok_or_else(|| format!("str0m refused the host candidate {local}"))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| format!("cannot answer the gateway's offer: {e}"))?;
    let answer = answer.to_sdp_string();
    // Trickled like a browser's: tied to the first m-line of the answer.
    let first_mid = answer
        .lines()
        .find_map(|line| line.strip_prefix("a=mid:"))
        .map(|mid| mid.trim().to_owned());
    let local_candidate = IceCandidateInit {
        candidate,
        sdp_mid: first_mid,
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    let media = Media {
        rtc,
        socket,
        local,
        next_timeout: Instant::now(),
        buffer: vec![0; RECEIVE_BUFFER_BYTES],
        video_ssrcs: HashMap::new(),
        video_ssrc: None,
    };
    Ok((media, answer, local_candidate))
}

/// What one drain of str0m produced.
#[derive(Default)]
struct Drained {
    connected: bool,
    access_units: Vec<AccessUnit>,
}

/// Poll str0m until it only has a timeout left: send its datagrams, depacketise its RTP.
fn drain_rtc(
    media: &mut Media,
    depacketizer: &mut H264Depacketizer,
    out: &mut Drained,
) -> Result<(), String> {
    loop {
        match media.rtc.poll_output().map_err(|e| format!("str0m: {e}"))? {
            Output::Timeout(at) => {
                media.next_timeout = at;
                return Ok(());
            }
            Output::Transmit(transmit) => {
                // UDP: a full socket buffer drops the datagram, as the network would.
                let _ = media
                    .socket
                    .try_send_to(&transmit.contents, transmit.destination);
            }
            Output::Event(Event::RtpPacket(packet)) => {
                if is_video(media, packet.header.ssrc) {
                    media.video_ssrc = Some(packet.header.ssrc);
                    depacketizer.push(to_proto_packet(packet));
                    while let Some(access_unit) = depacketizer.poll() {
                        out.access_units.push(access_unit);
                    }
                }
            }
            Output::Event(Event::Connected) => out.connected = true,
            Output::Event(_) => {}
        }
    }
}

/// Tells the gateway we are leaving, as a browser closing its peer connection does: str0m
/// queues an RTCP BYE, an SCTP shutdown and a DTLS close_notify without waiting for replies,
/// and the gateway ends the session at once instead of waiting for ICE to give up on us.
fn close_rtc(media: &mut Media, depacketizer: &mut H264Depacketizer) {
    if media.rtc.close().is_ok() {
        let _ = drain_rtc(media, depacketizer, &mut Drained::default());
        // What the close queued on a timer (if anything) goes out on the next tick.
        if media.rtc.is_alive()
            && media
                .rtc
                .handle_input(Input::Timeout(Instant::now()))
                .is_ok()
        {
            let _ = drain_rtc(media, depacketizer, &mut Drained::default());
        }
    }
    media.rtc.disconnect();
}

fn is_video(media: &mut Media, ssrc: Ssrc) -> bool {
    if let Some(known) = media.video_ssrcs.get(&ssrc) {
        return *known;
    }
    let mid = media
        .rtc
        .direct_api()
        .stream_rx(&ssrc)
        .map(|stream| stream.mid());
    let video = mid
        .and_then(|mid| media.rtc.media(mid))
        .is_some_and(|m| m.kind().is_video());
    media.video_ssrcs.insert(ssrc, video);
    video
}

fn to_proto_packet(packet: Str0mRtpPacket) -> RtpPacket {
    RtpPacket {
        sequence: packet.header.sequence_number,
        timestamp: packet.header.timestamp,
        marker: packet.header.marker,
        payload_type: *packet.header.payload_type,
        ssrc: *packet.header.ssrc,
        payload: packet.payload.to_vec(),
        arrival: packet.timestamp,
    }
}

async fn receive(media: &mut Option<Media>) -> std::io::Result<(usize, SocketAddr)> {
    match media {
        Some(media) => media.socket.recv_from(&mut media.buffer).await,
        None => std::future::pending().await,
    }
}

/// A deadline that never comes (a day is beyond any benchmark).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
