//! RTP → H.264 access units (RFC 6184, packetization-mode 1: single NAL unit packets, STAP-A and
//! FU-A).
//!
//! Packets go through the [reorder window](super::reorder) first; in-order packets are then
//! unpacked straight into the open access unit's buffer. An access unit closes on the marker bit,
//! on a change of RTP timestamp (for senders that set no marker bits), or when tracking restarts.

use std::collections::VecDeque;
use std::mem;

use crate::rtp::RtpPacket;

use super::access_unit::AccessUnit;
use super::nal::{NalType, forbidden_bit};
use super::reorder::{Ordered, ReorderWindow};
use super::stats::{DepacketizerStats, MalformedCounts, MalformedReason};

/// Settings of an [`H264Depacketizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    /// How many packets may wait behind a missing sequence number before it is declared lost.
    /// 0 turns reordering off (every hole is a loss at once). Each waiting packet adds latency
    /// only while a hole is open, and at the very start of a stream, where the window holds
    /// packets until one carries the marker bit or more than `max_reorder` wait, so that a first
    /// packet overtaken by its successor is not lost.
    pub max_reorder: usize,
    /// Access units larger than this (NAL bytes plus 4 bytes per NAL unit) are dropped, so a
    /// sender that never ends a fragmented NAL unit cannot make memory grow without bound.
    pub max_access_unit_bytes: usize,
}

impl Default for DepacketizerConfig {
    fn default() -> Self {
        Self {
            max_reorder: 8,
            // A 4K intra frame at high quality stays well below this.
            max_access_unit_bytes: 8 << 20,
        }
    }
}

/// Largest buffer size reused as the starting capacity of the next access unit; beyond this a
/// single big keyframe would make every following small frame allocate too much.
const MAX_CAPACITY_HINT: usize = 256 << 10;

/// Turns RTP packets of one H.264 stream into [`AccessUnit`]s.
///
/// Sans-IO: feed every packet with [`push`](Self::push), then take finished access units with
/// [`poll`](Self::poll) until it returns `None`. Packets are copied once, into the access unit's
/// buffer; the steady state allocates one buffer per access unit.
///
/// ```
/// use std::time::Instant;
/// use xprotect_proto::h264::H264Depacketizer;
/// use xprotect_proto::rtp::RtpPacket;
///
/// let mut depacketizer = H264Depacketizer::default();
/// depacketizer.push(RtpPacket {
///     sequence: 1,
///     timestamp: 0,
///     marker: true,
///     payload_type: 96,
///     ssrc: 7,
///     payload: vec![0x65, 0x88, 0x84],
///     arrival: Instant::now(),
/// });
/// let au = depacketizer.poll().expect("marker bit closes the access unit");
/// assert!(au.keyframe && au.complete);
/// assert_eq!(au.to_annex_b(), [0, 0, 0, 1, 0x65, 0x88, 0x84]);
/// ```
///
/// Packets with an empty payload (padding-only bandwidth probes) are skipped without effect.
/// A change of SSRC, or a run of packets far behind the expected sequence number (a renumbered
/// sender), closes the open access unit and restarts sequence tracking.
/// Loss handling is described on [`AccessUnit`]: an access unit is emitted with
/// `complete == false` when packets were lost inside it or right before it.
#[derive(Debug)]
pub struct H264Depacketizer {
    window: ReorderWindow,
    assembler: Assembler,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new(DepacketizerConfig::default())
    }
}

impl H264Depacketizer {
    /// A depacketiser with the given settings.
    pub fn new(config: DepacketizerConfig) -> Self {
        Self {
            window: ReorderWindow::new(config.max_reorder),
            assembler: Assembler::new(config.max_access_unit_bytes),
        }
    }

    /// Takes one received packet.
    pub fn push(&mut self, packet: RtpPacket) {
        self.assembler.stats.packets += 1;
        let assembler = &mut self.assembler;
        self.window
            .push(packet, &mut |ordered| assembler.handle(ordered));
    }

    /// The next finished access unit, oldest first.
    pub fn poll(&mut self) -> Option<AccessUnit> {
        self.assembler.ready.pop_front()
    }

