//! The same-origin gateway proxy: `/gateway/<path>` on the viewer's server goes to
//! `<gateway URL>/<path>` and nowhere else.
//!
//! The page then needs no CORS on the gateway, which is off by default (PROTOCOL.md §0). Only a
//! short list of headers crosses in either direction: the browser's cookies, origin and
//! forwarding headers stay here, and `X-Forwarded-For` is set to the browser's address as this
//! server saw it, so the gateway's candidate rule (PROTOCOL.md §4.5) sees the browser, not us.

use crate::target::{PathRefusal, gateway_target};
use crate::ws_relay;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;
use xprotect_client::tls::{TlsError, TlsOptions, client_config};

/// The prefix under which the page reaches the gateway.
pub const GATEWAY_PREFIX: &str = "/gateway/";
/// The gateway's WebSocket signaling path (PROTOCOL.md §3.1), the only one relayed as WebSocket.
pub const WS_SIGNALING_PATH: &str = "ws/webrtc/v1";
/// Request bodies are small JSON or forms (an SDP answer is a few kB); anything larger is refused.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Responses are JSON; a camera list of a large site stays well below this.
pub const MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// Headers the browser may send on to the gateway.
const REQUEST_HEADERS: [HeaderName; 5] = [
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::USER_AGENT,
];
/// Headers of the gateway's answer the browser gets.
const RESPONSE_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
];

/// The proxy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The gateway URL is not http(s) or cannot be a base.
    #[error("the gateway URL must be http:// or https://, got `{0}`")]
    Scheme(String),
    /// The TLS options could not be applied.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Forwards the page's gateway calls to one fixed gateway.
#[derive(Clone)]
pub struct GatewayProxy {
    inner: Arc<Inner>,
}

struct Inner {
    /// The gateway URL, path ending with `/`.
    base: Url,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    /// Limit for connecting and answering, HTTP and the WebSocket's opening handshake alike.
    timeout: Duration,
}

impl std::fmt::Debug for GatewayProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayProxy")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

impl GatewayProxy {
    /// A proxy to `gateway` (e.g. `https://vms.example.com/api`), checking its certificate as
    /// `tls` says (the CLI's `--ca-cert` and `--insecure`).
    pub fn new(gateway: &Url, tls: &TlsOptions, timeout: Duration) -> Result<Self, ProxyError> {
        if !matches!(gateway.scheme(), "http" | "https") || gateway.cannot_be_a_base() {
            return Err(ProxyError::Scheme(gateway.to_string()));
        }
        let mut base = gateway.clone();
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&format!("{trimmed}/"));
        base.set_query(None);
        base.set_fragment(None);
        let tls = client_config(tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            // A redirect would be followed here, out of the browser's sight, possibly to another
            // host: hand it to the page instead.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ProxyError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                http,
                tls,
                timeout,
            }),
        })
    }

    /// The gateway URL everything goes to, ending with `/`.
    pub fn gateway(&self) -> &Url {
        &self.inner.base
    }

    /// Handle one request whose path starts with [`GATEWAY_PREFIX`].
    pub async fn handle(&self, peer: SocketAddr, request: Request) -> Response {
        let (mut parts, body) = request.into_parts();
        let Some(relative) = parts.uri.path().strip_prefix(GATEWAY_PREFIX) else {
            return refuse(StatusCode::NOT_FOUND, "only /gateway/… is forwarded");
        };
        let relative = relative.to_owned();
        let target = match gateway_target(&self.inner.base, &relative, parts.uri.query()) {
            Ok(target) => target,
            Err(refusal) => {
                tracing::debug!(%refusal, "proxy refused a path");
                return refuse(refusal_status(&refusal), &refusal.to_string());
            }
        };
        if parts.headers.contains_key(header::UPGRADE) {
            if !relative.eq_ignore_ascii_case(WS_SIGNALING_PATH) {
                return refuse(
                    StatusCode::NOT_FOUND,
                    "only /gateway/ws/webrtc/v1 is relayed as a WebSocket",
                );
            }
            return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(upgrade) => {
                    let tls = self.inner.tls.clone();
                    ws_relay::relay(upgrade, ws_target(target), peer, tls, self.inner.timeout).await
                }
                Err(rejection) => rejection.into_response(),
            };
        }
        let method = parts.method.clone();
        if !matches!(
            method,
            Method::GET
                | Method::HEAD
                | Method::POST
                | Method::PUT
                | Method::PATCH
                | Method::DELETE
        ) {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET, HEAD, POST, PUT, PATCH and DELETE are forwarded",
            );
        }
        let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
            Ok(body) => body,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body broke off or is above 1 MiB (not forwarded)",
                );
            }
        };
        self.forward(method, target, &parts.headers, body, peer)
            .await
    }

    async fn forward(
        &self,
        method: Method,
        target: Url,
        headers: &HeaderMap,
        body: Bytes,
        peer: SocketAddr,
    ) -> Response {
        let path = target.path().to_owned();
        let mut request = self.inner.http.request(method.clone(), target);
        for name in &REQUEST_HEADERS {
            for value in headers.get_all(name) {
                request = request.header(name, value);
            }
        }
        request = request.header("x-forwarded-for", peer.ip().to_string());
        if !body.is_empty() {
            request = request.body(body);
        }
        let upstream = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%method, %path, error = %describe(&error), "gateway unreachable");
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "cannot reach the gateway at {}: {}",
                        self.inner.base,
                        describe(&error)
                    ),
                );
            }
        };
        let status = upstream.status();
        tracing::debug!(%method, %path, status = status.as_u16(), "proxied");
        let mut response_headers = HeaderMap::new();
        for name in &RESPONSE_HEADERS {
            for value in upstream.headers().get_all(name) {
                response_headers.append(name, value.clone());
            }
        }
        if status.is_redirection() {
            // Pass the redirect on without following it; the browser decides.
            if let Some(location) = upstream.headers().get(header::LOCATION) {
                response_headers.insert(header::LOCATION, location.clone());
            }
        }
        if upstream
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BODY as u64)
        {
            return refuse(StatusCode::BAD_GATEWAY, "the gateway's answer is too large");
        }
        let body = match upstream.bytes().await {
            Ok(body) if body.len() <= MAX_RESPONSE_BODY => body,
            Ok(_) => return refuse(StatusCode::BAD_GATEWAY, "the gateway's answer is too large"),
            Err(error) => {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    &format!("the gateway's answer broke off: {}", describe(&error)),
                );
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = response_headers;
        response
    }
}

/// The WebSocket URL of `target`: `ws`/`wss` for `http`/`https`.
fn ws_target(mut target: Url) -> Url {
    let scheme = if target.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    // http→ws and https→wss are both special schemes, so set_scheme cannot fail here.
    let _ = target.set_scheme(scheme);
    target
}

fn refusal_status(refusal: &PathRefusal) -> StatusCode {
    match refusal {
        PathRefusal::Empty => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A reqwest error without its URL (which the message names already) and with its cause.
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The proxy's own refusal: JSON with a message, marked so the page can tell it from the
/// gateway's errors.
pub(crate) fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": "viewer_proxy", "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
