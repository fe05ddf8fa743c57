//! Which session a datagram on the engine's one UDP socket is for.
//!
//! `Rtc::accepts` alone cannot decide it once a client has gone away without closing (a killed
//! tab, a peer that only drops its socket): its session lives on until the disconnect timeout,
//! and str0m's fast path makes it accept *everything* from the address it nominated, STUN
//! included, before any credential check. When the client's OS gives that port to the next
//! client, the leftover session swallows the newcomer's STUN and DTLS and the new session never
//! connects (seen as a session with no first frame after 20 s in the bench).
//!
//! So every remote address has one owner: the session that last received an authenticated STUN
//! binding request from it (its USERNAME names the session's ICE ufrag, and the session's `Rtc`
//! checks the integrity), or failing that the first session that accepted traffic from it.
//! Everything else from an owned address goes to its owner only. A session whose client moved on
//! keeps no claim on the old address; if its client is alive elsewhere, its own binding requests
//! make it the owner of the new address.

use std::collections::HashMap;
use std::net::SocketAddr;

use uuid::Uuid;

/// STUN message type of a Binding request (RFC 8489 §5, method 0x001, class request).
const BINDING_REQUEST: u16 = 0x0001;
/// The fixed magic cookie that tells STUN from a classic RFC 3489 message (RFC 8489 §5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// STUN header: type, length, cookie, transaction id.
const HEADER_LEN: usize = 20;
/// The USERNAME attribute (RFC 8489 §14.3).
const USERNAME: u16 = 0x0006;

/// Remote address → owning session, and ICE ufrag → session.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    owners: HashMap<SocketAddr, Uuid>,
    by_ufrag: HashMap<String, Uuid>,
}

impl Demux {
    /// Registers a new session under the ICE ufrag of its offer.
    pub(crate) fn add_session(&mut self, session_id: Uuid, local_ufrag: &str) {
        self.by_ufrag.insert(local_ufrag.to_owned(), session_id);
    }

    /// Forgets a removed session and the addresses it owned.
    pub(crate) fn remove_session(&mut self, session_id: Uuid) {
        self.owners.retain(|_, owner| *owner != session_id);
        self.by_ufrag.retain(|_, owner| *owner != session_id);
    }

    /// The session `datagram` from `source` is for, if any. `accepts` asks a session's `Rtc`
    /// (for a binding request: ufrag and integrity); `sessions` are all sessions, asked in turn
    /// only for traffic from an address nobody owns yet.
    pub(crate) fn route(
        &mut self,
        datagram: &[u8],
        source: SocketAddr,
        accepts: impl Fn(Uuid) -> bool,
        mut sessions: impl Iterator<Item = Uuid>,
    ) -> Option<Uuid> {
        if let Some(ufrag) = binding_request_ufrag(datagram) {
            // A request is for exactly one session, whatever the address last belonged to.
            let id = *self.by_ufrag.get(ufrag)?;
            if !accepts(id) {
                return None;
            }
            if let Some(previous) = self.owners.insert(source, id)
                && previous != id
            {
                tracing::debug!(%source, from = %previous, to = %id, "address taken over by another session's client");
            }
            return Some(id);
        }
        if let Some(&owner) = self.owners.get(&source) {
            return accepts(owner).then_some(owner);
        }
        let id = sessions.find(|id| accepts(*id))?;
        self.owners.insert(source, id);
        Some(id)
    }
}

