//! What can go wrong with a peer, each variant saying what happened and what to do about it.

use std::time::Duration;

use super::config::DtlsRole;

/// An error of the WebRTC peer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The offer is not SDP the parser accepts.
    #[error(
        "the gateway's offer is not valid SDP ({reason}); check what the signaling layer passed as the offer"
    )]
    BadOffer {
        /// The SDP parser's reason.
        reason: String,
    },
    /// The offer has no video section with H.264 in it.
    #[error(
        "the offer carries no H.264 video (offered video codecs: {offered}); the camera must stream H.264"
    )]
    NoH264InOffer {
        /// The video codecs the offer did list (`rtpmap` names), or `none`.
        offered: String,
    },
    /// The WebRTC stack refused or failed a negotiation step.
    #[error("WebRTC negotiation failed while {step}: {reason}")]
    Negotiation {
        /// Which step failed (`applying the offer`, `creating the answer`, …).
        step: &'static str,
        /// The stack's reason.
        reason: String,
    },
    /// The remote ICE candidate was rejected.
    #[error("the remote ICE candidate {candidate:?} was rejected: {reason}")]
    BadCandidate {
        /// The candidate line as received.
        candidate: String,
        /// The stack's reason.
        reason: String,
    },
    /// No ICE candidate pair worked.
    #[error(
        "ICE failed: no candidate pair connected; check that the gateway's candidates are reachable, or configure a TURN server (relay)"
    )]
    IceFailed,
    /// ICE connected but the DTLS handshake did not complete in time.
    #[error(
        "DTLS did not complete within {waited:?} after ICE connected with the answer's role {role:?}; retry the session with the other DTLS role"
    )]
    DtlsTimeout {
        /// The role the answer claimed.
        role: DtlsRole,
        /// How long we waited after ICE connected.
        waited: Duration,
    },
    /// The connection failed after it had been established (DTLS alert, consent lost, …).
    #[error("the WebRTC connection failed; the session has to be set up again")]
    ConnectionFailed,
    /// The gateway ended a connection we had not closed: its DTLS `close_notify`, its closing
    /// of the `commands` data channel (SCTP), or the connection closing under us. What a
    /// gateway does when it drops a session; retrying with a new session is the cure.
    #[error("the gateway closed the WebRTC connection ({how}); the session has to be set up again")]
    ClosedByGateway {
        /// What was observed, e.g. `DTLS close_notify`.
        how: &'static str,
    },
    /// `send_command` was called before the `commands` data channel opened.
    #[error("the `commands` data channel is not open yet; wait for PeerEvent::CommandsChannelOpen")]
    DataChannelNotOpen,
    /// Sending on the data channel failed.
    #[error("sending on the `commands` data channel failed: {reason}")]
    DataChannelSend {
        /// The stack's reason.
        reason: String,
    },
    /// An operation took longer than its bound.
    #[error("{operation} did not complete within {limit:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The bound that passed.
        limit: Duration,
    },
    /// The peer has been closed (by [`Peer::close`](super::Peer::close) or after a failure).
    #[error("the peer connection is closed")]
    Closed,
}
