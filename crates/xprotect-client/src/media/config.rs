//! What the caller chooses about a peer: ICE servers, DTLS role, mDNS, relay-only, local sockets.

use std::net::{Ipv4Addr, SocketAddr};

/// One STUN or TURN server, as the browser's `RTCIceServer` describes it.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServerConfig {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServerConfig {
    /// Prints the credential as `[redacted]`, so configurations can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServerConfig")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The DTLS role the answer claims (`a=setup:` of the answer).
///
/// The gateway offers `actpass`, which obliges it to accept either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsRole {
    /// `a=setup:passive`: we are the DTLS server and the gateway sends the ClientHello.
    ///
    /// The default, because with webrtc-rs as DTLS client the ClientHello waits for the next
    /// ICE check tick (about 200 ms on a quiet link) and the RTP right behind the gateway's
    /// Finished is dropped, losing the first IDR (see `STACK.md`).
    #[default]
    Passive,
    /// `a=setup:active`: we are the DTLS client, as browsers answer. The fallback when a
    /// gateway does not complete DTLS with a passive answer.
    Active,
}

impl DtlsRole {
    /// The value of the answer's `a=setup:` attribute for this role.
    pub fn sdp_setup(self) -> &'static str {
        match self {
            DtlsRole::Passive => "passive",
            DtlsRole::Active => "active",
        }
    }
}

/// Configuration of one [`Peer`](super::Peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// STUN/TURN servers for our own gathering (the gateway's list does not apply to us).
    pub ice_servers: Vec<IceServerConfig>,
    /// The DTLS role of the answer; [`DtlsRole::Passive`] unless a gateway needs `Active`.
    pub dtls_role: DtlsRole,
    /// Accept `.local` (mDNS) candidates from the gateway. Off by default: opening the
    /// multicast socket fails with `ENODEV` on hosts without a multicast route.
    pub mdns: bool,
    /// Only use TURN relay candidates (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
    /// Local UDP addresses to gather host candidates on. `0.0.0.0:0` means one ephemeral
    /// socket per non-loopback IPv4 interface; name an address (e.g. `127.0.0.1:0`) to bind
    /// exactly that interface.
    pub udp_bind_addrs: Vec<SocketAddr>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            dtls_role: DtlsRole::default(),
            mdns: false,
            relay_only: false,
            udp_bind_addrs: vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))],
        }
    }
}
