//! Arbitrary RTP packet sequences into the H.264 depacketiser: it must never panic, and every
//! access unit it emits must hold only non-empty NAL units.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use xprotect_proto::h264::{DepacketizerConfig, H264Depacketizer};
use xprotect_proto::rtp::RtpPacket;

#[derive(Debug, Arbitrary)]
struct Packet {
    /// Small steps keep sequence numbers and timestamps close, so reordering, gaps and
    /// timestamp changes all happen.
    sequence_step: i8,
    timestamp_step: u8,
    marker: bool,
    new_ssrc: bool,
    payload: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(max_reorder) = u.int_in_range(0..=16) else {
        return;
    };
    let Ok(small_cap) = bool::arbitrary(&mut u) else {
        return;
    };
    let Ok(packets) = Vec::<Packet>::arbitrary(&mut u) else {
        return;
    };

    let mut d = H264Depacketizer::new(DepacketizerConfig {
        max_reorder,
        max_access_unit_bytes: if small_cap { 512 } else { 8 << 20 },
    });
    let start = Instant::now();
    let (mut sequence, mut timestamp, mut ssrc) = (0u16, 0u32, 0u32);
    let check = |d: &mut H264Depacketizer| {
        while let Some(au) = d.poll() {
            assert!(au.nal_count() > 0);
            assert!(au.nal_units().all(|n| !n.is_empty()));
            let _ = au.to_annex_b();
            let _ = au.frame_stamp();
        }
    };
    for (i, p) in packets.into_iter().enumerate() {
        sequence = sequence.wrapping_add_signed(i16::from(p.sequence_step));
        timestamp = timestamp.wrapping_add(u32::from(p.timestamp_step) * 10);
        ssrc += u32::from(p.new_ssrc);
        d.push(RtpPacket {
            sequence,
            timestamp,
            marker: p.marker,
            payload_type: 96,
            ssrc,
            payload: p.payload,
            arrival: start + Duration::from_micros(i as u64),
        });
        check(&mut d);
    }
    d.flush();
    check(&mut d);
    assert_eq!(d.buffered_packets(), 0);
});
