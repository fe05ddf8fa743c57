//! STUN (RFC 8489) and TURN (RFC 8656) messages as pure functions: encode, decode, integrity.
//!
//! Only what the engine's own gathering needs: Binding for a server-reflexive address, and the
//! TURN methods of a UDP allocation with long-term credentials (Allocate, Refresh,
//! CreatePermission, ChannelBind, Send and Data indications), plus ChannelData framing. ICE's
//! own connectivity checks are str0m's business and never pass through here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// The fixed cookie in every RFC 5389+ message; also the XOR key of addresses.
pub(crate) const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Header: type, length, cookie, transaction id.
pub(crate) const HEADER_LEN: usize = 20;
/// XORed into the CRC32 of FINGERPRINT (RFC 8489 §14.7).
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// MESSAGE-INTEGRITY is an HMAC-SHA1: 20 bytes.
const INTEGRITY_LEN: usize = 20;

/// Methods (RFC 8489 §18.2, RFC 8656 §17).
pub(crate) mod method {
    /// Binding: what is my address as the server sees it.
    pub(crate) const BINDING: u16 = 0x001;
    /// Allocate a relayed transport address.
    pub(crate) const ALLOCATE: u16 = 0x003;
    /// Refresh (lifetime 0: deallocate).
    pub(crate) const REFRESH: u16 = 0x004;
    /// Send indication: a datagram for a peer.
    pub(crate) const SEND: u16 = 0x006;
    /// Data indication: a datagram from a peer.
    pub(crate) const DATA: u16 = 0x007;
    /// Install or refresh a permission for peer IPs.
    pub(crate) const CREATE_PERMISSION: u16 = 0x008;
    /// Bind a channel number to a peer address.
    pub(crate) const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types used here.
pub(crate) mod attr {
    /// MAPPED-ADDRESS (RFC 3489 servers answer with it).
    pub(crate) const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub(crate) const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY.
    pub(crate) const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub(crate) const ERROR_CODE: u16 = 0x0009;
    /// CHANNEL-NUMBER.
    pub(crate) const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME, seconds.
    pub(crate) const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS.
    pub(crate) const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA.
    pub(crate) const DATA: u16 = 0x0013;
    /// REALM.
    pub(crate) const REALM: u16 = 0x0014;
    /// NONCE.
    pub(crate) const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS.
    pub(crate) const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-TRANSPORT.
    pub(crate) const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// XOR-MAPPED-ADDRESS.
    pub(crate) const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// SOFTWARE.
    pub(crate) const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT.
    pub(crate) const FINGERPRINT: u16 = 0x8028;
}

/// REQUESTED-TRANSPORT's protocol number for UDP (RFC 8656 §18.7).
pub(crate) const TRANSPORT_UDP: u8 = 17;

/// The class of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A request: the server answers it.
    Request,
    /// An indication: nobody answers.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// The 12-byte transaction id.
pub(crate) type TransactionId = [u8; 12];

/// Why a datagram is not a usable STUN message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StunError {
    /// Shorter than its header or its declared length, or an attribute overruns.
    #[error("truncated STUN message")]
    Truncated,
    /// Not a STUN message at all (top bits, cookie, or length not a multiple of 4).
    #[error("not a STUN message")]
    NotStun,
}

/// The type field: method bits interleaved with the two class bits (RFC 8489 §5).
fn message_type(method: u16, class: Class) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

fn split_type(message_type: u16) -> (u16, Class) {
    let method =
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80);
    let class = ((message_type >> 4) & 0b01) | ((message_type >> 7) & 0b10);
    (method, Class::from_bits(class))
}

/// Whether `datagram` looks like a STUN message (what RFC 7983 demultiplexing checks, plus
/// the cookie): the first byte is 0..=3 and the magic cookie is in place.
pub(crate) fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN
        && datagram.first().is_some_and(|b| *b < 4)
        && datagram.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..])
}

