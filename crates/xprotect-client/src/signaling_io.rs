//! The IO around a sans-IO signaling machine: performs its HTTP requests (several may be in
//! flight, e.g. candidate POSTs next to a poll), sends its WebSocket frames, and feeds responses,
//! frames, closes and timeouts back. Every driver of a session (ours, the benchmark's str0m peer)
//! uses this one loop.

use crate::gateway::{Gateway, WsIncoming, WsStream, ws_recv, ws_send};
use crate::session::SignalingKind;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use xprotect_proto::signal::{
    HttpResponse, Output, RequestId, RestConfig, RestSignaling, SignalEvent, Signaling, WsConfig,
    WsSignaling,
};

type HttpFuture = Pin<Box<dyn Future<Output = (RequestId, Result<HttpResponse, String>)> + Send>>;

/// A signaling machine with its transport.
pub struct SignalingIo {
    gateway: Gateway,
    signaling: Signaling,
    ws: Option<WsStream>,
    http: FuturesUnordered<HttpFuture>,
}

impl std::fmt::Debug for SignalingIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingIo")
            .field("signaling", &self.signaling)
            .field("ws_open", &self.ws.is_some())
            .field("http_in_flight", &self.http.len())
            .finish()
    }
}

impl SignalingIo {
    /// The machine for `kind`, with its WebSocket already open when it needs one.
    pub async fn connect(
        gateway: Gateway,
        kind: SignalingKind,
        rest: RestConfig,
        ws: WsConfig,
    ) -> Result<Self, String> {
        let (signaling, ws) = match kind {
            SignalingKind::Rest => (Signaling::Rest(RestSignaling::new(rest)), None),
            SignalingKind::WebSocket => (
                Signaling::Ws(WsSignaling::new(ws)),
                Some(gateway.connect_ws().await?),
            ),
        };
        Ok(Self {
            gateway,
            signaling,
            ws,
            http: FuturesUnordered::new(),
        })
    }

    /// The machine, for commands (`start`, `send_answer`, `add_local_candidate`, …).
    pub fn signaling(&mut self) -> &mut Signaling {
        &mut self.signaling
    }

    /// Perform everything the machine wants now; its events are appended to `events` in order.
    /// Returns the machine's next deadline.
    pub async fn drain(&mut self, events: &mut Vec<SignalEvent>) -> Instant {
        loop {
            match self.signaling.poll_output() {
                Output::Http(id, request) => {
                    let gateway = self.gateway.clone();
                    self.http.push(Box::pin(
                        async move { (id, gateway.execute(&request).await) },
                    ));
                }
                Output::Ws(text) => {
                    let Some(ws) = self.ws.as_mut() else {
                        tracing::debug!("signaling frame dropped: the WebSocket is closed");
                        continue;
                    };
                    if let Err(error) = ws_send(ws, text).await {
                        self.ws = None;
                        self.signaling.handle_ws_closed(Instant::now(), error);
                    }
                }
                Output::Event(event) => events.push(event),
                Output::Timeout(at, _) => return at,
            }
        }
    }

    /// Wait for the next HTTP completion or WebSocket frame, or for `deadline`, and feed it to the
    /// machine. Cancel-safe: use it as one branch of a `select!`.
    pub async fn next_input(&mut self, deadline: Instant) {
        tokio::select! {
            Some((id, result)) = self.http.next(), if !self.http.is_empty() => match result {
                Ok(response) => self.signaling.handle_http_response(Instant::now(), id, response),
                Err(error) => self.signaling.handle_http_failure(Instant::now(), id, error),
            },
            incoming = next_ws(&mut self.ws) => match incoming {
                WsIncoming::Text(text) => self.signaling.handle_ws_text(Instant::now(), &text),
                WsIncoming::Closed(reason) => {
                    self.ws = None;
                    self.signaling.handle_ws_closed(Instant::now(), reason);
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                self.signaling.handle_timeout(Instant::now());
            }
        }
    }

    /// Close the WebSocket politely (bounded).
    pub async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        }
    }
}

async fn next_ws(ws: &mut Option<WsStream>) -> WsIncoming {
    match ws {
        Some(stream) => ws_recv(stream).await,
        None => std::future::pending().await,
    }
}
