//! Where each exported frame goes on the file's media timeline, and which gaps the recording has.
//!
//! Pure: recording times in, media milliseconds and gaps out. By default the file's timeline is
//! the recording's (media time = recording time − the first frame's), so a gap stays a gap that a
//! player shows as a frozen frame. Closing gaps moves every frame after a gap back by the gap's
//! length; the frame's wall clock (the MP4's `prft`) keeps its true recording time.

use std::time::Duration;
use time::OffsetDateTime;

/// A stretch of the range without recording, between two exported frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Where the recording stops: the last frame before the gap plus one frame interval.
    pub start: OffsetDateTime,
    /// From `start` to the first frame after the gap.
    pub length: Duration,
}

/// A step longer than this many frame intervals means frames are missing: a gap (or, at the
/// start of a fast session, frames the gateway dropped). Frame times of real cameras jitter by a
/// few milliseconds; a missing frame doubles the step.
pub(crate) const GAP_FACTOR: f64 = 1.5;

/// Where a frame is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Its media time in the file, ms since the first frame.
    pub media_ms: i64,
    /// The gap that ends at this frame, if any.
    pub gap: Option<Gap>,
    /// True if a gap ends here but could not be closed (the frame is not a keyframe: a new
    /// fragment, and with it a new `prft`, starts only at keyframes).
    pub gap_left_open: bool,
}

/// The mapping from recording time to media time, frame by frame.
#[derive(Debug, Clone)]
pub(crate) struct MediaTimeline {
    close_gaps: bool,
    /// The frame interval measured beforehand, if any.
    interval: Option<Duration>,
    /// Otherwise the smallest step seen so far: a gap is never the smallest step once two frames
    /// of one sequence have been seen.
    smallest_step: Option<Duration>,
    first: Option<OffsetDateTime>,
    previous: Option<(OffsetDateTime, i64)>,
    /// Gap time taken out of the timeline so far, ms.
    removed_ms: i64,
}

impl MediaTimeline {
    /// A timeline for frames `interval` apart (if known: otherwise the smallest step seen).
    pub(crate) fn new(close_gaps: bool, interval: Option<Duration>) -> Self {
        Self {
            close_gaps,
            interval: interval.filter(|i| !i.is_zero()),
            smallest_step: None,
            first: None,
            previous: None,
            removed_ms: 0,
        }
    }

    /// Places the next frame, recorded at `time` (later than the previous one).
    pub(crate) fn place(&mut self, time: OffsetDateTime, keyframe: bool) -> Placement {
        let first = *self.first.get_or_insert(time);
        let Some((previous, previous_media_ms)) = self.previous else {
            self.previous = Some((time, 0));
            return Placement {
                media_ms: 0,
                gap: None,
                gap_left_open: false,
            };
        };
        let step = duration_between(previous, time);
        if !step.is_zero() && self.smallest_step.is_none_or(|smallest| step < smallest) {
            self.smallest_step = Some(step);
        }
        let interval = self.interval.or(self.smallest_step).unwrap_or(step);
        let mut placement = Placement {
            media_ms: millis(duration_between(first, time)) - self.removed_ms,
            gap: None,
            gap_left_open: false,
        };
        if step.as_secs_f64() > interval.as_secs_f64() * GAP_FACTOR {
            let gap = Gap {
                start: previous + interval,
                length: step - interval,
            };
            placement.gap = Some(gap);
            if self.close_gaps {
                if keyframe {
                    self.removed_ms += millis(gap.length);
                    placement.media_ms = previous_media_ms + millis(interval);
                } else {
                    placement.gap_left_open = true;
                }
            }
        }
        self.previous = Some((time, placement.media_ms));
        placement
    }
}

fn duration_between(earlier: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or_default()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const MS: Duration = Duration::from_millis(1);
    const T0: OffsetDateTime = datetime!(2025-01-15 12:04:59.920 UTC);

    fn frames(timeline: &mut MediaTimeline, times: &[(i64, bool)]) -> Vec<Placement> {
        times
            .iter()
            .map(|&(ms, key)| timeline.place(T0 + MS * ms as u32, key))
            .collect()
    }

    #[test]
    fn gaps_stay_in_the_timeline_by_default() {
        let mut timeline = MediaTimeline::new(false, Some(MS * 40));
        let placed = frames(
            &mut timeline,
            &[(0, true), (40, false), (10_080, true), (10_120, false)],
        );
        let media: Vec<i64> = placed.iter().map(|p| p.media_ms).collect();
        assert_eq!(media, [0, 40, 10_080, 10_120]);
        assert_eq!(
            placed[2].gap,
            Some(Gap {
                start: datetime!(2025-01-15 12:05:00 UTC),
                length: Duration::from_secs(10),
            })
        );
        assert!(placed.iter().filter(|p| p.gap.is_some()).count() == 1);
    }

    #[test]
    fn closing_moves_later_frames_back_by_each_gap() {
        let mut timeline = MediaTimeline::new(true, Some(MS * 40));
        let placed = frames(
            &mut timeline,
            &[
                (0, true),
                (40, false),
                (10_080, true),
                (10_120, false),
                (20_120, true),
                (20_160, false),
            ],
        );
        let media: Vec<i64> = placed.iter().map(|p| p.media_ms).collect();
        assert_eq!(media, [0, 40, 80, 120, 160, 200]);
        assert_eq!(placed[4].gap.map(|g| g.length), Some(MS * 9960));
    }

    #[test]
    fn a_gap_ending_at_a_non_keyframe_is_left_open() {
        let mut timeline = MediaTimeline::new(true, Some(MS * 40));
        let placed = frames(&mut timeline, &[(0, true), (40, false), (1_040, false)]);
        assert_eq!(placed[2].media_ms, 1_040);
        assert!(placed[2].gap_left_open);
    }

    #[test]
    fn jitter_is_not_a_gap_and_the_interval_can_be_learnt() {
        let mut timeline = MediaTimeline::new(false, None);
        let placed = frames(
            &mut timeline,
            &[
                (0, true),
                (33, false),
                (67, false),
                (100, false),
                (300, true),
            ],
        );
        assert!(placed[..4].iter().all(|p| p.gap.is_none()));
        assert_eq!(placed[4].gap.map(|g| g.length), Some(MS * 167));
    }
}
