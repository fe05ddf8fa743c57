//! WebRTC media sessions over str0m: the emulator's half of PROTOCOL.md §4.
//!
//! One engine task owns one UDP socket and every session on it (str0m's `chat.rs` shape):
//!
//! ```text
//! MediaHandle ──commands (bounded mpsc)──▶ engine task ◀── UDP socket (demux.rs: ufrag, owner)
//!                                          │   ▲
//!      mpsc<MediaEvent> ◀──────────────────┘   └── camera frames (one forwarder per camera)
//! ```
//!
//! The engine is the offerer: send-only H.264 in mid `0`, send-only PCMU/8000 audio next when the
//! session has audio (both in one msid stream), then an SCTP data-channel section;
//! `a=setup:actpass` (either DTLS role is accepted in the answer). Video RTP timestamps count
//! milliseconds from the start reference, in a track declared H264/90000, and audio timestamps
//! count 8 kHz samples from the same reference (PROTOCOL.md §4.2). A microphone's id gives an
//! audio-only session (audio and data channel, no video). Every call on [`MediaHandle`] is a message to the engine, which keeps all
//! `Rtc` state to itself; after any input it drains that `Rtc` to its next timeout.

mod candidate;
mod demux;
mod egress;
mod engine;
mod ice_servers;
mod mids;
mod player;
mod relays;
mod session;
mod stun;
mod stun_client;
mod tracks;
mod turn_client;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use xprotect_proto::wire::{IceServer, Playback, Secret};

use crate::camera::{CameraConfig, CameraHub, EncoderStats, default_cameras};
use crate::playback::{DEFAULT_GOP_CACHE_BYTES, GopCache, GopCacheStats, RecordingTimeline};

pub use candidate::IceCandidateInit;

/// Commands queued to the engine before callers wait. Commands are small and handled in
/// microseconds, so this only absorbs a burst of signaling (e.g. a hundred clients connecting at
/// once, each trickling a few candidates); beyond it callers wait, which is the back-pressure.
pub const COMMAND_CHANNEL_CAPACITY: usize = 256;

/// Events buffered for the consumer. The engine never waits for the consumer (that would stall
/// media for every session), so when this is full events are dropped with a debug log. Sized
/// for a burst of connects/data-channel messages from hundreds of sessions.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Configuration of a media engine.
#[derive(Debug, Clone)]
pub struct MediaEngineConfig {
    /// Where the engine's UDP socket binds. Its address is the host candidate, so it must be a
    /// concrete address (not `0.0.0.0`) unless [`Self::advertised_ips`] is set.
    pub bind: SocketAddr,
    /// Addresses to announce as host candidates instead of the bound address, each with the
    /// socket's port (for a wildcard bind, or behind a port-preserving NAT).
    pub advertised_ips: Vec<IpAddr>,
    /// A session that has not connected this long after its offer is torn down.
    pub connect_timeout: Duration,
    /// A session whose ICE stays disconnected this long is torn down.
    pub disconnect_timeout: Duration,
    /// The cameras sessions can watch.
    pub cameras: Vec<CameraConfig>,
    /// Bound of the shared cache of encoded playback GOPs, in bytes.
    pub gop_cache_bytes: usize,
    /// Microphone id → the camera it is related to. A camera listed here gets an audio track
    /// when the client asks for audio; the microphone's id gives an audio-only session.
    pub microphones: HashMap<Uuid, Uuid>,
    /// Offer only relay candidates (TURN allocations from the session's `iceServers`), as a
    /// gateway behind a firewall that only lets its TURN server through; a session without a
    /// usable TURN server fails.
    pub relay_only: bool,
}

impl Default for MediaEngineConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            advertised_ips: Vec::new(),
            connect_timeout: Duration::from_secs(60),
            disconnect_timeout: Duration::from_secs(30),
            cameras: default_cameras(),
            gop_cache_bytes: DEFAULT_GOP_CACHE_BYTES,
            microphones: HashMap::new(),
            relay_only: false,
        }
    }
}