/// Builds one message attribute by attribute; [`Self::finish`] closes it with the optional
/// MESSAGE-INTEGRITY and FINGERPRINT.
#[derive(Debug, Clone)]
pub(crate) struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    /// A message of `method`/`class` with transaction id `tid`.
    pub(crate) fn new(method: u16, class: Class, tid: TransactionId) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid);
        Self { buf }
    }

    /// Appends an attribute, padded to four bytes.
    pub(crate) fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        self.push_attr(kind, value);
        self
    }

    /// Appends a 32-bit attribute (LIFETIME).
    pub(crate) fn u32_attr(self, kind: u16, value: u32) -> Self {
        self.attr(kind, &value.to_be_bytes())
    }

    /// Appends an XOR-…-ADDRESS attribute.
    pub(crate) fn xor_address(self, kind: u16, addr: SocketAddr) -> Self {
        let tid = self.transaction_id();
        self.attr(kind, &encode_xor_address(addr, &tid))
    }

    fn transaction_id(&self) -> TransactionId {
        let mut tid = [0; 12];
        if let Some(bytes) = self.buf.get(8..HEADER_LEN) {
            tid.copy_from_slice(bytes);
        }
        tid
    }

    fn push_attr(&mut self, kind: u16, value: &[u8]) {
        // Attribute values above 64 KiB cannot be expressed; callers pass datagrams and names.
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf
            .extend_from_slice(value.get(..usize::from(len)).unwrap_or(value));
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self.set_length(self.buf.len() - HEADER_LEN);
    }

    fn set_length(&mut self, length: usize) {
        let length = u16::try_from(length).unwrap_or(u16::MAX).to_be_bytes();
        self.buf[2] = length[0];
        self.buf[3] = length[1];
    }

    /// The finished message: with MESSAGE-INTEGRITY under `key` if given, then FINGERPRINT if
    /// asked for.
    pub(crate) fn finish(mut self, integrity_key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
        if let Some(key) = integrity_key {
            // The length covers the MESSAGE-INTEGRITY attribute itself while it is computed.
            self.set_length(self.buf.len() - HEADER_LEN + 4 + INTEGRITY_LEN);
            let mac = hmac_sha1(key, &self.buf);
            self.push_attr(attr::MESSAGE_INTEGRITY, &mac);
        }
        if fingerprint {
            self.set_length(self.buf.len() - HEADER_LEN + 8);
            let crc = crc32(&self.buf) ^ FINGERPRINT_XOR;
            self.push_attr(attr::FINGERPRINT, &crc.to_be_bytes());
        }
        self.buf
    }
}

/// A decoded message; attribute values borrow from the datagram.
#[derive(Debug, Clone)]
pub(crate) struct Message<'a> {
    /// The method.
    pub(crate) method: u16,
    /// The class.
    pub(crate) class: Class,
    /// The transaction id.
    pub(crate) tid: TransactionId,
    raw: &'a [u8],
    /// (type, value, offset of the attribute header in `raw`).
    attrs: Vec<(u16, &'a [u8], usize)>,
}

impl<'a> Message<'a> {
    /// Decodes `datagram`; the attributes are bounds-checked, not interpreted.
    pub(crate) fn parse(datagram: &'a [u8]) -> Result<Self, StunError> {
        if !is_stun(datagram) {
            return Err(StunError::NotStun);
        }
        let header = datagram.get(..HEADER_LEN).ok_or(StunError::Truncated)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if !length.is_multiple_of(4) {
            return Err(StunError::NotStun);
        }
        let raw = datagram
            .get(..HEADER_LEN + length)
            .ok_or(StunError::Truncated)?;
        let mut tid = [0; 12];
        tid.copy_from_slice(&header[8..HEADER_LEN]);
        let mut attrs = Vec::new();
        let mut offset = HEADER_LEN;
        while offset < raw.len() {
            let head = raw.get(offset..offset + 4).ok_or(StunError::Truncated)?;
            let attr_kind = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let value = raw
                .get(offset + 4..offset + 4 + len)
                .ok_or(StunError::Truncated)?;
            attrs.push((attr_kind, value, offset));
            offset += 4 + len.next_multiple_of(4);
        }
        let (method, class) = split_type(kind);
        Ok(Self {
            method,
            class,
            tid,
            raw,
            attrs,
        })
    }

