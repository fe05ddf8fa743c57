//! XProtect API Gateway emulator.
//!
//! ```text
//! EmulatorConfig ─▶ Emulator::start ─▶ RunningEmulator { gateway_url(), journal(), shutdown() }
//!
//! HTTP/WS (axum) ── http::router(AppState) ── IDP  (tokens)       POST  /api/IDP/connect/token
//!                                            ├── REST (http::rest)  /api/REST/v1/WebRTC/…
//!                                            └── WS   (ws::rpc)     /api/ws/webrtc/v1
//!                      AppState ── sessions, tokens, journal ── media::MediaHandle (str0m, UDP)
//! ```
//!
//! - [`camera`]: synthetic cameras (rendered pictures with the recording time, H.264 encoded
//!   once per camera and shared by every session).
//! - [`audio`]: the emulated microphones' sound (tone and clicks on the recording time), G.711
//!   µ-law and the pacing of 20 ms PCMU packets.
//! - [`media`]: the WebRTC media engine (str0m) that offers those cameras to clients.
//! - [`playback`]: recorded video with gaps, played at a speed (GOPs encoded once, cached).
//! - [`http`], [`ws`]: signaling per PROTOCOL.md §1–§3; [`state`]: what both transports share.
//! - [`journal`]: every protocol event as a JSON line, never with a token or password.
//! - [`faults`]: fault injection (dropped sessions, closed sockets, failing requests, restarts);
//!   [`watchdog`]: token enforcement and scheduled session drops.
//!
//! Demo credentials: user [`DEFAULT_USER`] with password [`DEFAULT_PASSWORD`] (`admin`/`admin`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audio;
pub mod camera;
pub mod config;
pub mod devices;
pub mod emulator;
pub mod error;
pub mod faults;
pub mod http;
pub mod ids;
pub mod journal;
pub mod media;
pub mod playback;
pub mod release;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod watchdog;
pub mod ws;

pub use config::{DEFAULT_PASSWORD, DEFAULT_USER, EmulatorConfig};
pub use emulator::{Emulator, EmulatorError, RunningEmulator};
pub use error::EmuError;
pub use faults::{Fault, FaultControl};
pub use http::router;
pub use journal::{Journal, JournalEntry, JournalEvent, Transport};
pub use release::Release;
pub use state::AppState;
