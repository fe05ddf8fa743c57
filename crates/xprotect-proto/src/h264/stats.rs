//! Counters the depacketiser keeps, so a client can report what the network and the sender did.

use serde::Serialize;

/// Why (part of) a packet could not be depacketised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MalformedReason {
    /// A NAL unit or payload header had the forbidden_zero_bit set (RFC 6184 §5.3: known bit errors).
    ForbiddenBit,
    /// A STAP-A ended in the middle of a 2-byte NAL unit size.
    TruncatedStapA,
    /// A STAP-A NAL unit size ran past the end of the packet.
    StapALengthPastEnd,
    /// A STAP-A carried no NAL unit at all.
    EmptyStapA,
    /// A STAP-A declared a NAL unit of size 0.
    ZeroLengthNal,
    /// An aggregation or fragmentation unit carried another RTP payload structure (types 24–29).
    NestedPayloadStructure,
    /// An FU-A shorter than its two header bytes.
    TruncatedFuA,
    /// An FU-A continuation or end fragment arrived with no start fragment before it (and no
    /// packet loss explains it).
    FuWithoutStart,
    /// A fragmented NAL unit was interrupted (new NAL unit, marker bit or timestamp change)
    /// before its end fragment, with no packet loss to explain it.
    FuUnterminated,
    /// An FU-A fragment's NAL type differs from its start fragment's.
    FuTypeMismatch,
    /// STAP-B (type 25): interleaved mode only, not supported.
    UnsupportedStapB,
    /// MTAP16 (type 26): interleaved mode only, not supported.
    UnsupportedMtap16,
    /// MTAP24 (type 27): interleaved mode only, not supported.
    UnsupportedMtap24,
    /// FU-B (type 29): interleaved mode only, not supported.
    UnsupportedFuB,
    /// A payload of reserved type 0, 30 or 31, which RFC 6184 tells receivers to ignore.
    ReservedType,
    /// An access unit grew past the configured size limit and was dropped.
    AccessUnitTooLarge,
}

/// How often each [`MalformedReason`] occurred.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // one counter per MalformedReason variant, documented there
pub struct MalformedCounts {
    pub forbidden_bit: u64,
    pub truncated_stap_a: u64,
    pub stap_a_length_past_end: u64,
    pub empty_stap_a: u64,
    pub zero_length_nal: u64,
    pub nested_payload_structure: u64,
    pub truncated_fu_a: u64,
    pub fu_without_start: u64,
    pub fu_unterminated: u64,
    pub fu_type_mismatch: u64,
    pub unsupported_stap_b: u64,
    pub unsupported_mtap16: u64,
    pub unsupported_mtap24: u64,
    pub unsupported_fu_b: u64,
    pub reserved_type: u64,
    pub access_unit_too_large: u64,
}

impl MalformedCounts {
    /// The counter for one reason.
    pub fn get(&self, reason: MalformedReason) -> u64 {
        *self.slot(reason)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        let Self {
            forbidden_bit,
            truncated_stap_a,
            stap_a_length_past_end,
            empty_stap_a,
            zero_length_nal,
            nested_payload_structure,
            truncated_fu_a,
            fu_without_start,
            fu_unterminated,
            fu_type_mismatch,
            unsupported_stap_b,
            unsupported_mtap16,
            unsupported_mtap24,
            unsupported_fu_b,
            reserved_type,
            access_unit_too_large,
        } = self;
        [
            forbidden_bit,
            truncated_stap_a,
            stap_a_length_past_end,
            empty_stap_a,
            zero_length_nal,
            nested_payload_structure,
            truncated_fu_a,
            fu_without_start,
            fu_unterminated,
            fu_type_mismatch,
            unsupported_stap_b,
            unsupported_mtap16,
            unsupported_mtap24,
            unsupported_fu_b,
            reserved_type,
            access_unit_too_large,
        ]
        .into_iter()
        .sum()
    }

    pub(crate) fn record(&mut self, reason: MalformedReason) {
        *self.slot_mut(reason) += 1;
    }

