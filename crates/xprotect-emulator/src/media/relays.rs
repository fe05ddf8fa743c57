//! The engine's STUN/TURN side: gathering server-reflexive and relay candidates for new
//! sessions, and the TURN allocations sessions share (one per TURN server, as the server knows
//! an allocation by our socket's 5-tuple).
//!
//! A session whose request names servers is created once its gathering is over (every Binding
//! answered or given up, every allocation ready or failed, or [`GATHER_TIMEOUT`]), so its offer
//! carries every candidate, as a non-trickling gateway's would.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::Candidate;
use tokio::net::UdpSocket;
use uuid::Uuid;

use super::egress::send_to;
use super::ice_servers::ResolvedServer;
use super::stun_client::{BindingProbe, ProbeResult, is_binding_response};
use super::turn_client::{AllocationState, Incoming, SharedAllocation, TurnAllocation};

/// The longest a session's offer waits for its STUN/TURN servers.
pub(crate) const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// What gathering found for one session.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Server-reflexive and relay candidates, in that order.
    pub(crate) candidates: Vec<Candidate>,
    /// The allocations behind the relay candidates.
    pub(crate) relays: Vec<SharedAllocation>,
    /// Servers that gave nothing, and why.
    pub(crate) failures: Vec<String>,
}

/// One session waiting for its candidates; `T` is what the engine needs to finish creating it.
pub(crate) struct Gathering<T> {
    pub(crate) pending: T,
    session_id: Uuid,
    probes: Vec<(String, BindingProbe)>,
    turns: Vec<(String, SharedAllocation)>,
    failures: Vec<String>,
    deadline: Instant,
}

impl<T> Gathering<T> {
    fn is_done(&self, now: Instant) -> bool {
        now >= self.deadline
            || (self
                .probes
                .iter()
                .all(|(_, p)| *p.result() != ProbeResult::Pending)
                && self.turns.iter().all(|(_, a)| {
                    a.lock()
                        .map_or(true, |a| *a.state() != AllocationState::Allocating)
                }))
    }

    fn next_deadline(&self) -> Instant {
        self.probes
            .iter()
            .filter_map(|(_, p)| p.next_deadline())
            .fold(self.deadline, Instant::min)
    }

    /// The candidates: server-reflexive ones unless equal to a host address (as browsers do),
    /// relay candidates of ready allocations.
    fn finish(self, host_addrs: &[SocketAddr], base: SocketAddr) -> (T, Gathered) {
        let mut gathered = Gathered {
            failures: self.failures,
            ..Gathered::default()
        };
        for (url, probe) in &self.probes {
            match probe.result() {
                ProbeResult::Mapped(addr) if host_addrs.contains(addr) => {
                    tracing::debug!(session = %self.session_id, %url, "server-reflexive address equals a host candidate: not offered");
                }
                ProbeResult::Mapped(addr) => {
                    match Candidate::server_reflexive(*addr, base, "udp") {
                        Ok(c) => gathered.candidates.push(c),
                        Err(e) => gathered.failures.push(format!("{url}: {e}")),
                    }
                }
                ProbeResult::Failed(reason) => gathered.failures.push(format!("{url}: {reason}")),
                ProbeResult::Pending => gathered
                    .failures
                    .push(format!("{url}: no answer within {GATHER_TIMEOUT:?}")),
            }
        }
        for (url, allocation) in self.turns {
            let (state, mapped) = allocation
                .lock()
                .map(|a| (a.state().clone(), a.mapped()))
                .unwrap_or((AllocationState::Failed("poisoned".to_owned()), None));
            // The TURN server saw our address too: a server-reflexive candidate, as browsers
            // gather it, unless it is a host address or already known.
            if let Some(mapped) = mapped.filter(|m| !host_addrs.contains(m))
                && !gathered.candidates.iter().any(|c| c.addr() == mapped)
                && let Ok(c) = Candidate::server_reflexive(mapped, base, "udp")
            {
                gathered.candidates.insert(0, c);
            }
            match state {
                AllocationState::Ready { relayed } => {
                    match Candidate::relayed(relayed, base, "udp") {
                        Ok(c) => {
                            gathered.candidates.push(c);
                            gathered.relays.push(allocation);
                        }
                        Err(e) => gathered.failures.push(format!("{url}: {e}")),
                    }
                }
                AllocationState::Failed(reason) => {
                    gathered.failures.push(format!("{url}: {reason}"))
                }
                AllocationState::Allocating => gathered
                    .failures
                    .push(format!("{url}: not allocated within {GATHER_TIMEOUT:?}")),
                AllocationState::Released => gathered.failures.push(format!("{url}: released")),
            }
        }
        (self.pending, gathered)
    }
}

