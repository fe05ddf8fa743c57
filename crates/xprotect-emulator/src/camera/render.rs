//! Draws one synthetic camera picture into an I420 buffer.
//!
//! The picture is made to be checked by eye in a screenshot: the recording time in large digits
//! (the time of day at least a tenth of the frame height), the date, the camera name and the frame
//! number, over a background with a bar that moves every frame so the encoder has real motion to
//! code (a static picture would encode to almost nothing and hide bitrate problems).

use time::OffsetDateTime;

use super::font::{GLYPH_HEIGHT, GLYPH_SPACING, GLYPH_WIDTH, glyph, text_width};

/// Luma of the text.
const TEXT_LUMA: u8 = 235;
/// Luma of the box behind the text, dark so the text reads over any bar position.
const TEXT_BOX_LUMA: u8 = 24;
/// Width of the moving bar as a fraction (1/n) of the frame width.
const BAR_WIDTH_DIVISOR: usize = 8;
/// Pixels the bar moves per frame.
const BAR_STEP: usize = 6;

/// Renders the overlay for one camera; reuses its buffer from frame to frame.
#[derive(Debug)]
pub struct FrameRenderer {
    width: usize,
    height: usize,
    /// Y plane, then U, then V (I420).
    buf: Vec<u8>,
}

impl FrameRenderer {
    /// A renderer for `width` x `height` pictures. Both are rounded down to even numbers (I420
    /// needs them even) and up to at least 16.
    pub fn new(width: u32, height: u32) -> Self {
        let width = (width.max(16) as usize) & !1;
        let height = (height.max(16) as usize) & !1;
        Self {
            width,
            height,
            buf: vec![0; width * height * 3 / 2],
        }
    }

    /// Picture width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Draws the picture for `frame_number` captured at `recording_unix_ms` and returns the
    /// (Y, U, V) planes, each tightly packed (stride = plane width).
    pub fn render(
        &mut self,
        recording_unix_ms: i64,
        frame_number: u64,
        camera_name: &str,
    ) -> (&[u8], &[u8], &[u8]) {
        self.draw_background(frame_number);

        let (date, time_of_day) = format_recording_time(recording_unix_ms);
        let margin = (self.height / 24).max(2);

        // Time of day: the big line. At least a tenth of the height, but never wider than the frame.
        let big_text_width = text_width(&time_of_day).max(1);
        let big_scale = (self.height / 10).div_ceil(GLYPH_HEIGHT);
        let big_scale = big_scale
            .min(self.width.saturating_sub(2 * margin) / big_text_width)
            .max(1);
        let small_scale = (big_scale / 2).max(1);

        let mut y = margin;
        self.draw_text_boxed(margin, y, small_scale, camera_name);
        y += (GLYPH_HEIGHT + 3) * small_scale;
        self.draw_text_boxed(margin, y, small_scale, &date);
        y += (GLYPH_HEIGHT + 3) * small_scale;
        self.draw_text_boxed(margin, y, big_scale, &time_of_day);
        y += (GLYPH_HEIGHT + 3) * big_scale;
        self.draw_text_boxed(margin, y, small_scale, &format!("frame {frame_number}"));

        let (y_plane, chroma) = self.buf.split_at(self.width * self.height);
        let (u_plane, v_plane) = chroma.split_at(chroma.len() / 2);
        (y_plane, u_plane, v_plane)
    }

