//! The WebSocket endpoint `<gateway>/ws/webrtc/v1`: the upgrade, and a socket loop generic over
//! `Sink`/`Stream` that feeds frames to [`WsConnection`], writes its replies and its held-back
//! messages when due, and obeys fault orders ([`SocketOrder`]).

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::rpc::{WsBackend, WsConnection};
use crate::error::EmuError;
use crate::faults::SocketOrder;
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
    // Subscribed before the upgrade completes, so no order given after this request is missed.
    let orders = state.faults().socket_orders();
    Ok(upgrade
        .protocols([ONVIF_SUBPROTOCOL])
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let mut connection = WsConnection::new(client_ip);
            let ended_by = run_socket(socket, &state, &mut connection, orders).await;
            // Closed by the client: signaling ends, media sessions live on until the ICE
            // timeouts (PROTOCOL.md §3.7, §10.8). Closed by a fault: they end after a linger.
            if let Some(SocketOrder::Close {
                linger: Some(linger),
                ..
            }) = ended_by
            {
                let at = Instant::now() + linger;
                let reason = format!(
                    "its WebSocket was closed by an injected fault ({} ms linger)",
                    linger.as_millis()
                );
                for session in connection.sessions() {
                    state.sessions().update_timers(*session, |timers| {
                        timers.drop_at = Some((at, reason.clone()));
                    });
                }
            }
        }))
}

/// Serve one socket until it closes or fails, or until an order closes it (returned).
pub async fn run_socket<S, E, B>(
    socket: S,
    backend: &B,
    connection: &mut WsConnection,
    mut orders: watch::Receiver<Option<SocketOrder>>,
) -> Option<SocketOrder>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: std::fmt::Display,
    B: WsBackend,
{
    let (mut sink, mut stream) = socket.split();
    let mut orders_open = true;
    loop {
        let deferred_at = connection.next_deferred_at();
        let replies = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    connection.handle_text(backend, text.as_str()).await
                }
                Some(Ok(Message::Binary(data))) => connection.handle_binary(backend, data.len()),
                Some(Ok(Message::Close(_))) | None => return None,
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(error)) => {
                    tracing::debug!(%error, "websocket read failed");
                    return None;
                }
            },
            changed = orders.changed(), if orders_open => {
                if changed.is_err() {
                    // The emulator's state is gone; nobody gives orders any more.
                    orders_open = false;
                    continue;
                }
                let order = orders.borrow_and_update().clone();
                let Some(order) = order else { continue };
                let SocketOrder::Close { code, reason, .. } = &order;
                let close = Message::Close(Some(CloseFrame {
                    code: *code,
                    reason: (*reason).into(),
                }));
                // Best effort: the client may be gone already.
                let _ = sink.send(close).await;
                let _ = sink.close().await;
                return Some(order);
            },
            () = sleep_until_some(deferred_at) => {
                connection.take_due(backend, Instant::now())
            }
        };
        for reply in replies {
            if sink.send(Message::text(reply.to_text())).await.is_err() {
                tracing::debug!("websocket write failed; closing");
                return None;
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
