//! The client peer against an independent WebRTC stack: a minimal str0m offerer playing the
//! gateway on real loopback UDP (ICE, DTLS, SRTP, SCTP), sending real H.264 from openh264
//! with RTP timestamps in milliseconds (the XProtect quirk, PROTOCOL.md §4.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use xprotect_client::media::{DtlsRole, IceCandidateInit, Peer, PeerConfig, PeerEvent, TrackKind};

/// Frames the offerer sends; the test needs at least [`MIN_FRAMES`] of them.
const FRAMES: u32 = 60;
const MIN_FRAMES: usize = 50;
/// One keyframe each 25 frames, as asked of the camera emulation.
const GOP: u32 = 25;
/// Frame duration in the RTP clock: milliseconds at 25 fps.
const FRAME_MS: u32 = 40;
/// Pace of sending: faster than real time keeps the test short; RTP time is independent.
const SEND_INTERVAL: Duration = Duration::from_millis(5);
/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(15);
/// The pre-negotiated channel that gives the offer its `m=application` section. An id far
/// from the small ids either side allocates in-band, so the client's channel never collides.
const PRENEGOTIATED_CHANNEL_ID: u16 = 1000;

/// What the offerer tells the test.
#[derive(Debug)]
enum OffererEvent {
    Connected,
    KeyframeRequest,
    ChannelOpen { label: String, protocol: String },
    ChannelText(String),
}

/// H.264 access units (Annex B), encoded once: 320x240, an IDR each [`GOP`] frames.
fn encode_frames() -> Vec<Vec<u8>> {
    use openh264::encoder::Encoder;
    use openh264::formats::YUVBuffer;
    const W: usize = 320;
    const H: usize = 240;
    let mut encoder = Encoder::new().expect("openh264 encoder");
    (0..FRAMES)
        .map(|i| {
            // A moving gradient, so P-frames carry data.
            let mut yuv = vec![128u8; W * H * 3 / 2];
            for y in 0..H {
                for x in 0..W {
                    yuv[y * W + x] = ((x + y + i as usize * 4) % 256) as u8;
                }
            }
            if i % GOP == 0 {
                encoder.force_intra_frame();
            }
            let source = YUVBuffer::from_vec(yuv, W, H);
            encoder.encode(&source).expect("encode").to_vec()
        })
        .collect()
}

/// The gateway stand-in: a str0m `Rtc` on one loopback UDP socket.
struct Offerer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    video: Mid,
}

