//! The HTTP side of fault injection: the control endpoint `POST`/`DELETE /emulator/faults`
//! (served only with `EmulatorConfig::fault_control`), and the middleware that answers requests
//! with an injected error status ([`Fault::HttpStatus`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use xprotect_proto::wire::idp::OAuthError;
use xprotect_proto::wire::rest::RestErrorBody;

use crate::error::{EmuError, RejectionNote};
use crate::faults::{Fault, FaultControl};
use crate::state::AppState;

/// Path of the control endpoint (after path normalisation: `/api` prefix optional).
pub const FAULTS_PATH: &str = "/emulator/faults";

/// An example body, for error messages.
const EXAMPLE: &str = r#"{"fault":"http_status","status":503,"count":2}"#;

/// `POST /emulator/faults`: inject the fault in the body; 204 once it took effect.
pub async fn inject(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, EmuError> {
    let fault: Fault = serde_json::from_slice(&body).map_err(|error| EmuError::BadRequest {
        message: format!(
            "the body is not a fault ({error}); send one of drop_sessions, close_web_sockets, \
             stop_media, http_status {{status, count}}, delay_candidates {{millis}}, \
             restart_signaling {{down_millis}}, e.g. {EXAMPLE}"
        ),
        field: Some("fault".to_owned()),
    })?;
    fault.check().map_err(|message| EmuError::BadRequest {
        message,
        field: Some("status".to_owned()),
    })?;
    FaultControl::new(state).inject(fault).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /emulator/faults`: undo the sticky faults; 204.
pub async fn clear(State(state): State<AppState>) -> StatusCode {
    FaultControl::new(state).clear();
    StatusCode::NO_CONTENT
}

/// Middleware: while [`Fault::HttpStatus`] failures are pending, answer the identity provider
/// and the API with them (the control endpoint is never failed, so a test can always undo).
/// Runs after path normalisation.
pub async fn fail_injected_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == FAULTS_PATH || path.starts_with("/emulator/") {
        return next.run(request).await;
    }
    let Some(status) = state.faults().take_failure() else {
        return next.run(request).await;
    };
    let idp = path.starts_with("/idp/");
    injected_response(status, idp)
}

/// The error a gateway answers with `status`: OAuth's body from the IDP, the REST error body
/// from the API, `WWW-Authenticate` on a 401 as ASP.NET's JwtBearer sends it.
fn injected_response(status: u16, idp: bool) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let message = format!("{reason} (injected fault)");
    let mut response = if idp {
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::UNAUTHORIZED => "invalid_client",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            _ => "server_error",
        };
        (status, Json(OAuthError::new(code, message.clone()))).into_response()
    } else {
        let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
        let body = RestErrorBody {
            error: code,
            message: message.clone(),
            field: None,
        };
        (status, Json(body)).into_response()
    };
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    // The journal middleware records it as a rejection, like any other error answer.
    response.extensions_mut().insert(RejectionNote {
        message,
        field: None,
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_errors_have_the_gateway_bodies() {
        let idp = injected_response(503, true);
        assert_eq!(idp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let api = injected_response(401, false);
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        assert!(api.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            injected_response(200, false).status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "a success status is never injected"
        );
    }
}