    /// Gives up on missing packets, releases everything waiting in the reorder window and
    /// closes the open access unit, e.g. at the end of a stream or when the caller's timer
    /// decides that waiting longer is pointless. Later packets continue the same stream.
    pub fn flush(&mut self) {
        let assembler = &mut self.assembler;
        self.window.flush(&mut |ordered| assembler.handle(ordered));
        self.assembler.close_current();
    }

    /// Packets waiting in the reorder window for an earlier, missing one.
    pub fn buffered_packets(&self) -> usize {
        self.window.buffered()
    }

    /// Running totals.
    pub fn stats(&self) -> DepacketizerStats {
        let seq = self.window.counters;
        let mut stats = self.assembler.stats.clone();
        stats.late_packets = seq.late;
        stats.duplicate_packets = seq.duplicate;
        stats.sequence_gaps = seq.gaps;
        stats.lost_packets = seq.lost;
        stats.resyncs = seq.restarts;
        stats.dropped_packets += seq.late + seq.duplicate;
        stats
    }
}

/// An FU-A whose start fragment arrived and whose end fragment has not.
#[derive(Debug, Clone, Copy)]
struct OpenFragment {
    /// Handle from [`AccessUnit::begin_nal`].
    start: usize,
    /// Its NAL unit type, which every fragment must repeat.
    nal_type: u8,
}

/// Builds access units from packets that arrive in sequence order.
#[derive(Debug)]
struct Assembler {
    max_access_unit_bytes: usize,
    /// Counters other than the reorder window's.
    stats: DepacketizerStats,
    current: Option<AccessUnit>,
    payload: PayloadState,
    /// Packets were lost right before the next packet, so the access unit it opens (or
    /// continues) may lack its beginning.
    gap_before_next: bool,
    /// Packets with this timestamp belong to an access unit dropped as too large.
    discarding: Option<u32>,
    ready: VecDeque<AccessUnit>,
    capacity_hint: usize,
}

/// Fragmentation state that must be reset with the access unit.
#[derive(Debug, Default)]
struct PayloadState {
    fragment: Option<OpenFragment>,
    /// Loss happened since the last NAL unit boundary, so fragments without a start are
    /// expected rather than malformed.
    after_loss: bool,
}

impl Assembler {
    fn new(max_access_unit_bytes: usize) -> Self {
        Self {
            // Lengths are stored as u32; keep the cap where they always fit.
            max_access_unit_bytes: max_access_unit_bytes.min(u32::MAX as usize),
            stats: DepacketizerStats::default(),
            current: None,
            payload: PayloadState::default(),
            gap_before_next: false,
            discarding: None,
            ready: VecDeque::new(),
            capacity_hint: 0,
        }
    }

    fn handle(&mut self, ordered: Ordered) {
        match ordered {
            Ordered::Packet(packet) => self.process(packet),
            Ordered::Gap => self.mark_gap(),
            Ordered::Restart => {
                self.close_current();
                self.gap_before_next = false;
                self.discarding = None;
            }
        }
    }

    /// Packets are missing before the next one: the open access unit may lack its tail, and
    /// the next one its head.
    fn mark_gap(&mut self) {
        if let Some(au) = self.current.as_mut() {
            if let Some(fragment) = self.payload.fragment.take() {
                au.abort_nal(fragment.start);
            }
            au.complete = false;
        }
        self.payload.after_loss = true;
        self.gap_before_next = true;
    }

    fn process(&mut self, packet: RtpPacket) {
        if packet.payload.is_empty() {
            self.stats.padding_packets += 1;
            return;
        }
        if let Some(ts) = self.discarding {
            if ts == packet.timestamp {
                self.stats.dropped_packets += 1;
                if packet.marker {
                    self.discarding = None;
                }
                return;
            }
            self.discarding = None;
        }
        if self
            .current
            .as_ref()
            .is_some_and(|au| au.rtp_timestamp != packet.timestamp)
        {
            self.close_current();
        }

        let capacity = self.capacity_hint.max(packet.payload.len() + 8);
        let au = self.current.get_or_insert_with(|| {
            AccessUnit::empty(packet.timestamp, packet.sequence, packet.arrival, capacity)
        });
        if mem::take(&mut self.gap_before_next) {
            au.complete = false;
        }
        au.last_sequence = packet.sequence;
        au.arrival = packet.arrival;

        let intact = unpack_payload(
            au,
            &mut self.payload,
            &mut self.stats.malformed,
            &packet.payload,
        );
        if !intact {
            au.complete = false;
        }

        if au.stored_len() > self.max_access_unit_bytes {
            self.stats
                .malformed
                .record(MalformedReason::AccessUnitTooLarge);
            self.stats.discarded_access_units += 1;
            self.current = None;
            self.payload.fragment = None;
            self.discarding = (!packet.marker).then_some(packet.timestamp);
            return;
        }
        if packet.marker {
            self.close_current();
        }
    }

