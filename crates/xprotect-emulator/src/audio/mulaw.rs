//! G.711 µ-law (PCMU): 16-bit linear PCM to 8-bit codes and back, as ITU-T G.711 defines them.
//!
//! The encoder is the classic segment search on the biased magnitude; the decoder is its exact
//! inverse on the segment mid-points. Both are total functions: every `i16` encodes and every
//! byte decodes.

/// Added to the magnitude before the segment search, so that segment 0 starts at 0.
const BIAS: i32 = 0x84;
/// Largest magnitude that still fits segment 7 once biased (32635 + 132 = 32767).
const CLIP: i32 = 32_635;

/// Encodes one linear sample as a µ-law code.
pub fn encode_sample(sample: i16) -> u8 {
    let value = i32::from(sample);
    let (sign, magnitude) = if value < 0 {
        (0x80, -value)
    } else {
        (0x00, value)
    };
    let biased = magnitude.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7 (biased ≥ 0x84 has bit 7).
    let highest_bit = 31 - biased.leading_zeros() as i32;
    let exponent = (highest_bit - 7).clamp(0, 7);
    let mantissa = (biased >> (exponent + 3)) & 0x0F;
    // Codes are sent inverted (G.711 §3: "all bits inverted").
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes one µ-law code to linear PCM.
pub fn decode_sample(code: u8) -> i16 {
    let code = !code;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    // |magnitude| ≤ 32124, so the cast cannot truncate.
    let magnitude = magnitude as i16;
    if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Encodes `samples` into `out` (cleared first), one byte per sample.
pub fn encode(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(samples.iter().map(|s| encode_sample(*s)));
}

/// Decodes µ-law `codes` to linear PCM.
pub fn decode(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|c| decode_sample(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code → value pairs from the G.711 decoding table (segment ends and mid-points).
    const TABLE: [(u8, i16); 12] = [
        (0x00, -32124),
        (0x0F, -16764),
        (0x10, -15996),
        (0x70, -120),
        (0x7E, -8),
        (0x7F, 0),
        (0x80, 32124),
        (0x8F, 16764),
        (0xEF, 132),
        (0xF0, 120),
        (0xFE, 8),
        (0xFF, 0),
    ];

    #[test]
    fn decodes_the_g711_table() {
        for (code, value) in TABLE {
            assert_eq!(decode_sample(code), value, "code {code:#04x}");
        }
    }

    #[test]
    fn encodes_the_g711_table_values_to_their_codes() {
        for (code, value) in TABLE {
            // 0 encodes as positive zero (0xFF); 0x7F is negative zero and has no linear twin.
            if code == 0x7F {
                continue;
            }
            assert_eq!(encode_sample(value), code, "value {value}");
        }
        assert_eq!(encode_sample(i16::MAX), 0x80);
        assert_eq!(encode_sample(i16::MIN), 0x00);
        assert_eq!(encode_sample(-1), 0x7F);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=u8::MAX {
            let back = encode_sample(decode_sample(code));
            // Negative zero re-encodes as positive zero; every other code is exact.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "code {code:#04x}");
        }
    }

    #[test]
    fn round_trip_error_is_within_half_a_quantisation_step() {
        for value in (i16::MIN..=i16::MAX).step_by(7) {
            let back = i32::from(decode_sample(encode_sample(value)));
            let v = i32::from(value).clamp(-CLIP, CLIP);
            // Step of the segment v falls in: 2^(exponent + 3); the decoder returns mid-points.
            let step = 1 << (((v.abs() + BIAS) as u32).ilog2().max(7) - 7 + 3);
            assert!((back - v).abs() <= step / 2 + 1, "{value} → {back}");
        }
    }

    #[test]
    fn buffers_encode_and_decode() {
        let mut out = Vec::new();
        encode(&[0, 32124, -32124], &mut out);
        assert_eq!(out, [0xFF, 0x80, 0x00]);
        assert_eq!(decode(&out), [0, 32124, -32124]);
    }
}
