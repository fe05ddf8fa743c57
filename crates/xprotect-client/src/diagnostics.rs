//! What a running session can tell about itself: the statistics types behind `--stats`, the
//! status line and `doctor`, all serialisable as JSON.
//!
//! ```text
//!  Session ──stats()──▶ session driver ──Peer::stats()──▶ peer driver ──get_stats()──▶ webrtc-rs
//!     │                      │ frames, bytes, jitter, warnings        │ RTP counters, NACK/PLI,
//!     ▼                      ▼                                        ▼ ICE candidates and pair
//!  SessionStats { frames, …, peer: Some(PeerStats { inbound, selected_pair, candidates }) }
//! ```
//!
//! [`StatsSampler`] turns successive [`SessionStats`] into [`StatsSnapshot`]s, the JSON lines of
//! `record --stats`, with the bitrate over each interval.

use serde::Serialize;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::media::TrackKind;
use crate::session::SessionCommand;

/// How long a stats request may take. It is two in-process round trips (session driver, peer
/// driver) and one lock of the WebRTC core; only a wedged task takes longer.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// The type of an ICE candidate (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateType {
    /// An address of a local interface.
    Host,
    /// The address a STUN server saw (behind a NAT).
    Srflx,
    /// An address learnt from a peer's connectivity check.
    Prflx,
    /// An address on a TURN server.
    Relay,
    /// Not given or not recognised.
    Unknown,
}

impl CandidateType {
    /// From the `typ` word of a candidate line.
    pub fn from_typ(typ: &str) -> Self {
        match typ.to_ascii_lowercase().as_str() {
            "host" => Self::Host,
            "srflx" => Self::Srflx,
            "prflx" => Self::Prflx,
            "relay" => Self::Relay,
            _ => Self::Unknown,
        }
    }

    /// The RFC's short name (`host`, `srflx`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CandidateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a candidate's address can be reached from, which decides whether two peers on
/// different networks can ever connect over it (PROTOCOL.md §4.5, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressScope {
    /// 127.0.0.0/8 or ::1: this machine only.
    Loopback,
    /// RFC 1918, CGNAT 100.64/10 or IPv6 unique-local: the same site or VPN only.
    Private,
    /// 169.254/16 or fe80::/10: the same link only.
    LinkLocal,
    /// Routable on the internet.
    Public,
    /// A `<uuid>.local` name a browser put in place of its address: only resolvable by mDNS on
    /// the same network segment.
    Mdns,
    /// Neither an IP address nor a `.local` name.
    Unknown,
}

impl AddressScope {
    /// Classifies a candidate address as written in a candidate line.
    pub fn of(address: &str) -> Self {
        let address = address.trim().trim_start_matches('[').trim_end_matches(']');
        if address.to_ascii_lowercase().ends_with(".local") {
            return Self::Mdns;
        }
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                let [a, b, ..] = ip.octets();
                if ip.is_loopback() {
                    Self::Loopback
                } else if ip.is_link_local() {
                    Self::LinkLocal
                } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
                    Self::Private
                } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                    Self::Unknown
                } else {
                    Self::Public
                }
            }
            Ok(IpAddr::V6(ip)) => {
                let first = ip.segments()[0];
                if ip.is_loopback() {
                    Self::Loopback
                } else if first & 0xffc0 == 0xfe80 {
                    Self::LinkLocal
                } else if first & 0xfe00 == 0xfc00 {
                    Self::Private
                } else if ip.is_unspecified() || ip.is_multicast() {
                    Self::Unknown
                } else {
                    Self::Public
                }
            }
            Err(_) => Self::Unknown,
        }
    }

    /// A short name for reports (`loopback`, `private`, `mDNS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Public => "public",
            Self::Mdns => "mDNS",
            Self::Unknown => "unknown",
        }
    }
}

/// One ICE candidate, ours or the gateway's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateInfo {
    /// host, srflx, prflx or relay.
    #[serde(rename = "type")]
    pub candidate_type: CandidateType,
    /// IP address or `.local` name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// Who can reach the address.
    pub scope: AddressScope,
}

impl CandidateInfo {
    /// Parses an SDP candidate attribute (`candidate:<foundation> <component> <transport>
    /// <priority> <address> <port> typ <type> …`, with or without the `a=` / `candidate:`
    /// prefix). `None` for an end-of-candidates marker or a line too short to be one.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let line = line.strip_prefix("candidate:").unwrap_or(line);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (protocol, address, port) = match fields.as_slice() {
            [
                _foundation,
                _component,
                protocol,
                _priority,
                address,
                port,
                ..,
            ] => (*protocol, *address, port.parse::<u16>().ok()?),
            _ => return None,
        };
        let candidate_type = fields
            .windows(2)
            .find(|pair| pair[0] == "typ")
            .map_or(CandidateType::Unknown, |pair| {
                CandidateType::from_typ(pair[1])
            });
        Some(Self {
            candidate_type,
            address: address.to_owned(),
            port,
            protocol: protocol.to_ascii_lowercase(),
            scope: AddressScope::of(address),
        })
    }
}

