//! A machine-readable timecode strip along the bottom of every emulator picture.
//!
//! The SEI [`FrameStamp`](xprotect_proto::h264::sei::FrameStamp) carries a frame's recording time
//! for anyone who sees the bitstream; a browser only sees decoded pixels. This strip puts the same
//! time into the picture itself, so a test can grab a canvas of the `<video>` element and read
//! which recording time is on screen, and compare it with what a page displays.
//!
//! # Layout
//!
//! The strip is a row of [`CELLS`] equally wide cells across the full picture width, at the very
//! bottom of the picture:
//!
//! - **Columns.** Cell `i` (0-based, left to right) covers the pixel columns
//!   `floor(i·W/60) .. floor((i+1)·W/60)` of a `W`-pixel-wide picture.
//! - **Rows.** The strip covers the bottom `max(round(H/24), 8)` rows of an `H`-row picture
//!   (all of them if `H < 8`). A reader samples only the band `H − 0.75·H/24 .. H − 0.25·H/24`,
//!   which lies inside the strip at any uniform scale.
//! - **Cells.** Each cell is one flat block: white (luma 235) for a 1 bit, black (luma 16) for a
//!   0 bit, neutral chroma (so RGB comes out grey). At 640x360 a cell is 10–11 by 15
//!   pixels, at 1280x720 21–22 by 30.
//!
//! | cells   | content |
//! |---------|---------|
//! | 0–3     | start marker `1 0 1 0` |
//! | 4–47    | recording time, Unix milliseconds (UTC), 44 bits, most significant first |
//! | 48–55   | CRC-8 (polynomial `0x07`, initial value 0, no reflection, no final XOR) of the time as 6 big-endian bytes (its 48-bit form, top 4 bits zero) |
//! | 56–59   | end marker `0 1 1 0` |
//!
//! 44 bits of milliseconds reach into the year 2527; times outside `0 ..= 2^44 − 1` get an
//! all-black strip, which no reader accepts.
//!
//! # Reading
//!
//! A reader averages the middle half (horizontally) of each cell over the sampling band. The
//! marker cells calibrate the threshold: it is halfway between the mean of the marker's white
//! cells and that of its black cells (mid-grey whatever the video range), and those two must be
//! at least [`MIN_CONTRAST`] apart. Then every marker cell must read as its marker bit and the
//! CRC must match, or the reader reports nothing. Because every position is relative to the
//! picture size, a picture scaled uniformly (by a browser, or into a smaller canvas) reads the
//! same; blocks of 8 pixels and more survive H.264 quantisation at the emulator's bitrates.
//! Pictures narrower than [`MIN_READABLE_WIDTH`] (two pixels per cell) are not read.

use std::ops::Range;

/// Cells across the strip.
pub const CELLS: usize = 60;
/// Bits of recording time in the strip.
pub const TIME_BITS: usize = 44;
/// The largest recording time the strip can carry, Unix ms.
pub const MAX_TIMECODE_MS: i64 = (1 << TIME_BITS) - 1;
/// Luma of a 1 cell.
pub const WHITE_LUMA: u8 = 235;
/// Luma of a 0 cell.
pub const BLACK_LUMA: u8 = 16;
/// Minimum difference between the marker's white and black means for a strip to be read.
pub const MIN_CONTRAST: u32 = 48;

/// Narrower pictures carry a strip but cannot be read: below two pixels per cell, sampling a
/// cell's middle can land on its neighbour.
pub const MIN_READABLE_WIDTH: usize = 2 * CELLS;

/// The strip's nominal height as a fraction (1/n) of the picture height.
const HEIGHT_DIVISOR: usize = 24;
/// The strip is never thinner than this many rows (when the picture has them).
const MIN_STRIP_ROWS: usize = 8;
const START_MARKER: [bool; 4] = [true, false, true, false];
const END_MARKER: [bool; 4] = [false, true, true, false];
const TIME_CELLS: Range<usize> = 4..4 + TIME_BITS;
const CRC_CELLS: Range<usize> = TIME_CELLS.end..TIME_CELLS.end + 8;
const END_CELLS: Range<usize> = CRC_CELLS.end..CRC_CELLS.end + 4;
const CRC8_POLYNOMIAL: u8 = 0x07;

// The table in the module documentation and the constants above describe the same layout.
const _: () = assert!(END_CELLS.end == CELLS);

/// The pixel rows the strip covers in a picture `height` rows high (the bottom rows).
pub fn strip_rows(height: usize) -> Range<usize> {
    let rows = ((height + HEIGHT_DIVISOR / 2) / HEIGHT_DIVISOR)
        .max(MIN_STRIP_ROWS)
        .min(height);
    height - rows..height
}

