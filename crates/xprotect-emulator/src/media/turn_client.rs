//! One TURN allocation over UDP with long-term credentials (RFC 8656), sans-IO.
//!
//! The engine feeds it the datagrams that came from the TURN server and the clock, and sends
//! what [`TurnAllocation::poll_transmit`] hands out to the server. In between it:
//! - allocates (the first Allocate draws a 401 with REALM and NONCE, the second carries
//!   USERNAME/REALM/NONCE and MESSAGE-INTEGRITY), following 438 Stale Nonce;
//! - installs a permission for every peer IP the sessions name ([`TurnAllocation::permit`]) and
//!   refreshes them before their 5 minutes run out;
//! - wraps outgoing datagrams for a peer in a Send indication until a channel is bound to the
//!   peer, then in ChannelData (4 bytes of overhead instead of 36+);
//! - unwraps Data indications and ChannelData into (peer, datagram);
//! - refreshes the allocation before its lifetime ends, and deallocates (Refresh, lifetime 0)
//!   on [`TurnAllocation::release`].
//!
//! A socket has one allocation per TURN server (the server knows it by the 5-tuple), so the
//! engine shares it between every session that names the server; routing to sessions is by peer
//! address, as for host candidates.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xprotect_proto::wire::Secret;

use super::stun::{
    self, CHANNEL_MAX, CHANNEL_MIN, Class, Message, MessageBuilder, TRANSPORT_UDP, TransactionId,
    attr, method,
};

/// First retransmission timeout; doubled per attempt (RFC 8489 §6.2.1 uses 500 ms on the
/// Internet; the servers a gateway names sit close to it).
const INITIAL_RTO: Duration = Duration::from_millis(250);
/// Requests are sent this often before the transaction fails (about 8 s in all).
const MAX_ATTEMPTS: u32 = 6;
/// Lifetime asked for (the server may grant less); 10 minutes is the RFC's default.
const REQUESTED_LIFETIME: u32 = 600;
/// Refresh the allocation this long before it ends (or at half its life if that is shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Permissions last 300 s on the server (RFC 8656 §9); refresh well before.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channel bindings last 600 s (RFC 8656 §12); refresh well before.
const CHANNEL_REFRESH: Duration = Duration::from_secs(480);
/// Sent in SOFTWARE so server logs say who allocated.
const SOFTWARE: &str = "xprotect-emulator";

/// An allocation shared by the engine and the sessions that send through it.
pub(crate) type SharedAllocation = Arc<Mutex<TurnAllocation>>;

/// Where an allocation is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllocationState {
    /// Allocate requests in flight.
    Allocating,
    /// The server relays for us at this address.
    Ready {
        /// The relayed transport address: the relay candidate.
        relayed: SocketAddr,
    },
    /// Allocation failed or the allocation was lost; the reason in words.
    Failed(String),
    /// Deallocated.
    Released,
}

/// What a datagram from the TURN server turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// A datagram a peer sent to the relayed address.
    Relayed {
        /// The peer.
        peer: SocketAddr,
        /// The datagram as the peer sent it (STUN, DTLS, SRTP…).
        payload: &'a [u8],
    },
    /// A response for the allocation itself (handled), or something to drop.
    Consumed,
}

#[derive(Debug, Clone)]
enum Request {
    Allocate,
    Refresh { lifetime: u32 },
    CreatePermission { ips: Vec<IpAddr> },
    ChannelBind { peer: SocketAddr, channel: u16 },
}