impl std::fmt::Display for CandidateInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{}/{} ({})",
            self.candidate_type,
            self.address,
            self.port,
            self.protocol,
            self.scope.as_str()
        )
    }
}

/// The candidate pair ICE selected: the path media takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectedPair {
    /// Our end.
    pub local: CandidateInfo,
    /// The gateway's end.
    pub remote: CandidateInfo,
    /// The latest STUN round-trip time on the pair, when one was measured.
    pub rtt_ms: Option<f64>,
    /// Packets (RTP, RTCP, DTLS, STUN) received on the pair.
    pub packets_received: u64,
    /// Bytes received on the pair.
    pub bytes_received: u64,
}

/// One received RTP stream, as webrtc-rs counts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundTrackStats {
    /// Video or audio.
    pub kind: TrackKindName,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets lost (expected − received, RFC 3550 §6.4.1; negative with duplicates), as of the
    /// last receiver report we sent (one a second).
    pub packets_lost: i64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// NACK packets we sent (retransmission requests).
    pub nack_count: u32,
    /// PLIs we sent (keyframe requests).
    pub pli_count: u32,
    /// FIRs we sent.
    pub fir_count: u32,
}

/// [`TrackKind`] as a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKindName {
    /// Video.
    Video,
    /// Audio.
    Audio,
}

impl From<TrackKind> for TrackKindName {
    fn from(kind: TrackKind) -> Self {
        match kind {
            TrackKind::Video => Self::Video,
            TrackKind::Audio => Self::Audio,
        }
    }
}

/// What the WebRTC stack knows about the connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerStats {
    /// Each received RTP stream.
    pub inbound: Vec<InboundTrackStats>,
    /// The selected candidate pair, once ICE has one.
    pub selected_pair: Option<SelectedPair>,
    /// Our gathered candidates.
    pub local_candidates: Vec<CandidateInfo>,
    /// The gateway's candidates (those it signaled; peer-reflexive ones are learnt, not sent).
    pub remote_candidates: Vec<CandidateInfo>,
}

impl PeerStats {
    /// The video stream's counters, if video is flowing.
    pub fn video(&self) -> Option<&InboundTrackStats> {
        self.inbound
            .iter()
            .find(|track| track.kind == TrackKindName::Video)
    }

    /// Packets lost over all streams (0 when none is reported).
    pub fn packets_lost(&self) -> i64 {
        self.inbound.iter().map(|track| track.packets_lost).sum()
    }
}

/// A snapshot of one session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionStats {
    /// The gateway's session id, once created.
    pub session_id: Option<String>,
    /// Whether ICE and DTLS are up.
    pub connected: bool,
    /// Video frames delivered (complete access units, from the first keyframe on).
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Bytes of H.264 in the delivered frames.
    pub video_bytes: u64,
    /// Audio packets delivered.
    pub audio_packets: u64,
    /// The time of the last delivered frame (recording time for playback).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_frame_time: Option<OffsetDateTime>,
    /// Interarrival jitter of the video RTP (RFC 3550 §6.4.1) in milliseconds, computed on
    /// XProtect's millisecond RTP clock (webrtc-rs computes its own at the SDP's 90 kHz, which
    /// does not fit a gateway that counts milliseconds).
    pub video_jitter_ms: f64,
    /// Warnings the session reported.
    pub warnings: u64,
    /// The WebRTC stack's view; `None` before the gateway's offer was answered.
    pub peer: Option<PeerStats>,
}

/// A stats request could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StatsError {
    /// The session has ended.
    #[error("the session has ended")]
    Closed,
    /// The session's driver did not answer in time.
    #[error("the session did not report its statistics within {0:?}")]
    Timeout(Duration),
}

/// A cloneable handle that asks a running session for its [`SessionStats`] from any task.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    commands: mpsc::Sender<SessionCommand>,
}

impl StatsHandle {
    pub(crate) fn new(commands: mpsc::Sender<SessionCommand>) -> Self {
        Self { commands }
    }

