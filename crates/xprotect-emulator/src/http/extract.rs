//! Extractors that answer every rejection with the emulator's JSON error body (never axum's
//! plain-text rejections): lenient JSON bodies, the bearer token, the session id in the path,
//! and the client address used for mDNS twins.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use xprotect_proto::wire::{Secret, SessionId, lenient};

use crate::error::EmuError;
use crate::state::AppState;
use crate::tokens::TokenOwner;

/// A JSON body decoded leniently (case-insensitive keys, numbers as strings, unknown fields
/// ignored); failures are 400s naming the field.
#[derive(Debug)]
pub struct LenientJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for LenientJson<T> {
    type Rejection = EmuError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let text = body_text(req, state).await?;
        lenient::from_str(&text)
            .map(LenientJson)
            .map_err(|e| EmuError::json(&e))
    }
}

/// The body as UTF-8 text (any content type: the gateway is lenient about it too).
pub async fn body_text<S: Send + Sync>(req: Request, state: &S) -> Result<String, EmuError> {
    let bytes =
        Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => EmuError::PayloadTooLarge,
                _ => EmuError::BadRequest {
                    message: format!(
                        "the request body could not be read: {}",
                        rejection.body_text()
                    ),
                    field: None,
                },
            })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| EmuError::BadRequest {
        message: "the request body is not UTF-8".to_owned(),
        field: None,
    })
}

/// An authenticated caller: the owner of a valid `Authorization: Bearer` token, and the token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who.
    pub owner: TokenOwner,
    /// The token it presented (sessions keep it).
    pub token: Secret,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = EmuError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let owner = state.authenticate(token.expose())?;
        Ok(Authenticated { owner, token })
    }
}

/// The token of an `Authorization: Bearer <token>` header (401 otherwise).
pub fn bearer_token(headers: &HeaderMap) -> Result<Secret, EmuError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        EmuError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })?;
    let text = value
        .to_str()
        .map_err(|_| EmuError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(|| {
        EmuError::Unauthorized("the Authorization header is not `Bearer <token>`".into())
    })?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(EmuError::Unauthorized(
            "the Authorization header is not `Bearer <token>`".into(),
        ));
    }
    Ok(Secret::new(token))
}

/// The `{id}` path segment as a session id (400 naming `sessionId` if it is no GUID).
#[derive(Debug, Clone, Copy)]
pub struct SessionPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = EmuError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| EmuError::field("sessionId", e.body_text()))?;
        raw.parse()
            .map(SessionPath)
            .map_err(|e: xprotect_proto::wire::InvalidGuid| {
                EmuError::field("sessionId", e.to_string())
            })
    }
}

/// The client's address as the gateway sees it: the first `X-Forwarded-For` entry, else the TCP
/// peer (PROTOCOL.md §4.5). `None` when neither is known (e.g. in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(forwarded_for(&parts.headers).or(peer)))
    }
}

/// The first address of `X-Forwarded-For`, with or without a port.
pub fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let first = headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim();
    first
        .parse::<IpAddr>()
        .ok()
        .or_else(|| first.parse::<SocketAddr>().ok().map(|a| a.ip()))
}
