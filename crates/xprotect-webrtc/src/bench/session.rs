//! One benchmark session of either stack, reporting the same milestones, so that the time to
//! first frame and the load figures are measured identically for both.

use super::str0m_peer::Str0mSession;
use crate::cli::StackArg;
use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use url::Url;
use xprotect_client::gateway::Gateway;
use xprotect_client::login::TokenSource;
use xprotect_client::session::{Session, SessionEvent, SessionOptions, SignalingKind};
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{DeviceId, Secret, SessionParams};

/// A milestone of a benchmark session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The gateway created the session (REST POST answered, or JSON-RPC result).
    Created,
    /// ICE and DTLS are up.
    Connected,
    /// A complete access unit was delivered (the first one is always a keyframe).
    Frame {
        /// An IDR.
        keyframe: bool,
        /// Its H.264 size.
        bytes: usize,
        /// Its RTP timestamp: milliseconds since the start reference (PROTOCOL.md §4.2), the
        /// requested time for playback.
        rtp_timestamp: u32,
    },
    /// Something odd that does not end the session.
    Warning(String),
    /// The session ended: `Ok` after `close`.
    Ended(Result<(), String>),
}

/// A session of our client or of the str0m peer.
#[derive(Debug)]
pub enum BenchSession {
    /// `xprotect_client::session::Session` (webrtc-rs).
    Ours(Session),
    /// The str0m peer with the same signaling and depacketiser.
    Str0m(Str0mSession),
}

impl BenchSession {
    /// Start a session of `stack`.
    pub fn start(
        stack: StackArg,
        gateway: Gateway,
        tokens: &TokenSource,
        options: SessionOptions,
    ) -> anyhow::Result<Self> {
        Ok(match stack {
            StackArg::Ours => BenchSession::Ours(Session::start(gateway, tokens, options)),
            StackArg::Str0m => {
                let token = tokens
                    .current()
                    .context("no access token (the login failed or expired)")?;
                let bind = options
                    .peer
                    .udp_bind_addrs
                    .first()
                    .copied()
                    .filter(|addr| !addr.ip().is_unspecified())
                    .context("the str0m peer needs a concrete local IP to bind")?;
                BenchSession::Str0m(Str0mSession::start(gateway, token, options, bind))
            }
        })
    }

    /// The next milestone; `None` once the session is gone.
    pub async fn next_event(&mut self) -> Option<ProbeEvent> {
        match self {
            BenchSession::Str0m(session) => session.next_event().await,
            BenchSession::Ours(session) => loop {
                let event = match session.next_event().await? {
                    SessionEvent::Created(_) => ProbeEvent::Created,
                    SessionEvent::Connected => ProbeEvent::Connected,
                    SessionEvent::Video(frame) => ProbeEvent::Frame {
                        keyframe: frame.access_unit.keyframe,
                        bytes: frame.access_unit.byte_len(),
                        rtp_timestamp: frame.access_unit.rtp_timestamp,
                    },
                    SessionEvent::Warning(text) => ProbeEvent::Warning(text),
                    SessionEvent::SignalingLost(reason) => {
                        ProbeEvent::Warning(format!("the signaling WebSocket closed ({reason})"))
                    }
                    SessionEvent::Ended(result) => {
                        ProbeEvent::Ended(result.map_err(|e| e.to_string()))
                    }
                    SessionEvent::CommandsReady
                    | SessionEvent::Audio(_)
                    | SessionEvent::Reconnecting { .. }
                    | SessionEvent::Resumed { .. } => continue,
                };
                return Some(event);
            },
        }
    }

    /// Ask the session to end; it then reports `Ended(Ok(()))`.
    pub async fn close(&mut self) {
        match self {
            BenchSession::Ours(session) => session.close().await,
            BenchSession::Str0m(session) => session.close(),
        }
    }
}

/// The session options both stacks get: live video only, this transport, host candidates on
/// `bind_ip` only (as the `demo` does on loopback).
pub fn bench_options(
    camera: DeviceId,
    signaling: SignalingKind,
    bind_ip: IpAddr,
) -> SessionOptions {
    let mut params = SessionParams::live(camera);
    params.include_audio = false;
    let mut options = SessionOptions::new(params);
    options.signaling = signaling;
    options.peer.udp_bind_addrs = vec![SocketAddr::new(bind_ip, 0)];
    options
}

/// The local IP the OS routes to `url`'s host from (127.0.0.1 for a loopback gateway). A
/// connected UDP socket sends nothing; it only makes the kernel pick the source address.
pub fn local_ip_towards(url: &Url) -> anyhow::Result<IpAddr> {
    let host = url.host_str().context("the gateway URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let socket = UdpSocket::bind(("0.0.0.0", 0)).context("cannot open a UDP socket")?;
    socket
        .connect((host, port))
        .with_context(|| format!("no route to {host}"))?;
    let ip = socket.local_addr().context("local address")?.ip();
    if ip.is_unspecified() {
        bail!("cannot tell which local address reaches {host}");
    }
    Ok(ip)
}

/// Credentials for the OAuth `VmsClient`, as `record` uses by default.
pub fn credentials(user: &str, password: &str) -> Credentials {
    Credentials {
        username: user.to_owned(),
        password: Secret::new(password),
        client_id: xprotect_proto::wire::idp::VMS_CLIENT.into(),
    }
}