/// What a signaling request asks the media engine for.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRequest {
    /// The signaling session id; every later call and event names the session by it.
    pub session_id: Uuid,
    /// The device to stream: a camera, or a microphone of
    /// [`MediaEngineConfig::microphones`] for an audio-only session.
    pub camera_id: Uuid,
    /// STUN/TURN servers from the request, for the engine's own gathering: a STUN server gives
    /// a server-reflexive candidate, a TURN server (UDP, long-term credentials) a relay one.
    pub ice_servers: Vec<IceServerSpec>,
    /// Whether the client wants audio (`includeAudio`): honoured for cameras with a related
    /// microphone, live or in playback at speed 1.
    pub include_audio: bool,
    /// Recorded video from this time on, at this speed; `None` for live.
    pub playback: Option<Playback>,
    /// The camera's stream usage (`streamId`) to watch live: "Video stream 2" gets the camera's
    /// second, larger encoding; `None` or anything else the primary. Playback always serves the
    /// primary's recording, whatever the stream.
    pub stream_id: Option<Uuid>,
}

impl SessionRequest {
    /// A live request for `device` with the defaults a browser sends: `includeAudio` true, no
    /// ICE servers, the default stream.
    pub fn live(session_id: Uuid, device: Uuid) -> Self {
        Self {
            session_id,
            camera_id: device,
            ice_servers: Vec::new(),
            include_audio: true,
            playback: None,
            stream_id: None,
        }
    }
}

/// One STUN or TURN server of a session request (the wire's `url`/`urls` dialects merged).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServerSpec {
    /// `stun:host[:port]`, `turn:host[:port][?transport=udp]`.
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN credential (redacted in `Debug`).
    pub credential: Option<Secret>,
}

impl From<&IceServer> for IceServerSpec {
    fn from(server: &IceServer) -> Self {
        Self {
            urls: server.urls.clone(),
            username: server.username.clone(),
            credential: server.credential.as_deref().map(Secret::new),
        }
    }
}

/// The engine's offer for a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOffer {
    /// The SDP offer text (not JSON-wrapped).
    pub offer_sdp: String,
    /// The engine's ICE candidates, ready for a browser's `addIceCandidate` (also in the SDP).
    pub local_candidates: Vec<IceCandidateInit>,
    /// The offer has a video section.
    pub video: bool,
    /// The offer has a PCMU audio section.
    pub audio: bool,
}

/// Something that happened to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum MediaEvent {
    /// ICE and DTLS are up; media flows from the next keyframe.
    Connected {
        /// The session.
        session_id: Uuid,
    },
    /// The client opened a data channel.
    DataChannelOpen {
        /// The session.
        session_id: Uuid,
        /// The channel's label, e.g. `commands`.
        label: String,
        /// The channel's sub-protocol, e.g. `videoos-commands`.
        protocol: String,
    },
    /// A text message arrived on a data channel.
    DataChannelMessage {
        /// The session.
        session_id: Uuid,
        /// The message (binary messages are passed on if they are UTF-8).
        text: String,
    },
    /// ICE lost the client; the session ends unless it comes back within the disconnect timeout.
    Disconnected {
        /// The session.
        session_id: Uuid,
    },
    /// The session's own candidates were gathered (its offer carries them).
    IceGathered {
        /// The session.
        session_id: Uuid,
        /// The URLs of the request's `iceServers` (credentials never leave the engine).
        ice_servers: Vec<String>,
        /// The candidates offered, as `<type> <address>` (e.g. `relay 127.0.0.1:50000`).
        candidates: Vec<String>,
        /// Servers that gave no candidate, and why.
        failures: Vec<String>,
    },
    /// ICE chose the pair DTLS and media take, by candidate type (`host`, `srflx`, `prflx`,
    /// `relay`; a server-reflexive local candidate sends from its host base, so shows `host`).
    IceSelected {
        /// The session.
        session_id: Uuid,
        /// Our side.
        local_type: String,
        /// The client's side.
        remote_type: String,
    },
    /// The session is gone.
    Closed {
        /// The session.
        session_id: Uuid,
        /// Why, in words.
        reason: String,
    },
    /// The first video frame went out (always a keyframe).
    FirstFrameSent {
        /// The session.
        session_id: Uuid,
        /// Its RTP timestamp (0: timestamps count ms from this frame).
        rtp: u32,
        /// The frame's recording time, Unix ms: the client's start reference.
        recording_unix_ms: i64,
    },
    /// The first audio packet went out.
    FirstAudioSent {
        /// The session.
        session_id: Uuid,
        /// Its RTP timestamp: 8 kHz samples since the start reference (PROTOCOL.md §4.2).
        rtp: u32,
        /// Recording time of its first sample, Unix ms.
        recording_unix_ms: i64,
    },
    /// A playback session reached the end of the camera's recordings: nothing more is sent.
    PlaybackEnded {
        /// The session.
        session_id: Uuid,
        /// Recording time of the last frame sent, Unix ms (`None` if there was none).
        last_recording_unix_ms: Option<i64>,
        /// Set when playback stopped because a GOP could not be encoded.
        failure: Option<String>,
    },
}