    /// The session's statistics now.
    ///
    /// # Errors
    ///
    /// [`StatsError::Closed`] once the session ended, [`StatsError::Timeout`] if it is stuck.
    pub async fn stats(&self) -> Result<SessionStats, StatsError> {
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.commands
                .send(SessionCommand::Stats(reply))
                .await
                .map_err(|_| StatsError::Closed)?;
            answer.await.map_err(|_| StatsError::Closed)
        };
        tokio::time::timeout(STATS_TIMEOUT, exchange)
            .await
            .map_err(|_| StatsError::Timeout(STATS_TIMEOUT))?
    }
}

/// Counters of a session that outlives its gateway sessions (reconnects, make-before-break
/// replacements); zero for a single session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReconnectCounters {
    /// Gateway sessions started in all.
    pub sessions_started: u64,
    /// Reconnects after a loss.
    pub reconnects: u64,
    /// Planned replacements (a WebSocket session renewed for a fresh token).
    pub replacements: u64,
}

/// One line of `record --stats`: the session's state at `time`, with rates over the interval
/// since the previous line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// When the snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Seconds since the recording started.
    pub elapsed_s: f64,
    /// `true` on the last line, written when the recording ends.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Video frames so far.
    pub frames: u64,
    /// Keyframes so far.
    pub keyframes: u64,
    /// H.264 bytes so far.
    pub bytes: u64,
    /// Video bitrate over the interval, bits per second.
    pub bitrate_bps: f64,
    /// Frames per second over the interval.
    pub fps: f64,
    /// Time of the last frame.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_frame_time: Option<OffsetDateTime>,
    /// Packets lost so far (all streams).
    pub packets_lost: i64,
    /// Reconnect counters.
    #[serde(flatten)]
    pub reconnect: ReconnectCounters,
    /// Access-token refreshes so far.
    pub token_refreshes: u64,
    /// Warnings so far.
    pub warnings: u64,
    /// The session's own report; when it could not be asked (it ended), the last one it gave.
    pub session: Option<SessionStats>,
}

/// Turns successive [`SessionStats`] into [`StatsSnapshot`]s with interval rates.
#[derive(Debug, Clone)]
pub struct StatsSampler {
    started: Instant,
    previous: Option<(Instant, u64, u64)>,
    last: Option<SessionStats>,
    /// What earlier gateway sessions counted (a lasting session replaces them; each new one
    /// counts from zero).
    earlier: Totals,
}

/// Counters summed over gateway sessions that ended.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    frames: u64,
    keyframes: u64,
    bytes: u64,
    warnings: u64,
    packets_lost: i64,
}

impl StatsSampler {
    /// Rates count from `started` (when recording began).
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            previous: None,
            last: None,
            earlier: Totals::default(),
        }
    }

    /// A snapshot taken at `now` (`wall` on the wall clock). `session` is `None` when the
    /// session could not be asked: the counters then repeat the last known values. When the
    /// report comes from another gateway session than the last one (a reconnect or a
    /// replacement), the last one's counts are kept, so the totals only grow; what the old
    /// session delivered after its last report is not counted.
    pub fn sample(
        &mut self,
        now: Instant,
        wall: OffsetDateTime,
        session: Option<SessionStats>,
        reconnect: ReconnectCounters,
        token_refreshes: u64,
        is_final: bool,
    ) -> StatsSnapshot {
        if let Some(stats) = &session {
            if let Some(last) = &self.last
                && last.session_id.is_some()
                && last.session_id != stats.session_id
            {
                self.earlier.frames += last.frames;
                self.earlier.keyframes += last.keyframes;
                self.earlier.bytes += last.video_bytes;
                self.earlier.warnings += last.warnings;
                self.earlier.packets_lost += last.peer.as_ref().map_or(0, PeerStats::packets_lost);
            }
            self.last = Some(stats.clone());
        }
        let current = self.last.clone().unwrap_or_default();
        let earlier = self.earlier;
        let known = SessionStats {
            frames: earlier.frames + current.frames,
            keyframes: earlier.keyframes + current.keyframes,
            video_bytes: earlier.bytes + current.video_bytes,
            warnings: earlier.warnings + current.warnings,
            ..current
        };
        let packets_lost =
            earlier.packets_lost + known.peer.as_ref().map_or(0, PeerStats::packets_lost);
        let (since, frames_before, bytes_before) = self.previous.unwrap_or((self.started, 0, 0));
        let interval = now.saturating_duration_since(since).as_secs_f64();
        let rate = |delta: u64| {
            if interval > 0.0 {
                delta as f64 / interval
            } else {
                0.0
            }
        };
        let bitrate_bps = rate(known.video_bytes.saturating_sub(bytes_before)) * 8.0;
        let fps = rate(known.frames.saturating_sub(frames_before));
        self.previous = Some((now, known.frames, known.video_bytes));
        StatsSnapshot {
            time: wall,
            elapsed_s: now.saturating_duration_since(self.started).as_secs_f64(),
            is_final,
            frames: known.frames,
            keyframes: known.keyframes,
            bytes: known.video_bytes,
            bitrate_bps,
            fps,
            last_frame_time: known.last_frame_time,
            packets_lost,
            reconnect,
            token_refreshes,
            warnings: known.warnings,
            session: session.or_else(|| self.last.clone()),
        }
    }
}