struct SharedEntry {
    allocation: SharedAllocation,
    sessions: HashSet<Uuid>,
}

/// A datagram from a STUN/TURN server, sorted out.
pub(crate) enum Intercepted<'a> {
    /// A peer's datagram that came through a relay: hand it to the sessions as from `peer` to
    /// `relayed`.
    Relayed {
        peer: SocketAddr,
        relayed: SocketAddr,
        payload: &'a [u8],
    },
    /// Ours, handled.
    Consumed,
}

/// Allocations and gatherings of one engine.
pub(crate) struct Relays<T> {
    allocations: HashMap<SocketAddr, SharedEntry>,
    gatherings: Vec<Gathering<T>>,
}

impl<T> Default for Relays<T> {
    fn default() -> Self {
        Self {
            allocations: HashMap::new(),
            gatherings: Vec::new(),
        }
    }
}

impl<T> Relays<T> {
    /// Starts gathering from `servers` for `session_id`; `pending` comes back from
    /// [`Self::take_finished`].
    pub(crate) fn start(
        &mut self,
        session_id: Uuid,
        servers: &[ResolvedServer],
        failures: Vec<String>,
        pending: T,
        now: Instant,
    ) {
        let mut gathering = Gathering {
            pending,
            session_id,
            probes: Vec::new(),
            turns: Vec::new(),
            failures,
            deadline: now + GATHER_TIMEOUT,
        };
        for server in servers {
            match server {
                ResolvedServer::Stun { url, addr } => {
                    gathering
                        .probes
                        .push((url.clone(), BindingProbe::new(*addr, now)));
                }
                ResolvedServer::Turn {
                    url,
                    addr,
                    username,
                    credential,
                } => {
                    let entry = self
                        .allocations
                        .entry(*addr)
                        .or_insert_with(|| SharedEntry {
                            allocation: new_allocation(*addr, username, credential, now),
                            sessions: HashSet::new(),
                        });
                    let dead = entry.allocation.lock().map_or(true, |a| {
                        matches!(
                            a.state(),
                            AllocationState::Failed(_) | AllocationState::Released
                        )
                    });
                    if dead {
                        // A failed allocation is tried afresh for a new session (the server may
                        // be back, the credentials may differ).
                        entry.allocation = new_allocation(*addr, username, credential, now);
                    }
                    entry.sessions.insert(session_id);
                    gathering
                        .turns
                        .push((url.clone(), entry.allocation.clone()));
                }
            }
        }
        self.gatherings.push(gathering);
    }

    /// Gatherings that are over, with what they found.
    pub(crate) fn take_finished(
        &mut self,
        now: Instant,
        host_addrs: &[SocketAddr],
        base: SocketAddr,
    ) -> Vec<(Uuid, T, Gathered)> {
        let mut finished = Vec::new();
        let mut index = 0;
        while index < self.gatherings.len() {
            if self.gatherings[index].is_done(now) {
                let gathering = self.gatherings.swap_remove(index);
                let id = gathering.session_id;
                let (pending, gathered) = gathering.finish(host_addrs, base);
                finished.push((id, pending, gathered));
            } else {
                index += 1;
            }
        }
        finished
    }

