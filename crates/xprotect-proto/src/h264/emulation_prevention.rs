//! Emulation prevention (H.264 §7.4.1): inside a NAL unit the byte patterns `00 00 00`,
//! `00 00 01`, `00 00 02` and `00 00 03` never appear in the raw payload (RBSP), so that an
//! Annex-B start code can never occur inside a NAL unit. The encoder inserts an
//! `emulation_prevention_three_byte` (0x03) after every `00 00` that is followed by a byte ≤ 3;
//! the decoder removes every 0x03 that follows `00 00`.

use std::borrow::Cow;

/// The emulation-prevention byte.
const EPB: u8 = 0x03;

/// Escapes raw RBSP bytes into NAL payload bytes (without the NAL header byte).
pub fn escape(rbsp: &[u8]) -> Vec<u8> {
    // Escaping adds at most one byte per two input bytes; the common case adds none.
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    escape_into(rbsp, &mut out);
    out
}

/// Appends the escaped form of `rbsp` to `out`, so callers can build a NAL unit in one buffer.
pub fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0usize;
    for &byte in rbsp {
        if zeros >= 2 && byte <= EPB {
            out.push(EPB);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    // §7.4.1: when the RBSP ends in 0x00 (which only a cabac_zero_word, `00 00`, can cause), a
    // final 0x03 is appended, because Annex-B parsing would strip trailing zeros as padding. A
    // conforming RBSP never ends in a single zero (rbsp_trailing_bits end in a one bit), so the
    // `00 00` case is the only one, and its 0x03 is removed again by `unescape`.
    if zeros >= 2 {
        out.push(EPB);
    }
}

/// Removes emulation-prevention bytes from NAL payload bytes (without the NAL header byte).
///
/// Borrows the input when there is nothing to remove, which is the usual case for small NAL
/// units such as SEI messages.
pub fn unescape(ebsp: &[u8]) -> Cow<'_, [u8]> {
    match first_epb(ebsp) {
        None => Cow::Borrowed(ebsp),
        Some(first) => {
            let mut out = Vec::with_capacity(ebsp.len());
            out.extend_from_slice(&ebsp[..first]);
            // `first` indexes the 0x03 after two zeros; resume right after it with no zeros seen.
            unescape_tail(&ebsp[first + 1..], &mut out);
            Cow::Owned(out)
        }
    }
}

/// Appends the unescaped form of `ebsp` to `out`.
pub fn unescape_into(ebsp: &[u8], out: &mut Vec<u8>) {
    unescape_tail(ebsp, out);
}

/// Index of the first emulation-prevention byte, if any.
fn first_epb(ebsp: &[u8]) -> Option<usize> {
    let mut zeros = 0usize;
    for (i, &byte) in ebsp.iter().enumerate() {
        if zeros >= 2 && byte == EPB {
            return Some(i);
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    None
}

fn unescape_tail(ebsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0usize;
    for &byte in ebsp {
        if zeros >= 2 && byte == EPB {
            zeros = 0;
            continue;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_each_forbidden_pattern() {
        assert_eq!(escape(&[0, 0, 0]), [0, 0, 3, 0]);
        assert_eq!(escape(&[0, 0, 1]), [0, 0, 3, 1]);
        assert_eq!(escape(&[0, 0, 2]), [0, 0, 3, 2]);
        assert_eq!(escape(&[0, 0, 3]), [0, 0, 3, 3]);
        assert_eq!(escape(&[0, 0, 4]), [0, 0, 4]);
        assert_eq!(escape(&[0, 0, 0, 0, 0x80]), [0, 0, 3, 0, 0, 0x80]);
        // A cabac_zero_word at the end gets the final 0x03.
        assert_eq!(escape(&[0x80, 0, 0]), [0x80, 0, 0, 3]);
        assert_eq!(escape(&[0x80, 0, 0, 0, 0]), [0x80, 0, 0, 3, 0, 0, 3]);
        assert_eq!(escape(&[1, 2, 0x80]), [1, 2, 0x80]);
        assert!(escape(&[]).is_empty());
    }

    #[test]
    fn unescapes_and_borrows_when_clean() {
        assert_eq!(
            &*unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            &[0, 0, 1, 0, 0, 0, 3]
        );
        assert_eq!(&*unescape(&[0x80, 0, 0, 3, 0, 0, 3]), &[0x80, 0, 0, 0, 0]);
        assert!(matches!(unescape(&[0, 1, 0, 0, 4]), Cow::Borrowed(_)));
        let mut out = vec![9];
        unescape_into(&[0, 0, 3, 3], &mut out);
        assert_eq!(out, [9, 0, 0, 3]);
    }

    proptest! {
        #[test]
        fn escape_round_trips_and_hides_start_codes(rbsp in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(3u8), any::<u8>()], 0..200)) {
            let escaped = escape(&rbsp);
            // No 00 00 0x with x <= 2 survives, and the output never ends in a zero byte.
            for w in escaped.windows(3) {
                prop_assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "{escaped:?}");
            }
            prop_assert!(!escaped.ends_with(&[0, 0]));
            prop_assert_eq!(&*unescape(&escaped), &rbsp[..]);
        }
    }
}
