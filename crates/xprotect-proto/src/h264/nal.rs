//! NAL unit header helpers (ITU-T H.264 §7.3.1, table 7-1; RFC 6184 §5.2 for types 24–29).
//!
//! The first byte of every NAL unit is `forbidden_zero_bit(1) | nal_ref_idc(2) | nal_unit_type(5)`.

/// The `nal_unit_type` of an H.264 NAL unit header, including the RTP payload-format types of
/// RFC 6184 (24–29), which share the same 5-bit field in an RTP payload's first byte.
///
/// All 32 values are named, so converting a header byte is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NalType {
    /// 0: unspecified.
    Unspecified0 = 0,
    /// 1: coded slice of a non-IDR picture.
    NonIdrSlice = 1,
    /// 2: coded slice data partition A.
    PartitionA = 2,
    /// 3: coded slice data partition B.
    PartitionB = 3,
    /// 4: coded slice data partition C.
    PartitionC = 4,
    /// 5: coded slice of an IDR picture (a keyframe).
    IdrSlice = 5,
    /// 6: supplemental enhancement information.
    Sei = 6,
    /// 7: sequence parameter set.
    Sps = 7,
    /// 8: picture parameter set.
    Pps = 8,
    /// 9: access unit delimiter.
    Aud = 9,
    /// 10: end of sequence.
    EndOfSequence = 10,
    /// 11: end of stream.
    EndOfStream = 11,
    /// 12: filler data.
    FillerData = 12,
    /// 13: sequence parameter set extension.
    SpsExtension = 13,
    /// 14: prefix NAL unit (SVC/MVC).
    Prefix = 14,
    /// 15: subset sequence parameter set.
    SubsetSps = 15,
    /// 16: depth parameter set.
    DepthParameterSet = 16,
    /// 17: reserved.
    Reserved17 = 17,
    /// 18: reserved.
    Reserved18 = 18,
    /// 19: coded slice of an auxiliary coded picture without partitioning.
    AuxiliarySlice = 19,
    /// 20: coded slice extension (SVC/MVC).
    SliceExtension = 20,
    /// 21: coded slice extension for a depth view component.
    SliceExtensionDepth = 21,
    /// 22: reserved.
    Reserved22 = 22,
    /// 23: reserved.
    Reserved23 = 23,
    /// 24: RFC 6184 single-time aggregation packet A.
    StapA = 24,
    /// 25: RFC 6184 single-time aggregation packet B (interleaved mode only).
    StapB = 25,
    /// 26: RFC 6184 multi-time aggregation packet with 16-bit offsets (interleaved mode only).
    Mtap16 = 26,
    /// 27: RFC 6184 multi-time aggregation packet with 24-bit offsets (interleaved mode only).
    Mtap24 = 27,
    /// 28: RFC 6184 fragmentation unit A.
    FuA = 28,
    /// 29: RFC 6184 fragmentation unit B (interleaved mode only).
    FuB = 29,
    /// 30: unspecified.
    Unspecified30 = 30,
    /// 31: unspecified.
    Unspecified31 = 31,
}

impl NalType {
    /// The type carried in a NAL (or RTP payload) header byte; the top three bits are ignored.
    pub const fn from_header(header: u8) -> Self {
        match header & 0x1f {
            0 => Self::Unspecified0,
            1 => Self::NonIdrSlice,
            2 => Self::PartitionA,
            3 => Self::PartitionB,
            4 => Self::PartitionC,
            5 => Self::IdrSlice,
            6 => Self::Sei,
            7 => Self::Sps,
            8 => Self::Pps,
            9 => Self::Aud,
            10 => Self::EndOfSequence,
            11 => Self::EndOfStream,
            12 => Self::FillerData,
            13 => Self::SpsExtension,
            14 => Self::Prefix,
            15 => Self::SubsetSps,
            16 => Self::DepthParameterSet,
            17 => Self::Reserved17,
            18 => Self::Reserved18,
            19 => Self::AuxiliarySlice,
            20 => Self::SliceExtension,
            21 => Self::SliceExtensionDepth,
            22 => Self::Reserved22,
            23 => Self::Reserved23,
            24 => Self::StapA,
            25 => Self::StapB,
            26 => Self::Mtap16,
            27 => Self::Mtap24,
            28 => Self::FuA,
            29 => Self::FuB,
            30 => Self::Unspecified30,
            // The mask leaves 0..=31, so this arm is exactly 31.
            _ => Self::Unspecified31,
        }
    }

    /// The 5-bit numeric value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// A coded slice (or slice data partition) of the primary picture: the NAL units a decoder
    /// turns into pixels.
    pub const fn is_vcl(self) -> bool {
        matches!(self as u8, 1..=5)
    }

    /// A coded slice of an IDR picture: decoding can start here.
    pub const fn is_idr(self) -> bool {
        matches!(self, Self::IdrSlice)
    }

    /// A parameter set (SPS or PPS) that an MP4 `avcC` box or a decoder needs before slices.
    pub const fn is_parameter_set(self) -> bool {
        matches!(self, Self::Sps | Self::Pps)
    }

    /// One of the RFC 6184 RTP payload structures (24–29) rather than a real NAL unit type.
    pub const fn is_rtp_payload_structure(self) -> bool {
        matches!(self as u8, 24..=29)
    }
}

/// The NAL unit type of a header byte (shorthand for [`NalType::from_header`]).
pub const fn nal_type(header: u8) -> NalType {
    NalType::from_header(header)
}

/// Whether a header byte announces an IDR slice (type 5).
pub const fn is_idr(header: u8) -> bool {
    nal_type(header).is_idr()
}

/// The `nal_ref_idc` (0–3): 0 means no other picture refers to this NAL unit.
pub const fn nal_ref_idc(header: u8) -> u8 {
    (header >> 5) & 0b11
}

/// Whether the `forbidden_zero_bit` is set, which RFC 6184 §5.3 uses to flag a NAL unit known to
/// contain bit errors.
pub const fn forbidden_bit(header: u8) -> bool {
    header & 0x80 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for v in 0u8..=31 {
            assert_eq!(NalType::from_header(v).as_u8(), v);
            // The F and NRI bits do not change the type.
            assert_eq!(NalType::from_header(v | 0xe0).as_u8(), v);
        }
    }

    #[test]
    fn classifies_common_types() {
        assert_eq!(nal_type(0x67), NalType::Sps);
        assert_eq!(nal_type(0x68), NalType::Pps);
        assert_eq!(nal_type(0x06), NalType::Sei);
        assert_eq!(nal_type(0x09), NalType::Aud);
        assert!(is_idr(0x65));
        assert!(!is_idr(0x41));
        assert!(nal_type(0x41).is_vcl());
        assert!(!nal_type(0x67).is_vcl());
        assert!(nal_type(0x68).is_parameter_set());
        assert!(nal_type(0x7c).is_rtp_payload_structure());
        assert_eq!(nal_ref_idc(0x65), 3);
        assert_eq!(nal_ref_idc(0x06), 0);
        assert!(forbidden_bit(0x85));
        assert!(!forbidden_bit(0x65));
    }
}
