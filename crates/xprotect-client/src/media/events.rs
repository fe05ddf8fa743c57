//! What a [`Peer`](super::Peer) reports to its owner.

use xprotect_proto::rtp::RtpPacket;

use super::error::PeerError;

/// An ICE candidate as signaled (the browser's `RTCIceCandidateInit`).
///
/// An empty `candidate` means end-of-candidates.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidateInit {
    /// `candidate:…` attribute value, or empty for end-of-candidates.
    pub candidate: String,
    /// The `a=mid` of the media section the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The index of that media section.
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

impl IceCandidateInit {
    /// Whether this is the end-of-candidates marker (an empty candidate line).
    pub fn is_end_of_candidates(&self) -> bool {
        self.candidate.trim().is_empty()
    }
}

/// The kind of a received track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// H.264 video; RTP timestamps count milliseconds on XProtect (PROTOCOL.md §4.2).
    Video,
    /// PCMU audio at 8 kHz.
    Audio,
}

/// The aggregate state of the connection (ICE + DTLS), as `RTCPeerConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Nothing started yet.
    New,
    /// ICE or DTLS in progress.
    Connecting,
    /// ICE and DTLS are up; media can flow.
    Connected,
    /// Connectivity lost for now; may recover.
    Disconnected,
    /// Gave up.
    Failed,
    /// Closed locally.
    Closed,
}

/// Something the peer observed, in the order it happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A local candidate to trickle to the gateway.
    LocalCandidate(IceCandidateInit),
    /// Local gathering finished; signal end-of-candidates if the dialect has a way to.
    LocalCandidatesDone,
    /// A received track started (its first RTP packet arrived). Follows no earlier `Rtp` of
    /// the same kind.
    TrackStarted {
        /// Video or audio.
        kind: TrackKind,
        /// MIME type of the negotiated codec, e.g. `video/H264`.
        codec: String,
        /// The negotiated payload type.
        payload_type: u8,
    },
    /// One received RTP packet (decrypted, header fields and payload).
    Rtp {
        /// The track it belongs to.
        kind: TrackKind,
        /// The packet.
        packet: RtpPacket,
    },
    /// The ICE connection state changed (`new`, `checking`, `connected`, …).
    IceState(String),
    /// The aggregate connection state changed.
    ConnectionState(ConnectionState),
    /// The DTLS handshake completed (reported once, when the connection first connects).
    DtlsConnected,
    /// The `commands` data channel (protocol `videoos-commands`) is open.
    CommandsChannelOpen,
    /// The `commands` data channel closed.
    CommandsChannelClosed,
    /// The peer failed for good; no further events follow except closing ones.
    Failed(PeerError),
}
