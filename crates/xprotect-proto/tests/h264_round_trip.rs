//! Known NAL units → RTP packets (a test-only packetiser) → depacketiser → the same NAL units.

mod common;

use common::{PPS, Packetizer, SPS, nal};
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::h264::{AccessUnit, DepacketizerConfig, H264Depacketizer, annex_b};
use xprotect_proto::rtp::RtpPacket;

fn run(d: &mut H264Depacketizer, packets: impl IntoIterator<Item = RtpPacket>) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    for p in packets {
        d.push(p);
        while let Some(au) = d.poll() {
            out.push(au);
        }
    }
    out
}

fn nals_of(au: &AccessUnit) -> Vec<Vec<u8>> {
    au.nal_units().map(<[u8]>::to_vec).collect()
}

/// Compares NAL units without printing megabytes when they differ.
#[track_caller]
fn assert_nals(au: &AccessUnit, expected: &[Vec<u8>]) {
    let got = nals_of(au);
    let lens = |v: &[Vec<u8>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    assert!(
        got == expected,
        "NAL units differ: got lengths {:?}, expected {:?} (ts {}, complete {})",
        lens(&got),
        lens(expected),
        au.rtp_timestamp,
        au.complete
    );
}

fn keyframe_nals(seed: u32) -> Vec<Vec<u8>> {
    vec![
        FrameStamp::new(1_736_942_694_000, u64::from(seed)).to_sei_nal(),
        SPS.to_vec(),
        PPS.to_vec(),
        nal(0x65, 50_000, seed),
    ]
}

#[test]
fn large_idr_with_parameter_sets_round_trips() {
    let mut p = Packetizer::new(65_500); // wraps the sequence number mid-frame
    let nals = keyframe_nals(1);
    let packets = p.access_unit(0, &nals);
    // SEI + SPS + PPS aggregate into one STAP-A; the IDR needs many FU-As.
    assert_eq!(packets[0].payload[0] & 0x1f, 24);
    assert!(packets[1..].iter().all(|p| p.payload[0] & 0x1f == 28));
    assert!(packets.len() > 40);

    let mut d = H264Depacketizer::default();
    let aus = run(&mut d, packets);
    assert_eq!(aus.len(), 1);
    let au = &aus[0];
    assert_nals(au, &nals);
    assert!(au.complete && au.keyframe);
    assert_eq!(au.sps(), Some(SPS));
    assert_eq!(au.pps(), Some(PPS));
    assert_eq!(au.first_sequence, 65_500);
    assert_eq!(
        au.frame_stamp(),
        Some(FrameStamp::new(1_736_942_694_000, 1))
    );
    let from_annex_b: Vec<Vec<u8>> = annex_b::split(&au.to_annex_b())
        .map(<[u8]>::to_vec)
        .collect();
    assert!(from_annex_b == nals);
    assert_eq!(au.byte_len(), nals.iter().map(Vec::len).sum::<usize>());
}

#[test]
fn stream_of_frames_round_trips_with_and_without_markers() {
    for markers in [true, false] {
        let mut p = Packetizer::new(100);
        p.set_marker = markers;
        let frames: Vec<Vec<Vec<u8>>> = (0..30u32)
            .map(|i| {
                if i % 10 == 0 {
                    keyframe_nals(i)
                } else {
                    vec![nal(0x41, 300 + (i as usize * 97) % 3_000, i)]
                }
            })
            .collect();
        let packets: Vec<RtpPacket> = frames
            .iter()
            .enumerate()
            .flat_map(|(i, f)| p.access_unit(i as u32 * 40, f))
            .collect();

        let mut d = H264Depacketizer::default();
        let mut aus = run(&mut d, packets);
        if !markers {
            // Without markers the last frame ends only when the stream does.
            assert_eq!(aus.len(), 29);
            d.flush();
            aus.extend(std::iter::from_fn(|| d.poll()));
        }
        assert_eq!(aus.len(), 30, "markers={markers}");
        for (i, (au, frame)) in aus.iter().zip(&frames).enumerate() {
            assert_nals(au, frame);
            assert_eq!(au.rtp_timestamp, i as u32 * 40);
            assert!(au.complete);
            assert_eq!(au.keyframe, i % 10 == 0);
        }
        let stats = d.stats();
        assert_eq!(stats.access_units, 30);
        assert_eq!(stats.sequence_gaps, 0);
        assert_eq!(stats.malformed.total(), 0);
    }
}

#[test]
fn reordered_packets_within_window_are_put_back() {
    let mut p = Packetizer::new(1);
    let frames = [
        keyframe_nals(7),
        vec![nal(0x41, 2_500, 8)],
        vec![nal(0x41, 100, 9)],
    ];
    let mut packets: Vec<RtpPacket> = frames
        .iter()
        .enumerate()
        .flat_map(|(i, f)| p.access_unit(i as u32 * 33, f))
        .collect();
    // Swap neighbours pairwise, and move one packet 5 places later.
    for pair in packets.chunks_mut(2) {
        pair.reverse();
    }
    let moved = packets.remove(10);
    packets.insert(15, moved);

    let mut d = H264Depacketizer::default();
    let aus = run(&mut d, packets);
    assert_eq!(aus.len(), 3);
    for (au, frame) in aus.iter().zip(&frames) {
        assert_nals(au, frame);
        assert!(au.complete);
    }
    let stats = d.stats();
    assert_eq!((stats.sequence_gaps, stats.late_packets), (0, 0));
}

#[test]
fn lost_packet_makes_the_access_unit_incomplete() {
    let mut p = Packetizer::new(40_000);
    let frames = [
        keyframe_nals(3),
        vec![nal(0x41, 500, 4)],
        vec![nal(0x41, 400, 5)],
    ];
    let mut packets: Vec<RtpPacket> = frames
        .iter()
        .enumerate()
        .flat_map(|(i, f)| p.access_unit(i as u32 * 40, f))
        .collect();
    // Lose a middle FU-A fragment of the IDR.
    let lost = packets.remove(5);
    assert_eq!(lost.payload[0] & 0x1f, 28);

    let mut d = H264Depacketizer::new(DepacketizerConfig {
        max_reorder: 4,
        ..DepacketizerConfig::default()
    });
    let aus = run(&mut d, packets);
    assert_eq!(aus.len(), 3);
    // The keyframe lost its IDR slice; SEI, SPS and PPS survive.
    assert!(!aus[0].complete);
    assert!(!aus[0].keyframe);
    assert_nals(&aus[0], &frames[0][..3]);
    assert!(aus[1].complete && aus[2].complete);
    let stats = d.stats();
    assert_eq!((stats.sequence_gaps, stats.lost_packets), (1, 1));
    assert_eq!(stats.incomplete_access_units, 1);
    assert_eq!(stats.malformed.total(), 0);
}

#[test]
fn lost_marker_packet_without_waiting_for_more() {
    let mut p = Packetizer::new(9);
    let mut packets = p.access_unit(0, &[nal(0x41, 3_000, 1)]);
    packets.extend(p.access_unit(40, &[nal(0x41, 200, 2)]));
    packets.extend(p.access_unit(80, &[nal(0x41, 200, 3)]));
    // Lose the last fragment (with the marker) of the first frame.
    packets.remove(2);

    let mut d = H264Depacketizer::new(DepacketizerConfig {
        max_reorder: 1,
        ..DepacketizerConfig::default()
    });
    let aus = run(&mut d, packets);
    assert_eq!(aus.len(), 2, "the third frame ends only with the stream");
    // The broken fragment was dropped, leaving nothing of frame 0 to emit.
    assert_eq!(aus[0].rtp_timestamp, 40);
    assert!(!aus[0].complete, "its head may have been lost");
    assert!(aus[1].complete);
    assert_eq!(d.stats().discarded_access_units, 1);
}
