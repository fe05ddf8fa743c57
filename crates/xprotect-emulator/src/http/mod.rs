//! The HTTP surface: one router for the identity provider, REST signaling and the WebSocket.
//!
//! ```text
//! request ─▶ CORS (optional) ─▶ path normalisation (lower case, `/api` prefix optional,
//!            trailing `/` dropped) ─▶ routes ─▶ handlers ─▶ EmuError → JSON (+ journal)
//! ```
//!
//! Path matching is case-insensitive like the real gateway's ASP.NET Core routing (PROTOCOL.md §0):
//! the request path is rewritten to lower case before routing, which leaves GUIDs in the path
//! valid (they are case-insensitive too).

pub mod config_api;
pub mod extract;
pub mod fault_api;
pub mod idp;
pub mod rest;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, Uri, uri::PathAndQuery};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{any, get, patch, post};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::error::{EmuError, RejectionNote};
use crate::journal::JournalEvent;
use crate::state::AppState;
use crate::ws::socket;

/// Preflight results browsers may cache.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// The emulator's HTTP and WebSocket service, ready for `axum::serve` (with connect info, so the
/// peer address is known) or `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new()
        .route("/idp/connect/token", post(idp::token))
        .route("/rest/v1/webrtc/session", post(rest::create_session))
        .route("/rest/v1/webrtc/session/{id}", patch(rest::patch_session))
        .route(
            "/rest/v1/webrtc/icecandidates/{id}",
            post(rest::post_candidates).get(rest::get_candidates),
        )
        .route("/rest/v1/cameras", get(config_api::list_cameras))
        .route("/rest/v1/cameras/{id}", get(config_api::get_camera))
        .route(
            "/rest/v1/cameras/{id}/{child}",
            get(config_api::camera_child),
        )
        .route("/rest/v1/microphones", get(config_api::list_microphones))
        .route("/rest/v1/microphones/{id}", get(config_api::get_microphone))
        .route("/rest/v1/{*rest}", any(config_api::unknown_resource));
    // Before 2025 R1 the gateway has no WebSocket endpoint: the path is a plain 404.
    if state.release().websocket() {
        routes = routes.route("/ws/webrtc/v1", get(socket::upgrade));
    }
    // Off by default: anyone who reaches it can break the emulator (a plain 404 then).
    if state.faults().control_endpoint() {
        routes = routes.route(
            fault_api::FAULTS_PATH,
            post(fault_api::inject).delete(fault_api::clear),
        );
    }
    let routes = routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Inside the journal layer, so injected failures are journaled like any rejection.
        .layer(from_fn_with_state(
            state.clone(),
            fault_api::fail_injected_requests,
        ))
        .layer(from_fn_with_state(state.clone(), journal_rejections))
        .with_state(state.clone());
    let normalised = tower::ServiceExt::map_request(routes, normalise_path);
    let service = Router::new().fallback_service(normalised);
    if state.cors() {
        service.layer(cors_layer())
    } else {
        service
    }
}

/// `*` for origins and methods the sample uses; allowed headers mirror the preflight's
/// `Access-Control-Request-Headers`, since a literal `*` does not cover `Authorization`.
fn cors_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(CORS_MAX_AGE)
}

/// The path as the client sent it, kept for the journal.
#[derive(Debug, Clone)]
struct ReceivedPath(String);

fn normalise_path(mut request: Request) -> Request {
    let received = request.uri().path().to_owned();
    let normalised = canonical_path(&received);
    if normalised != received {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{normalised}?{query}"),
            None => normalised,
        };
        if let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) {
            let mut parts = request.uri().clone().into_parts();
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request.extensions_mut().insert(ReceivedPath(received));
    request
}

/// Lower case, without the optional `/api` prefix and without a trailing `/`.
pub fn canonical_path(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    let without_prefix = match lower.strip_prefix("/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => lower.as_str(),
    };
    let trimmed = without_prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

async fn not_found(request: Request) -> EmuError {
    EmuError::NotFound(format!(
        "no such resource: {}",
        shorten(request.uri().path())
    ))
}

async fn method_not_allowed(request: Request) -> EmuError {
    EmuError::MethodNotAllowed {
        method: request.method().to_string(),
        path: shorten(request.uri().path()),
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}

/// Journal every REST/IDP rejection the handlers produced (the IDP journals its own refusals).
async fn journal_rejections(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<ReceivedPath>()
        .map(|p| shorten(&p.0))
        .unwrap_or_else(|| shorten(request.uri().path()));
    let response = next.run(request).await;
    if let Some(note) = response.extensions().get::<RejectionNote>() {
        state.journal().record(JournalEvent::HttpRejected {
            method,
            path,
            status: response.status().as_u16(),
            message: note.message.clone(),
            field: note.field.clone(),
        });
    }
    response
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn paths_are_canonicalised() {
        assert_eq!(
            canonical_path("/API/REST/v1/WebRTC/Session"),
            "/rest/v1/webrtc/session"
        );
        assert_eq!(
            canonical_path("/api/IDP/connect/token"),
            "/idp/connect/token"
        );
        assert_eq!(canonical_path("/IDP/connect/token/"), "/idp/connect/token");
        assert_eq!(canonical_path("/apiary/x"), "/apiary/x");
        assert_eq!(canonical_path("/api"), "/");
        assert_eq!(canonical_path("/"), "/");
    }
}
