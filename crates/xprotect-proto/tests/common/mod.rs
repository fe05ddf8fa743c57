//! A tiny RFC 6184 packetiser for the depacketiser tests (test-only; the emulator uses str0m's).

#![allow(dead_code)] // each test file uses a different subset

use std::time::Instant;

use xprotect_proto::rtp::RtpPacket;

/// Builds packets for one stream with consecutive sequence numbers.
pub struct Packetizer {
    pub sequence: u16,
    pub ssrc: u32,
    pub mtu: usize,
    pub set_marker: bool,
    pub arrival: Instant,
}

impl Packetizer {
    pub fn new(first_sequence: u16) -> Self {
        Self {
            sequence: first_sequence,
            ssrc: 0xdead_beef,
            mtu: 1200,
            set_marker: true,
            arrival: Instant::now(),
        }
    }

    fn packet(&mut self, timestamp: u32, marker: bool, payload: Vec<u8>) -> RtpPacket {
        let p = RtpPacket {
            sequence: self.sequence,
            timestamp,
            marker: marker && self.set_marker,
            payload_type: 96,
            ssrc: self.ssrc,
            payload,
            arrival: self.arrival,
        };
        self.sequence = self.sequence.wrapping_add(1);
        p
    }

    /// Packetises one access unit: NAL units that fit go out as single NAL unit packets (small
    /// consecutive ones aggregated into a STAP-A), larger ones as FU-A fragments.
    pub fn access_unit(&mut self, timestamp: u32, nals: &[Vec<u8>]) -> Vec<RtpPacket> {
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut stap: Vec<&[u8]> = Vec::new();
        let flush_stap = |stap: &mut Vec<&[u8]>, payloads: &mut Vec<Vec<u8>>| match stap.len() {
            0 => {}
            1 => payloads.push(stap[0].to_vec()),
            _ => {
                let nri = stap.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                let mut p = vec![nri | 24];
                for nal in stap.iter() {
                    p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                    p.extend_from_slice(nal);
                }
                payloads.push(p);
                stap.clear();
            }
        };
        for nal in nals {
            let stap_len: usize = 1 + stap.iter().map(|n| n.len() + 2).sum::<usize>();
            if nal.len() <= self.mtu {
                if stap_len + nal.len() + 2 > self.mtu {
                    flush_stap(&mut stap, &mut payloads);
                    stap.clear();
                }
                stap.push(nal);
                continue;
            }
            flush_stap(&mut stap, &mut payloads);
            stap.clear();
            let header = nal[0];
            let chunks: Vec<&[u8]> = nal[1..].chunks(self.mtu - 2).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut fu_header = header & 0x1f;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i == chunks.len() - 1 {
                    fu_header |= 0x40;
                }
                let mut p = vec![(header & 0xe0) | 28, fu_header];
                p.extend_from_slice(chunk);
                payloads.push(p);
            }
        }
        flush_stap(&mut stap, &mut payloads);
        let last = payloads.len().saturating_sub(1);
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.packet(timestamp, i == last, p))
            .collect()
    }

    /// One raw packet with the given payload.
    pub fn raw(&mut self, timestamp: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        self.packet(timestamp, marker, payload.to_vec())
    }
}

/// A deterministic pseudo-random NAL unit body (no need for real slice data here).
pub fn nal(header: u8, len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut v = Vec::with_capacity(len);
    v.push(header);
    for _ in 1..len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v.push((state >> 24) as u8);
    }
    v
}

pub const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40,
];
pub const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