/// Why a media call failed. The messages are meant for the client that caused them.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// No camera or microphone has this id.
    #[error("unknown camera {0}")]
    UnknownCamera(Uuid),
    /// A microphone was asked for in playback at a speed other than 1: audio plays back only at
    /// speed 1, so the session would have no media.
    #[error("audio plays back only at speed 1 (asked for {0})")]
    AudioSpeed(f64),
    /// No session has this id (never created, or already closed).
    #[error("unknown session {0}")]
    UnknownSession(Uuid),
    /// A session with this id exists already.
    #[error("session {0} exists already")]
    DuplicateSession(Uuid),
    /// The answer SDP was rejected.
    #[error("bad answer SDP: {0}")]
    BadAnswer(String),
    /// The answer arrived for a session that is not waiting for one.
    #[error("session {0} is not waiting for an answer")]
    AnswerNotExpected(Uuid),
    /// The ICE candidate was rejected.
    #[error("bad ICE candidate: {0}")]
    BadCandidate(String),
    /// The engine could not create the offer.
    #[error("cannot create the offer: {0}")]
    Offer(String),
    /// The UDP socket could not be set up.
    #[error("cannot bind the media socket on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration cannot work.
    #[error("bad media configuration: {0}")]
    Config(String),
    /// A camera's encoder could not be created.
    #[error("camera {camera}: {source}")]
    Camera {
        /// The camera.
        camera: Uuid,
        /// The cause.
        source: crate::camera::EncodeError,
    },
    /// The session asked for relay candidates only and no TURN server of its `iceServers` gave one.
    #[error("no relay candidate: {0}")]
    NoRelay(String),
    /// The engine task has stopped.
    #[error("the media engine has stopped")]
    EngineGone,
}

/// Starts a media engine on its own task and returns its handle and event stream.
pub async fn start(
    config: MediaEngineConfig,
) -> Result<(MediaHandle, mpsc::Receiver<MediaEvent>), MediaError> {
    install_crypto_provider();
    let cameras_config = config.cameras.clone();
    let cameras = tokio::task::spawn_blocking(move || {
        let mut ids = cameras_config.iter().map(|c| c.id);
        CameraHub::new(cameras_config.clone()).map_err(|source| MediaError::Camera {
            camera: ids.next().unwrap_or_default(),
            source,
        })
    })
    .await
    .map_err(|e| MediaError::Config(format!("camera setup panicked: {e}")))??;

    let socket = tokio::net::UdpSocket::bind(config.bind)
        .await
        .map_err(|source| MediaError::Bind {
            addr: config.bind,
            source,
        })?;
    let local_addr = socket.local_addr().map_err(|source| MediaError::Bind {
        addr: config.bind,
        source,
    })?;
    let host_addrs = host_candidate_addrs(&config, local_addr)?;

    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let cameras = Arc::new(cameras);
    let gop_cache = Arc::new(GopCache::new(config.gop_cache_bytes));
    let engine = engine::Engine::new(
        socket,
        config.microphones.clone(),
        host_addrs,
        config.connect_timeout,
        config.disconnect_timeout,
        cameras.clone(),
        gop_cache.clone(),
        event_tx,
        config.relay_only,
    );
    tokio::spawn(engine.run(command_rx));
    Ok((
        MediaHandle {
            commands: command_tx,
            local_addr,
            cameras,
            gop_cache,
        },
        event_rx,
    ))
}

