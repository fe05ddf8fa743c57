//! H.264 sequence parameter set parsing (ITU-T H.264 §7.3.2.1.1), as far as the MP4 sample entry
//! needs it: profile, level, chroma format, bit depths and the cropped picture size.

use crate::bits::{BitReader, nal_to_rbsp};

/// Why an SPS could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The NAL unit ended before the fields we need.
    #[error("SPS is truncated")]
    Truncated,
    /// The NAL unit is not a sequence parameter set (type 7).
    #[error("NAL unit type {0} is not an SPS")]
    NotAnSps(u8),
    /// An exp-Golomb code is longer than 32 bits.
    #[error("exp-Golomb code in SPS exceeds 32 bits")]
    ExpGolombOverflow,
    /// A field has a value the standard does not allow.
    #[error("SPS field {field} has invalid value {value}")]
    InvalidField {
        /// Syntax element name as in the H.264 standard.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// The picture size is zero or does not fit the 16-bit fields of the sample entry.
    #[error("SPS picture size {width}x{height} is not representable")]
    InvalidPictureSize {
        /// Cropped width in pixels (may be nonsensical).
        width: i64,
        /// Cropped height in pixels (may be nonsensical).
        height: i64,
    },
}

/// The parts of an SPS that the MP4 init segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc` (66 baseline, 77 main, 100 high, …).
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag`..`constraint_set5_flag` and reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8`.
    pub bit_depth_luma_minus8: u8,
    /// `bit_depth_chroma_minus8`.
    pub bit_depth_chroma_minus8: u8,
    /// Displayed width in pixels, after frame cropping.
    pub width: u16,
    /// Displayed height in pixels, after frame cropping (frame height for interlaced video).
    pub height: u16,
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices (H.264 §7.3.2.1.1).
const PROFILES_WITH_CHROMA_INFO: [u8; 12] =
    [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];

/// Parses an SPS NAL unit (header byte included, no start code).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, SpsError> {
    let header = *nal.first().ok_or(SpsError::Truncated)?;
    let nal_type = header & 0x1f;
    if nal_type != 7 {
        return Err(SpsError::NotAnSps(nal_type));
    }
    let rbsp = nal_to_rbsp(&nal[1..]);
    let mut r = BitReader::new(&rbsp);

    let profile_idc = read_u8(&mut r)?;
    let constraint_flags = read_u8(&mut r)?;
    let level_idc = read_u8(&mut r)?;
    let seq_parameter_set_id = r.read_ue()?;
    check_range("seq_parameter_set_id", seq_parameter_set_id, 31)?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma_minus8 = 0;
    let mut bit_depth_chroma_minus8 = 0;
    if PROFILES_WITH_CHROMA_INFO.contains(&profile_idc) || profile_idc == 135 {
        chroma_format_idc = r.read_ue()?;
        check_range("chroma_format_idc", chroma_format_idc, 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.read_flag()?;
        }
        bit_depth_luma_minus8 = r.read_ue()?;
        check_range("bit_depth_luma_minus8", bit_depth_luma_minus8, 6)?;
        bit_depth_chroma_minus8 = r.read_ue()?;
        check_range("bit_depth_chroma_minus8", bit_depth_chroma_minus8, 6)?;
        let _qpprime_y_zero_transform_bypass = r.read_flag()?;
        if r.read_flag()? {
            let list_count = if chroma_format_idc == 3 { 12 } else { 8 };
            for index in 0..list_count {
                if r.read_flag()? {
                    skip_scaling_list(&mut r, if index < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    let log2_max_frame_num_minus4 = r.read_ue()?;
    check_range("log2_max_frame_num_minus4", log2_max_frame_num_minus4, 12)?;
    let pic_order_cnt_type = r.read_ue()?;
    match pic_order_cnt_type {
        0 => {
            let log2_max_poc_lsb_minus4 = r.read_ue()?;
            check_range(
                "log2_max_pic_order_cnt_lsb_minus4",
                log2_max_poc_lsb_minus4,
                12,
            )?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.read_flag()?;
            let _offset_for_non_ref_pic = r.read_se()?;
            let _offset_for_top_to_bottom_field = r.read_se()?;
            let cycle = r.read_ue()?;
            check_range("num_ref_frames_in_pic_order_cnt_cycle", cycle, 255)?;
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.read_se()?;
            }
        }
        2 => {}
        other => {
            return Err(SpsError::InvalidField {
                field: "pic_order_cnt_type",
                value: other,
            });
        }
    }
    let _max_num_ref_frames = r.read_ue()?;
    let _gaps_in_frame_num_allowed = r.read_flag()?;
    let pic_width_in_mbs_minus1 = r.read_ue()?;
    let pic_height_in_map_units_minus1 = r.read_ue()?;
    let frame_mbs_only = r.read_flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.read_flag()?;
    }
    let _direct_8x8_inference = r.read_flag()?;
    let (crop_left, crop_right, crop_top, crop_bottom) = if r.read_flag()? {
        (r.read_ue()?, r.read_ue()?, r.read_ue()?, r.read_ue()?)
    } else {
        (0, 0, 0, 0)
    };

    // Crop units per H.264 §7.4.2.1.1 (equations 7-19 to 7-22).
    let frame_height_factor: i64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = if chroma_array_type == 0 {
        (1, frame_height_factor)
    } else {
        let sub_width_c = if chroma_format_idc == 3 { 1 } else { 2 };
        let sub_height_c = if chroma_format_idc == 1 { 2 } else { 1 };
        (sub_width_c, sub_height_c * frame_height_factor)
    };
    let coded_width = (i64::from(pic_width_in_mbs_minus1) + 1) * 16;
    let coded_height = (i64::from(pic_height_in_map_units_minus1) + 1) * 16 * frame_height_factor;
    let width = coded_width - crop_unit_x * (i64::from(crop_left) + i64::from(crop_right));
    let height = coded_height - crop_unit_y * (i64::from(crop_top) + i64::from(crop_bottom));
    let size_error = SpsError::InvalidPictureSize { width, height };
    let width = u16::try_from(width).map_err(|_| size_error.clone())?;
    let height = u16::try_from(height).map_err(|_| size_error.clone())?;
    if width == 0 || height == 0 {
        return Err(size_error);
    }

    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        // All four were range-checked above, so the narrowing cannot truncate.
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
        width,
        height,
    })
}

