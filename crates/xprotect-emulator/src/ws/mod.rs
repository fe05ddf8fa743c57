//! WebSocket signaling (PROTOCOL.md §3): the pure JSON-RPC logic and the socket around it.

pub mod rpc;
pub mod socket;

pub use rpc::{WsBackend, WsConnection};
