//! One exit code per failure class, derived from the error's type in one place.

use xprotect_client::commands::CommandSendError;
use xprotect_client::export::ExportError;
use xprotect_client::record::RecordError;
use xprotect_client::recorder::RecordFailure;
use xprotect_client::session::SessionError;
use xprotect_proto::signal::LoginError;

/// Login failed.
pub const LOGIN: u8 = 3;
/// Signaling failed.
pub const SIGNALING: u8 = 4;
/// Media failed.
pub const MEDIA: u8 = 5;
/// Output failed.
pub const OUTPUT: u8 = 6;

/// The exit code for an error chain.
pub fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<LoginError>() {
            return LOGIN;
        }
        if let Some(session) = cause.downcast_ref::<SessionError>() {
            return session_code(session);
        }
        if let Some(failure) = cause.downcast_ref::<RecordFailure>() {
            return match failure {
                RecordFailure::Session(session) => session_code(session),
                RecordFailure::Output(_) => OUTPUT,
            };
        }
        if cause.is::<RecordError>() {
            return OUTPUT;
        }
        // The data channel is part of the WebRTC connection.
        if cause.is::<CommandSendError>() {
            return MEDIA;
        }
        if let Some(failure) = cause.downcast_ref::<ExportError>() {
            match failure {
                ExportError::Session(session) => return session_code(session),
                ExportError::Output(_) => return OUTPUT,
                _ => {}
            }
        }
    }
    1
}

fn session_code(error: &SessionError) -> u8 {
    match error {
        SessionError::Signal(_) | SessionError::Connect(_) => SIGNALING,
        SessionError::Token(_) => LOGIN,
        SessionError::Peer(_) | SessionError::NoFirstFrame(_) | SessionError::MediaTimeout(_) => {
            MEDIA
        }
    }
}