impl SpsInfo {
    /// Whether the `avcC` record must carry the chroma format and bit depth extension
    /// (ISO/IEC 14496-15 §5.3.3.1.2).
    pub fn has_avcc_extension(&self) -> bool {
        PROFILES_WITH_CHROMA_INFO.contains(&self.profile_idc)
    }
}

fn read_u8(r: &mut BitReader<'_>) -> Result<u8, SpsError> {
    // An 8-bit read always fits in u8.
    Ok(r.read_bits(8)? as u8)
}

fn check_range(field: &'static str, value: u32, max: u32) -> Result<(), SpsError> {
    if value > max {
        return Err(SpsError::InvalidField { field, value });
    }
    Ok(())
}

/// Skips a `scaling_list()` (H.264 §7.3.2.1.1.1); the values do not matter to the container,
/// but the list's length in bits depends on them.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta_scale = r.read_se()?;
            if !(-128..=127).contains(&delta_scale) {
                return Err(SpsError::InvalidField {
                    field: "delta_scale",
                    value: delta_scale as u32,
                });
            }
            next_scale = (last_scale + delta_scale + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::tests::BitWriter;

    /// x264, High profile, 1920x1080 (coded 1088, cropped by 8 lines).
    const HIGH_1080P: [u8; 27] = [
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00,
        0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
    ];
    /// x264, High 4:2:2 profile, 636x356: crop units are 2 horizontally and 1 vertically.
    const HIGH422_636X356: [u8; 27] = [
        0x67, 0x7a, 0x00, 0x1e, 0xbc, 0xd9, 0x40, 0xa0, 0x2f, 0xee, 0x37, 0x01, 0x10, 0x00, 0x00,
        0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x62, 0xd9, 0x60,
    ];
    /// x264, Constrained Baseline, 176x144, no cropping.
    const BASELINE_QCIF: [u8; 22] = [
        0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x02, 0xc4, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
        0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x92,
    ];
    /// x264, High profile, interlaced (frame_mbs_only_flag = 0) 720x576.
    const HIGH_INTERLACED_576: [u8; 24] = [
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xb4, 0x24, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x19, 0x0f, 0x8a, 0x14, 0xcb,
    ];

    #[test]
    fn high_profile_1080p_is_cropped_to_1080() {
        let info = parse_sps(&HIGH_1080P).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!((info.profile_idc, info.level_idc), (100, 40));
        assert_eq!(info.chroma_format_idc, 1);
        assert!(info.has_avcc_extension());
    }

    #[test]
    fn high422_uses_422_crop_units() {
        let info = parse_sps(&HIGH422_636X356).unwrap();
        assert_eq!((info.width, info.height), (636, 356));
        assert_eq!((info.profile_idc, info.chroma_format_idc), (122, 2));
    }

    #[test]
    fn baseline_has_default_chroma_format() {
        let info = parse_sps(&BASELINE_QCIF).unwrap();
        assert_eq!((info.width, info.height), (176, 144));
        assert_eq!(
            (info.profile_idc, info.constraint_flags, info.level_idc),
            (66, 0xc0, 11)
        );
        assert_eq!(info.chroma_format_idc, 1);
        assert!(!info.has_avcc_extension());
    }

    #[test]
    fn interlaced_height_counts_both_fields() {
        let info = parse_sps(&HIGH_INTERLACED_576).unwrap();
        assert_eq!((info.width, info.height), (720, 576));
    }

    /// Builds a High 4:4:4 SPS with explicit scaling lists, poc type 1 and odd cropping, to cover
    /// the branches the encoders at hand do not produce.
    #[test]
    fn scaling_lists_and_poc_type_1_are_skipped_correctly() {
        let mut w = BitWriter::default();
        w.bits(0x67, 8).bits(244, 8).bits(0, 8).bits(51, 8).ue(0);
        w.ue(3).bit(false).ue(2).ue(2).bit(false); // 4:4:4, 10-bit, no bypass
        w.bit(true); // seq_scaling_matrix_present_flag
        for index in 0..12 {
            let present = index % 3 != 2;
            w.bit(present);
            if present {
                let size = if index < 6 { 16 } else { 64 };
                // Ramp of deltas; the final list ends with "use default" (next_scale = 0) in
                // list 0 to exercise the early stop.
                if index == 0 {
                    w.se(-8); // next_scale = 0 → remaining entries are not coded
                } else {
                    for j in 0..size {
                        w.se(if j % 2 == 0 { 3 } else { -2 });
                    }
                }
            }
        }
        w.ue(2); // log2_max_frame_num_minus4
        w.ue(1).bit(false).se(-3).se(5).ue(3).se(1).se(-1).se(7); // poc type 1, 3-entry cycle
        w.ue(4).bit(false); // max_num_ref_frames, gaps
        w.ue(79).ue(44); // 1280 x 720 in macroblocks (45 map units)
        w.bit(true).bit(true); // frame_mbs_only, direct_8x8
        w.bit(true).ue(1).ue(3).ue(2).ue(6); // crop: 4:4:4 → units of 1 pixel
        w.bit(false); // no VUI
        let nal = w.finish();

        let info = parse_sps(&nal).unwrap();
        assert_eq!((info.width, info.height), (1280 - 4, 720 - 8));
        assert_eq!((info.chroma_format_idc, info.bit_depth_luma_minus8), (3, 2));
    }

    #[test]
    fn emulation_prevention_inside_fields_is_honoured() {
        // HIGH_1080P contains two emulation-prevention bytes; without removing them the
        // cropping values would be read from the wrong bits.
        assert!(HIGH_1080P.windows(3).any(|w| w == [0, 0, 3]));
        assert_eq!(parse_sps(&HIGH_1080P).unwrap().height, 1080);
    }

    #[test]
    fn malformed_sps_is_an_error() {
        assert_eq!(parse_sps(&[]), Err(SpsError::Truncated));
        assert_eq!(parse_sps(&[0x68, 0xeb]), Err(SpsError::NotAnSps(8)));
        // The cropping fields end in byte 11; any shorter prefix lacks required fields.
        for len in 1..11 {
            assert!(
                parse_sps(&HIGH_1080P[..len]).is_err(),
                "prefix {len} parsed"
            );
        }
        // Cropping more than the coded size.
        let mut w = BitWriter::default();
        w.bits(0x67, 8).bits(66, 8).bits(0, 8).bits(30, 8).ue(0);
        w.ue(0)
            .ue(2)
            .ue(0)
            .bit(false)
            .ue(0)
            .ue(0)
            .bit(true)
            .bit(true);
        w.bit(true).ue(0).ue(0).ue(0).ue(100).bit(false);
        assert!(matches!(
            parse_sps(&w.finish()),
            Err(SpsError::InvalidPictureSize { .. })
        ));
    }
}
