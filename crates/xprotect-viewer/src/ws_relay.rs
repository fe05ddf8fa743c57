//! The signaling WebSocket, relayed frame by frame between the page and the gateway.
//!
//! The upstream socket is opened before the browser's upgrade is accepted, so a gateway that
//! refuses the WebSocket (before 2025 R1, or down) shows up in the page as a failed upgrade
//! with the reason in the response, not as an open socket that closes at once.

use crate::proxy::refuse;
use axum::extract::ws::{self, CloseFrame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode};
use url::Url;

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connect to the gateway, then accept the browser's upgrade and relay until either side ends.
pub(crate) async fn relay(
    upgrade: WebSocketUpgrade,
    target: Url,
    peer: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Response {
    let mut request = match target.as_str().into_client_request() {
        Ok(request) => request,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("bad WebSocket URL: {error}"),
            );
        }
    };
    if let Ok(value) = peer.ip().to_string().parse() {
        request.headers_mut().insert("x-forwarded-for", value);
    }
    let connector = tokio_tungstenite::Connector::Rustls(tls);
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector));
    let Ok(connected) = tokio::time::timeout(timeout, connect).await else {
        return refuse(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the gateway did not open the WebSocket within {timeout:?}"),
        );
    };
    let upstream = match connected {
        Ok((upstream, _)) => upstream,
        Err(tungstenite::Error::Http(response)) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            return refuse(
                status,
                &format!(
                    "the gateway refused the WebSocket with HTTP {} (an XProtect gateway \
                         before 2025 R1 has none: use REST signaling)",
                    response.status()
                ),
            );
        }
        Err(error) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                &format!("cannot open the gateway's WebSocket: {error}"),
            );
        }
    };
    upgrade.on_upgrade(move |browser| pump(browser, upstream))
}

/// Copy frames both ways until one side closes or fails; the other side is then closed too.
async fn pump(browser: WebSocket, upstream: Upstream) {
    let (mut browser_tx, mut browser_rx) = browser.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let to_gateway = async {
        while let Some(Ok(message)) = browser_rx.next().await {
            let Some(message) = to_tungstenite(message) else {
                continue;
            };
            let closing = message.is_close();
            if upstream_tx.send(message).await.is_err() || closing {
                break;
            }
        }
    };
    let to_browser = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let Some(message) = to_axum(message) else {
                continue;
            };
            let closing = matches!(message, ws::Message::Close(_));
            if browser_tx.send(message).await.is_err() || closing {
                break;
            }
        }
    };
    // Either direction ending ends the relay: a half-open signaling socket serves nobody.
    tokio::select! {
        () = to_gateway => {}
        () = to_browser => {}
    }
    // Whichever side is still open hears a close frame (errors: it is gone already).
    let _ = browser_tx.close().await;
    let _ = upstream_tx.close().await;
    tracing::debug!("signaling WebSocket relay ended");
}

fn to_tungstenite(message: ws::Message) -> Option<tungstenite::Message> {
    Some(match message {
        ws::Message::Text(text) => tungstenite::Message::text(text.as_str()),
        ws::Message::Binary(data) => tungstenite::Message::binary(data),
        // Pings are answered hop by hop by each library; relaying them would double them.
        ws::Message::Ping(_) | ws::Message::Pong(_) => return None,
        ws::Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|frame| tungstenite::protocol::CloseFrame {
                code: CloseCode::from(frame.code),
                reason: frame.reason.as_str().into(),
            }))
        }
    })
}

fn to_axum(message: tungstenite::Message) -> Option<ws::Message> {
    Some(match message {
        tungstenite::Message::Text(text) => ws::Message::Text(Utf8Bytes::from(text.as_str())),
        tungstenite::Message::Binary(data) => ws::Message::Binary(data),
        tungstenite::Message::Ping(_)
        | tungstenite::Message::Pong(_)
        | tungstenite::Message::Frame(_) => return None,
        tungstenite::Message::Close(frame) => ws::Message::Close(frame.map(|frame| CloseFrame {
            code: frame.code.into(),
            reason: Utf8Bytes::from(frame.reason.as_str()),
        })),
    })
}
