//! The gateway as an HTTP/WebSocket endpoint: executes the protocol core's requests.

use crate::tls::{TlsError, TlsOptions, client_config};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use url::Url;
use xprotect_proto::signal::{HttpBody, HttpMethod, HttpRequest, HttpResponse};
use xprotect_proto::wire::jsonrpc::WS_PATH;

/// Where the gateway is and how to talk to it.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The API Gateway URL, e.g. `https://vms.example.com/api`.
    pub url: Url,
    /// Certificate checking.
    pub tls: TlsOptions,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl GatewayConfig {
    /// A gateway with default TLS and timeouts.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            tls: TlsOptions::default(),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// The gateway URL or TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Not http(s).
    #[error("the gateway URL must start with http:// or https:// (got `{0}`)")]
    Scheme(String),
    /// TLS settings.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// reqwest could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// A connected-to gateway: an HTTP client with the right TLS and the base URL.
#[derive(Clone)]
pub struct Gateway {
    base: Url,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("base", &self.base.as_str())
            .finish()
    }
}

/// One WebSocket to the signaling endpoint.
pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Gateway {
    /// Validate the URL and build the clients.
    pub fn new(config: &GatewayConfig) -> Result<Self, GatewayError> {
        if !matches!(config.url.scheme(), "http" | "https") {
            return Err(GatewayError::Scheme(config.url.to_string()));
        }
        let mut base = config.url.clone();
        // Paths are joined below the gateway URL: make sure it ends with exactly one `/`.
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&format!("{trimmed}/"));
        let tls = client_config(&config.tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        Ok(Self {
            base,
            http,
            tls,
            request_timeout: config.request_timeout,
        })
    }

    /// The base URL with a trailing slash.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Perform a request built by the protocol core. Errors are transport failures; any HTTP
    /// status is a response.
    pub async fn execute(&self, request: &HttpRequest) -> Result<HttpResponse, String> {
        let url = self
            .base
            .join(&request.path)
            .map_err(|e| format!("bad request path `{}`: {e}", request.path))?;
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url);
        if let Some(token) = &request.bearer {
            builder = builder.bearer_auth(token.expose());
        }
        builder = match &request.body {
            Some(HttpBody::Json(json)) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json.clone()),
            Some(HttpBody::Form(form)) => builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.expose().to_owned()),
            None => builder,
        };
        let response = builder.send().await.map_err(describe_reqwest_error)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(describe_reqwest_error)?;
        Ok(HttpResponse { status, body })
    }

    /// The WebSocket signaling URL: the gateway URL with `ws`/`wss` and `/ws/webrtc/v1`.
    pub fn ws_url(&self) -> Url {
        let mut url = self.base.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // set_scheme only fails between special and non-special schemes; http→ws is allowed.
        let _ = url.set_scheme(scheme);
        url.join(WS_PATH).unwrap_or(url)
    }

    /// Open the signaling WebSocket.
    pub async fn connect_ws(&self) -> Result<WsStream, String> {
        let url = self.ws_url();
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let (stream, _response) = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            None,
            true,
            Some(connector),
        )
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => format!(
                "the gateway refused the WebSocket at {url} with HTTP {} (is this an XProtect 2025 R1 or later gateway? use REST signaling otherwise)",
                response.status()
            ),
            other => format!("cannot open the WebSocket at {url}: {other}"),
        })?;
        Ok(stream)
    }
}

/// Whether the gateway has WebSocket signaling, from one connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsProbe {
    /// The WebSocket opened (XProtect 2025 R1 or later); it was closed again.
    Available,
    /// The gateway answered the upgrade with an HTTP status: 404 means a release before
    /// 2025 R1, which has REST signaling only.
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// No answer (network, TLS).
    Failed(String),
}

impl Gateway {
    /// Tries to open the signaling WebSocket once and closes it again at once.
    pub async fn probe_ws(&self) -> WsProbe {
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.clone());
        let url = self.ws_url();
        let attempt = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            None,
            true,
            Some(connector),
        );
        let timeout = self.request_timeout;
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok((mut stream, _))) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.close(None)).await;
                WsProbe::Available
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => WsProbe::Refused {
                status: response.status().as_u16(),
            },
            Ok(Err(other)) => WsProbe::Failed(other.to_string()),
            Err(_) => WsProbe::Failed(format!("no answer within {timeout:?}")),
        }
    }
}

/// The gateway's answer to a browser's CORS preflight (`OPTIONS` with `Origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsAnswer {
    /// The HTTP status.
    pub status: u16,
    /// `Access-Control-Allow-Origin`, if sent.
    pub allow_origin: Option<String>,
    /// `Access-Control-Allow-Methods`, if sent.
    pub allow_methods: Option<String>,
    /// `Access-Control-Allow-Headers`, if sent.
    pub allow_headers: Option<String>,
}

impl CorsAnswer {
    /// Whether a page served from `origin` may make the request.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origin
            .as_deref()
            .is_some_and(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

impl Gateway {
    /// Sends the preflight a browser on `origin` sends before `method` on `path` (below the
    /// gateway URL) with the given request headers, e.g. `authorization,content-type`.
    pub async fn cors_preflight(
        &self,
        path: &str,
        origin: &str,
        method: &str,
        request_headers: &str,
    ) -> Result<CorsAnswer, String> {
        let url = self
            .base
            .join(path)
            .map_err(|e| format!("bad request path `{path}`: {e}"))?;
        let response = self
            .http
            .request(reqwest::Method::OPTIONS, url)
            .header(reqwest::header::ORIGIN, origin)
            .header(reqwest::header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(
                reqwest::header::ACCESS_CONTROL_REQUEST_HEADERS,
                request_headers,
            )
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(CorsAnswer {
            status: response.status().as_u16(),
            allow_origin: header(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN),
            allow_methods: header(reqwest::header::ACCESS_CONTROL_ALLOW_METHODS),
            allow_headers: header(reqwest::header::ACCESS_CONTROL_ALLOW_HEADERS),
        })
    }
}

/// Send a text frame (helper so callers need no tungstenite types).
pub async fn ws_send(stream: &mut WsStream, text: String) -> Result<(), String> {
    stream
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}

/// What the WebSocket delivered.
#[derive(Debug)]
pub enum WsIncoming {
    /// A text frame.
    Text(String),
    /// The socket closed (with the reason).
    Closed(String),
}

/// Receive the next text frame, skipping pings and binary frames.
pub async fn ws_recv(stream: &mut WsStream) -> WsIncoming {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return WsIncoming::Text(text.to_string()),
            Some(Ok(Message::Close(frame))) => {
                return WsIncoming::Closed(
                    frame
                        .map(|f| format!("{} {}", f.code, f.reason))
                        .unwrap_or_else(|| "closed by the gateway".into()),
                );
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return WsIncoming::Closed(e.to_string()),
            None => return WsIncoming::Closed("connection ended".into()),
        }
    }
}

/// reqwest's Display hides the cause; the chain says "connection refused" or "certificate".
fn describe_reqwest_error(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        text.push_str(" (use --ca-cert FILE for a private CA, or --insecure to skip verification)");
    }
    text
}
