//! The client's WebRTC peer (webrtc-rs): answers the gateway's offer receive-only, trickles
//! candidates, hands over received RTP, and opens the `commands` data channel.
//!
//! ```text
//!   Peer (handle) ──Command──▶ Driver task ◀──StackEvent── ForwardingHandler (webrtc callbacks)
//!                                  │  ▲ track / data-channel event streams
//!                                  ▼
//!                     mpsc::Receiver<PeerEvent>  (LocalCandidate, TrackStarted, Rtp, …)
//! ```
//!
//! Usage: `let (peer, answer_sdp, mut events) = Peer::answer(&offer_sdp, PeerConfig::default()).await?;`
//! send `answer_sdp` to the gateway, forward `PeerEvent::LocalCandidate`s to it, pass its
//! candidates to [`Peer::add_remote_candidate`], and consume `PeerEvent::Rtp`.

mod adapter;
mod codecs;
mod config;
mod driver;
mod error;
mod events;
mod peer;
mod stats;

pub use config::{DtlsRole, IceServerConfig, PeerConfig};
pub use driver::DTLS_HANDSHAKE_TIMEOUT;
pub use error::PeerError;
pub use events::{ConnectionState, IceCandidateInit, PeerEvent, TrackKind};
pub use peer::{COMMANDS_CHANNEL_LABEL, COMMANDS_CHANNEL_PROTOCOL, Peer};
