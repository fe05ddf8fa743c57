//! One serde definition of every message on the wire, shared by client and emulator.
//!
//! Requests are decoded the way the gateway does (case-insensitive names, numbers as strings,
//! unknown fields ignored: [`lenient`]); what we send uses the exact spelling of the official
//! sample of the newest release. Dialects are data ([`ice_server::IceServerDialect`],
//! [`jsonrpc::Envelope`], [`rest::DeviceField`]), not scattered `if`s.

pub mod candidate;
pub mod commands;
pub mod config_api;
pub mod form;
pub mod ice_server;
pub mod idp;
pub mod ids;
pub mod jsonrpc;
pub mod lenient;
pub mod rest;
pub mod sdp;
pub mod session;

pub use candidate::IceCandidateInit;
pub use ice_server::{IceServer, IceServerDialect};
pub use ids::{DeviceId, InvalidGuid, Secret, SessionId, StreamId};
pub use lenient::JsonError;
pub use sdp::{SdpKind, SessionDescription};
pub use session::{FieldError, Playback, SessionParams};
