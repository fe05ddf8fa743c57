//! A session's way out: plain UDP for host and server-reflexive paths, TURN framing for relayed
//! ones; and what it learns on the way (the remote candidates' types, the path DTLS took).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::Transmit;
use str0m::{Candidate, CandidateKind};
use tokio::net::UdpSocket;

use super::stun;
use super::turn_client::SharedAllocation;

/// The type names ICE uses in candidate lines (RFC 8445 §5.1.1.5 / SDP `typ`).
pub(crate) fn kind_name(kind: CandidateKind) -> &'static str {
    match kind {
        CandidateKind::Host => "host",
        CandidateKind::ServerReflexive => "srflx",
        CandidateKind::PeerReflexive => "prflx",
        CandidateKind::Relayed => "relay",
    }
}

/// The pair a session's traffic uses, by candidate type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTypes {
    /// `host` or `relay` (a server-reflexive candidate sends from its host base, so it shows as
    /// `host` here).
    pub(crate) local: &'static str,
    /// The remote candidate's type as signaled, or `prflx` for an address ICE discovered.
    pub(crate) remote: &'static str,
}

/// Outgoing datagrams of one session.
#[derive(Debug, Default)]
pub(crate) struct Egress {
    relays: Vec<SharedAllocation>,
    remote_kinds: HashMap<SocketAddr, CandidateKind>,
    /// The last non-STUN datagram's (source, destination): after ICE nominates a pair, DTLS and
    /// media only take that one.
    last_media_path: Option<(SocketAddr, SocketAddr)>,
}

impl Egress {
    /// An egress that can send through `relays` (the session's relay candidates).
    pub(crate) fn new(relays: Vec<SharedAllocation>) -> Self {
        Self {
            relays,
            ..Self::default()
        }
    }

    /// Notes a remote candidate: its type for the journal, its IP for the relays' permissions.
    pub(crate) fn remote_candidate(&mut self, candidate: &Candidate) {
        self.remote_kinds.insert(candidate.addr(), candidate.kind());
        let now = Instant::now();
        for relay in &self.relays {
            if let Ok(mut allocation) = relay.lock() {
                allocation.permit(candidate.addr().ip(), now);
            }
        }
    }

    /// Sends `t`: from a relayed address through its TURN server, otherwise straight.
    pub(crate) fn send(&mut self, socket: &UdpSocket, t: &Transmit) {
        if !stun::is_stun(&t.contents) {
            self.last_media_path = Some((t.source, t.destination));
        }
        let relay = self.relays.iter().find(|r| {
            r.lock()
                .is_ok_and(|allocation| allocation.relayed() == Some(t.source))
        });
        let Some(relay) = relay else {
            send_to(socket, &t.contents, t.destination);
            return;
        };
        let Ok(mut allocation) = relay.lock() else {
            return;
        };
        let framed = allocation.wrap(t.destination, &t.contents, Instant::now());
        let server = allocation.server();
        // Control messages the wrap started (permission, channel binding) go first.
        while let Some(control) = allocation.poll_transmit() {
            send_to(socket, &control, server);
        }
        send_to(socket, &framed, server);
    }

    /// The types of the pair DTLS and media went over, once they went.
    pub(crate) fn path_types(&self) -> Option<PathTypes> {
        let (source, destination) = self.last_media_path?;
        let local = if self
            .relays
            .iter()
            .any(|r| r.lock().is_ok_and(|a| a.relayed() == Some(source)))
        {
            "relay"
        } else {
            "host"
        };
        let remote = self
            .remote_kinds
            .get(&destination)
            .map_or("prflx", |kind| kind_name(*kind));
        Some(PathTypes { local, remote })
    }
}

/// UDP: when the kernel buffer is full the datagram is lost, as on the wire; never block.
pub(crate) fn send_to(socket: &UdpSocket, datagram: &[u8], destination: SocketAddr) {
    if let Err(e) = socket.try_send_to(datagram, destination) {
        tracing::trace!("datagram to {destination} dropped: {e}");
    }
}