    fn close_current(&mut self) {
        let fragment = self.payload.fragment.take();
        let Some(mut au) = self.current.take() else {
            return;
        };
        if let Some(fragment) = fragment {
            // The sender moved on without ending the NAL unit, and no loss explains it (a gap
            // would already have aborted the fragment).
            au.abort_nal(fragment.start);
            au.complete = false;
            self.stats.malformed.record(MalformedReason::FuUnterminated);
        }
        if au.nal_count() == 0 {
            self.stats.discarded_access_units += 1;
            return;
        }
        self.stats.access_units += 1;
        if !au.complete {
            self.stats.incomplete_access_units += 1;
        }
        self.capacity_hint = au.stored_len().min(MAX_CAPACITY_HINT);
        self.ready.push_back(au);
    }
}

/// Unpacks one non-empty RTP payload into `au`. Returns `false` when some of its data was
/// unusable, which makes the access unit incomplete.
fn unpack_payload(
    au: &mut AccessUnit,
    state: &mut PayloadState,
    malformed: &mut MalformedCounts,
    payload: &[u8],
) -> bool {
    let Some((&header, body)) = payload.split_first() else {
        return true;
    };
    if forbidden_bit(header) {
        malformed.record(MalformedReason::ForbiddenBit);
        abort_fragment(au, state, malformed);
        return false;
    }
    match NalType::from_header(header) {
        NalType::StapA => {
            let ended_cleanly = abort_fragment(au, state, malformed);
            unpack_stap_a(au, malformed, body) && ended_cleanly
        }
        NalType::FuA => unpack_fu_a(au, state, malformed, header, body),
        NalType::StapB => unsupported(au, state, malformed, MalformedReason::UnsupportedStapB),
        NalType::Mtap16 => unsupported(au, state, malformed, MalformedReason::UnsupportedMtap16),
        NalType::Mtap24 => unsupported(au, state, malformed, MalformedReason::UnsupportedMtap24),
        NalType::FuB => unsupported(au, state, malformed, MalformedReason::UnsupportedFuB),
        NalType::Unspecified0 | NalType::Unspecified30 | NalType::Unspecified31 => {
            // RFC 6184 §5.2: receivers ignore these; nothing of the picture is lost.
            malformed.record(MalformedReason::ReservedType);
            true
        }
        _ => {
            let ended_cleanly = abort_fragment(au, state, malformed);
            au.push_nal(payload);
            state.after_loss = false;
            ended_cleanly
        }
    }
}

/// A new NAL unit begins: an open fragment can no longer be completed. Returns `false` if
/// there was one.
fn abort_fragment(
    au: &mut AccessUnit,
    state: &mut PayloadState,
    malformed: &mut MalformedCounts,
) -> bool {
    match state.fragment.take() {
        None => true,
        Some(fragment) => {
            au.abort_nal(fragment.start);
            malformed.record(MalformedReason::FuUnterminated);
            false
        }
    }
}

fn unsupported(
    au: &mut AccessUnit,
    state: &mut PayloadState,
    malformed: &mut MalformedCounts,
    reason: MalformedReason,
) -> bool {
    malformed.record(reason);
    abort_fragment(au, state, malformed);
    false
}

