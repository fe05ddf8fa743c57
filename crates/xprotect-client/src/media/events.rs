//! What a [`Peer`](super::Peer) reports to its owner.

use xprotect_proto::rtp::RtpPacket;

use super::error::PeerError;

pub use xprotect_proto::wire::IceCandidateInit;

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
