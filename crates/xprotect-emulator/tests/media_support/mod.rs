//! A str0m answerer on its own loopback UDP socket, standing in for a browser, and helpers to
//! drive it and the engine's events together. Shared by the `media_*` tests.
#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RawPacket;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use uuid::Uuid;
use xprotect_emulator::media::{
    self, IceCandidateInit, MediaEngineConfig, MediaEvent, MediaHandle, SessionOffer,
};

/// The media engine with the default cameras, and its events.
pub async fn start_default_engine() -> (MediaHandle, mpsc::Receiver<MediaEvent>) {
    media::start(MediaEngineConfig::default())
        .await
        .expect("engine")
}

/// A passive answerer to the engine's `offer` for session `id`, with its answer and its ICE
/// candidate applied to the engine.
pub async fn answer_offer(engine: &MediaHandle, id: Uuid, offer: &SessionOffer) -> Answerer {
    let (answerer, answer, candidate) = Answerer::answer(offer, DtlsRole::Passive).await;
    engine.apply_answer(id, &answer).await.expect("answer");
    engine
        .add_remote_candidate(id, candidate, None)
        .await
        .expect("candidate");
    answerer
}

/// Which DTLS role the answerer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// `a=setup:active`: the answerer is the DTLS client (what browsers do).
    Active,
    /// `a=setup:passive`: the answerer is the DTLS server (what our client does by default).
    Passive,
}

/// One access unit as the answerer received it.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// The RTP timestamp (str0m's media time in the 90 kHz base is the raw wire value).
    pub rtp: u64,
    /// Annex-B access unit.
    pub data: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

/// One audio packet as the answerer received it.
#[derive(Debug, Clone)]
pub struct ReceivedAudio {
    /// The RTP timestamp (8 kHz samples).
    pub rtp: u64,
    /// The payload type.
    pub pt: u8,
    /// The payload (PCMU codes).
    pub data: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

pub struct Answerer {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub addr: SocketAddr,
    pub frames: Vec<ReceivedFrame>,
    /// Audio packets, in arrival order.
    pub audio: Vec<ReceivedAudio>,
    /// Video RTP timestamps seen on the wire, in arrival order of packets.
    pub wire_timestamps: Vec<u32>,
    /// Audio (PCMU, payload type 0) RTP timestamps seen on the wire.
    pub audio_wire_timestamps: Vec<u32>,
    pub channel: Option<ChannelId>,
    pub channel_open: bool,
    pub connected: bool,
    /// STUN datagrams received (binding requests and responses): ICE is alive while they come.
    pub stun_received: usize,
    /// The engine closed the connection (DTLS close_notify or SCTP association lost).
    pub closed: bool,
    next_timeout: Instant,
}

impl Answerer {
    /// A receive-only answerer for `offer`, answering with `role`. Its own candidate is NOT in the
    /// answer: the test passes it through `add_remote_candidate` like trickle ICE.
    pub async fn answer(offer: &SessionOffer, role: DtlsRole) -> (Self, String, IceCandidateInit) {
        Self::answer_from(offer, role, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// As [`Self::answer`], from a socket bound to `bind` (e.g. the port of an earlier client).
    pub async fn answer_from(
        offer: &SessionOffer,
        role: DtlsRole,
        bind: SocketAddr,
    ) -> (Self, String, IceCandidateInit) {
        let socket = UdpSocket::bind(bind).await.expect("bind answerer socket");
        let addr = socket.local_addr().expect("answerer address");
        // PCMU as a browser (and the webrtc-rs client) accepts it; str0m's defaults lack it.
        let mut rtc = Rtc::builder()
            .enable_raw_packets(true)
            .enable_pcmu(true, false)
            .build(Instant::now());
        // str0m answers `passive` to `actpass`; to make it the DTLS client, show it an offer that
        // says `passive` (it then answers `active`). The engine still holds its `actpass` offer.
        let offer_text = match role {
            DtlsRole::Passive => offer.offer_sdp.clone(),
            DtlsRole::Active => offer
                .offer_sdp
                .replace("a=setup:actpass", "a=setup:passive"),
        };
        let sdp_offer = SdpOffer::from_sdp_string(&offer_text).expect("engine offer parses");
        let answer: SdpAnswer = rtc
            .sdp_api()
            .accept_offer(sdp_offer)
            .expect("offer accepted");
        let answer = answer.to_sdp_string();
        let expected = match role {
            DtlsRole::Active => "a=setup:active",
            DtlsRole::Passive => "a=setup:passive",
        };
        assert!(
            answer.contains(expected),
            "answer lacks {expected}:\n{answer}"
        );

        for c in &offer.local_candidates {
            let parsed = Candidate::from_sdp_string(&c.candidate).expect("engine candidate parses");
            rtc.add_remote_candidate(parsed);
        }
        let local = Candidate::host(addr, "udp").expect("answerer host candidate");
        let local = rtc
            .add_local_candidate(local)
            .expect("candidate added")
            .clone();
        let init = IceCandidateInit {
            candidate: local.to_sdp_string(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        let answerer = Self {
            rtc,
            socket,
            addr,
            frames: Vec::new(),
            audio: Vec::new(),
            wire_timestamps: Vec::new(),
            audio_wire_timestamps: Vec::new(),
            channel: None,
            channel_open: false,
            connected: false,
            stun_received: 0,
            closed: false,
            next_timeout: Instant::now(),
        };
        (answerer, answer, init)
    }

    /// Opens the `commands` channel the XProtect sample opens after answering.
    pub fn open_commands_channel(&mut self) {
        let mut api = self.rtc.sdp_api();
        let id = api.add_channel_with_config(ChannelConfig {
            label: "commands".into(),
            protocol: "videoos-commands".into(),
            ..ChannelConfig::default()
        });
        assert!(
            api.apply().is_none(),
            "the offer's SCTP section makes renegotiation unneeded"
        );
        self.channel = Some(id);
    }

    /// Sends `text` on the commands channel.
    pub fn send_text(&mut self, text: &str) {
        let id = self.channel.expect("channel created");
        let mut ch = self.rtc.channel(id).expect("channel open");
        ch.write(false, text.as_bytes()).expect("write to channel");
    }

    /// Polls the Rtc until it only has a timeout left.
    pub fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().expect("answerer poll") {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.handle_event(e),
            }
        }
    }

    fn handle_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::Closed => self.closed = true,
            Event::MediaData(d) if d.params.spec().codec.is_audio() => {
                self.audio.push(ReceivedAudio {
                    rtp: d.time.numer(),
                    pt: *d.pt,
                    data: d.data.to_vec(),
                    at: Instant::now(),
                })
            }
            Event::MediaData(d) => self.frames.push(ReceivedFrame {
                rtp: d.time.numer(),
                data: d.data.to_vec(),
                at: Instant::now(),
            }),
            Event::ChannelOpen(id, _) if Some(id) == self.channel => self.channel_open = true,
            Event::RawPacket(raw) => {
                if let RawPacket::RtpRx(header, _) = *raw {
                    if *header.payload_type == 0 {
                        self.audio_wire_timestamps.push(header.timestamp);
                    } else {
                        self.wire_timestamps.push(header.timestamp);
                    }
                }
            }
            _ => {}
        }
    }