#[derive(Debug)]
struct Transaction {
    request: Request,
    datagram: Vec<u8>,
    attempts: u32,
    next_send: Instant,
    rto: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Permission {
    /// When to refresh it; `None` while its CreatePermission is in flight.
    refresh_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    number: u16,
    /// When to refresh it; `None` while its ChannelBind is in flight.
    refresh_at: Option<Instant>,
    bound: bool,
}

/// The long-term credential in use: the key is derived once REALM is known.
struct Auth {
    realm: String,
    nonce: String,
    key: [u8; 16],
}

/// One allocation on one TURN server.
pub(crate) struct TurnAllocation {
    server: SocketAddr,
    username: String,
    password: Secret,
    auth: Option<Auth>,
    state: AllocationState,
    /// The server-reflexive address the server saw (XOR-MAPPED-ADDRESS of the Allocate).
    mapped: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    transactions: HashMap<TransactionId, Transaction>,
    outbox: VecDeque<Vec<u8>>,
    permissions: HashMap<IpAddr, Permission>,
    channels: HashMap<SocketAddr, Channel>,
    peers_by_channel: HashMap<u16, SocketAddr>,
    next_channel: u16,
    tid_counter: u64,
    tid_salt: [u8; 4],
}

impl std::fmt::Debug for TurnAllocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out (Secret redacts it anyway); the rest is what a log needs.
        f.debug_struct("TurnAllocation")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("state", &self.state)
            .field("permissions", &self.permissions.len())
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl TurnAllocation {
    /// Starts allocating on `server` (the first Allocate is queued at once).
    pub(crate) fn new(
        server: SocketAddr,
        username: String,
        password: Secret,
        now: Instant,
    ) -> Self {
        let mut allocation = Self {
            server,
            username,
            password,
            auth: None,
            state: AllocationState::Allocating,
            mapped: None,
            refresh_at: None,
            transactions: HashMap::new(),
            outbox: VecDeque::new(),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            peers_by_channel: HashMap::new(),
            next_channel: CHANNEL_MIN,
            tid_counter: 0,
            tid_salt: rand::random(),
        };
        allocation.start(Request::Allocate, now);
        allocation
    }

    /// The TURN server.
    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    /// Where the allocation is.
    pub(crate) fn state(&self) -> &AllocationState {
        &self.state
    }

    /// The relayed address, once allocated.
    pub(crate) fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            AllocationState::Ready { relayed } => Some(relayed),
            _ => None,
        }
    }

    /// Our address as the TURN server sees it.
    pub(crate) fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The next datagram for the server.
    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// When [`Self::handle_timeout`] next has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let transactions = self.transactions.values().map(|t| t.next_send);
        let permissions = self.permissions.values().filter_map(|p| p.refresh_at);
        let channels = self.channels.values().filter_map(|c| c.refresh_at);
        transactions
            .chain(permissions)
            .chain(channels)
            .chain(self.refresh_at)
            .min()
    }

    /// Retransmits, refreshes, and gives up on transactions that got no answer.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for (tid, t) in &mut self.transactions {
            if t.next_send > now {
                continue;
            }
            if t.attempts >= MAX_ATTEMPTS {
                failed.push(*tid);
                continue;
            }
            t.attempts += 1;
            t.next_send = now + t.rto;
            t.rto *= 2;
            self.outbox.push_back(t.datagram.clone());
        }
        for tid in failed {
            if let Some(t) = self.transactions.remove(&tid) {
                self.transaction_failed(
                    t.request,
                    "no answer from the TURN server".to_owned(),
                    now,
                );
            }
        }
        if !matches!(self.state, AllocationState::Ready { .. }) {
            return;
        }
        if self.refresh_at.is_some_and(|at| at <= now) {
            self.refresh_at = None;
            self.start(
                Request::Refresh {
                    lifetime: REQUESTED_LIFETIME,
                },
                now,
            );
        }
        let stale: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, p)| p.refresh_at.is_some_and(|at| at <= now))
            .map(|(ip, _)| *ip)
            .collect();
        if !stale.is_empty() {
            for ip in &stale {
                if let Some(p) = self.permissions.get_mut(ip) {
                    p.refresh_at = None;
                }
            }
            self.start(Request::CreatePermission { ips: stale }, now);
        }
        let stale: Vec<(SocketAddr, u16)> = self
            .channels
            .iter()
            .filter(|(_, c)| c.refresh_at.is_some_and(|at| at <= now))
            .map(|(peer, c)| (*peer, c.number))
            .collect();
        for (peer, channel) in stale {
            if let Some(c) = self.channels.get_mut(&peer) {
                c.refresh_at = None;
            }
            self.start(Request::ChannelBind { peer, channel }, now);
        }
    }

    /// Makes sure the server lets datagrams from `ip` through (RFC 8656 §9). Harmless to repeat.
    pub(crate) fn permit(&mut self, ip: IpAddr, now: Instant) {
        if self.permissions.contains_key(&ip) {
            return;
        }
        self.permissions.insert(ip, Permission { refresh_at: None });
        if matches!(self.state, AllocationState::Ready { .. }) {
            self.start(Request::CreatePermission { ips: vec![ip] }, now);
        }
        // Before the allocation is ready the permission is requested once it is.
    }

    /// `payload` for `peer`, framed for the server: ChannelData on a bound channel, otherwise a
    /// Send indication (and a ChannelBind is started for next time).
    pub(crate) fn wrap(&mut self, peer: SocketAddr, payload: &[u8], now: Instant) -> Vec<u8> {
        self.permit(peer.ip(), now);
        if let Some(channel) = self.channels.get(&peer).filter(|c| c.bound) {
            return stun::channel_data(channel.number, payload);
        }
        if !self.channels.contains_key(&peer)
            && matches!(self.state, AllocationState::Ready { .. })
            && self.next_channel <= CHANNEL_MAX
        {
            let channel = self.next_channel;
            self.next_channel += 1;
            self.channels.insert(
                peer,
                Channel {
                    number: channel,
                    refresh_at: None,
                    bound: false,
                },
            );
            self.peers_by_channel.insert(channel, peer);
            self.start(Request::ChannelBind { peer, channel }, now);
        }
        let tid = self.new_tid();
        MessageBuilder::new(method::SEND, Class::Indication, tid)
            .xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::DATA, payload)
            .finish(None, false)
    }

    /// Handles a datagram from the server.
    pub(crate) fn handle_datagram<'a>(&mut self, datagram: &'a [u8], now: Instant) -> Incoming<'a> {
        if let Some((channel, payload)) = stun::parse_channel_data(datagram) {
            return match self.peers_by_channel.get(&channel) {
                Some(peer) => Incoming::Relayed {
                    peer: *peer,
                    payload,
                },
                None => Incoming::Consumed,
            };
        }
        let Ok(message) = Message::parse(datagram) else {
            return Incoming::Consumed;
        };
        if message.method == method::DATA && message.class == Class::Indication {
            let (Some(peer), Some(payload)) = (
                message.xor_address(attr::XOR_PEER_ADDRESS),
                message.attr(attr::DATA),
            ) else {
                return Incoming::Consumed;
            };
            return Incoming::Relayed { peer, payload };
        }
        if matches!(message.class, Class::Success | Class::Error) {
            self.handle_response(&message, now);
        }
        Incoming::Consumed
    }

    /// Deallocates: a Refresh with lifetime 0, sent once (nobody waits for the answer).
    pub(crate) fn release(&mut self) {
        if matches!(self.state, AllocationState::Ready { .. }) {
            let tid = self.new_tid();
            let datagram = self.build(&Request::Refresh { lifetime: 0 }, tid);
            self.outbox.push_back(datagram);
        }
        self.transactions.clear();
        self.refresh_at = None;
        self.permissions.clear();
        self.channels.clear();
        self.peers_by_channel.clear();
        self.state = AllocationState::Released;
    }

    fn handle_response(&mut self, message: &Message<'_>, now: Instant) {
        let Some(transaction) = self.transactions.remove(&message.tid) else {
            return;
        };
        // Responses to authenticated requests must prove they come from the server that knows
        // the key; the 401/438 challenges carry none.
        let authentic = self
            .auth
            .as_ref()
            .is_none_or(|auth| message.check_integrity(&auth.key));
        if message.class == Class::Error {
            let (code, reason) = message.error_code().unwrap_or((0, String::new()));
            match code {
                401 if self.auth.is_none() || matches!(transaction.request, Request::Allocate) => {
                    let fresh = self.auth.is_none();
                    if fresh && self.take_challenge(message) {
                        self.start(transaction.request, now);
                    } else {
                        self.transaction_failed(
                            transaction.request,
                            format!("TURN server refused the credentials (401 {reason})"),
                            now,
                        );
                    }
                }
                438 => {
                    if let (Some(auth), Some(nonce)) =
                        (self.auth.as_mut(), message.text(attr::NONCE))
                    {
                        auth.nonce = nonce.to_owned();
                        self.start(transaction.request, now);
                    } else {
                        self.transaction_failed(transaction.request, "stale nonce".to_owned(), now);
                    }
                }
                // A Refresh for an allocation the server no longer has.
                437 if matches!(transaction.request, Request::Refresh { .. }) => {
                    self.state = AllocationState::Failed("allocation lost (437)".to_owned());
                }
                _ => self.transaction_failed(
                    transaction.request,
                    format!("TURN error {code} {reason}"),
                    now,
                ),
            }
            return;
        }
        if !authentic {
            tracing::debug!(server = %self.server, "TURN response with a bad MESSAGE-INTEGRITY ignored");
            // Put the transaction back: the real answer may still come.
            self.transactions.insert(message.tid, transaction);
            return;
        }
        match transaction.request {
            Request::Allocate => {
                let Some(relayed) = message.xor_address(attr::XOR_RELAYED_ADDRESS) else {
                    self.state = AllocationState::Failed(
                        "Allocate success without a relayed address".into(),
                    );
                    return;
                };
                self.mapped = message.xor_address(attr::XOR_MAPPED_ADDRESS);
                self.state = AllocationState::Ready { relayed };
                self.schedule_refresh(message, now);
                // Permissions asked for while allocating.
                let ips: Vec<IpAddr> = self.permissions.keys().copied().collect();
                if !ips.is_empty() {
                    self.start(Request::CreatePermission { ips }, now);
                }
            }
            Request::Refresh { .. } => self.schedule_refresh(message, now),
            Request::CreatePermission { ips } => {
                for ip in ips {
                    if let Some(p) = self.permissions.get_mut(&ip) {
                        p.refresh_at = Some(now + PERMISSION_REFRESH);
                    }
                }
            }
            Request::ChannelBind { peer, .. } => {
                if let Some(c) = self.channels.get_mut(&peer) {
                    c.bound = true;
                    c.refresh_at = Some(now + CHANNEL_REFRESH);
                }
                // A channel binding also installs (and refreshes) the peer's permission.
                if let Some(p) = self.permissions.get_mut(&peer.ip()) {
                    p.refresh_at = Some(now + PERMISSION_REFRESH);
                }
            }
        }
    }

    fn schedule_refresh(&mut self, message: &Message<'_>, now: Instant) {
        let lifetime = Duration::from_secs(u64::from(
            message
                .u32_attr(attr::LIFETIME)
                .unwrap_or(REQUESTED_LIFETIME),
        ));
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        self.refresh_at = Some(now + lifetime - margin);
    }

    /// Takes REALM and NONCE from a 401; false if they are missing.
    fn take_challenge(&mut self, message: &Message<'_>) -> bool {
        let (Some(realm), Some(nonce)) = (message.text(attr::REALM), message.text(attr::NONCE))
        else {
            return false;
        };
        let key = stun::long_term_key(&self.username, realm, self.password.expose());
        self.auth = Some(Auth {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            key,
        });
        true
    }

    fn transaction_failed(&mut self, request: Request, reason: String, now: Instant) {
        tracing::debug!(server = %self.server, ?request, "TURN transaction failed: {reason}");
        match request {
            Request::Allocate => self.state = AllocationState::Failed(reason),
            Request::Refresh { .. } => {
                self.state = AllocationState::Failed(format!("refresh failed: {reason}"))
            }
            Request::CreatePermission { ips } => {
                // Try again at the next refresh round rather than never.
                for ip in ips {
                    if let Some(p) = self.permissions.get_mut(&ip) {
                        p.refresh_at = Some(now + INITIAL_RTO * 8);
                    }
                }
            }
            Request::ChannelBind { peer, channel } => {
                // Send indications keep working without the channel.
                self.channels.remove(&peer);
                self.peers_by_channel.remove(&channel);
            }
        }
    }

    fn start(&mut self, request: Request, now: Instant) {
        let tid = self.new_tid();
        let datagram = self.build(&request, tid);
        self.outbox.push_back(datagram.clone());
        self.transactions.insert(
            tid,
            Transaction {
                request,
                datagram,
                attempts: 1,
                next_send: now + INITIAL_RTO,
                rto: INITIAL_RTO * 2,
            },
        );
    }

    fn build(&self, request: &Request, tid: TransactionId) -> Vec<u8> {
        let builder = match request {
            Request::Allocate => MessageBuilder::new(method::ALLOCATE, Class::Request, tid)
                .attr(attr::REQUESTED_TRANSPORT, &[TRANSPORT_UDP, 0, 0, 0])
                .u32_attr(attr::LIFETIME, REQUESTED_LIFETIME),
            Request::Refresh { lifetime } => {
                MessageBuilder::new(method::REFRESH, Class::Request, tid)
                    .u32_attr(attr::LIFETIME, *lifetime)
            }
            Request::CreatePermission { ips } => ips.iter().fold(
                MessageBuilder::new(method::CREATE_PERMISSION, Class::Request, tid),
                // The port of XOR-PEER-ADDRESS is ignored for permissions.
                |b, ip| b.xor_address(attr::XOR_PEER_ADDRESS, SocketAddr::new(*ip, 0)),
            ),
            Request::ChannelBind { peer, channel } => {
                MessageBuilder::new(method::CHANNEL_BIND, Class::Request, tid)
                    .attr(attr::CHANNEL_NUMBER, &stun::channel_number_value(*channel))
                    .xor_address(attr::XOR_PEER_ADDRESS, *peer)
            }
        };
        let builder = builder.attr(attr::SOFTWARE, SOFTWARE.as_bytes());
        match &self.auth {
            Some(auth) => builder
                .attr(attr::USERNAME, self.username.as_bytes())
                .attr(attr::REALM, auth.realm.as_bytes())
                .attr(attr::NONCE, auth.nonce.as_bytes())
                .finish(Some(&auth.key), true),
            None => builder.finish(None, true),
        }
    }

    fn new_tid(&mut self) -> TransactionId {
        self.tid_counter += 1;
        let mut tid = [0; 12];
        tid[..4].copy_from_slice(&self.tid_salt);
        tid[4..].copy_from_slice(&self.tid_counter.to_be_bytes());
        tid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "127.0.0.1:3478";
    const RELAYED: &str = "127.0.0.1:50000";
    const PEER: &str = "127.0.0.1:60000";

    /// A minimal TURN server side for the exchanges: answers with `realm`/`nonce` challenges and
    /// signs successes with the long-term key.
    struct FakeServer {
        key: [u8; 16],
    }

    impl FakeServer {
        fn new() -> Self {
            Self {
                key: stun::long_term_key("u", "test", "p"),
            }
        }

        fn answer(&self, request: &[u8]) -> Vec<u8> {
            let m = Message::parse(request).unwrap();
            if m.attr(attr::USERNAME).is_none() {
                return MessageBuilder::new(m.method, Class::Error, m.tid)
                    .attr(attr::ERROR_CODE, b"\0\0\x04\x01Unauthorized")
                    .attr(attr::REALM, b"test")
                    .attr(attr::NONCE, b"n0nce")
                    .finish(None, true);
            }
            assert!(
                m.check_integrity(&self.key),
                "request signed with the long-term key"
            );
            assert!(m.check_fingerprint());
            let b = MessageBuilder::new(m.method, Class::Success, m.tid);
            let b = match m.method {
                method::ALLOCATE => b
                    .xor_address(attr::XOR_RELAYED_ADDRESS, RELAYED.parse().unwrap())
                    .xor_address(attr::XOR_MAPPED_ADDRESS, "127.0.0.1:40000".parse().unwrap())
                    .u32_attr(attr::LIFETIME, 600),
                method::REFRESH => b.u32_attr(attr::LIFETIME, 600),
                _ => b,
            };
            b.finish(Some(&self.key), true)
        }
    }

    fn allocated(now: Instant) -> (TurnAllocation, FakeServer) {
        let server = FakeServer::new();
        let mut a = TurnAllocation::new(SERVER.parse().unwrap(), "u".into(), Secret::new("p"), now);
        for _ in 0..2 {
            let request = a.poll_transmit().unwrap();
            let response = server.answer(&request);
            assert_eq!(a.handle_datagram(&response, now), Incoming::Consumed);
        }
        (a, server)
    }

    #[test]
    fn allocates_after_the_401_challenge() {
        let now = Instant::now();
        let (a, _) = allocated(now);
        assert_eq!(
            a.state(),
            &AllocationState::Ready {
                relayed: RELAYED.parse().unwrap()
            }
        );
        assert_eq!(a.mapped(), Some("127.0.0.1:40000".parse().unwrap()));
        // The refresh is due a minute before the 600 s lifetime ends.
        assert_eq!(a.next_deadline(), Some(now + Duration::from_secs(540)));
    }

    #[test]
    fn wrong_password_fails_the_allocation() {
        let now = Instant::now();
        let server = FakeServer::new();
        let mut a =
            TurnAllocation::new(SERVER.parse().unwrap(), "u".into(), Secret::new("bad"), now);
        let challenge = server.answer(&a.poll_transmit().unwrap());
        a.handle_datagram(&challenge, now);
        let request = a.poll_transmit().unwrap();
        let m = Message::parse(&request).unwrap();
        assert!(!m.check_integrity(&server.key));
        let refusal = MessageBuilder::new(method::ALLOCATE, Class::Error, m.tid)
            .attr(attr::ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .attr(attr::REALM, b"test")
            .attr(attr::NONCE, b"n0nce")
            .finish(None, true);
        a.handle_datagram(&refusal, now);
        assert!(matches!(a.state(), AllocationState::Failed(r) if r.contains("401")));
    }

    #[test]
    fn retransmits_then_gives_up() {
        let now = Instant::now();
        let mut a = TurnAllocation::new(SERVER.parse().unwrap(), "u".into(), Secret::new("p"), now);
        let first = a.poll_transmit().unwrap();
        let mut t = now;
        for _ in 1..MAX_ATTEMPTS {
            t = a.next_deadline().unwrap();
            a.handle_timeout(t);
            assert_eq!(a.poll_transmit().as_deref(), Some(&first[..]));
        }
        a.handle_timeout(a.next_deadline().unwrap());
        assert!(t > now + Duration::from_secs(3));
        assert!(matches!(a.state(), AllocationState::Failed(_)));
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn sends_indications_until_the_channel_is_bound_then_channel_data() {
        let now = Instant::now();
        let (mut a, server) = allocated(now);
        let peer: SocketAddr = PEER.parse().unwrap();
        let first = a.wrap(peer, b"\x16hello", now);
        let m = Message::parse(&first).unwrap();
        assert_eq!((m.method, m.class), (method::SEND, Class::Indication));
        assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(peer));
        assert_eq!(m.attr(attr::DATA), Some(&b"\x16hello"[..]));
        // Permission and ChannelBind went out; answer both.
        let mut methods = Vec::new();
        while let Some(request) = a.poll_transmit() {
            methods.push(Message::parse(&request).unwrap().method);
            a.handle_datagram(&server.answer(&request), now);
        }
        assert_eq!(
            methods,
            vec![method::CREATE_PERMISSION, method::CHANNEL_BIND]
        );
        let framed = a.wrap(peer, b"\x16again", now);
        assert_eq!(
            stun::parse_channel_data(&framed),
            Some((CHANNEL_MIN, &b"\x16again"[..]))
        );
        // And data on that channel comes back as the peer's.
        let back = stun::channel_data(CHANNEL_MIN, b"\x17srtp");
        assert_eq!(
            a.handle_datagram(&back, now),
            Incoming::Relayed {
                peer,
                payload: b"\x17srtp"
            }
        );
    }

    #[test]
    fn unwraps_data_indications() {
        let now = Instant::now();
        let (mut a, _) = allocated(now);
        let peer: SocketAddr = PEER.parse().unwrap();
        let data = MessageBuilder::new(method::DATA, Class::Indication, [3; 12])
            .xor_address(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::DATA, b"\0\x01stun")
            .finish(None, false);
        assert_eq!(
            a.handle_datagram(&data, now),
            Incoming::Relayed {
                peer,
                payload: b"\0\x01stun"
            }
        );
        // Channel data on a channel nobody bound is dropped.
        assert_eq!(
            a.handle_datagram(&stun::channel_data(0x4100, b"x"), now),
            Incoming::Consumed
        );
    }

    #[test]
    fn refreshes_before_the_lifetime_ends_and_releases_with_lifetime_zero() {
        let now = Instant::now();
        let (mut a, server) = allocated(now);
        a.permit("127.0.0.2".parse().unwrap(), now);
        let permission = a.poll_transmit().unwrap();
        a.handle_datagram(&server.answer(&permission), now);
        // The permission refresh (240 s) comes before the allocation's (540 s).
        let due = a.next_deadline().unwrap();
        assert_eq!(due, now + PERMISSION_REFRESH);
        a.handle_timeout(due);
        let again = Message::parse(&a.poll_transmit().unwrap()).unwrap().method;
        assert_eq!(again, method::CREATE_PERMISSION);
        a.handle_timeout(now + Duration::from_secs(540));
        let mut saw_refresh = false;
        while let Some(request) = a.poll_transmit() {
            let m = Message::parse(&request).unwrap();
            if m.method == method::REFRESH {
                assert_eq!(m.u32_attr(attr::LIFETIME), Some(REQUESTED_LIFETIME));
                saw_refresh = true;
            }
        }
        assert!(saw_refresh);

        a.release();
        let last = a.poll_transmit().unwrap();
        let m = Message::parse(&last).unwrap();
        assert_eq!(m.method, method::REFRESH);
        assert_eq!(m.u32_attr(attr::LIFETIME), Some(0));
        assert!(m.check_integrity(&server.key));
        assert_eq!(a.state(), &AllocationState::Released);
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn stale_nonce_is_followed() {
        let now = Instant::now();
        let (mut a, server) = allocated(now);
        a.permit("127.0.0.3".parse().unwrap(), now);
        let request = a.poll_transmit().unwrap();
        let m = Message::parse(&request).unwrap();
        let stale = MessageBuilder::new(m.method, Class::Error, m.tid)
            .attr(attr::ERROR_CODE, b"\0\0\x04\x26Stale Nonce")
            .attr(attr::NONCE, b"n1")
            .finish(None, true);
        a.handle_datagram(&stale, now);
        let retry = a.poll_transmit().unwrap();
        let m = Message::parse(&retry).unwrap();
        assert_eq!(m.text(attr::NONCE), Some("n1"));
        assert!(m.check_integrity(&server.key));
    }
}
