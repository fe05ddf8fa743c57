//! Draws one synthetic camera picture into an I420 buffer.
//!
//! The picture is made to be checked by eye in a screenshot: the recording time in large digits
//! (the time of day at least a tenth of the frame height), the date, the camera name and the frame
//! number, over a background with a bar that moves every frame so the encoder has real motion to
//! code (a static picture would encode to almost nothing and hide bitrate problems).
//!
//! Along the bottom runs the machine-readable [timecode strip](super::timecode) with the same
//! recording time, for tests that only see decoded pixels.

use time::OffsetDateTime;

use super::font::{GLYPH_HEIGHT, GLYPH_SPACING, GLYPH_WIDTH, glyph, text_width};
use super::ptz::PtzState;
use super::timecode;

/// Luma of the text.
const TEXT_LUMA: u8 = 235;
/// Luma of the box behind the text, dark so the text reads over any bar position.
const TEXT_BOX_LUMA: u8 = 24;
/// Width of the moving bar as a fraction (1/n) of the frame width.
const BAR_WIDTH_DIVISOR: usize = 8;
/// Pixels the bar moves per frame.
const BAR_STEP: usize = 6;
/// Spacing of the scene's grid lines as a fraction (1/n) of the frame width.
const GRID_DIVISOR: usize = 8;
/// Luma of the grid lines.
const GRID_LUMA: u8 = 110;

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
    /// (Y, U, V) planes, each tightly packed (stride = plane width). The scene is at the PTZ home
    /// position and no PTZ line is printed: what recordings show.
    pub fn render(
        &mut self,
        recording_unix_ms: i64,
        frame_number: u64,
        camera_name: &str,
    ) -> (&[u8], &[u8], &[u8]) {
        self.render_with_ptz(recording_unix_ms, frame_number, camera_name, None)
    }

    /// As [`Self::render`], for a live picture: with `ptz` the scene is seen from that pan and
    /// tilt (it shifts by a frame width per 360 degrees of pan and a frame height per 180 of
    /// tilt), and the PTZ/aux state is printed under the frame number.
    pub fn render_with_ptz(
        &mut self,
        recording_unix_ms: i64,
        frame_number: u64,
        camera_name: &str,
        ptz: Option<&PtzState>,
    ) -> (&[u8], &[u8], &[u8]) {
        let (pan, tilt) = ptz.map_or((0, 0), |p| (p.pan, p.tilt));
        self.draw_background(frame_number, pan, tilt);

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
        if let Some(ptz) = ptz {
            y += (GLYPH_HEIGHT + 3) * small_scale;
            self.draw_text_boxed(margin, y, small_scale, &ptz.overlay_line());
        }
        self.draw_timecode_strip(recording_unix_ms);

        let (y_plane, chroma) = self.buf.split_at(self.width * self.height);
        let (u_plane, v_plane) = chroma.split_at(chroma.len() / 2);
        (y_plane, u_plane, v_plane)
    }

    /// The scene (a repeating vertical gradient under a grid, seen from `pan`/`tilt` degrees)
    /// plus a bright bar sweeping left to right, tinted in chroma.
    fn draw_background(&mut self, frame_number: u64, pan: i32, tilt: i32) {
        let (w, h) = (self.width, self.height);
        let bar_width = (w / BAR_WIDTH_DIVISOR).max(2);
        let travel = w + bar_width;
        // Frame numbers only grow; the modulo keeps the product small.
        let bar_left = ((frame_number % travel as u64) as usize * BAR_STEP) % travel;
        let bar = bar_left.saturating_sub(bar_width)..bar_left;

        // Scene coordinates of the picture's top-left pixel: panning right moves the scene left,
        // tilting up moves it down. Sizes fit easily in i64; PTZ angles are bounded.
        let (wi, hi) = (w as i64, h as i64);
        let scene_x0 = i64::from(pan) * wi / 360;
        let scene_y0 = -i64::from(tilt) * hi / 180;
        let grid = (w / GRID_DIVISOR).max(8) as i64;
        let line_width = (w / 320).max(2);
        // The first picture column on a vertical grid line.
        let first_line_column = ((grid - scene_x0.rem_euclid(grid)) % grid) as usize;

        let (y_plane, chroma) = self.buf.split_at_mut(w * h);
        for (row, line) in y_plane.chunks_exact_mut(w).enumerate() {
            let scene_y = (row as i64 + scene_y0).rem_euclid(hi);
            let base = 60 + (scene_y * 60 / hi) as u8;
            line.fill(base);
            if (scene_y.rem_euclid(grid) as usize) < line_width {
                line.fill(GRID_LUMA);
            } else {
                for column in (first_line_column..w).step_by(grid as usize) {
                    if let Some(px) = line.get_mut(column..(column + line_width).min(w)) {
                        px.fill(GRID_LUMA);
                    }
                }
            }
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

    /// The timecode strip over the bottom rows, on neutral chroma so it stays black and white.
    fn draw_timecode_strip(&mut self, recording_unix_ms: i64) {
        let (w, h) = (self.width, self.height);
        let rows = timecode::strip_rows(h);
        let (y_plane, chroma) = self.buf.split_at_mut(w * h);
        timecode::draw_timecode(y_plane, w, h, w, recording_unix_ms);
        let cw = w / 2;
        // A chroma row covers two luma rows; the one shared with the picture above goes grey too.
        let chroma_rows = rows.start / 2 * cw..h / 2 * cw;
        let (u_plane, v_plane) = chroma.split_at_mut(chroma.len() / 2);
        for plane in [u_plane, v_plane] {
            if let Some(px) = plane.get_mut(chroma_rows.clone()) {
                px.fill(128);
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
    fn ptz_shifts_the_scene_and_prints_its_state() {
        let mut r = FrameRenderer::new(640, 360);
        let home = r
            .render_with_ptz(0, 0, "X", Some(&PtzState::default()))
            .0
            .to_vec();
        let plain = r.render(0, 0, "X").0.to_vec();
        assert_ne!(home, plain, "the PTZ line is printed on live pictures");
        let ptz = PtzState {
            pan: 20,
            tilt: -10,
            aux: [true, false, false, false],
        };
        let moved = r.render_with_ptz(0, 0, "X", Some(&ptz)).0.to_vec();
        // A row in the middle of the picture, away from the text and the strip: the grid moved.
        let row = |plane: &[u8]| plane[250 * 640..251 * 640].to_vec();
        assert_ne!(row(&home), row(&moved));
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        let mut r = FrameRenderer::new(1, 1);
        let _ = r.render(
            i64::MAX,
            u64::MAX,
            "a very long camera name that does not fit",
        );
        let ptz = PtzState {
            pan: -180,
            tilt: 90,
            aux: [true; 4],
        };
        let _ = r.render_with_ptz(i64::MIN, 0, "x", Some(&ptz));
    }
}