    /// The first value of attribute `kind`.
    pub(crate) fn attr(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, v, _)| *v)
    }

    /// A 32-bit attribute (LIFETIME).
    pub(crate) fn u32_attr(&self, kind: u16) -> Option<u32> {
        let v = self.attr(kind)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    /// An XOR-…-ADDRESS attribute, decoded.
    pub(crate) fn xor_address(&self, kind: u16) -> Option<SocketAddr> {
        decode_xor_address(self.attr(kind)?, &self.tid)
    }

    /// The mapped address: XOR-MAPPED-ADDRESS, or the plain MAPPED-ADDRESS of old servers.
    pub(crate) fn mapped_address(&self) -> Option<SocketAddr> {
        self.xor_address(attr::XOR_MAPPED_ADDRESS).or_else(|| {
            let v = self.attr(attr::MAPPED_ADDRESS)?;
            decode_address(v, |_| {})
        })
    }

    /// ERROR-CODE as (code, reason).
    pub(crate) fn error_code(&self) -> Option<(u16, String)> {
        let v = self.attr(attr::ERROR_CODE)?;
        let class = u16::from(*v.get(2)? & 0x07);
        let number = u16::from(*v.get(3)?);
        let reason = String::from_utf8_lossy(v.get(4..).unwrap_or_default()).into_owned();
        Some((class * 100 + number, reason))
    }

    /// An attribute as UTF-8 text (REALM, NONCE, SOFTWARE).
    pub(crate) fn text(&self, kind: u16) -> Option<&'a str> {
        std::str::from_utf8(self.attr(kind)?).ok()
    }

    /// Whether MESSAGE-INTEGRITY is present and matches `key`.
    pub(crate) fn check_integrity(&self, key: &[u8]) -> bool {
        let Some((_, value, offset)) = self
            .attrs
            .iter()
            .find(|(k, _, _)| *k == attr::MESSAGE_INTEGRITY)
        else {
            return false;
        };
        let Some(covered) = self.raw.get(..*offset) else {
            return false;
        };
        let mut covered = covered.to_vec();
        let length = u16::try_from(offset - HEADER_LEN + 4 + INTEGRITY_LEN)
            .unwrap_or(u16::MAX)
            .to_be_bytes();
        covered[2] = length[0];
        covered[3] = length[1];
        let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(&covered);
        mac.verify_slice(value).is_ok()
    }

    /// Whether FINGERPRINT is present, last, and right.
    #[cfg(test)]
    pub(crate) fn check_fingerprint(&self) -> bool {
        let Some((kind, value, offset)) = self.attrs.last() else {
            return false;
        };
        if *kind != attr::FINGERPRINT {
            return false;
        }
        let (Some(covered), Some(value)) = (self.raw.get(..*offset), value.get(..4)) else {
            return false;
        };
        let expected = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
        // The header's length already covers FINGERPRINT: it is the last attribute.
        crc32(covered) ^ FINGERPRINT_XOR == expected
    }
}

type HmacSha1 = Hmac<Sha1>;

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; INTEGRITY_LEN] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn crc32(data: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(data)
}

/// The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
/// The inputs are used as given (no SASLprep: TURN credentials in practice are ASCII).
pub(crate) fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

fn encode_xor_address(addr: SocketAddr, tid: &TransactionId) -> Vec<u8> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut out = vec![0];
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(0x01);
            out.extend_from_slice(&port.to_be_bytes());
            out.extend(ip.octets().iter().zip(cookie).map(|(a, k)| a ^ k));
        }
        IpAddr::V6(ip) => {
            out.push(0x02);
            out.extend_from_slice(&port.to_be_bytes());
            let key = cookie.iter().chain(tid.iter());
            out.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
        }
    }
    out
}

fn decode_xor_address(value: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&cookie);
    key[4..].copy_from_slice(tid);
    decode_address(value, |bytes| {
        // The port XORs with the cookie's top half; the address with cookie (+ tid for IPv6).
        bytes[0] ^= cookie[0];
        bytes[1] ^= cookie[1];
        for (b, k) in bytes[2..].iter_mut().zip(key) {
            *b ^= k;
        }
    })
}