impl Offerer {
    async fn new() -> (Offerer, String, SdpPendingOffer, Vec<String>) {
        str0m::crypto::from_feature_flags().install_process_default();
        let mut config = Rtc::builder().clear_codecs();
        config
            .codec_config()
            .add_h264(96.into(), None, true, 0x42e01f);
        let mut rtc = config.build(Instant::now());
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("local addr");
        let candidate = Candidate::host(local, "udp").expect("candidate");
        rtc.add_local_candidate(candidate.clone());
        let mut change = rtc.sdp_api();
        let video = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("xprotect".into()),
            Some("video0".into()),
            None,
        );
        change.add_channel_with_config(ChannelConfig {
            label: "prenegotiated".into(),
            negotiated: Some(PRENEGOTIATED_CHANNEL_ID),
            ..Default::default()
        });
        let (offer, pending) = change.apply().expect("offer");
        // Trickle our candidates instead of embedding them, as the REST gateway does.
        let offer: String = offer
            .to_sdp_string()
            .lines()
            .filter(|line| {
                !line.starts_with("a=candidate") && !line.starts_with("a=end-of-candidates")
            })
            .map(|line| format!("{line}\r\n"))
            .collect();
        let candidates = vec![candidate.to_sdp_string()];
        (
            Offerer {
                rtc,
                socket,
                local,
                video,
            },
            offer,
            pending,
            candidates,
        )
    }

    /// Runs the session: feeds the socket and timers, reports events, sends the frames once
    /// connected, and writes on the client's channel when asked.
    async fn run(
        mut self,
        frames: Vec<Vec<u8>>,
        mut remote_candidates: mpsc::Receiver<String>,
        events: mpsc::Sender<OffererEvent>,
    ) {
        let mut buf = vec![0u8; 2000];
        let mut next_frame: Option<usize> = None;
        let mut pacer = tokio::time::interval(SEND_INTERVAL);
        let mut client_channel: Option<ChannelId> = None;
        loop {
            let timeout = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(event)) => match event {
                        Event::Connected => {
                            next_frame = Some(0);
                            let _ = events.send(OffererEvent::Connected).await;
                        }
                        Event::KeyframeRequest(_) => {
                            let _ = events.send(OffererEvent::KeyframeRequest).await;
                        }
                        Event::ChannelOpen(id, label) => {
                            let protocol = self
                                .rtc
                                .channel(id)
                                .and_then(|c| c.config().map(|c| c.protocol.clone()))
                                .unwrap_or_default();
                            if label == "commands" {
                                client_channel = Some(id);
                            }
                            let _ = events
                                .send(OffererEvent::ChannelOpen { label, protocol })
                                .await;
                        }
                        Event::ChannelData(data) if Some(data.id) == client_channel => {
                            let text = String::from_utf8_lossy(&data.data).into_owned();
                            let _ = events.send(OffererEvent::ChannelText(text)).await;
                        }
                        _ => {}
                    },
                    Err(error) => panic!("str0m failed: {error}"),
                }
            };
            if !self.rtc.is_alive() {
                return;
            }
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(timeout));
            let sending = next_frame.is_some_and(|i| i < frames.len());
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = received else { return };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    });
                    if self.rtc.handle_input(input).is_err() {
                        return;
                    }
                }
                candidate = remote_candidates.recv() => {
                    match candidate.map(|c| Candidate::from_sdp_string(&c)) {
                        Some(Ok(c)) => self.rtc.add_remote_candidate(c),
                        Some(Err(error)) => panic!("client candidate rejected: {error}"),
                        None => return,
                    }
                }
                _ = pacer.tick(), if sending => {
                    let i = next_frame.unwrap_or_default();
                    next_frame = Some(i + 1);
                    let rtp_ms = i as u64 * u64::from(FRAME_MS);
                    let writer = self.rtc.writer(self.video).expect("writer");
                    let pt = writer.payload_params().next().expect("negotiated H.264").pt();
                    writer
                        .write(pt, Instant::now(), MediaTime::new(rtp_ms, Frequency::NINETY_KHZ), frames[i].clone())
                        .expect("write frame");
                }
                _ = sleep => {
                    if self.rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The offerer's events, kept until a test step asks for them (they can come in any order).
struct OffererLog {
    rx: mpsc::Receiver<OffererEvent>,
    unclaimed: Vec<OffererEvent>,
}

impl OffererLog {
    /// Takes the first event (seen earlier or arriving within [`WAIT`]) that `pick` accepts.
    async fn take<T>(&mut self, what: &str, pick: impl Fn(&OffererEvent) -> Option<T>) -> T {
        if let Some(index) = self.unclaimed.iter().position(|e| pick(e).is_some()) {
            let event = self.unclaimed.remove(index);
            return pick(&event).unwrap_or_else(|| unreachable!("position() matched it"));
        }
        let wait = async {
            loop {
                let event = self
                    .rx
                    .recv()
                    .await
                    .unwrap_or_else(|| panic!("offerer stopped before {what}"));
                if let Some(found) = pick(&event) {
                    return found;
                }
                self.unclaimed.push(event);
            }
        };
        tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {what}; unclaimed: {:?}",
                self.unclaimed
            )
        })
    }
}

struct SessionReport {
    offer_to_first_rtp: Duration,
    first_timestamp: u32,
}

