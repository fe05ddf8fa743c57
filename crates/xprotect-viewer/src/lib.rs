//! A web viewer for XProtect's API Gateway, served by our binary, and a same-origin proxy to
//! the gateway so the page needs no CORS on it.
//!
//! [`start`] binds one HTTP server: `/` serves the page (plain HTML, JS and CSS embedded in the
//! binary), `/gateway/<path>` is forwarded to the configured gateway and nowhere else, HTTP and
//! the signaling WebSocket alike. The page logs in through the gateway's IDP, lists cameras from
//! the Config API and plays live or recorded video over REST or WebSocket signaling, with the
//! time of the frame on screen and PTZ/aux commands.

#![forbid(unsafe_code)]

mod assets;
mod guard;
pub mod proxy;
pub mod target;
mod ws_relay;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;
use xprotect_client::tls::TlsOptions;

pub use proxy::{GatewayProxy, ProxyError};

/// The address the viewer binds unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8088);

/// What the viewer serves and where.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// The API Gateway URL, e.g. `https://vms.example.com/api`.
    pub gateway: Url,
    /// Where to listen ([`DEFAULT_LISTEN`]; port 0 for any free port).
    pub listen: SocketAddr,
    /// How to check the gateway's certificate.
    pub tls: TlsOptions,
    /// Limit for one forwarded HTTP request (connect and answer).
    pub request_timeout: Duration,
}

impl ViewerConfig {
    /// Defaults for `gateway`: loopback port 8088, verified TLS, 30 s per request.
    pub fn new(gateway: Url) -> Self {
        Self {
            gateway,
            listen: DEFAULT_LISTEN,
            tls: TlsOptions::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The viewer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The proxy's configuration is unusable.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A viewer serving in the background.
#[derive(Debug)]
pub struct RunningViewer {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningViewer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// Stop serving and wait until the server has ended.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The viewer's routes: the page at `/`, the proxy under `/gateway/`, for a server bound to
/// `local_addr` (requests must name it; see the guard module).
pub fn router(proxy: GatewayProxy, local_addr: SocketAddr) -> Router {
    let local = guard::LocalServer { addr: local_addr };
    Router::new()
        .route("/", get(assets::index))
        .route("/viewer.js", get(assets::script))
        .route("/viewer.css", get(assets::style))
        .route("/gateway/{*path}", any(forward))
        .fallback(assets::not_found)
        .with_state(proxy)
        .layer(axum::middleware::from_fn_with_state(local, guard::guard))
}

async fn forward(
    State(proxy): State<GatewayProxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    proxy.handle(peer, request).await
}

/// Bind and serve in the background.
pub async fn start(config: ViewerConfig) -> Result<RunningViewer, ViewerError> {
    let proxy = GatewayProxy::new(&config.gateway, &config.tls, config.request_timeout)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ViewerError::Bind {
            address: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ViewerError::Bind {
        address: config.listen,
        source,
    })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(proxy, local_addr).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "the viewer's server ended");
        }
    });
    Ok(RunningViewer {
        local_addr,
        stop,
        task,
    })
}