/// Decodes family/port/address, after `unmask` has been applied to port and address bytes.
fn decode_address(value: &[u8], unmask: impl FnOnce(&mut [u8])) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let len = match family {
        0x01 => 4,
        0x02 => 16,
        _ => return None,
    };
    let mut bytes = value.get(2..4 + len)?.to_vec();
    unmask(&mut bytes);
    let port = u16::from_be_bytes([bytes[0], bytes[1]]);
    let ip = if len == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[2], bytes[3], bytes[4], bytes[5]))
    } else {
        let octets: [u8; 16] = bytes.get(2..18)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    Some(SocketAddr::new(ip, port))
}

/// Channel numbers a client may bind (RFC 8656 §12).
pub(crate) const CHANNEL_MIN: u16 = 0x4000;
/// The highest channel number.
pub(crate) const CHANNEL_MAX: u16 = 0x4FFF;

/// A ChannelData message: channel, length, payload (UDP needs no padding, RFC 8656 §12.5).
pub(crate) fn channel_data(channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(
        &u16::try_from(payload.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// The channel and payload of a ChannelData message, or `None` if it is none.
pub(crate) fn parse_channel_data(datagram: &[u8]) -> Option<(u16, &[u8])> {
    let channel = u16::from_be_bytes([*datagram.first()?, *datagram.get(1)?]);
    if !(CHANNEL_MIN..=0x7FFF).contains(&channel) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]));
    Some((channel, datagram.get(4..4 + len)?))
}