/// RFC 3550 §6.4.1 interarrival jitter on a clock the caller names (`units_per_second`):
/// XProtect's video RTP counts milliseconds, its audio 8 kHz samples (PROTOCOL.md §4.2).
#[derive(Debug, Clone, Copy)]
pub struct JitterEstimator {
    units_per_second: f64,
    last: Option<(Instant, u32)>,
    jitter_units: f64,
}

impl JitterEstimator {
    /// An estimator for an RTP clock of `units_per_second`.
    pub fn new(units_per_second: f64) -> Self {
        Self {
            units_per_second,
            last: None,
            jitter_units: 0.0,
        }
    }

    /// Feeds one packet's arrival and RTP timestamp. Packets of one frame share a timestamp,
    /// so only the first packet of each frame counts (as RFC 3550's formula intends per packet
    /// sent at its timestamp's instant; later packets of a frame only add pacing).
    pub fn on_packet(&mut self, arrival: Instant, rtp_timestamp: u32) {
        match self.last {
            Some((_, last_ts)) if last_ts == rtp_timestamp => {}
            Some((last_arrival, last_ts)) => {
                let arrived = arrival
                    .saturating_duration_since(last_arrival)
                    .as_secs_f64()
                    * self.units_per_second;
                // Wrapping difference as a signed 32-bit step (RFC 3550 unwraps the same way).
                let sent = f64::from(rtp_timestamp.wrapping_sub(last_ts) as i32);
                let d = (arrived - sent).abs();
                self.jitter_units += (d - self.jitter_units) / 16.0;
                self.last = Some((arrival, rtp_timestamp));
            }
            None => self.last = Some((arrival, rtp_timestamp)),
        }
    }

    /// The current estimate in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_units / self.units_per_second * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_lines_parse_with_type_and_scope() {
        let host = CandidateInfo::parse(
            "candidate:1 1 UDP 2130706431 192.168.1.20 50000 typ host generation 0",
        )
        .unwrap();
        assert_eq!(host.candidate_type, CandidateType::Host);
        assert_eq!(host.scope, AddressScope::Private);
        assert_eq!(host.protocol, "udp");
        assert_eq!(host.port, 50000);

        let srflx = CandidateInfo::parse(
            "a=candidate:2 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 5000",
        )
        .unwrap();
        assert_eq!(srflx.candidate_type, CandidateType::Srflx);
        assert_eq!(srflx.scope, AddressScope::Public);

        let mdns = CandidateInfo::parse(
            "candidate:3 1 udp 2113937151 4f2b1c9e-8a1d-4c3e-9f00-123456789abc.local 54321 typ host",
        )
        .unwrap();
        assert_eq!(mdns.scope, AddressScope::Mdns);

        let relay = CandidateInfo::parse("candidate:4 1 tcp 1 100.70.1.1 3478 typ relay").unwrap();
        assert_eq!(relay.candidate_type, CandidateType::Relay);
        assert_eq!(relay.scope, AddressScope::Private, "CGNAT space");