fn host_candidate_addrs(
    config: &MediaEngineConfig,
    local: SocketAddr,
) -> Result<Vec<SocketAddr>, MediaError> {
    if !config.advertised_ips.is_empty() {
        return Ok(config
            .advertised_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, local.port()))
            .collect());
    }
    if local.ip().is_unspecified() {
        return Err(MediaError::Config(format!(
            "bound to {local}, which is no usable host candidate: bind a concrete address or set advertised_ips"
        )));
    }
    Ok(vec![local])
}

/// str0m needs a process-wide crypto provider; installing it twice is harmless.
fn install_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// A cheap, cloneable handle to a running media engine.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    commands: mpsc::Sender<engine::Command>,
    local_addr: SocketAddr,
    cameras: Arc<CameraHub>,
    gop_cache: Arc<GopCache>,
}

impl MediaHandle {
    /// Creates a session for a camera and returns the offer to send to the client.
    /// With `iceServers` the offer waits for their candidates (at most a few seconds).
    pub async fn create_session(&self, req: SessionRequest) -> Result<SessionOffer, MediaError> {
        // Names are resolved here, so the engine task never waits on DNS.
        let (servers, skipped) =
            ice_servers::resolve(&req.ice_servers, self.local_addr.is_ipv4()).await;
        self.call(|reply| engine::Command::Create {
            req,
            servers,
            skipped,
            reply,
        })
        .await
    }

    /// Applies the client's answer (SDP text, not JSON-wrapped).
    pub async fn apply_answer(&self, session_id: Uuid, answer_sdp: &str) -> Result<(), MediaError> {
        let answer_sdp = answer_sdp.to_owned();
        self.call(|reply| engine::Command::Answer {
            session_id,
            answer_sdp,
            reply,
        })
        .await
    }

    /// Adds a client ICE candidate; it may arrive before the answer (it is kept until then).
    /// `twin_ip` is the signaling request's X-Forwarded-For or remote address: an mDNS (`.local`)
    /// candidate is replaced by a twin with that address (PROTOCOL.md §4.5).
    pub async fn add_remote_candidate(
        &self,
        session_id: Uuid,
        candidate: IceCandidateInit,
        twin_ip: Option<IpAddr>,
    ) -> Result<(), MediaError> {
        self.call(|reply| engine::Command::Candidate {
            session_id,
            candidate,
            twin_ip,
            reply,
        })
        .await
    }

    /// Closes a session (no error if it is already gone).
    pub async fn close_session(&self, session_id: Uuid) {
        let _ = self
            .call(|reply| engine::Command::Close { session_id, reply })
            .await;
    }

    /// Stops sending RTP on a session for good while its ICE, DTLS and data channel stay up (an
    /// expired token, or an injected fault).
    pub async fn stop_media(&self, session_id: Uuid) -> Result<(), MediaError> {
        self.call(|reply| engine::Command::StopMedia { session_id, reply })
            .await
    }

    /// The engine's UDP socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The encoder counters of every camera encoding (frames encoded, keyframes, subscribers),
    /// by camera, primary stream first.
    pub fn encoder_stats(&self) -> Vec<EncoderStats> {
        self.cameras.stats()
    }

    /// The cameras: their encodings and PTZ heads. Holding the hub does not keep the engine
    /// running (it is not the command channel).
    pub fn cameras(&self) -> Arc<CameraHub> {
        self.cameras.clone()
    }

    /// The recordings playback can serve from `camera_id`.
    pub fn recordings(&self, camera_id: Uuid) -> Option<RecordingTimeline> {
        self.cameras
            .get(&camera_id)
            .map(|c| c.config().recordings.clone())
    }

    /// Counters of the shared playback GOP cache.
    pub fn gop_cache_stats(&self) -> GopCacheStats {
        self.gop_cache.stats()
    }

    /// The number of open sessions.
    pub async fn session_count(&self) -> Result<usize, MediaError> {
        self.call(|reply| engine::Command::Count { reply }).await
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, MediaError>>) -> engine::Command,
    ) -> Result<T, MediaError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| MediaError::EngineGone)?;
        response.await.map_err(|_| MediaError::EngineGone)?
    }
}
