//! Async XProtect API Gateway WebRTC client.
//!
//! - [`gateway`]: the gateway URL, TLS, and executing the protocol core's HTTP/WebSocket requests.
//! - [`login`]: logging in at the IDP and keeping the token fresh in the background.
//! - [`session`]: one streaming session (signaling + peer + depacketiser + frame clock) → frames.
//! - [`lasting`]: sessions one after another behind one stream: reconnect, resume, make-before-break.
//! - [`commands`]: PTZ and aux commands on a session's `commands` data channel.
//! - [`media`]: the WebRTC peer (webrtc-rs), answering the gateway's offer receive-only.
//! - [`record`]: MP4 / raw H.264 / frame-time writers; [`recorder`]: a session into them.
//! - [`diagnostics`]: a session's statistics (`Session::stats`), the `--stats` JSON lines.
//! - [`export`]: a recorded range into an MP4 as fast as the gateway sends every frame.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod commands;
pub mod config_api;
pub mod diagnostics;
pub mod export;
pub mod gateway;
pub mod lasting;
pub mod login;
pub mod media;
pub mod record;
pub mod recorder;
pub mod release;
pub mod session;
pub mod signaling_io;
pub mod tls;