/// One complete session with the given DTLS role; asserts the brief's checks.
async fn run_session(role: DtlsRole) -> SessionReport {
    let frames = encode_frames();
    let sent_timestamps: Vec<u32> = (0..FRAMES).map(|i| i * FRAME_MS).collect();

    let (offerer, offer, pending, offerer_candidates) = Offerer::new().await;
    let started = Instant::now();
    let config = PeerConfig {
        dtls_role: role,
        udp_bind_addrs: vec!["127.0.0.1:0".parse().expect("addr")],
        ..PeerConfig::default()
    };
    let (peer, answer, mut events) = Peer::answer(&offer, config).await.expect("answer");
    assert!(
        answer.contains(&format!("a=setup:{}", role.sdp_setup())),
        "answer must claim a=setup:{}:\n{answer}",
        role.sdp_setup()
    );
    let mut offerer = offerer;
    offerer
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).expect("answer parses"),
        )
        .expect("str0m accepts the answer");

    let (candidates_tx, candidates_rx) = mpsc::channel(16);
    let (offerer_tx, offerer_rx) = mpsc::channel(64);
    let mut offerer_events = OffererLog {
        rx: offerer_rx,
        unclaimed: Vec::new(),
    };
    let offerer_task = tokio::spawn(offerer.run(frames, candidates_rx, offerer_tx));

    for candidate in offerer_candidates {
        peer.add_remote_candidate(IceCandidateInit {
            candidate,
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        })
        .await
        .expect("remote candidate");
    }
    peer.add_remote_candidate(IceCandidateInit::default())
        .await
        .expect("end-of-candidates");

    // Drive the client's events: trickle its candidates, collect RTP.
    let mut received: Vec<u32> = Vec::new();
    let mut first_rtp: Option<Duration> = None;
    let mut track_started = false;
    let mut channel_open = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut distinct = std::collections::BTreeSet::new();
    while distinct.len() < MIN_FRAMES || !channel_open {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out: {} frames, channel open {channel_open}",
                    distinct.len()
                )
            })
            .expect("peer events end");
        match event {
            PeerEvent::LocalCandidate(c) => {
                let _ = candidates_tx.send(c.candidate).await;
            }
            PeerEvent::TrackStarted { kind, codec, .. } => {
                assert_eq!(kind, TrackKind::Video);
                assert!(codec.eq_ignore_ascii_case("video/H264"), "codec {codec}");
                track_started = true;
            }
            PeerEvent::Rtp { kind, packet } => {
                assert!(track_started, "TrackStarted precedes RTP");
                assert_eq!(kind, TrackKind::Video);
                first_rtp.get_or_insert_with(|| started.elapsed());
                received.push(packet.timestamp);
                distinct.insert(packet.timestamp);
            }
            PeerEvent::CommandsChannelOpen => channel_open = true,
            PeerEvent::Failed(error) => panic!("peer failed: {error}"),
            _ => {}
        }
    }

    // Timestamps are exactly the millisecond values sent.
    for ts in &distinct {
        assert!(
            sent_timestamps.contains(ts),
            "received timestamp {ts} was never sent"
        );
    }

    // A PLI reached the offerer after the track started, and another on demand.
    offerer_events
        .take("the automatic PLI", |e| {
            matches!(e, OffererEvent::KeyframeRequest).then_some(())
        })
        .await;
    peer.request_keyframe().await.expect("request keyframe");
    offerer_events
        .take("the requested PLI", |e| {
            matches!(e, OffererEvent::KeyframeRequest).then_some(())
        })
        .await;

    // The commands channel carries protocol `videoos-commands`, and our message arrives.
    let (label, protocol) = offerer_events
        .take("the commands channel", |e| match e {
            OffererEvent::ChannelOpen { label, protocol } if label == "commands" => {
                Some((label.clone(), protocol.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!(
        (label.as_str(), protocol.as_str()),
        ("commands", "videoos-commands")
    );
    let command =
        r#"{"ApiVersion":"1.0","type":"request","method":"ptzMove","params":{"direction":"up"}}"#;
    peer.send_command(command.to_owned())
        .await
        .expect("send command");
    let text = offerer_events
        .take("the command text", |e| match e {
            OffererEvent::ChannelText(text) => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(text, command);

    peer.close().await;
    offerer_task.abort();
    SessionReport {
        offer_to_first_rtp: first_rtp.expect("at least one RTP packet"),
        first_timestamp: received.first().copied().unwrap_or(u32::MAX),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_answer_receives_h264_with_millisecond_timestamps() {
    let report = run_session(DtlsRole::Passive).await;
    println!(
        "passive: offer -> first RTP {:.2} ms, first RTP timestamp {}",
        report.offer_to_first_rtp.as_secs_f64() * 1e3,
        report.first_timestamp
    );
    // The passive role is the fix for the lost first IDR: the very first frame arrives.
    assert_eq!(
        report.first_timestamp, 0,
        "the first frame (the IDR) was lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_answer_also_works() {
    let report = run_session(DtlsRole::Active).await;
    println!(
        "active: offer -> first RTP {:.2} ms, first RTP timestamp {}",
        report.offer_to_first_rtp.as_secs_f64() * 1e3,
        report.first_timestamp
    );
}
