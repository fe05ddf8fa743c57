//! Who may talk to the viewer: requests must name this server in `Host` (when it listens on
//! loopback), and WebSocket upgrades must come from the viewer's own page.
//!
//! Why: a loopback server is still reachable from any web page the user opens. DNS rebinding
//! makes a foreign page's requests carry a foreign `Host`, and browsers apply no CORS to
//! WebSockets, so without the `Origin` check any site could drive the signaling socket through
//! this proxy.

use crate::proxy::refuse;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// The address the viewer is bound to, to check requests against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalServer {
    pub(crate) addr: SocketAddr,
}

impl LocalServer {
    /// Whether `host` (the `Host` header) names this server.
    fn accepts_host(&self, host: &str) -> bool {
        if !self.addr.ip().is_loopback() {
            // Bound to a network address on purpose (with a warning): any name may lead here.
            return true;
        }
        let port = self.addr.port();
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }
}

/// The middleware: refuse foreign `Host`s and foreign WebSocket origins.
pub(crate) async fn guard(
    State(local): State<LocalServer>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !local.accepts_host(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "this viewer answers only to http://{}/ (the request named `{host}`)",
                local.addr
            ),
        );
    }
    if headers.contains_key(header::UPGRADE) && !same_origin(headers, host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "WebSocket upgrades are accepted only from the viewer's own page",
        );
    }
    next.run(request).await
}

/// No `Origin` (not a browser) or `Origin` equal to this server as the request named it.
fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .is_ok_and(|origin| origin.eq_ignore_ascii_case(&format!("http://{host}"))),
    }
}
