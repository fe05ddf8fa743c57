//! The one error type of the HTTP layer and its single conversion into a response.
//!
//! REST failures answer with [`RestErrorBody`] JSON (`{"error","message","field"?}`), the identity
//! provider with OAuth's `{"error","error_description"}` (PROTOCOL.md §1.3, §2.7). Nothing here
//! ever answers in plain text, so the sample's `response.json()` always succeeds.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xprotect_proto::wire::idp::OAuthError;
use xprotect_proto::wire::rest::RestErrorBody;
use xprotect_proto::wire::{FieldError, JsonError};

use crate::media::MediaError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// The body or a parameter is invalid; `field` names it when one is at fault.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The offending field, e.g. `playbackTimeNode.speed` or `candidates[0]`.
        field: Option<String>,
    },
    /// Missing, malformed, unknown or expired bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such device, session or path.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The (normalised) path.
        path: String,
    },
    /// The body is larger than the emulator reads.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The identity provider refuses (OAuth error body, HTTP 400).
    #[error("{}", .0.error)]
    OAuth(OAuthError),
    /// The media engine failed for a reason that is not the client's fault.
    #[error("media engine: {0}")]
    Media(String),
}

impl EmuError {
    /// A 400 naming `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        EmuError::BadRequest {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 400 for a body that did not decode; the JSON path becomes the field.
    pub fn json(error: &JsonError) -> Self {
        EmuError::BadRequest {
            message: error.to_string(),
            field: error.field().map(str::to_owned),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            EmuError::BadRequest { .. } | EmuError::OAuth(_) => StatusCode::BAD_REQUEST,
            EmuError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EmuError::Forbidden(_) => StatusCode::FORBIDDEN,
            EmuError::NotFound(_) => StatusCode::NOT_FOUND,
            EmuError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            EmuError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EmuError::Media(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The field at fault, if any.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            EmuError::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            EmuError::BadRequest { .. } => "bad_request",
            EmuError::Unauthorized(_) => "unauthorized",
            EmuError::Forbidden(_) => "forbidden",
            EmuError::NotFound(_) => "not_found",
            EmuError::MethodNotAllowed { .. } => "method_not_allowed",
            EmuError::PayloadTooLarge => "payload_too_large",
            EmuError::OAuth(_) => "oauth",
            EmuError::Media(_) => "media_unavailable",
        }
    }
}

impl From<FieldError> for EmuError {
    fn from(error: FieldError) -> Self {
        EmuError::BadRequest {
            message: error.message,
            field: Some(error.field),
        }
    }
}

impl From<MediaError> for EmuError {
    fn from(error: MediaError) -> Self {
        match error {
            MediaError::UnknownCamera(id) => EmuError::NotFound(format!("no device {id}")),
            MediaError::UnknownSession(id) => EmuError::NotFound(format!("no session {id}")),
            MediaError::BadAnswer(reason) => {
                EmuError::field("answerSDP", format!("the answer was rejected: {reason}"))
            }
            MediaError::AnswerNotExpected(id) => {
                EmuError::field("answerSDP", format!("session {id} has its answer already"))
            }
            MediaError::BadCandidate(reason) => {
                EmuError::field("candidate", format!("bad ICE candidate: {reason}"))
            }
            error @ MediaError::AudioSpeed(_) => EmuError::field("speed", error.to_string()),
            error @ MediaError::NoRelay(_) => EmuError::field("iceServers", error.to_string()),
            other => EmuError::Media(other.to_string()),
        }
    }
}

impl IntoResponse for EmuError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            EmuError::OAuth(body) => (status, Json(body.clone())).into_response(),
            other => {
                let body = RestErrorBody {
                    error: other.code().to_owned(),
                    message: other.to_string(),
                    field: other.field_name().map(str::to_owned),
                };
                (status, Json(body)).into_response()
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        // The journal middleware reads the failure from here rather than re-parsing the body;
        // the identity provider journals its refusals itself.
        if matches!(self, EmuError::OAuth(_)) {
            return response;
        }
        response.extensions_mut().insert(RejectionNote {
            message: self.to_string(),
            field: self.field_name().map(str::to_owned),
        });
        response
    }
}

/// What an error response was about, attached to the response for the journal.
#[derive(Debug, Clone)]
pub struct RejectionNote {
    /// The message of the error.
    pub message: String,
    /// The field at fault.
    pub field: Option<String>,
}