/// STAP-A: `(size: u16 BE, NAL unit)*` after the STAP-A header.
fn unpack_stap_a(au: &mut AccessUnit, malformed: &mut MalformedCounts, body: &[u8]) -> bool {
    if body.is_empty() {
        malformed.record(MalformedReason::EmptyStapA);
        return false;
    }
    let mut intact = true;
    let mut rest = body;
    while !rest.is_empty() {
        let Some((size, tail)) = rest.split_first_chunk::<2>() else {
            malformed.record(MalformedReason::TruncatedStapA);
            return false;
        };
        let size = usize::from(u16::from_be_bytes(*size));
        if size == 0 {
            malformed.record(MalformedReason::ZeroLengthNal);
            rest = tail;
            continue;
        }
        let Some(nal) = tail.get(..size) else {
            malformed.record(MalformedReason::StapALengthPastEnd);
            return false;
        };
        rest = &tail[size..];
        // `size > 0`, so the NAL unit has a header byte.
        let nal_header = nal[0];
        if forbidden_bit(nal_header) {
            malformed.record(MalformedReason::ForbiddenBit);
            intact = false;
        } else if NalType::from_header(nal_header).is_rtp_payload_structure() {
            malformed.record(MalformedReason::NestedPayloadStructure);
            intact = false;
        } else {
            au.push_nal(nal);
        }
    }
    intact
}

