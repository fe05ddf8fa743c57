//! The RESTful Config API under `<gateway>/rest/v1/` (PROTOCOL.md §11): cameras, their streams
//! and PTZ presets, microphones. Read-only, from the [`DeviceCatalog`](crate::devices::DeviceCatalog).
//!
//! Errors use the Config API's own body (§11.B.2), not the WebRTC endpoints' one:
//! `{"error":{"httpCode":N,"details":[{"errorText":"…"}]}}`. Paths arrive lower-cased (see
//! [`super::canonical_path`]), so `Cameras` and `cameras` are one route.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;
use xprotect_proto::wire::config_api::{
    ArrayResponse, Camera, ConfigErrorBody, DataResponse, Microphone, StreamsItem,
};

use crate::error::{EmuError, RejectionNote};
use crate::http::extract::bearer_token;
use crate::state::AppState;
use crate::tokens::TokenRejection;

/// A Config API failure: status and `errorText`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct ConfigApiError {
    status: StatusCode,
    text: String,
}

impl ConfigApiError {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Self {
            status,
            text: text.into(),
        }
    }

    /// 404 for an id that is no device of the collection, in the gateway's words.
    fn device_not_found(collection: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Device not found. {collection}/{id}"),
        )
    }

    /// 404 for a collection the emulator does not serve.
    fn unknown_resource(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!(
                "Unknown resource: {}",
                name.chars().take(80).collect::<String>()
            ),
        )
    }
}

impl IntoResponse for ConfigApiError {
    fn into_response(self) -> Response {
        let body = ConfigErrorBody::new(self.status.as_u16(), self.text.clone());
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response.extensions_mut().insert(RejectionNote {
            message: self.text,
            field: None,
        });
        response
    }
}

type ConfigResult<T> = Result<Json<T>, ConfigApiError>;

/// Bearer auth as for WebRTC; an expired token gets the gateway's expiry text (§11.B.2).
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ConfigApiError> {
    let unauthorized = |text: String| ConfigApiError::new(StatusCode::UNAUTHORIZED, text);
    let token = bearer_token(headers).map_err(|e| unauthorized(e.to_string()))?;
    state
        .tokens()
        .validate(token.expose())
        .map(|_| ())
        .map_err(|rejection| {
            unauthorized(match rejection {
                TokenRejection::Expired => "Token validation failed: the token is expired.".into(),
                TokenRejection::Unknown => {
                    "Token validation failed: the token is not valid.".into()
                }
            })
        })
}

/// The `{id}` segment as a GUID; anything else is no device either.
fn device_id(collection: &str, raw: &str) -> Result<Uuid, ConfigApiError> {
    let shown: String = raw.chars().take(64).collect();
    Uuid::parse_str(raw.trim()).map_err(|_| ConfigApiError::device_not_found(collection, &shown))
}

fn array<T: Serialize>(items: Vec<T>) -> ConfigResult<ArrayResponse<T>> {
    Ok(Json(ArrayResponse { array: items }))
}

/// `GET cameras`.
pub async fn list_cameras(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConfigResult<ArrayResponse<Camera>> {
    authorize(&state, &headers)?;
    array(state.catalog().cameras())
}

/// `GET cameras/{id}`.
pub async fn get_camera(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ConfigResult<DataResponse<Camera>> {
    authorize(&state, &headers)?;
    let id = device_id("cameras", &raw)?;
    let camera = state
        .catalog()
        .camera(id)
        .ok_or_else(|| ConfigApiError::device_not_found("cameras", &raw))?;
    Ok(Json(DataResponse { data: camera }))
}

/// `GET cameras/{id}/{child}`: `streams`, and `ptzPresets` (an empty list: the emulator has no
/// presets; non-PTZ cameras have no preset folder, hence 404, §11.G).
pub async fn camera_child(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((raw, child)): Path<(String, String)>,
) -> Result<Response, ConfigApiError> {
    authorize(&state, &headers)?;
    let id = device_id("cameras", &raw)?;
    let catalog = state.catalog();
    let Some(ptz) = catalog.ptz_enabled(id) else {
        return Err(ConfigApiError::device_not_found("cameras", &raw));
    };
    match child.as_str() {
        "streams" => {
            let streams: Vec<StreamsItem> = catalog.streams(id).into_iter().collect();
            Ok(Json(ArrayResponse { array: streams }).into_response())
        }
        "ptzpresets" if ptz => {
            Ok(Json(ArrayResponse::<serde_json::Value> { array: vec![] }).into_response())
        }
        other => Err(ConfigApiError::unknown_resource(other)),
    }
}

/// `GET microphones`.
pub async fn list_microphones(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConfigResult<ArrayResponse<Microphone>> {
    authorize(&state, &headers)?;
    array(state.catalog().microphones())
}

/// `GET microphones/{id}`.
pub async fn get_microphone(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ConfigResult<DataResponse<Microphone>> {
    authorize(&state, &headers)?;
    let id = device_id("microphones", &raw)?;
    let microphone = state
        .catalog()
        .microphone(id)
        .ok_or_else(|| ConfigApiError::device_not_found("microphones", &raw))?;
    Ok(Json(DataResponse { data: microphone }))
}

/// Anything else under `rest/v1/`: 404 `Unknown resource: <collection>` after authentication,
/// as the management server answers (§11.B.2). Unknown WebRTC paths keep the WebRTC error body.
pub async fn unknown_resource(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix("/rest/v1/").unwrap_or(path);
    let collection = rest.split('/').next().unwrap_or_default();
    if collection == "webrtc" {
        return EmuError::NotFound(format!(
            "no such resource: {}",
            path.chars().take(120).collect::<String>()
        ))
        .into_response();
    }
    if let Err(error) = authorize(&state, request.headers()) {
        return error.into_response();
    }
    if request.method() != axum::http::Method::GET {
        return ConfigApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "The emulator's Config API is read-only ({})",
                request.method()
            ),
        )
        .into_response();
    }
    ConfigApiError::unknown_resource(collection).into_response()
}
