//! Annex-B byte streams (H.264 Annex B): NAL units separated by `00 00 01` or `00 00 00 01`
//! start codes, as written by encoders such as openh264 and stored in raw `.h264` files.

/// The 4-byte start code this crate writes.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Splits an Annex-B byte stream into its NAL units, without start codes.
///
/// Accepts 3- and 4-byte start codes. Bytes before the first start code are not a NAL unit and
/// are skipped; zero bytes before a start code (`trailing_zero_8bits`) are stripped; empty units
/// (two start codes in a row) are not yielded, so every item is non-empty.
pub fn split(stream: &[u8]) -> AnnexBNalUnits<'_> {
    let rest = match find_start_code(stream) {
        Some((_, after)) => &stream[after..],
        None => &[],
    };
    AnnexBNalUnits { rest }
}

/// Appends one NAL unit to `out` with a 4-byte start code.
pub fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(nal);
}

/// Iterator over the NAL units of an Annex-B stream; see [`split`].
#[derive(Debug, Clone)]
pub struct AnnexBNalUnits<'a> {
    /// The stream right after a start code (or empty when done).
    rest: &'a [u8],
}

impl<'a> Iterator for AnnexBNalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (unit, rest) = match find_start_code(self.rest) {
                Some((start, after)) => (&self.rest[..start], &self.rest[after..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let unit = trim_trailing_zeros(unit);
            if !unit.is_empty() {
                return Some(unit);
            }
        }
        None
    }
}

/// Finds the first `00 00 01`, returning (index of its first zero, index after the 0x01).
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0usize;
    while let Some(window) = data.get(i..i + 3) {
        // Look at the third byte first: anything above 1 rules out a start code at i, i+1 and i+2.
        match window[2] {
            1 if window[0] == 0 && window[1] == 0 => return Some((i, i + 3)),
            0 | 1 => i += 1,
            _ => i += 3,
        }
    }
    None
}

fn trim_trailing_zeros(unit: &[u8]) -> &[u8] {
    let end = unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &unit[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(stream: &[u8]) -> Vec<Vec<u8>> {
        split(stream).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn splits_mixed_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, // SPS, 4-byte start code
            0, 0, 1, 0x68, 3, // PPS, 3-byte start code
            0, 0, 0, 0, 1, 0x65, 4, 0, 0, 3, 1, // IDR with extra zero and an escaped 00 00 01
        ];
        assert_eq!(
            units(&stream),
            vec![vec![0x67, 1, 2], vec![0x68, 3], vec![0x65, 4, 0, 0, 3, 1]]
        );
    }

    #[test]
    fn skips_leading_garbage_empty_units_and_trailing_zeros() {
        assert_eq!(units(&[7, 7, 0, 0, 1, 0x41, 9, 0, 0]), vec![vec![0x41, 9]]);
        assert_eq!(
            units(&[0, 0, 1, 0, 0, 1, 0x09, 0x10]),
            vec![vec![0x09, 0x10]]
        );
        assert!(units(&[0, 0, 1]).is_empty());
        assert!(units(&[1, 2, 3, 4]).is_empty());
        assert!(units(&[]).is_empty());
    }

    #[test]
    fn push_nal_round_trips_through_split() {
        let mut out = Vec::new();
        push_nal(&mut out, &[0x67, 0x42]);
        push_nal(&mut out, &[0x65, 0x88, 0x80]);
        assert_eq!(units(&out), vec![vec![0x67, 0x42], vec![0x65, 0x88, 0x80]]);
    }
}