    /// Sorts out a datagram if it comes from one of our STUN/TURN servers; `None` if not.
    pub(crate) fn handle_datagram<'a>(
        &mut self,
        datagram: &'a [u8],
        source: SocketAddr,
        now: Instant,
    ) -> Option<Intercepted<'a>> {
        // A STUN server may share its address with a TURN server (coturn answers both):
        // Binding answers go to the probe whose transaction they answer.
        if is_binding_response(datagram) {
            for gathering in &mut self.gatherings {
                for (_, probe) in &mut gathering.probes {
                    if probe.server() == source && probe.handle_datagram(datagram) {
                        return Some(Intercepted::Consumed);
                    }
                }
            }
        }
        let entry = self.allocations.get(&source)?;
        let mut allocation = entry.allocation.lock().ok()?;
        let relayed = allocation.relayed();
        match allocation.handle_datagram(datagram, now) {
            Incoming::Relayed { peer, payload } => Some(match relayed {
                Some(relayed) => Intercepted::Relayed {
                    peer,
                    relayed,
                    payload,
                },
                None => Intercepted::Consumed,
            }),
            Incoming::Consumed => Some(Intercepted::Consumed),
        }
    }

    /// Retransmissions and refreshes.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for gathering in &mut self.gatherings {
            for (_, probe) in &mut gathering.probes {
                probe.handle_timeout(now);
            }
        }
        for entry in self.allocations.values() {
            if let Ok(mut allocation) = entry.allocation.lock() {
                allocation.handle_timeout(now);
            }
        }
    }

    /// When [`Self::handle_timeout`] or [`Self::take_finished`] next has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let gatherings = self.gatherings.iter().map(Gathering::next_deadline);
        let allocations = self
            .allocations
            .values()
            .filter_map(|e| e.allocation.lock().ok().and_then(|a| a.next_deadline()));
        gatherings.chain(allocations).min()
    }

    /// Sends everything the probes and allocations have queued.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) {
        for gathering in &mut self.gatherings {
            for (_, probe) in &mut gathering.probes {
                if let Some(request) = probe.poll_transmit() {
                    send_to(socket, &request, probe.server());
                }
            }
        }
        for (server, entry) in &self.allocations {
            if let Ok(mut allocation) = entry.allocation.lock() {
                while let Some(datagram) = allocation.poll_transmit() {
                    send_to(socket, &datagram, *server);
                }
            }
        }
    }

    /// A session is gone: allocations nobody uses any more are deallocated (and forgotten once
    /// the deallocation has been flushed).
    pub(crate) fn session_ended(&mut self, session_id: Uuid, socket: &UdpSocket) {
        self.gatherings.retain(|g| g.session_id != session_id);
        let mut unused = Vec::new();
        for (server, entry) in &mut self.allocations {
            if entry.sessions.remove(&session_id) && entry.sessions.is_empty() {
                unused.push(*server);
            }
        }
        for server in unused {
            let Some(entry) = self.allocations.remove(&server) else {
                continue;
            };
            if let Ok(mut allocation) = entry.allocation.lock() {
                allocation.release();
                while let Some(datagram) = allocation.poll_transmit() {
                    send_to(socket, &datagram, server);
                }
                tracing::debug!(%server, "TURN allocation released: no session uses it");
            }
        }
    }

    /// Deallocates everything (the engine is stopping).
    pub(crate) fn release_all(&mut self, socket: &UdpSocket) {
        for (server, entry) in self.allocations.drain() {
            if let Ok(mut allocation) = entry.allocation.lock() {
                allocation.release();
                while let Some(datagram) = allocation.poll_transmit() {
                    send_to(socket, &datagram, server);
                }
            }
        }
    }
}

fn new_allocation(
    server: SocketAddr,
    username: &str,
    credential: &xprotect_proto::wire::Secret,
    now: Instant,
) -> SharedAllocation {
    Arc::new(Mutex::new(TurnAllocation::new(
        server,
        username.to_owned(),
        credential.clone(),
        now,
    )))
}
