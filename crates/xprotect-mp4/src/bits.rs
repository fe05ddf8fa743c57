//! Bit-level reading of H.264 RBSP data: emulation-prevention removal and exp-Golomb codes.

use crate::sps::SpsError;

/// Strips emulation-prevention bytes (`00 00 03` → `00 00`) from a NAL unit payload, giving the
/// raw byte sequence payload (RBSP) that the syntax elements are coded in.
pub(crate) fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &byte in nal {
        if zeros >= 2 && byte == 0x03 {
            // The 0x03 only exists to break a start-code look-alike; it is not payload.
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        rbsp.push(byte);
    }
    rbsp
}

/// MSB-first bit reader over an RBSP.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    position: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool, SpsError> {
        let byte = self
            .data
            .get(self.position / 8)
            .ok_or(SpsError::Truncated)?;
        let bit = (byte >> (7 - self.position % 8)) & 1;
        self.position += 1;
        Ok(bit == 1)
    }

    pub(crate) fn read_flag(&mut self) -> Result<bool, SpsError> {
        self.read_bit()
    }

    /// Reads `count` (at most 32) bits as an unsigned integer.
    pub(crate) fn read_bits(&mut self, count: u32) -> Result<u32, SpsError> {
        debug_assert!(
            count <= 32,
            "callers read fixed-width fields of at most 32 bits"
        );
        let mut value = 0u64;
        for _ in 0..count {
            value = (value << 1) | u64::from(self.read_bit()?);
        }
        // At most 32 bits were shifted in, so the value fits.
        u32::try_from(value).map_err(|_| SpsError::ExpGolombOverflow)
    }

    /// Reads an unsigned exp-Golomb code, `ue(v)`.
    pub(crate) fn read_ue(&mut self) -> Result<u32, SpsError> {
        let mut leading_zeros = 0u32;
        while !self.read_bit()? {
            leading_zeros += 1;
            // 2^32 - 1 is the largest value a conforming ue(v) may carry.
            if leading_zeros > 31 {
                return Err(SpsError::ExpGolombOverflow);
            }
        }
        let suffix = u64::from(self.read_bits(leading_zeros)?);
        let value = (1u64 << leading_zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| SpsError::ExpGolombOverflow)
    }

    /// Reads a signed exp-Golomb code, `se(v)`.
    pub(crate) fn read_se(&mut self) -> Result<i32, SpsError> {
        let code = i64::from(self.read_ue()?);
        // Mapping 1, 2, 3, 4 … → 1, -1, 2, -2 …
        let magnitude = (code + 1) / 2;
        let value = if code % 2 == 1 { magnitude } else { -magnitude };
        i32::try_from(value).map_err(|_| SpsError::ExpGolombOverflow)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test-only MSB-first writer, used to build bitstreams with chosen syntax element values.
    #[derive(Default)]
    pub(crate) struct BitWriter {
        bytes: Vec<u8>,
        bit_count: usize,
    }

    impl BitWriter {
        pub(crate) fn bit(&mut self, bit: bool) -> &mut Self {
            if self.bit_count.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if bit {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 1 << (7 - self.bit_count % 8);
            }
            self.bit_count += 1;
            self
        }

        pub(crate) fn bits(&mut self, value: u32, count: u32) -> &mut Self {
            for i in (0..count).rev() {
                self.bit((value >> i) & 1 == 1);
            }
            self
        }

        pub(crate) fn ue(&mut self, value: u32) -> &mut Self {
            let code = u64::from(value) + 1;
            let length = 64 - code.leading_zeros();
            for _ in 0..length - 1 {
                self.bit(false);
            }
            for i in (0..length).rev() {
                self.bit((code >> i) & 1 == 1);
            }
            self
        }

        pub(crate) fn se(&mut self, value: i32) -> &mut Self {
            let code = if value > 0 {
                2 * value as u32 - 1
            } else {
                2 * value.unsigned_abs()
            };
            self.ue(code)
        }

        /// Adds the RBSP stop bit and alignment.
        pub(crate) fn finish(&mut self) -> Vec<u8> {
            self.bit(true);
            while !self.bit_count.is_multiple_of(8) {
                self.bit(false);
            }
            self.bytes.clone()
        }
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            nal_to_rbsp(&[0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00]),
            [0x67, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]
        );
        // A 0x03 that does not follow two zeros is payload.
        assert_eq!(nal_to_rbsp(&[0x00, 0x03, 0x03]), [0x00, 0x03, 0x03]);
    }

    #[test]
    fn exp_golomb_round_trip() {
        let values = [0u32, 1, 2, 3, 7, 8, 255, 1 << 20, u32::MAX - 1];
        let signed = [0i32, 1, -1, 2, -2, 127, -128, i32::MAX];
        let mut writer = BitWriter::default();
        for &v in &values {
            writer.ue(v);
        }
        for &v in &signed {
            writer.se(v);
        }
        let data = writer.finish();
        let mut reader = BitReader::new(&data);
        for &v in &values {
            assert_eq!(reader.read_ue().unwrap(), v);
        }
        for &v in &signed {
            assert_eq!(reader.read_se().unwrap(), v);
        }
    }

    #[test]
    fn overlong_exp_golomb_is_an_error_not_a_panic() {
        let data = [0u8; 8];
        assert_eq!(
            BitReader::new(&data).read_ue(),
            Err(SpsError::ExpGolombOverflow)
        );
        assert_eq!(
            BitReader::new(&[0x00, 0x01]).read_ue(),
            Err(SpsError::Truncated)
        );
    }
}