/// The CHANNEL-NUMBER attribute value: the number and two reserved bytes.
pub(crate) fn channel_number_value(channel: u16) -> [u8; 4] {
    let [hi, lo] = channel.to_be_bytes();
    [hi, lo, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1: a Binding request with short-term credentials (SOFTWARE "STUN test
    /// client").
    const SAMPLE_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];
    const SAMPLE_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

    /// RFC 5769 §2.2: the IPv4 Binding response to it.
    const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769 §2.4: a request with long-term credentials. USERNAME is "マトリックス"; the
    /// password after SASLprep is "TheMatrIX"; REALM "example.org".
    const SAMPLE_LONG_TERM_REQUEST: [u8; 116] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
    ];

    #[test]
    fn rfc5769_request_integrity_and_fingerprint() {
        let m = Message::parse(&SAMPLE_REQUEST).unwrap();
        assert_eq!((m.method, m.class), (method::BINDING, Class::Request));
        assert_eq!(m.text(attr::USERNAME), Some("evtj:h6vY"));
        assert!(m.check_integrity(SAMPLE_PASSWORD.as_bytes()));
        assert!(!m.check_integrity(b"wrong"));
        assert!(m.check_fingerprint());

        // A flipped bit anywhere covered breaks both checks.
        let mut bad = SAMPLE_REQUEST;
        bad[30] ^= 1;
        let m = Message::parse(&bad).unwrap();
        assert!(!m.check_integrity(SAMPLE_PASSWORD.as_bytes()));
        assert!(!m.check_fingerprint());
    }

    #[test]
    fn rfc5769_response_mapped_address() {
        let m = Message::parse(&SAMPLE_IPV4_RESPONSE).unwrap();
        assert_eq!((m.method, m.class), (method::BINDING, Class::Success));
        assert_eq!(m.mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));
        assert!(m.check_integrity(SAMPLE_PASSWORD.as_bytes()));
        assert!(m.check_fingerprint());
    }

    #[test]
    fn rfc5769_long_term_credentials() {
        let m = Message::parse(&SAMPLE_LONG_TERM_REQUEST).unwrap();
        let username = m.text(attr::USERNAME).unwrap();
        assert_eq!(username, "マトリックス");
        assert_eq!(m.text(attr::REALM), Some("example.org"));
        assert_eq!(m.text(attr::NONCE), Some("f//499k954d6OL34oL9FSTvy64sA"));
        let key = long_term_key(username, "example.org", "TheMatrIX");
        assert!(m.check_integrity(&key));
        assert!(!m.check_fingerprint(), "the sample has no FINGERPRINT");
    }

    #[test]
    fn builder_reproduces_the_rfc5769_request() {
        let m = Message::parse(&SAMPLE_REQUEST).unwrap();
        let rebuilt = MessageBuilder::new(method::BINDING, Class::Request, m.tid)
            .attr(attr::SOFTWARE, m.attr(attr::SOFTWARE).unwrap())
            .attr(0x0024, m.attr(0x0024).unwrap())
            .attr(0x8029, m.attr(0x8029).unwrap())
            .attr(attr::USERNAME, b"evtj:h6vY")
            .finish(Some(SAMPLE_PASSWORD.as_bytes()), true);
        // RFC 5769 pads USERNAME with spaces, which the HMAC covers; ours pads with zeros.
        let m2 = Message::parse(&rebuilt).unwrap();
        assert!(m2.check_integrity(SAMPLE_PASSWORD.as_bytes()));
        assert!(m2.check_fingerprint());
        assert_eq!(rebuilt.len(), SAMPLE_REQUEST.len());
        assert_eq!(rebuilt[..72], SAMPLE_REQUEST[..72]);
    }

    #[test]
    fn message_types_round_trip() {
        for (method, class, wire) in [
            (method::BINDING, Class::Request, 0x0001),
            (method::BINDING, Class::Success, 0x0101),
            (method::ALLOCATE, Class::Error, 0x0113),
            (method::SEND, Class::Indication, 0x0016),
            (method::DATA, Class::Indication, 0x0017),
            (method::CHANNEL_BIND, Class::Success, 0x0109),
        ] {
            assert_eq!(message_type(method, class), wire);
            assert_eq!(split_type(wire), (method, class));
        }
    }

    #[test]
    fn xor_addresses_round_trip_v4_and_v6() {
        for addr in ["127.0.0.1:49152", "[::1]:3478", "[2001:db8::7]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let msg = MessageBuilder::new(method::SEND, Class::Indication, [9; 12])
                .xor_address(attr::XOR_PEER_ADDRESS, addr)
                .attr(attr::DATA, b"hello")
                .finish(None, false);
            let m = Message::parse(&msg).unwrap();
            assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(addr));
            assert_eq!(m.attr(attr::DATA), Some(&b"hello"[..]));
        }
    }

    #[test]
    fn error_code_and_lifetime() {
        let msg = MessageBuilder::new(method::ALLOCATE, Class::Error, [1; 12])
            .attr(attr::ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .u32_attr(attr::LIFETIME, 600)
            .finish(None, true);
        let m = Message::parse(&msg).unwrap();
        assert_eq!(m.error_code(), Some((401, "Unauthorized".to_owned())));
        assert_eq!(m.u32_attr(attr::LIFETIME), Some(600));
        assert!(m.check_fingerprint());
    }

    #[test]
    fn channel_data_frames_and_rejects() {
        let framed = channel_data(0x4001, b"\x16dtls");
        assert_eq!(
            parse_channel_data(&framed),
            Some((0x4001, &b"\x16dtls"[..]))
        );
        assert_eq!(parse_channel_data(&framed[..6]), None);
        assert_eq!(parse_channel_data(&SAMPLE_REQUEST), None);
        assert_eq!(parse_channel_data(b"\x16\xfe\xfd\0"), None);
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        assert_eq!(Message::parse(&[]).unwrap_err(), StunError::NotStun);
        assert!(Message::parse(&SAMPLE_REQUEST[..50]).is_err());
        let mut lying = SAMPLE_REQUEST;
        lying[23] = 0xff; // SOFTWARE claims 255 bytes
        assert_eq!(Message::parse(&lying).unwrap_err(), StunError::Truncated);
        let mut odd = SAMPLE_REQUEST;
        odd[3] = 0x57;
        assert_eq!(Message::parse(&odd).unwrap_err(), StunError::NotStun);
    }
}
