//! ISO BMFF box writing: a size back-patching helper plus one function per box, split into the
//! init segment ([`init`]) and the media fragments ([`fragment`]).

pub(crate) mod fragment;
pub(crate) mod init;

/// Writes a box: reserves the 32-bit size, lets `content` append the payload, then patches the
/// size in.
///
/// Every box this crate builds is far below 4 GiB: the muxer caps a fragment's media data at
/// [`crate::muxer::MAX_FRAGMENT_PAYLOAD_BYTES`] and its sample count, so a 32-bit size suffices.
pub(crate) fn write_box(buf: &mut Vec<u8>, fourcc: [u8; 4], content: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(&fourcc);
    content(buf);
    let size = box_size(buf.len() - start);
    patch_u32(buf, start, size);
}

/// Writes a full box (a box with a version byte and 24 bits of flags).
pub(crate) fn write_full_box(
    buf: &mut Vec<u8>,
    fourcc: [u8; 4],
    version: u8,
    flags: u32,
    content: impl FnOnce(&mut Vec<u8>),
) {
    write_box(buf, fourcc, |buf| {
        buf.push(version);
        buf.extend_from_slice(&flags.to_be_bytes()[1..]);
        content(buf);
    });
}

/// Converts a box length to its 32-bit size field.
pub(crate) fn box_size(len: usize) -> u32 {
    // The muxer's fragment limits keep every box well below 4 GiB (see `write_box`).
    u32::try_from(len).expect("box larger than 4 GiB despite the muxer's fragment limits")
}

/// Overwrites four bytes at `position` with a big-endian `u32`.
pub(crate) fn patch_u32(buf: &mut [u8], position: usize, value: u32) {
    buf[position..position + 4].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_u16(buf: &mut Vec<u8>, value: u16) {
    buf.extend_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_u32(buf: &mut Vec<u8>, value: u32) {
    buf.extend_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_u64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(&value.to_be_bytes());
}

pub(crate) fn put_zeros(buf: &mut Vec<u8>, count: usize) {
    buf.resize(buf.len() + count, 0);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Splits a buffer of concatenated boxes into `(fourcc, payload)` pairs, asserting sizes
    /// add up exactly.
    pub(crate) fn children(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            assert!(size >= 8 && size <= data.len(), "bad box size {size}");
            out.push((data[4..8].try_into().unwrap(), &data[8..size]));
            data = &data[size..];
        }
        out
    }

    /// Returns the payload of the only box in `data`, asserting its type.
    pub(crate) fn single(data: &[u8], fourcc: &[u8; 4]) -> Vec<u8> {
        let boxes = children(data);
        assert_eq!(boxes.len(), 1);
        assert_eq!(&boxes[0].0, fourcc);
        boxes[0].1.to_vec()
    }

    #[test]
    fn sizes_are_back_patched_for_nested_boxes() {
        let mut buf = vec![0xaa];
        write_box(&mut buf, *b"outr", |buf| {
            write_full_box(buf, *b"innr", 1, 0x020304, |buf| put_u16(buf, 7));
        });
        assert_eq!(
            buf,
            [
                0xaa, 0, 0, 0, 22, b'o', b'u', b't', b'r', 0, 0, 0, 14, b'i', b'n', b'n', b'r', 1,
                2, 3, 4, 0, 7
            ]
        );
    }
}