        assert_eq!(CandidateInfo::parse(""), None, "end of candidates");
        assert_eq!(CandidateInfo::parse("candidate:1 1 udp"), None);
        assert_eq!(
            CandidateInfo::parse("candidate:1 1 udp 1 1.2.3.4 notaport typ host"),
            None
        );
    }

    #[test]
    fn address_scopes() {
        for (address, scope) in [
            ("127.0.0.1", AddressScope::Loopback),
            ("::1", AddressScope::Loopback),
            ("[::1]", AddressScope::Loopback),
            ("10.1.2.3", AddressScope::Private),
            ("172.16.0.1", AddressScope::Private),
            ("fd00::1", AddressScope::Private),
            ("169.254.3.4", AddressScope::LinkLocal),
            ("fe80::1", AddressScope::LinkLocal),
            ("8.8.8.8", AddressScope::Public),
            ("2001:db8::1", AddressScope::Public),
            ("abc.LOCAL", AddressScope::Mdns),
            ("0.0.0.0", AddressScope::Unknown),
            ("gateway.example", AddressScope::Unknown),
        ] {
            assert_eq!(AddressScope::of(address), scope, "{address}");
        }
    }

    #[test]
    fn jitter_is_zero_for_perfect_pacing_and_grows_with_late_frames() {
        let start = Instant::now();
        let mut jitter = JitterEstimator::new(1000.0);
        for frame in 0..50u32 {
            let at = start + Duration::from_millis(u64::from(frame) * 40);
            // Two packets per frame: the second one must not count as a 0 ms frame step.
            jitter.on_packet(at, frame * 40);
            jitter.on_packet(at + Duration::from_millis(1), frame * 40);
        }
        assert!(jitter.jitter_ms() < 1e-6, "{}", jitter.jitter_ms());

        // Every other frame 10 ms late: |D| = 10 ms per step, J converges towards 10 ms.
        let mut jitter = JitterEstimator::new(1000.0);
        for frame in 0..200u32 {
            let late = if frame % 2 == 1 { 10 } else { 0 };
            let at = start + Duration::from_millis(u64::from(frame) * 40 + late);
            jitter.on_packet(at, frame * 40);
        }
        assert!(
            (jitter.jitter_ms() - 10.0).abs() < 0.5,
            "{}",
            jitter.jitter_ms()
        );
    }

    #[test]
    fn jitter_survives_a_timestamp_wrap() {
        let start = Instant::now();
        let mut jitter = JitterEstimator::new(1000.0);
        jitter.on_packet(start, u32::MAX - 19);
        jitter.on_packet(start + Duration::from_millis(40), 20);
        assert!(jitter.jitter_ms() < 1e-6, "{}", jitter.jitter_ms());
    }

    #[test]
    fn sampler_rates_cover_the_interval_and_repeat_the_last_known_counts() {
        let start = Instant::now();
        let wall = OffsetDateTime::UNIX_EPOCH;
        let mut sampler = StatsSampler::new(start);
        let stats = |frames, bytes| SessionStats {
            frames,
            video_bytes: bytes,
            ..SessionStats::default()
        };
        let first = sampler.sample(
            start + Duration::from_secs(2),
            wall,
            Some(stats(50, 250_000)),
            ReconnectCounters::default(),
            0,
            false,
        );
        assert_eq!(first.fps, 25.0);
        assert_eq!(first.bitrate_bps, 1_000_000.0);
        let second = sampler.sample(
            start + Duration::from_secs(4),
            wall,
            Some(stats(100, 750_000)),
            ReconnectCounters::default(),
            1,
            false,
        );
        assert_eq!(second.fps, 25.0);
        assert_eq!(second.bitrate_bps, 2_000_000.0);
        assert_eq!(second.token_refreshes, 1);
        let last = sampler.sample(
            start + Duration::from_secs(5),
            wall,
            None,
            ReconnectCounters::default(),
            1,
            true,
        );
        assert_eq!(last.frames, 100, "the last known count");
        assert_eq!(last.fps, 0.0);
        assert!(last.is_final);
        assert_eq!(
            last.session.as_ref().map(|s| s.frames),
            Some(100),
            "the last report"
        );
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(json["final"], true);
        assert_eq!(json["reconnects"], 0);
        assert_eq!(json["elapsed_s"], 5.0);
    }

    #[test]
    fn sampler_totals_keep_growing_across_gateway_sessions() {
        let start = Instant::now();
        let wall = OffsetDateTime::UNIX_EPOCH;
        let mut sampler = StatsSampler::new(start);
        let stats = |id: &str, frames| SessionStats {
            session_id: Some(id.to_owned()),
            frames,
            video_bytes: frames * 1000,
            ..SessionStats::default()
        };
        let none = ReconnectCounters::default();
        let first = sampler.sample(
            start + Duration::from_secs(1),
            wall,
            Some(stats("a", 25)),
            none,
            0,
            false,
        );
        assert_eq!(first.frames, 25);
        // A reconnect: the new session counts from zero.
        let second = sampler.sample(
            start + Duration::from_secs(2),
            wall,
            Some(stats("b", 10)),
            none,
            0,
            false,
        );
        assert_eq!(second.frames, 35);
        assert_eq!(second.bytes, 35_000);
        assert_eq!(second.fps, 10.0);
        let third = sampler.sample(
            start + Duration::from_secs(3),
            wall,
            Some(stats("b", 35)),
            none,
            0,
            false,
        );
        assert_eq!(third.frames, 60);
        assert_eq!(third.fps, 25.0);
    }
}
