//! How long a live stream may be silent before it counts as stalled, sans IO.
//!
//! One number cannot fit every camera: 1 s without a frame is 25 lost frames at 25 fps (a stall
//! worth a reconnect), but a single frame interval at 1 fps. So the limit follows the stream:
//! [`StallTimeout::FRAME_INTERVALS`] times the median of the recent frame intervals, at least
//! [`StallTimeout::FLOOR`], and never more than the configured ceiling (the session's
//! `media_timeout`). Until a few intervals are known, the ceiling applies.
//!
//! Intervals are read from the RTP timestamps, which on XProtect count milliseconds
//! (PROTOCOL.md §4.2): they are the camera's frame rate, unblurred by network jitter.
//!
//! ```
//! use std::time::Duration;
//! use xprotect_proto::stall::StallTimeout;
//!
//! let mut stall = StallTimeout::new(Duration::from_secs(2));
//! assert_eq!(stall.timeout(), Duration::from_secs(2)); // nothing known yet
//! for frame in 0..10u32 {
//!     stall.on_frame(frame * 40); // 25 fps
//! }
//! assert_eq!(stall.timeout(), Duration::from_secs(1)); // 10 × 40 ms, raised to the floor
//! ```

use std::collections::VecDeque;
use std::time::Duration;

/// The stall limit of one live stream.
#[derive(Debug, Clone)]
pub struct StallTimeout {
    ceiling: Duration,
    last_rtp_ms: Option<u32>,
    /// The most recent frame intervals in milliseconds, oldest first.
    intervals_ms: VecDeque<u32>,
}

impl StallTimeout {
    /// The shortest limit: below it a short network hiccup would look like a lost session.
    pub const FLOOR: Duration = Duration::from_secs(1);
    /// The limit in frame intervals.
    pub const FRAME_INTERVALS: u32 = 10;
    /// Intervals the median is taken over (a few seconds at common frame rates).
    const WINDOW: usize = 32;
    /// Intervals needed before the stream's own rate is trusted.
    const MIN_INTERVALS: usize = 5;
    /// Longer steps are gaps (a camera that paused, a clock jump), not a frame rate.
    const MAX_INTERVAL_MS: u32 = 10_000;

    /// A limit of at most `ceiling` (the configured media timeout).
    pub fn new(ceiling: Duration) -> Self {
        Self {
            ceiling,
            last_rtp_ms: None,
            intervals_ms: VecDeque::with_capacity(Self::WINDOW),
        }
    }

    /// A video frame (access unit) with this RTP timestamp (milliseconds) was received.
    /// Repeated, reordered and implausibly distant timestamps teach nothing about the rate.
    pub fn on_frame(&mut self, rtp_ms: u32) {
        if let Some(last) = self.last_rtp_ms {
            let step = rtp_ms.wrapping_sub(last);
            // A reordered frame is a step "backwards", which wraps to a huge one.
            if step == 0 || step > u32::MAX / 2 {
                return;
            }
            if step <= Self::MAX_INTERVAL_MS {
                if self.intervals_ms.len() == Self::WINDOW {
                    self.intervals_ms.pop_front();
                }
                self.intervals_ms.push_back(step);
            }
        }
        self.last_rtp_ms = Some(rtp_ms);
    }

    /// The median of the recent frame intervals, once enough are known.
    pub fn median_interval(&self) -> Option<Duration> {
        if self.intervals_ms.len() < Self::MIN_INTERVALS {
            return None;
        }
        let mut sorted: Vec<u32> = self.intervals_ms.iter().copied().collect();
        sorted.sort_unstable();
        // The upper median: an even count leans towards the slower rate, the safer side.
        let median = sorted.get(sorted.len() / 2).copied()?;
        Some(Duration::from_millis(u64::from(median)))
    }

    /// The silence after which the stream counts as stalled now.
    pub fn timeout(&self) -> Duration {
        match self.median_interval() {
            Some(interval) => (interval * Self::FRAME_INTERVALS)
                .max(Self::FLOOR)
                .min(self.ceiling),
            None => self.ceiling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(ceiling_ms: u64, timestamps: impl IntoIterator<Item = u32>) -> StallTimeout {
        let mut stall = StallTimeout::new(Duration::from_millis(ceiling_ms));
        for rtp in timestamps {
            stall.on_frame(rtp);
        }
        stall
    }

    #[test]
    fn twenty_five_fps_stalls_after_the_floor() {
        let stall = fed(2_000, (0..50).map(|i| i * 40));
        assert_eq!(stall.median_interval(), Some(Duration::from_millis(40)));
        assert_eq!(stall.timeout(), Duration::from_secs(1));
    }

    #[test]
    fn one_fps_is_not_stalled_after_one_second_but_the_ceiling_holds() {
        let stall = fed(2_000, (0..10).map(|i| i * 1_000));
        assert_eq!(
            stall.timeout(),
            Duration::from_secs(2),
            "capped by the ceiling"
        );
        let stall = fed(30_000, (0..10).map(|i| i * 1_000));
        assert_eq!(stall.timeout(), Duration::from_secs(10), "ten intervals");
    }

    #[test]
    fn five_fps_gets_ten_intervals() {
        let stall = fed(10_000, (0..10).map(|i| i * 200));
        assert_eq!(stall.timeout(), Duration::from_secs(2));
    }

    #[test]
    fn the_ceiling_applies_until_the_rate_is_known() {
        let stall = fed(2_000, [0, 40, 80, 120, 160]);
        assert_eq!(
            stall.median_interval(),
            None,
            "four intervals are not enough"
        );
        assert_eq!(stall.timeout(), Duration::from_secs(2));
        let stall = fed(2_000, [0, 40, 80, 120, 160, 200]);
        assert_eq!(stall.timeout(), Duration::from_secs(1));
    }

    #[test]
    fn a_ceiling_below_the_floor_wins() {
        let stall = fed(500, (0..50).map(|i| i * 40));
        assert_eq!(stall.timeout(), Duration::from_millis(500));
    }

    #[test]
    fn the_median_ignores_a_hole() {
        // 25 fps with one 600 ms hole.
        let mut timestamps: Vec<u32> = (0..20).map(|i| i * 40).collect();
        timestamps.extend([800, 1_400, 1_440, 1_480, 1_520]);
        let stall = fed(2_000, timestamps);
        assert_eq!(stall.median_interval(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn repeats_reorders_and_gaps_teach_nothing() {
        let stall = fed(5_000, [0, 0, 40, 20, 80, 80, 60_080, 60_120]);
        // Only 40 (0→40), 40 (40→80) and 40 (60_080→60_120) count: too few for a rate.
        assert_eq!(stall.median_interval(), None);
    }

    #[test]
    fn the_rtp_clock_may_wrap() {
        let start = u32::MAX - 100;
        let stall = fed(2_000, (0..10).map(|i| start.wrapping_add(i * 40)));
        assert_eq!(stall.median_interval(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn the_rate_follows_the_stream_over_the_window() {
        // 25 fps, then the camera drops to 2 fps: after a window of slow frames, 5 s (capped).
        let mut timestamps: Vec<u32> = (0..40).map(|i| i * 40).collect();
        let slow_start = 40 * 40;
        timestamps.extend((1..=40).map(|i| slow_start + i * 500));
        let stall = fed(3_000, timestamps);
        assert_eq!(stall.median_interval(), Some(Duration::from_millis(500)));
        assert_eq!(stall.timeout(), Duration::from_secs(3));
    }
}
