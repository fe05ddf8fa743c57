//! A STUN Binding transaction (RFC 8489), sans-IO: our address as a STUN server sees it, for a
//! server-reflexive candidate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stun::{self, Class, Message, MessageBuilder, TransactionId, method};

/// First retransmission timeout, doubled per attempt.
const INITIAL_RTO: Duration = Duration::from_millis(250);
/// Requests sent before giving up (about 4 s in all).
const MAX_ATTEMPTS: u32 = 5;

/// The outcome of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    /// Still waiting.
    Pending,
    /// The server saw us at this address.
    Mapped(SocketAddr),
    /// No usable answer; why, in words.
    Failed(String),
}

/// One Binding request to one STUN server, retransmitted until answered.
#[derive(Debug)]
pub(crate) struct BindingProbe {
    server: SocketAddr,
    tid: TransactionId,
    request: Vec<u8>,
    attempts: u32,
    next_send: Instant,
    rto: Duration,
    result: ProbeResult,
    /// Whether a (re)transmission is due to go out.
    send_now: bool,
}

impl BindingProbe {
    /// A probe of `server`; its first request is ready at once.
    pub(crate) fn new(server: SocketAddr, now: Instant) -> Self {
        let tid: TransactionId = rand::random();
        Self {
            server,
            tid,
            // FINGERPRINT lets the server (and us) tell STUN from other traffic on the port.
            request: MessageBuilder::new(method::BINDING, Class::Request, tid).finish(None, true),
            attempts: 1,
            next_send: now + INITIAL_RTO,
            rto: INITIAL_RTO * 2,
            result: ProbeResult::Pending,
            send_now: true,
        }
    }

    /// The STUN server.
    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    /// The result so far.
    pub(crate) fn result(&self) -> &ProbeResult {
        &self.result
    }

    /// The request, when one is due.
    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        std::mem::take(&mut self.send_now).then(|| self.request.clone())
    }

    /// When [`Self::handle_timeout`] next has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        (self.result == ProbeResult::Pending).then_some(self.next_send)
    }

    /// Retransmits, or fails after the last attempt.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.result != ProbeResult::Pending || now < self.next_send {
            return;
        }
        if self.attempts >= MAX_ATTEMPTS {
            self.result = ProbeResult::Failed("no answer from the STUN server".to_owned());
            return;
        }
        self.attempts += 1;
        self.next_send = now + self.rto;
        self.rto *= 2;
        self.send_now = true;
    }

    /// Takes the answer if `datagram` is one; returns whether it was.
    pub(crate) fn handle_datagram(&mut self, datagram: &[u8]) -> bool {
        let Ok(message) = Message::parse(datagram) else {
            return false;
        };
        if message.tid != self.tid || message.method != method::BINDING {
            return false;
        }
        if self.result != ProbeResult::Pending {
            // A late duplicate answer.
            return true;
        }
        self.result = match message.class {
            Class::Success => match message.mapped_address() {
                Some(addr) => ProbeResult::Mapped(addr),
                None => ProbeResult::Failed("Binding answer without an address".to_owned()),
            },
            Class::Error => {
                let (code, reason) = message.error_code().unwrap_or((0, String::new()));
                ProbeResult::Failed(format!("STUN error {code} {reason}"))
            }
            _ => return false,
        };
        true
    }
}

/// Whether a datagram from a STUN/TURN server is a Binding response (rather than TURN).
pub(crate) fn is_binding_response(datagram: &[u8]) -> bool {
    Message::parse(datagram).is_ok_and(|m| {
        m.method == method::BINDING && matches!(m.class, Class::Success | Class::Error)
    }) && stun::is_stun(datagram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stun::attr;

    #[test]
    fn takes_the_mapped_address_of_its_own_answer_only() {
        let now = Instant::now();
        let server: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let mut probe = BindingProbe::new(server, now);
        let request = probe.poll_transmit().unwrap();
        assert_eq!(probe.poll_transmit(), None);
        let m = Message::parse(&request).unwrap();
        assert!(m.check_fingerprint());
        let mapped: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let other = MessageBuilder::new(method::BINDING, Class::Success, [0; 12])
            .xor_address(attr::XOR_MAPPED_ADDRESS, mapped)
            .finish(None, true);
        assert!(!probe.handle_datagram(&other));
        let answer = MessageBuilder::new(method::BINDING, Class::Success, m.tid)
            .xor_address(attr::XOR_MAPPED_ADDRESS, mapped)
            .finish(None, true);
        assert!(is_binding_response(&answer));
        assert!(probe.handle_datagram(&answer));
        assert_eq!(probe.result(), &ProbeResult::Mapped(mapped));
        assert_eq!(probe.next_deadline(), None);
    }

    #[test]
    fn retransmits_and_gives_up() {
        let now = Instant::now();
        let mut probe = BindingProbe::new("127.0.0.1:9".parse().unwrap(), now);
        let first = probe.poll_transmit().unwrap();
        let mut sent = 1;
        while let Some(at) = probe.next_deadline() {
            probe.handle_timeout(at);
            if let Some(again) = probe.poll_transmit() {
                assert_eq!(again, first);
                sent += 1;
            }
        }
        assert_eq!(sent, MAX_ATTEMPTS);
        assert!(matches!(probe.result(), ProbeResult::Failed(_)));
    }
}