/// FU-A: FU indicator (already read as `indicator`), FU header `S E R type`, fragment bytes.
fn unpack_fu_a(
    au: &mut AccessUnit,
    state: &mut PayloadState,
    malformed: &mut MalformedCounts,
    indicator: u8,
    body: &[u8],
) -> bool {
    let Some((&fu_header, fragment)) = body.split_first() else {
        malformed.record(MalformedReason::TruncatedFuA);
        abort_fragment(au, state, malformed);
        return false;
    };
    let is_start = fu_header & 0x80 != 0;
    let is_end = fu_header & 0x40 != 0;
    let nal_type = fu_header & 0x1f;

    if is_start {
        let ended_cleanly = abort_fragment(au, state, malformed);
        state.after_loss = false;
        if NalType::from_header(nal_type).is_rtp_payload_structure() {
            malformed.record(MalformedReason::NestedPayloadStructure);
            return false;
        }
        // The original NAL header: F and NRI from the indicator, type from the FU header.
        let start = au.begin_nal((indicator & 0xe0) | nal_type);
        au.extend_nal(fragment);
        if is_end {
            // Start and end in one packet (RFC 6184 forbids it, but it is unambiguous).
            au.finish_nal(start);
        } else {
            state.fragment = Some(OpenFragment { start, nal_type });
        }
        return ended_cleanly;
    }

    match state.fragment {
        None => {
            // After a loss the start simply went missing; otherwise the sender is at fault.
            if !state.after_loss {
                malformed.record(MalformedReason::FuWithoutStart);
            }
            false
        }
        Some(open) if open.nal_type != nal_type => {
            malformed.record(MalformedReason::FuTypeMismatch);
            au.abort_nal(open.start);
            state.fragment = None;
            false
        }
        Some(open) => {
            au.extend_nal(fragment);
            if is_end {
                au.finish_nal(open.start);
                state.fragment = None;
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn packet(sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        RtpPacket {
            sequence,
            timestamp,
            marker,
            payload_type: 96,
            ssrc: 0x1234,
            payload: payload.to_vec(),
            arrival: Instant::now(),
        }
    }

    fn drain(d: &mut H264Depacketizer) -> Vec<AccessUnit> {
        std::iter::from_fn(|| d.poll()).collect()
    }

    #[test]
    fn single_nal_with_marker() {
        let mut d = H264Depacketizer::default();
        d.push(packet(1, 100, true, &[0x41, 1, 2]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 1);
        assert_eq!(
            aus[0].nal_units().collect::<Vec<_>>(),
            vec![&[0x41, 1, 2][..]]
        );
        assert!(!aus[0].keyframe);
        assert_eq!(d.stats().access_units, 1);
    }

    #[test]
    fn fu_a_reassembles_and_restores_header() {
        let mut d = H264Depacketizer::default();
        // Indicator NRI=3 type 28; header S + type 5.
        d.push(packet(1, 0, false, &[0x7c, 0x85, 1, 2]));
        d.push(packet(2, 0, false, &[0x7c, 0x05, 3]));
        d.push(packet(3, 0, true, &[0x7c, 0x45, 4]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].nal_units().next(), Some(&[0x65, 1, 2, 3, 4][..]));
        assert!(aus[0].keyframe && aus[0].complete);
        assert_eq!((aus[0].first_sequence, aus[0].last_sequence), (1, 3));
    }

    #[test]
    fn timestamp_change_closes_without_marker() {
        // No reordering, so the window releases the first unmarked packets at once.
        let mut d = H264Depacketizer::new(DepacketizerConfig {
            max_reorder: 0,
            ..DepacketizerConfig::default()
        });
        d.push(packet(1, 0, false, &[0x41, 1]));
        d.push(packet(2, 0, false, &[0x01, 2]));
        assert!(d.poll().is_none());
        d.push(packet(3, 40, false, &[0x41, 3]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].nal_count(), 2);
        assert!(aus[0].complete);
        d.flush();
        assert_eq!(drain(&mut d)[0].rtp_timestamp, 40);
    }

    #[test]
    fn gap_marks_both_neighbours_incomplete() {
        let mut d = H264Depacketizer::new(DepacketizerConfig {
            max_reorder: 0,
            ..DepacketizerConfig::default()
        });
        d.push(packet(1, 0, false, &[0x41, 1]));
        // seq 2 (the end of frame 0) is lost.
        d.push(packet(3, 40, true, &[0x41, 3]));
        d.push(packet(4, 80, true, &[0x41, 4]));
        let aus = drain(&mut d);
        assert_eq!(
            aus.iter().map(|a| a.complete).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        let stats = d.stats();
        assert_eq!((stats.sequence_gaps, stats.lost_packets), (1, 1));
        assert_eq!(stats.incomplete_access_units, 2);
    }

    #[test]
    fn lost_middle_fragment_drops_the_nal_but_keeps_the_rest() {
        let mut d = H264Depacketizer::new(DepacketizerConfig {
            max_reorder: 0,
            ..DepacketizerConfig::default()
        });
        d.push(packet(1, 0, false, &[0x67, 9]));
        d.push(packet(2, 0, false, &[0x7c, 0x85, 1]));
        d.push(packet(4, 0, false, &[0x7c, 0x05, 3]));
        d.push(packet(5, 0, true, &[0x7c, 0x45, 4]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 1);
        assert!(!aus[0].complete);
        assert!(!aus[0].keyframe);
        assert_eq!(aus[0].nal_units().collect::<Vec<_>>(), vec![&[0x67, 9][..]]);
        // Fragments orphaned by loss are not the sender's fault.
        assert_eq!(d.stats().malformed.total(), 0);
    }

    #[test]
    fn padding_packets_are_skipped() {
        let mut d = H264Depacketizer::default();
        d.push(packet(1, 0, true, &[0x41, 1]));
        d.push(packet(2, 0, false, &[]));
        d.push(packet(3, 40, true, &[0x41, 2]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 2);
        assert!(aus.iter().all(|a| a.complete));
        assert_eq!(d.stats().padding_packets, 1);
    }

    #[test]
    fn oversized_access_unit_is_dropped() {
        let mut d = H264Depacketizer::new(DepacketizerConfig {
            max_reorder: 8,
            max_access_unit_bytes: 64,
        });
        d.push(packet(1, 0, false, &[0x7c, 0x85, 0xaa]));
        for seq in 2..10 {
            d.push(packet(
                seq,
                0,
                false,
                &[
                    0x7c, 0x05, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
                ],
            ));
        }
        d.push(packet(10, 0, true, &[0x7c, 0x45, 0xcc]));
        d.push(packet(11, 40, true, &[0x41, 1]));
        let aus = drain(&mut d);
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].rtp_timestamp, 40);
        assert!(aus[0].complete);
        let stats = d.stats();
        assert_eq!(stats.malformed.access_unit_too_large, 1);
        assert_eq!(stats.discarded_access_units, 1);
        assert!(stats.dropped_packets >= 1);
    }

    #[test]
    fn unsupported_structures_are_counted() {
        let mut d = H264Depacketizer::default();
        for (seq, t) in [(1u16, 25u8), (2, 26), (3, 27), (4, 29), (5, 30)] {
            d.push(packet(seq, 0, false, &[t, 0, 0, 0]));
        }
        d.flush();
        assert!(d.poll().is_none());
        let m = d.stats().malformed;
        assert_eq!(
            (
                m.unsupported_stap_b,
                m.unsupported_mtap16,
                m.unsupported_mtap24,
                m.unsupported_fu_b,
                m.reserved_type
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(d.stats().discarded_access_units, 1);
    }
}