    /// A soft vertical gradient plus a bright bar sweeping left to right, tinted in chroma.
    fn draw_background(&mut self, frame_number: u64) {
        let (w, h) = (self.width, self.height);
        let bar_width = (w / BAR_WIDTH_DIVISOR).max(2);
        let travel = w + bar_width;
        // Frame numbers only grow; the modulo keeps the product small.
        let bar_left = ((frame_number % travel as u64) as usize * BAR_STEP) % travel;
        let bar = bar_left.saturating_sub(bar_width)..bar_left;

        let (y_plane, chroma) = self.buf.split_at_mut(w * h);
        for (row, line) in y_plane.chunks_exact_mut(w).enumerate() {
            let base = 60 + (row * 60 / h) as u8;
            line.fill(base);
            if let Some(bar_pixels) = line.get_mut(bar.clone()) {
                bar_pixels.fill(180);
            }
        }

        let (cw, ch) = (w / 2, h / 2);
        let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
        let chroma_bar = bar.start / 2..bar.end / 2;
        for (u_line, v_line) in u_plane
            .chunks_exact_mut(cw)
            .zip(v_plane.chunks_exact_mut(cw))
        {
            u_line.fill(128);
            v_line.fill(128);
            if let Some(px) = u_line.get_mut(chroma_bar.clone()) {
                px.fill(90);
            }
            if let Some(px) = v_line.get_mut(chroma_bar.clone()) {
                px.fill(160);
            }
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`) on a dark box; clips at the frame edge.
    fn draw_text_boxed(&mut self, x: usize, y: usize, scale: usize, text: &str) {
        let pad = scale;
        let box_w = text_width(text) * scale + 2 * pad;
        let box_h = GLYPH_HEIGHT * scale + 2 * pad;
        self.fill_luma(x, y, box_w, box_h, TEXT_BOX_LUMA);

        let mut pen_x = x + pad;
        for c in text.chars() {
            let rows = glyph(c);
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..GLYPH_WIDTH {
                    if bits & (0x10 >> gx) != 0 {
                        let px = pen_x + gx * scale;
                        let py = y + pad + gy * scale;
                        self.fill_luma(px, py, scale, scale, TEXT_LUMA);
                    }
                }
            }
            pen_x += (GLYPH_WIDTH + GLYPH_SPACING) * scale;
        }
    }

    fn fill_luma(&mut self, x: usize, y: usize, w: usize, h: usize, luma: u8) {
        let x_end = (x + w).min(self.width);
        let y_end = (y + h).min(self.height);
        if x >= x_end {
            return;
        }
        for row in y..y_end {
            let start = row * self.width;
            if let Some(px) = self.buf.get_mut(start + x..start + x_end) {
                px.fill(luma);
            }
        }
    }
}

/// `("2025-01-15", "12:04:54.120")` in UTC; an out-of-range time prints as the epoch.
pub fn format_recording_time(recording_unix_ms: i64) -> (String, String) {
    let nanos = i128::from(recording_unix_ms) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let date = format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
    let time_of_day = format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    (date, time_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        // 2025-01-15T12:04:54.120Z
        let (date, tod) = format_recording_time(1_736_942_694_120);
        assert_eq!(date, "2025-01-15");
        assert_eq!(tod, "12:04:54.120");
    }

    #[test]
    fn planes_have_i420_sizes_and_the_bar_moves() {
        let mut r = FrameRenderer::new(640, 360);
        let first = {
            let (y, u, v) = r.render(1_736_942_694_120, 0, "Front Door");
            assert_eq!(
                (y.len(), u.len(), v.len()),
                (640 * 360, 320 * 180, 320 * 180)
            );
            y.to_vec()
        };
        let (second, _, _) = r.render(1_736_942_694_160, 1, "Front Door");
        assert_ne!(first, second, "consecutive frames must differ");
    }

    #[test]
    fn time_of_day_is_at_least_a_tenth_of_the_frame_high() {
        for (w, h) in [(640u32, 360u32), (1280, 720), (320, 180)] {
            let mut r = FrameRenderer::new(w, h);
            let (width, height) = (r.width(), r.height());
            let (y, _, _) = r.render(0, 0, "X");
            // Count rows that contain text luma: the big line alone spans >= h/10 rows.
            let rows_with_text = y
                .chunks_exact(width)
                .filter(|line| line.contains(&TEXT_LUMA))
                .count();
            assert!(
                rows_with_text >= height / 10,
                "{w}x{h}: {rows_with_text} text rows"
            );
        }
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        let mut r = FrameRenderer::new(1, 1);
        let _ = r.render(
            i64::MAX,
            u64::MAX,
            "a very long camera name that does not fit",
        );
    }
}