/// The cell values (white = `true`) that encode `recording_unix_ms`, or `None` when the time is
/// outside `0 ..= MAX_TIMECODE_MS`.
pub fn encode_cells(recording_unix_ms: i64) -> Option<[bool; CELLS]> {
    if !(0..=MAX_TIMECODE_MS).contains(&recording_unix_ms) {
        return None;
    }
    // Range-checked just above: the value is non-negative and fits 44 bits.
    let value = recording_unix_ms as u64;
    let mut cells = [false; CELLS];
    cells[..START_MARKER.len()].copy_from_slice(&START_MARKER);
    for (k, cell) in cells[TIME_CELLS].iter_mut().enumerate() {
        *cell = value >> (TIME_BITS - 1 - k) & 1 == 1;
    }
    let crc = crc8(value);
    for (k, cell) in cells[CRC_CELLS].iter_mut().enumerate() {
        *cell = crc >> (7 - k) & 1 == 1;
    }
    cells[END_CELLS].copy_from_slice(&END_MARKER);
    Some(cells)
}

/// Draws the strip for `recording_unix_ms` into a luma plane (`stride` bytes per row). A time
/// the strip cannot carry draws an all-black strip. The caller keeps the chroma under
/// [`strip_rows`] neutral. Returns whether the time was drawn.
pub fn draw_timecode(
    luma: &mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    recording_unix_ms: i64,
) -> bool {
    let cells = encode_cells(recording_unix_ms);
    let rows = strip_rows(height);
    for row in rows {
        let Some(line) = luma
            .get_mut(row * stride..)
            .and_then(|rest| rest.get_mut(..width))
        else {
            break;
        };
        for i in 0..CELLS {
            let on = cells.is_some_and(|c| c[i]);
            if let Some(px) = line.get_mut(cell_columns(i, width)) {
                px.fill(if on { WHITE_LUMA } else { BLACK_LUMA });
            }
        }
    }
    cells.is_some()
}

/// Reads the recording time (Unix ms) from the strip of a luma plane (`stride` bytes per row,
/// at least `width`). `None` when the picture is too small, the buffer too short, or there is
/// no valid strip.
pub fn decode_timecode_from_luma(
    luma: &[u8],
    width: usize,
    height: usize,
    stride: usize,
) -> Option<i64> {
    let needed = stride
        .checked_mul(height.checked_sub(1)?)?
        .checked_add(width)?;
    if stride < width || luma.len() < needed {
        return None;
    }
    decode_with(width, height, |x, y| {
        luma.get(y * stride + x).copied().map(u32::from)
    })
}

/// Reads the recording time (Unix ms) from the strip of tightly packed RGBA pixels (a canvas
/// `getImageData`, or a decoder's RGBA output): luma is taken as `(77·R + 150·G + 29·B) / 256`.
pub fn decode_timecode_from_rgba(rgba: &[u8], width: usize, height: usize) -> Option<i64> {
    let needed = width.checked_mul(height)?.checked_mul(4)?;
    if rgba.len() < needed {
        return None;
    }
    decode_with(width, height, |x, y| {
        let i = (y * width + x) * 4;
        let px = rgba.get(i..i + 3)?;
        Some((77 * u32::from(px[0]) + 150 * u32::from(px[1]) + 29 * u32::from(px[2])) >> 8)
    })
}

/// The decoder over any pixel source: `luma_at(x, y)` for `x < width`, `y < height`.
fn decode_with(
    width: usize,
    height: usize,
    luma_at: impl Fn(usize, usize) -> Option<u32>,
) -> Option<i64> {
    // A cell's middle half is only a pixel of its own from two pixels per cell on.
    if width < MIN_READABLE_WIDTH || height < 4 {
        return None;
    }
    let band = sampling_band(height);
    let mut levels = [0u32; CELLS];
    for (i, level) in levels.iter_mut().enumerate() {
        let columns = sampling_columns(i, width);
        let mut sum = 0u32;
        let mut count = 0u32;
        for y in band.clone() {
            for x in columns.clone() {
                sum += luma_at(x, y)?;
                count += 1;
            }
        }
        *level = sum.checked_div(count)?;
    }

    let markers = START_MARKER
        .iter()
        .zip(&levels[..START_MARKER.len()])
        .chain(END_MARKER.iter().zip(&levels[END_CELLS]));
    let (mut white, mut black) = ((0u32, 0u32), (0u32, 0u32));
    for (&bit, &level) in markers.clone() {
        let slot = if bit { &mut white } else { &mut black };
        slot.0 += level;
        slot.1 += 1;
    }
    let (white, black) = (white.0 / white.1.max(1), black.0 / black.1.max(1));
    if white < black + MIN_CONTRAST {
        return None;
    }
    let threshold = (white + black) / 2;
    let bit = |level: u32| level > threshold;
    if markers
        .into_iter()
        .any(|(&want, &level)| bit(level) != want)
    {
        return None;
    }

    let value = levels[TIME_CELLS]
        .iter()
        .fold(0u64, |v, &level| v << 1 | u64::from(bit(level)));
    let crc = levels[CRC_CELLS]
        .iter()
        .fold(0u8, |v, &level| v << 1 | u8::from(bit(level)));
    if crc != crc8(value) {
        return None;
    }
    // 44 bits always fit an i64.
    i64::try_from(value).ok()
}

