//! Hostile and broken RTP payloads: the depacketiser counts them, never panics, and never emits
//! an empty NAL unit.

mod common;

use std::time::{Duration, Instant};

use common::Packetizer;
use proptest::prelude::*;
use xprotect_proto::h264::{
    AccessUnit, DepacketizerConfig, DepacketizerStats, H264Depacketizer, MalformedReason,
};
use xprotect_proto::rtp::RtpPacket;

/// No reordering, so each packet is handled as it arrives.
fn depacketizer() -> H264Depacketizer {
    H264Depacketizer::new(DepacketizerConfig {
        max_reorder: 0,
        ..DepacketizerConfig::default()
    })
}

/// Pushes the payloads as consecutive packets of one frame (marker on the last), then one good
/// frame, and returns everything emitted plus the stats.
fn feed(payloads: &[&[u8]]) -> (Vec<AccessUnit>, DepacketizerStats) {
    let mut p = Packetizer::new(500);
    let mut d = depacketizer();
    for (i, payload) in payloads.iter().enumerate() {
        d.push(p.raw(0, i == payloads.len() - 1, payload));
    }
    d.push(p.raw(40, true, &[0x41, 0xee]));
    let aus: Vec<AccessUnit> = std::iter::from_fn(|| d.poll()).collect();
    assert_eq!(
        aus.last().map(|a| a.rtp_timestamp),
        Some(40),
        "the good frame survives"
    );
    assert!(aus.last().is_some_and(|a| a.complete));
    (aus, d.stats())
}

fn first_frame(aus: &[AccessUnit]) -> Option<&AccessUnit> {
    aus.iter().find(|a| a.rtp_timestamp == 0)
}

#[test]
fn truncated_stap_a_keeps_whole_units_before_the_cut() {
    // SPS of 3 bytes, then one lone byte of the next size field.
    let (aus, stats) = feed(&[&[0x18, 0x00, 0x03, 0x67, 0x42, 0x00, 0x00]]);
    assert_eq!(stats.malformed.get(MalformedReason::TruncatedStapA), 1);
    let au = first_frame(&aus).expect("the SPS survives");
    assert!(!au.complete);
    assert_eq!(au.sps(), Some(&[0x67, 0x42, 0x00][..]));
}

#[test]
fn stap_a_length_past_the_end() {
    let (aus, stats) = feed(&[&[0x18, 0x00, 0x09, 0x67, 0x42]]);
    assert_eq!(stats.malformed.get(MalformedReason::StapALengthPastEnd), 1);
    assert!(first_frame(&aus).is_none());
    assert_eq!(stats.discarded_access_units, 1);
}

#[test]
fn stap_a_empty_and_zero_length_units() {
    let (_, stats) = feed(&[&[0x18]]);
    assert_eq!(stats.malformed.get(MalformedReason::EmptyStapA), 1);

    let (aus, stats) = feed(&[&[0x18, 0x00, 0x00, 0x00, 0x02, 0x68, 0xce]]);
    assert_eq!(stats.malformed.get(MalformedReason::ZeroLengthNal), 1);
    let au = first_frame(&aus).expect("the PPS after the empty unit survives");
    assert_eq!(au.pps(), Some(&[0x68, 0xce][..]));
    assert!(au.nal_units().all(|n| !n.is_empty()));
}

#[test]
fn stap_a_nested_structures_and_forbidden_bit() {
    let (aus, stats) = feed(&[&[
        0x18, 0x00, 0x02, 0x1c, 0x85, 0x00, 0x02, 0x80, 0x01, 0x00, 0x01, 0x09,
    ]]);
    assert_eq!(
        stats.malformed.get(MalformedReason::NestedPayloadStructure),
        1
    );
    assert_eq!(stats.malformed.get(MalformedReason::ForbiddenBit), 1);
    let au = first_frame(&aus).expect("the AUD survives");
    assert_eq!(au.nal_units().collect::<Vec<_>>(), vec![&[0x09][..]]);
    assert!(!au.complete);
}

#[test]
fn fu_a_continuation_and_end_without_start() {
    let (aus, stats) = feed(&[&[0x7c, 0x05, 1, 2], &[0x7c, 0x45, 3]]);
    assert_eq!(stats.malformed.get(MalformedReason::FuWithoutStart), 2);
    assert!(first_frame(&aus).is_none());

    let (aus, stats) = feed(&[&[0x41, 9], &[0x7c, 0x45, 3]]);
    assert_eq!(stats.malformed.get(MalformedReason::FuWithoutStart), 1);
    let au = first_frame(&aus).expect("the slice before survives");
    assert!(!au.complete);
    assert_eq!(au.nal_count(), 1);
}

