//! The WebSocket endpoint `<gateway>/ws/webrtc/v1`: the upgrade, and a socket loop generic over
//! `Sink`/`Stream` that feeds frames to [`WsConnection`] and writes its replies.

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use super::rpc::{WsBackend, WsConnection};
use crate::error::EmuError;
use crate::http::extract::ClientIp;
use crate::state::AppState;

/// The ONVIF WebRTC signaling subprotocol; echoed when offered, never required (PROTOCOL.md §3.1).
pub const ONVIF_SUBPROTOCOL: &str = "webrtc.onvif.org";

/// Largest text frame read; an SDP answer is a few kilobytes.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Upgrade to a WebSocket; the client address (XFF or TCP peer) is used for mDNS twins.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, EmuError> {
    let upgrade = upgrade.map_err(|rejection| EmuError::BadRequest {
        message: format!("this is the WebSocket endpoint: {}", rejection.body_text()),
        field: None,
    })?;
    Ok(upgrade
        .protocols([ONVIF_SUBPROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            // Closing the socket ends signaling only; media sessions live on (PROTOCOL.md §3.7).
            run_socket(socket, state, WsConnection::new(client_ip)).await;
        }))
}

/// Serve one socket until it closes or fails.
pub async fn run_socket<S, E, B>(socket: S, backend: B, mut connection: WsConnection)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: std::fmt::Display,
    B: WsBackend,
{
    let (mut sink, mut stream) = socket.split();
    while let Some(frame) = stream.next().await {
        let replies = match frame {
            Ok(Message::Text(text)) => connection.handle_text(&backend, text.as_str()).await,
            Ok(Message::Binary(data)) => connection.handle_binary(&backend, data.len()),
            Ok(Message::Close(_)) => break,
            // Pings are answered by the WebSocket layer itself.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Err(error) => {
                tracing::debug!(%error, "websocket read failed");
                break;
            }
        };
        for reply in replies {
            if sink.send(Message::text(reply.to_text())).await.is_err() {
                tracing::debug!("websocket write failed; closing");
                return;
            }
        }
    }
}