/// Pixel columns of cell `i` in a picture `width` wide.
fn cell_columns(i: usize, width: usize) -> Range<usize> {
    i * width / CELLS..(i + 1) * width / CELLS
}

/// The middle half of cell `i`, at least one column.
fn sampling_columns(i: usize, width: usize) -> Range<usize> {
    let start = (4 * i + 1) * width / (4 * CELLS);
    let end = ((4 * i + 3) * width / (4 * CELLS)).max(start + 1);
    start..end.min(width)
}

/// The rows a reader averages: the middle half of the strip's nominal height, at least one row.
fn sampling_band(height: usize) -> Range<usize> {
    let nominal = 4 * HEIGHT_DIVISOR;
    let start = height - (3 * height).div_ceil(nominal);
    let end = (height - height / nominal).max(start + 1);
    start..end.min(height)
}

/// CRC-8 (polynomial 0x07) of the value's low 48 bits as six big-endian bytes.
fn crc8(value: u64) -> u8 {
    let mut crc = 0u8;
    for &byte in &value.to_be_bytes()[2..] {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                crc << 1 ^ CRC8_POLYNOMIAL
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{CameraConfig, CameraEncoder, FrameRenderer, split_annex_b};
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;
    use uuid::Uuid;

    /// 2025-01-15T12:04:54.123Z.
    const T: i64 = 1_736_942_694_123;

    fn strip_only(width: usize, height: usize, ms: i64) -> Vec<u8> {
        let mut luma = vec![128u8; width * height];
        assert!(draw_timecode(&mut luma, width, height, width, ms));
        luma
    }

    /// Nearest-neighbour resampling of a luma plane by `num/den`.
    fn scale(luma: &[u8], w: usize, h: usize, num: usize, den: usize) -> (Vec<u8>, usize, usize) {
        let (sw, sh) = (w * num / den, h * num / den);
        let mut out = vec![0; sw * sh];
        for y in 0..sh {
            for x in 0..sw {
                out[y * sw + x] = luma[(y * den / num) * w + x * den / num];
            }
        }
        (out, sw, sh)
    }

    #[test]
    fn crc8_matches_the_reference_check_value() {
        // CRC-8 (poly 0x07) of ASCII "123456789" is 0xF4; ours takes six bytes, so check the
        // polynomial on a value whose bytes are known: 0x31..0x36 ("123456").
        let value = u64::from_be_bytes([0, 0, b'1', b'2', b'3', b'4', b'5', b'6']);
        let mut reference = 0u8;
        for &b in b"123456" {
            reference ^= b;
            for _ in 0..8 {
                reference = if reference & 0x80 != 0 {
                    (reference << 1) ^ 0x07
                } else {
                    reference << 1
                };
            }
        }
        assert_eq!(crc8(value), reference);
    }

    #[test]
    fn render_then_decode_round_trips() {
        for ms in [0, 1, T, MAX_TIMECODE_MS, 1_000_000_000_000] {
            for (w, h) in [
                (640, 360),
                (1280, 720),
                (1920, 1080),
                (320, 180),
                (120, 8),
                (121, 9),
            ] {
                let luma = strip_only(w, h, ms);
                assert_eq!(
                    decode_timecode_from_luma(&luma, w, h, w),
                    Some(ms),
                    "{ms} at {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn the_renderer_draws_a_readable_strip() {
        let mut renderer = FrameRenderer::new(640, 360);
        let (y, _, _) = renderer.render(T, 7, "Front Door");
        assert_eq!(decode_timecode_from_luma(y, 640, 360, 640), Some(T));
    }

    #[test]
    fn strides_wider_than_the_picture_are_honoured() {
        let (w, h, stride) = (640, 360, 704);
        let mut luma = vec![90u8; stride * h];
        assert!(draw_timecode(&mut luma, w, h, stride, T));
        assert_eq!(decode_timecode_from_luma(&luma, w, h, stride), Some(T));
        assert_eq!(
            decode_timecode_from_luma(&luma, w, h, w),
            None,
            "wrong stride"
        );
    }

    #[test]
    fn uniformly_scaled_pictures_still_decode() {
        let luma = strip_only(640, 360, T);
        for (num, den) in [(3, 2), (1, 2), (2, 1), (3, 4)] {
            let (scaled, w, h) = scale(&luma, 640, 360, num, den);
            assert_eq!(
                decode_timecode_from_luma(&scaled, w, h, w),
                Some(T),
                "x{num}/{den} -> {w}x{h}"
            );
        }
    }

    #[test]
    fn rgba_of_a_full_range_picture_decodes() {
        // What a browser canvas holds: limited-range luma expanded to full-range grey RGB.
        let luma = strip_only(640, 360, T);
        let rgba: Vec<u8> = luma
            .iter()
            .flat_map(|&y| {
                let v = ((i32::from(y) - 16) * 255 / 219).clamp(0, 255) as u8;
                [v, v, v, 255]
            })
            .collect();
        assert_eq!(decode_timecode_from_rgba(&rgba, 640, 360), Some(T));
        assert_eq!(decode_timecode_from_rgba(&rgba[..100], 640, 360), None);
    }

    #[test]
    fn corrupted_strips_are_rejected() {
        let (w, h) = (640, 360);
        let cells = encode_cells(T).unwrap();
        let repaint = |flip: usize| {
            let mut luma = strip_only(w, h, T);
            for row in strip_rows(h) {
                let value = if cells[flip] { BLACK_LUMA } else { WHITE_LUMA };
                luma[row * w..][cell_columns(flip, w)].fill(value);
            }
            luma
        };
        // Any single flipped check bit, time bit or marker cell.
        for flip in CRC_CELLS.chain([0, 3, 4, 20, 47, 56, 59]) {
            assert_eq!(
                decode_timecode_from_luma(&repaint(flip), w, h, w),
                None,
                "cell {flip} flipped"
            );
        }
        // No strip at all, a flat picture, a too-short buffer, a mirrored strip.
        assert_eq!(decode_timecode_from_luma(&vec![128; w * h], w, h, w), None);
        assert_eq!(decode_timecode_from_luma(&[0; 10], w, h, w), None);
        let luma = strip_only(w, h, T);
        let mirrored: Vec<u8> = luma
            .chunks_exact(w)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        assert_eq!(decode_timecode_from_luma(&mirrored, w, h, w), None);
    }

    #[test]
    fn out_of_range_times_draw_an_unreadable_strip() {
        for ms in [-1, MAX_TIMECODE_MS + 1, i64::MAX, i64::MIN] {
            let mut luma = vec![128u8; 640 * 360];
            assert!(!draw_timecode(&mut luma, 640, 360, 640, ms));
            assert_eq!(decode_timecode_from_luma(&luma, 640, 360, 640), None);
        }
        // Degenerate sizes never panic.
        let mut tiny = vec![0u8; 4];
        draw_timecode(&mut tiny, 2, 2, 2, T);
        assert_eq!(decode_timecode_from_luma(&tiny, 2, 2, 2), None);
        assert_eq!(decode_timecode_from_luma(&[], 0, 0, 0), None);
    }

    /// The strip survives the emulator's real encoder and openh264's decoder, at both stream
    /// sizes, over a GOP of changing times.
    #[test]
    fn survives_h264_encoding() {
        for (w, h) in [(640u32, 360u32), (1280, 720)] {
            let camera = CameraConfig::new(Uuid::nil(), "Front Door", w, h);
            let mut renderer = FrameRenderer::new(w, h);
            let (rw, rh) = (renderer.width(), renderer.height());
            let mut encoder = CameraEncoder::new(&camera, rw, rh).unwrap();
            let mut decoder = Decoder::new().unwrap();
            let mut decoded = 0;
            for frame in 0..30u64 {
                let ms = T + frame as i64 * 40;
                let planes = renderer.render(ms, frame, &camera.name);
                let encoded = encoder.encode(planes, ms, frame, frame == 0).unwrap();
                // Decode NAL by NAL, as a depacketiser hands them over.
                let mut picture = None;
                for nal in split_annex_b(&encoded.annex_b) {
                    let mut packet = vec![0, 0, 0, 1];
                    packet.extend_from_slice(nal);
                    if let Some(yuv) = decoder.decode(&packet).unwrap() {
                        let (dw, dh) = yuv.dimensions();
                        let stride = yuv.strides().0;
                        picture = Some(decode_timecode_from_luma(yuv.y(), dw, dh, stride));
                        let mut rgba = vec![0; dw * dh * 4];
                        yuv.write_rgba8(&mut rgba);
                        assert_eq!(decode_timecode_from_rgba(&rgba, dw, dh), Some(ms));
                        assert_eq!((dw, dh), (rw, rh));
                    }
                }
                assert_eq!(picture, Some(Some(ms)), "{w}x{h} frame {frame}");
                decoded += 1;
            }
            assert_eq!(decoded, 30);
        }
    }
}