#[test]
fn fu_a_interrupted_truncated_or_mismatched() {
    // Start, then a new start: the first NAL unit never ended.
    let (aus, stats) = feed(&[&[0x7c, 0x85, 1], &[0x7c, 0x81, 2], &[0x7c, 0x41, 3]]);
    assert_eq!(stats.malformed.get(MalformedReason::FuUnterminated), 1);
    let au = first_frame(&aus).expect("the second NAL unit completes");
    assert_eq!(au.nal_units().collect::<Vec<_>>(), vec![&[0x61, 2, 3][..]]);
    assert!(!au.complete && !au.keyframe);

    // Start, then the marker without an end fragment.
    let (aus, stats) = feed(&[&[0x7c, 0x85, 1], &[0x7c, 0x05, 2]]);
    assert_eq!(stats.malformed.get(MalformedReason::FuUnterminated), 1);
    assert!(first_frame(&aus).is_none());

    // Fragment header missing.
    let (_, stats) = feed(&[&[0x7c]]);
    assert_eq!(stats.malformed.get(MalformedReason::TruncatedFuA), 1);

    // Type changes mid-unit.
    let (_, stats) = feed(&[&[0x7c, 0x85, 1], &[0x7c, 0x41, 2]]);
    assert_eq!(stats.malformed.get(MalformedReason::FuTypeMismatch), 1);

    // Start and end in one fragment, with an empty body: a header-only NAL unit.
    let (aus, stats) = feed(&[&[0x7c, 0xca]]);
    assert_eq!(stats.malformed.total(), 0);
    assert_eq!(
        first_frame(&aus).map(|a| a.to_annex_b()),
        Some(vec![0, 0, 0, 1, 0x6a])
    );
}

#[test]
fn empty_payload_and_forbidden_bit() {
    let (aus, stats) = feed(&[&[], &[0x41, 1]]);
    assert_eq!(stats.padding_packets, 1);
    assert!(first_frame(&aus).is_some_and(|a| a.complete));

    let (aus, stats) = feed(&[&[0xc1, 1]]);
    assert_eq!(stats.malformed.get(MalformedReason::ForbiddenBit), 1);
    assert!(first_frame(&aus).is_none());
}

/// One arbitrary packet: random header fields near each other so that sequences, timestamps and
/// markers interact, and payloads biased towards the interesting structures.
fn arb_packet() -> impl Strategy<Value = (u16, u32, bool, u32, Vec<u8>)> {
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (
            prop_oneof![
                Just(24u8),
                Just(28),
                Just(0x7c),
                Just(0x5c),
                Just(0x65),
                any::<u8>()
            ],
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(h, mut rest)| {
                rest.insert(0, h);
                rest
            }),
        (
            any::<bool>(),
            any::<bool>(),
            0u8..32,
            proptest::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(s, e, t, body)| {
                let mut p = vec![0x7c, (u8::from(s) << 7) | (u8::from(e) << 6) | t];
                p.extend(body);
                p
            }),
    ];
    (0u16..24, 0u32..4, any::<bool>(), 0u32..2, payload)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_packets_never_panic_or_emit_empty_nal_units(
        base_seq in any::<u16>(),
        max_reorder in 0usize..10,
        max_bytes in prop_oneof![Just(64usize), Just(8usize << 20)],
        packets in proptest::collection::vec(arb_packet(), 0..120),
    ) {
        let start = Instant::now();
        let mut d = H264Depacketizer::new(DepacketizerConfig {
            max_reorder,
            max_access_unit_bytes: max_bytes,
        });
        let mut emitted = Vec::new();
        for (i, (seq, ts, marker, ssrc, payload)) in packets.iter().cloned().enumerate() {
            d.push(RtpPacket {
                sequence: base_seq.wrapping_add(seq),
                timestamp: ts.wrapping_mul(3000),
                marker,
                payload_type: 96,
                ssrc,
                payload,
                arrival: start + Duration::from_millis(i as u64),
            });
            emitted.extend(std::iter::from_fn(|| d.poll()));
        }
        d.flush();
        emitted.extend(std::iter::from_fn(|| d.poll()));

        for au in &emitted {
            prop_assert!(au.nal_count() > 0);
            prop_assert!(au.nal_units().all(|n| !n.is_empty()));
            prop_assert_eq!(au.nal_units().count(), au.nal_count());
            prop_assert!(au.byte_len() + 4 * au.nal_count() <= max_bytes);
            prop_assert_eq!(au.keyframe, au.nal_units().any(|n| n[0] & 0x1f == 5));
            let _ = au.frame_stamp();
        }
        let stats = d.stats();
        prop_assert_eq!(stats.packets, packets.len() as u64);
        prop_assert_eq!(stats.access_units, emitted.len() as u64);
        prop_assert_eq!(d.buffered_packets(), 0);
    }
}