    fn slot(&self, reason: MalformedReason) -> &u64 {
        match reason {
            MalformedReason::ForbiddenBit => &self.forbidden_bit,
            MalformedReason::TruncatedStapA => &self.truncated_stap_a,
            MalformedReason::StapALengthPastEnd => &self.stap_a_length_past_end,
            MalformedReason::EmptyStapA => &self.empty_stap_a,
            MalformedReason::ZeroLengthNal => &self.zero_length_nal,
            MalformedReason::NestedPayloadStructure => &self.nested_payload_structure,
            MalformedReason::TruncatedFuA => &self.truncated_fu_a,
            MalformedReason::FuWithoutStart => &self.fu_without_start,
            MalformedReason::FuUnterminated => &self.fu_unterminated,
            MalformedReason::FuTypeMismatch => &self.fu_type_mismatch,
            MalformedReason::UnsupportedStapB => &self.unsupported_stap_b,
            MalformedReason::UnsupportedMtap16 => &self.unsupported_mtap16,
            MalformedReason::UnsupportedMtap24 => &self.unsupported_mtap24,
            MalformedReason::UnsupportedFuB => &self.unsupported_fu_b,
            MalformedReason::ReservedType => &self.reserved_type,
            MalformedReason::AccessUnitTooLarge => &self.access_unit_too_large,
        }
    }

    fn slot_mut(&mut self, reason: MalformedReason) -> &mut u64 {
        match reason {
            MalformedReason::ForbiddenBit => &mut self.forbidden_bit,
            MalformedReason::TruncatedStapA => &mut self.truncated_stap_a,
            MalformedReason::StapALengthPastEnd => &mut self.stap_a_length_past_end,
            MalformedReason::EmptyStapA => &mut self.empty_stap_a,
            MalformedReason::ZeroLengthNal => &mut self.zero_length_nal,
            MalformedReason::NestedPayloadStructure => &mut self.nested_payload_structure,
            MalformedReason::TruncatedFuA => &mut self.truncated_fu_a,
            MalformedReason::FuWithoutStart => &mut self.fu_without_start,
            MalformedReason::FuUnterminated => &mut self.fu_unterminated,
            MalformedReason::FuTypeMismatch => &mut self.fu_type_mismatch,
            MalformedReason::UnsupportedStapB => &mut self.unsupported_stap_b,
            MalformedReason::UnsupportedMtap16 => &mut self.unsupported_mtap16,
            MalformedReason::UnsupportedMtap24 => &mut self.unsupported_mtap24,
            MalformedReason::UnsupportedFuB => &mut self.unsupported_fu_b,
            MalformedReason::ReservedType => &mut self.reserved_type,
            MalformedReason::AccessUnitTooLarge => &mut self.access_unit_too_large,
        }
    }
}

/// Running totals of an [`H264Depacketizer`](super::H264Depacketizer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DepacketizerStats {
    /// Packets pushed.
    pub packets: u64,
    /// Access units emitted (complete or not).
    pub access_units: u64,
    /// Emitted access units with `complete == false`.
    pub incomplete_access_units: u64,
    /// Access units closed without a single usable NAL unit, so never emitted.
    pub discarded_access_units: u64,
    /// Packets not depacketised at all: late, duplicate, or part of an oversized access unit.
    pub dropped_packets: u64,
    /// Packets that arrived after their place in the sequence was processed or given up
    /// (duplicates of processed packets land here too).
    pub late_packets: u64,
    /// Packets whose sequence number was already waiting in the reorder window.
    pub duplicate_packets: u64,
    /// Times the depacketiser gave up waiting for missing sequence numbers.
    pub sequence_gaps: u64,
    /// Sequence numbers given up on, summed over all gaps.
    pub lost_packets: u64,
    /// Packets with an empty payload (padding-only probes), skipped.
    pub padding_packets: u64,
    /// Times sequence tracking restarted (SSRC change, or a run of packets far behind).
    pub resyncs: u64,
    /// Malformed or unsupported payloads, by reason.
    pub malformed: MalformedCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter() {
        let all = [
            MalformedReason::ForbiddenBit,
            MalformedReason::TruncatedStapA,
            MalformedReason::StapALengthPastEnd,
            MalformedReason::EmptyStapA,
            MalformedReason::ZeroLengthNal,
            MalformedReason::NestedPayloadStructure,
            MalformedReason::TruncatedFuA,
            MalformedReason::FuWithoutStart,
            MalformedReason::FuUnterminated,
            MalformedReason::FuTypeMismatch,
            MalformedReason::UnsupportedStapB,
            MalformedReason::UnsupportedMtap16,
            MalformedReason::UnsupportedMtap24,
            MalformedReason::UnsupportedFuB,
            MalformedReason::ReservedType,
            MalformedReason::AccessUnitTooLarge,
        ];
        let mut counts = MalformedCounts::default();
        for (i, reason) in all.iter().enumerate() {
            for _ in 0..=i {
                counts.record(*reason);
            }
        }
        for (i, reason) in all.iter().enumerate() {
            assert_eq!(counts.get(*reason), i as u64 + 1, "{reason:?}");
        }
        assert_eq!(counts.total(), (1..=all.len() as u64).sum::<u64>());
    }
}
