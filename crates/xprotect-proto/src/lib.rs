//! Sans-IO protocol core for the XProtect API Gateway's WebRTC service.
//!
//! Nothing in this crate performs IO or reads a clock: time and bytes are inputs, requests and
//! events are outputs. The async client and the emulator wrap it at the edge.
//!
//! - [`wire`]: one serde definition of every message on the wire (IDP, REST, WebSocket JSON-RPC,
//!   data channel), shared by client and emulator.
//! - [`signal`]: the REST and WebSocket signaling state machines behind one seam.
//! - [`clock`]: RTP timestamp → wall-clock time, the way XProtect counts (PROTOCOL.md §4.2).
//! - [`h264`]: RTP depacketising into access units, Annex-B/AVC conversion, the emulator's SEI stamp.
//! - [`release`]: the XProtect releases and what each one's gateway reads (PROTOCOL.md §8).
//! - [`rtp`]: the RTP packet as the IO layer hands it over.
//! - [`backoff`]: reconnect delays (exponential, jittered).
//! - [`handover`]: splicing successive sessions' frames without a missing or duplicate frame.
//! - [`stall`]: how long a live stream may be silent, from its own frame rate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod clock;
pub mod h264;
pub mod handover;
pub mod release;
pub mod rtp;
pub mod signal;
pub mod stall;
pub mod wire;
