//! XProtect API Gateway emulator.
//!
//! - [`camera`]: synthetic cameras (rendered pictures with the recording time, H.264 encoded
//!   once per camera and shared by every session).
//! - [`media`]: the WebRTC media engine (str0m) that offers those cameras to clients.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod camera;
pub mod media;