    /// Runs the answerer, collecting engine events, until `done` or `limit` passes.
    pub async fn run_until(
        &mut self,
        events: &mut mpsc::Receiver<MediaEvent>,
        seen: &mut Vec<MediaEvent>,
        limit: Duration,
        mut done: impl FnMut(&Self, &[MediaEvent]) -> bool,
    ) {
        let give_up = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 2048];
        self.drain();
        while !done(self, seen) {
            let wake = tokio::time::Instant::from_std(self.next_timeout).min(give_up);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let (n, source) = r.expect("answerer receive");
                    // RFC 7983: a first byte of 0..=3 is STUN.
                    if buf.first().is_some_and(|b| *b < 4) {
                        self.stun_received += 1;
                    }
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.addr, contents,
                        });
                        self.rtc.handle_input(input).expect("answerer input");
                    }
                }
                e = events.recv() => seen.push(e.expect("engine event stream open")),
                () = tokio::time::sleep_until(wake) => {
                    assert!(tokio::time::Instant::now() < give_up, "timed out after {limit:?}; events: {seen:?}");
                    self.rtc.handle_input(Input::Timeout(Instant::now())).expect("answerer timeout");
                }
            }
            self.drain();
        }
    }
}

/// Waits for an engine event matching `pred`, recording all events.
pub async fn wait_event(
    events: &mut mpsc::Receiver<MediaEvent>,
    seen: &mut Vec<MediaEvent>,
    limit: Duration,
    mut pred: impl FnMut(&MediaEvent) -> bool,
) -> MediaEvent {
    if let Some(e) = seen.iter().find(|e| pred(e)) {
        return e.clone();
    }
    tokio::time::timeout(limit, async {
        loop {
            let e = events.recv().await.expect("engine event stream open");
            seen.push(e.clone());
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no matching event within {limit:?}; seen: {seen:?}"))
}

/// The session id of an event.
pub fn session_of(e: &MediaEvent) -> Uuid {
    match e {
        MediaEvent::Connected { session_id }
        | MediaEvent::DataChannelOpen { session_id, .. }
        | MediaEvent::DataChannelMessage { session_id, .. }
        | MediaEvent::Disconnected { session_id }
        | MediaEvent::Closed { session_id, .. }
        | MediaEvent::FirstFrameSent { session_id, .. }
        | MediaEvent::FirstAudioSent { session_id, .. }
        | MediaEvent::PlaybackEnded { session_id, .. }
        | MediaEvent::IceGathered { session_id, .. }
        | MediaEvent::IceSelected { session_id, .. } => *session_id,
    }
}
