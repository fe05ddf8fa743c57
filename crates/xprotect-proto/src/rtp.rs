//! The RTP packet as the IO layer hands it to the protocol core.

use std::time::Instant;

/// One received RTP packet, already decrypted, with the header fields the core needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// RTP sequence number.
    pub sequence: u16,
    /// Raw 32-bit RTP timestamp (XProtect video: milliseconds; PCMU: 8 kHz samples).
    pub timestamp: u32,
    /// The marker bit (last packet of a video access unit, when the sender sets it).
    pub marker: bool,
    /// RTP payload type.
    pub payload_type: u8,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without RTP header, padding or extensions.
    pub payload: Vec<u8>,
    /// When the IO layer received the packet.
    pub arrival: Instant,
}