/// The recipient's ufrag of a STUN binding request (the part of USERNAME before the colon,
/// RFC 8445 §7.2.2), or `None` for anything else (responses, indications, DTLS, RTP, junk).
fn binding_request_ufrag(datagram: &[u8]) -> Option<&str> {
    let header = datagram.get(..HEADER_LEN)?;
    let message_type = u16::from_be_bytes([*header.first()?, *header.get(1)?]);
    if message_type != BINDING_REQUEST || header.get(4..8)? != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
    let mut attributes = datagram.get(HEADER_LEN..HEADER_LEN + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split_once(':').map(|(local, _)| local);
        }
        // Attribute values are padded to a multiple of four bytes.
        attributes = attributes.get((4 + len).next_multiple_of(4)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request with `username` and one attribute before it (as browsers send).
    fn binding_request(username: &str) -> Vec<u8> {
        let mut attributes = Vec::new();
        // PRIORITY (0x0024), 4 bytes.
        attributes.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff]);
        attributes.extend_from_slice(&USERNAME.to_be_bytes());
        attributes.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attributes.extend_from_slice(username.as_bytes());
        while attributes.len() % 4 != 0 {
            attributes.push(0);
        }
        let mut message = Vec::new();
        message.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        message.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attributes);
        message
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn reads_the_recipients_ufrag_of_binding_requests_only() {
        assert_eq!(
            binding_request_ufrag(&binding_request("emuA:cli")),
            Some("emuA")
        );
        // Odd length: padding before the end.
        assert_eq!(
            binding_request_ufrag(&binding_request("abcde:f")),
            Some("abcde")
        );
        let mut response = binding_request("emuA:cli");
        response[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
        assert_eq!(binding_request_ufrag(&response), None);
        let mut no_cookie = binding_request("emuA:cli");
        no_cookie[4] = 0;
        assert_eq!(binding_request_ufrag(&no_cookie), None);
        // DTLS, truncated and lying lengths.
        assert_eq!(binding_request_ufrag(&[22, 254, 253, 0, 0]), None);
        let full = binding_request("emuA:cli");
        assert_eq!(binding_request_ufrag(&full[..full.len() - 3]), None);
        let mut long = full.clone();
        long[3] = 0xff;
        assert_eq!(binding_request_ufrag(&long), None);
    }

    #[test]
    fn a_binding_request_moves_an_address_to_the_session_it_names() {
        let (old, new) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut demux = Demux::default();
        demux.add_session(old, "old");
        demux.add_session(new, "new");
        let client = addr(40000);
        let everyone = || [old, new].into_iter();
        // The old session's nominated pair makes its Rtc accept anything from the address.
        let old_accepts_all = |id: Uuid| id == old;
        assert_eq!(
            demux.route(b"\x16dtls", client, old_accepts_all, everyone()),
            Some(old)
        );

        // A new client on the same port: its request names the new session, which checks it.
        let request = binding_request("new:cli");
        let accepts = |id: Uuid| id == old || id == new;
        assert_eq!(
            demux.route(&request, client, accepts, everyone()),
            Some(new)
        );
        // From then on its DTLS goes to the new session, not the one that still claims the port.
        assert_eq!(
            demux.route(b"\x16dtls", client, accepts, everyone()),
            Some(new)
        );
        // Until the new session accepts such traffic it is dropped, not handed to the old one.
        assert_eq!(
            demux.route(b"\x16dtls", client, old_accepts_all, everyone()),
            None
        );
    }

    #[test]
    fn requests_that_fail_the_check_or_name_nobody_go_nowhere() {
        let session = Uuid::from_u128(1);
        let mut demux = Demux::default();
        demux.add_session(session, "emu");
        let none = |_: Uuid| false;
        let request = binding_request("emu:cli");
        assert_eq!(
            demux.route(&request, addr(1), none, [session].into_iter()),
            None
        );
        let stranger = binding_request("other:cli");
        assert_eq!(
            demux.route(&stranger, addr(1), |_| true, [session].into_iter()),
            None
        );
        // And a removed session owns nothing any more.
        assert_eq!(
            demux.route(&request, addr(1), |_| true, [session].into_iter()),
            Some(session)
        );
        demux.remove_session(session);
        assert_eq!(
            demux.route(b"\x16", addr(1), |_| true, std::iter::empty()),
            None
        );
        assert_eq!(
            demux.route(&request, addr(1), |_| true, std::iter::empty()),
            None
        );
    }
}
