//! What a playback session sends and when: a pure function of the timeline, the request and the
//! session's media time (no clock is read here, so every case is a unit test).
//!
//! - Frames sit on each recording's frame grid (`start + k × interval`); a GOP is the stretch
//!   from one grid-aligned keyframe to the next (`gop_frames` frames), except the session's
//!   first, which starts at its first frame so that every session starts with a keyframe.
//! - RTP timestamp = recording time − requested playback time, in ms (PROTOCOL.md §4.2): it
//!   jumps across gaps whether or not they are skipped.
//! - Send time (media time since the session's first frame was due): recorded time played so
//!   far divided by the speed; with `skip_gaps = false` the gaps count too (nothing is sent for
//!   gap / speed), with `skip_gaps = true` they do not.
//! - Above [`PacingConfig::max_send_fps`] only every `step`-th frame is kept, counted from the
//!   session's first frame through the whole recording; a GOP then starts at the first kept frame
//!   at or after each aligned boundary and is encoded from the kept frames alone, so the stream
//!   stays decodable and the frames evenly spaced.

use std::time::Duration;

use super::timeline::{Recording, RecordingTimeline};

/// How frames are laid out and how fast they may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingConfig {
    /// The camera's recorded frame rate.
    pub fps: u32,
    /// Frames from one keyframe to the next in the recording.
    pub gop_frames: u32,
    /// The most frames per second a session is sent; faster playback drops frames evenly.
    pub max_send_fps: u32,
}

/// One frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFrame {
    /// Its recording time, Unix ms (drawn into the picture and stamped into the SEI).
    pub recording_unix_ms: i64,
    /// Its RTP timestamp: ms since the requested playback time, wrapping at 2³².
    pub rtp: u32,
    /// When it is due, as media time since the session's playback began.
    pub send_at: Duration,
}

/// The frames of one GOP; the first is a keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGop {
    /// The recording time of the keyframe: with the step, the GOP's identity in the cache.
    pub first_unix_ms: i64,
    /// Every kept frame, in order.
    pub frames: Vec<PlannedFrame>,
}

/// The playback of one session: yields GOP after GOP until the last recording ends.
#[derive(Debug, Clone)]
pub struct PlaybackSchedule {
    recordings: Vec<Recording>,
    requested_unix_ms: i64,
    skip_gaps: bool,
    speed: f64,
    interval_ms: i64,
    gop_ms: i64,
    step: u32,
    /// The recording and the grid time of the next frame, or `None` after the end.
    cursor: Option<(usize, i64)>,
    /// Gap time (ms) between the requested time and the cursor that skip_gaps jumped over.
    skipped_ms: i64,
}

impl PlaybackSchedule {
    /// The schedule for a request starting at `requested_unix_ms`. `speed` must be positive
    /// (the signaling layer only lets `0 < speed ≤ 32` through).
    pub fn new(
        timeline: &RecordingTimeline,
        pacing: PacingConfig,
        requested_unix_ms: i64,
        skip_gaps: bool,
        speed: f64,
    ) -> Self {
        let fps = pacing.fps.max(1);
        let interval_ms = i64::from((1000 / fps).max(1));
        let gop_ms = interval_ms * i64::from(pacing.gop_frames.max(1));
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        let mut schedule = Self {
            recordings: timeline.recordings().to_vec(),
            requested_unix_ms,
            skip_gaps,
            speed,
            interval_ms,
            gop_ms,
            step: frame_step(fps, speed, pacing.max_send_fps),
            cursor: None,
            skipped_ms: 0,
        };
        schedule.cursor = schedule.first_frame();
        if skip_gaps && let Some((_, first)) = schedule.cursor {
            // A start inside a gap jumps to the next recording at once.
            schedule.skipped_ms = (first - requested_unix_ms).max(0) - schedule.lead_in(first);
        }
        schedule
    }

    /// Keeps one frame in this many (1: every frame).
    pub fn step(&self) -> u32 {
        self.step
    }

    /// True once every frame has been planned.
    pub fn finished(&self) -> bool {
        self.cursor.is_none()
    }

    /// The next GOP, or `None` after the last recording.
    pub fn next_gop(&mut self) -> Option<PlannedGop> {
        let (index, first) = self.cursor?;
        let recording = *self.recordings.get(index)?;
        let gop_end = (recording.start_unix_ms
            + ((first - recording.start_unix_ms) / self.gop_ms + 1) * self.gop_ms)
            .min(recording.end_unix_ms);
        let stride = self.interval_ms * i64::from(self.step);
        let mut frames = Vec::new();
        let mut t = first;
        while t < gop_end {
            frames.push(PlannedFrame {
                recording_unix_ms: t,
                rtp: t.wrapping_sub(self.requested_unix_ms) as u32,
                send_at: self.send_time(t),
            });
            t += stride;
        }
        // The next GOP starts at the next kept frame, so frames stay evenly spaced across GOP
        // boundaries when frames are dropped.
        self.cursor = if t < recording.end_unix_ms {
            Some((index, t))
        } else {
            self.recordings.get(index + 1).map(|next| {
                if self.skip_gaps {
                    self.skipped_ms += next.start_unix_ms - recording.end_unix_ms;
                }
                (index + 1, next.start_unix_ms)
            })
        };
        Some(PlannedGop {
            first_unix_ms: first,
            frames,
        })
    }

    /// The first grid frame at or after the requested time.
    fn first_frame(&self) -> Option<(usize, i64)> {
        self.recordings
            .iter()
            .enumerate()
            .find(|(_, r)| r.end_unix_ms > self.requested_unix_ms)
            .and_then(|(index, r)| {
                let from = self.requested_unix_ms.max(r.start_unix_ms);
                let k = (from - r.start_unix_ms + self.interval_ms - 1) / self.interval_ms;
                let t = r.start_unix_ms + k * self.interval_ms;
                if t < r.end_unix_ms {
                    Some((index, t))
                } else {
                    // The request falls after the recording's last frame: take the next one.
                    self.recordings
                        .get(index + 1)
                        .map(|next| (index + 1, next.start_unix_ms))
                }
            })
    }

    /// Recorded time between the requested instant and `first` that is still played (inside a
    /// recording, before its first grid frame); the rest of that stretch is gap.
    fn lead_in(&self, first: i64) -> i64 {
        self.recordings
            .iter()
            .find(|r| {
                r.start_unix_ms <= self.requested_unix_ms && self.requested_unix_ms < r.end_unix_ms
            })
            .map_or(0, |r| first.min(r.end_unix_ms) - self.requested_unix_ms)
    }

    fn send_time(&self, recording_unix_ms: i64) -> Duration {
        let played_ms = (recording_unix_ms - self.requested_unix_ms - self.skipped_ms).max(0);
        Duration::from_secs_f64(played_ms as f64 / 1000.0 / self.speed)
    }
}

/// Frames to advance per frame sent so that `fps × speed / step ≤ max_send_fps`.
fn frame_step(fps: u32, speed: f64, max_send_fps: u32) -> u32 {
    let wanted = f64::from(fps) * speed;
    let max = f64::from(max_send_fps.max(1));
    if wanted <= max {
        1
    } else {
        // Finite and at most fps × 32 / 1 for valid speeds; the cast saturates anyway.
        (wanted / max).ceil() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACING: PacingConfig = PacingConfig {
        fps: 25,
        gop_frames: 25,
        max_send_fps: 60,
    };

    /// Recordings [0 s, 5 s) and [15 s, 20 s): a 10 s gap.
    fn timeline() -> RecordingTimeline {
        RecordingTimeline::new(vec![
            Recording {
                start_unix_ms: 0,
                end_unix_ms: 5_000,
            },
            Recording {
                start_unix_ms: 15_000,
                end_unix_ms: 20_000,
            },
        ])
        .unwrap()
    }

    fn all_frames(schedule: &mut PlaybackSchedule) -> Vec<(PlannedFrame, bool)> {
        let mut out = Vec::new();
        while let Some(gop) = schedule.next_gop() {
            assert!(!gop.frames.is_empty(), "a GOP has at least its keyframe");
            assert_eq!(gop.frames[0].recording_unix_ms, gop.first_unix_ms);
            for (i, f) in gop.frames.into_iter().enumerate() {
                out.push((f, i == 0));
            }
        }
        out
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn plays_every_frame_at_speed_one_and_waits_out_the_gap() {
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 3_000, false, 1.0);
        let frames = all_frames(&mut s);
        assert!(s.finished());
        // 2 s before the gap, 5 s after it, at 25 fps.
        assert_eq!(frames.len(), 50 + 125);
        let first = frames[0].0;
        assert_eq!(
            (first.recording_unix_ms, first.rtp, ms(first.send_at)),
            (3_000, 0, 0)
        );
        let after_gap = frames[50].0;
        assert_eq!(after_gap.recording_unix_ms, 15_000);
        assert_eq!(after_gap.rtp, 12_000, "RTP jumps by the gap");
        assert_eq!(
            ms(after_gap.send_at),
            12_000,
            "nothing is sent for the gap's length"
        );
        // GOPs: [3 s, 4 s), [4 s, 5 s), then one per second after the gap.
        let keyframes: Vec<i64> = frames
            .iter()
            .filter(|(_, k)| *k)
            .map(|(f, _)| f.recording_unix_ms)
            .collect();
        assert_eq!(
            keyframes,
            vec![3_000, 4_000, 15_000, 16_000, 17_000, 18_000, 19_000]
        );
    }

    #[test]
    fn skip_gaps_jumps_to_the_next_recording_at_once() {
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 3_000, true, 1.0);
        let frames = all_frames(&mut s);
        let after_gap = frames[50].0;
        assert_eq!(after_gap.recording_unix_ms, 15_000);
        assert_eq!(after_gap.rtp, 12_000, "RTP still jumps by the gap");
        assert_eq!(
            ms(after_gap.send_at),
            2_000,
            "sent right after the last frame before it"
        );
        let last = frames.last().unwrap().0;
        assert_eq!(last.recording_unix_ms, 19_960);
        assert_eq!(ms(last.send_at), 6_960);
    }

    #[test]
    fn speed_scales_send_times_but_not_rtp() {
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 0, false, 2.0);
        assert_eq!(s.step(), 1, "50 fps is within the limit");
        let frames = all_frames(&mut s);
        let f = frames[30].0;
        assert_eq!(
            (f.recording_unix_ms, f.rtp, ms(f.send_at)),
            (1_200, 1_200, 600)
        );
        let after_gap = frames[125].0;
        assert_eq!((after_gap.rtp, ms(after_gap.send_at)), (15_000, 7_500));
    }

    #[test]
    fn start_inside_a_gap() {
        // Without skipping, the rest of the gap is waited out (scaled by speed).
        let mut waiting = PlaybackSchedule::new(&timeline(), PACING, 10_000, false, 4.0);
        let first = waiting.next_gop().unwrap().frames[0];
        assert_eq!(
            (first.recording_unix_ms, first.rtp, ms(first.send_at)),
            (15_000, 5_000, 1_250)
        );
        // With skipping, the next recording starts at once; RTP still counts from the request.
        let mut skipping = PlaybackSchedule::new(&timeline(), PACING, 10_000, true, 4.0);
        let first = skipping.next_gop().unwrap().frames[0];
        assert_eq!(
            (first.recording_unix_ms, first.rtp, ms(first.send_at)),
            (15_000, 5_000, 0)
        );
    }

    #[test]
    fn start_between_grid_frames_takes_the_next_frame_as_keyframe() {
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 1_010, true, 1.0);
        let gop = s.next_gop().unwrap();
        assert_eq!(gop.first_unix_ms, 1_040);
        assert_eq!((gop.frames[0].rtp, ms(gop.frames[0].send_at)), (30, 30));
        assert_eq!(
            gop.frames.len(),
            24,
            "the first GOP ends at the aligned boundary"
        );
        assert_eq!(s.next_gop().unwrap().first_unix_ms, 2_000);
    }

    #[test]
    fn ends_after_the_last_recording() {
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 19_990, false, 1.0);
        assert!(s.finished(), "no frame left at or after 19.99 s");
        assert_eq!(s.next_gop(), None);
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 25_000, true, 1.0);
        assert_eq!(s.next_gop(), None);
        // Just before the last frame: one GOP of one frame, then the end.
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 19_950, false, 1.0);
        assert_eq!(s.next_gop().unwrap().frames.len(), 1);
        assert!(s.finished());
    }

    #[test]
    fn start_before_every_recording_waits_unless_skipping() {
        let t = RecordingTimeline::new(vec![Recording {
            start_unix_ms: 60_000,
            end_unix_ms: 61_000,
        }])
        .unwrap();
        let mut s = PlaybackSchedule::new(&t, PACING, 0, false, 1.0);
        assert_eq!(ms(s.next_gop().unwrap().frames[0].send_at), 60_000);
        let mut s = PlaybackSchedule::new(&t, PACING, 0, true, 1.0);
        let first = s.next_gop().unwrap().frames[0];
        assert_eq!((first.rtp, ms(first.send_at)), (60_000, 0));
    }

    #[test]
    fn high_speed_drops_frames_evenly() {
        // 25 fps × 32 = 800 fps wanted, at most 60 sent: one frame in 14.
        let mut s = PlaybackSchedule::new(&timeline(), PACING, 0, true, 32.0);
        assert_eq!(s.step(), 14);
        let frames = all_frames(&mut s);
        for pair in frames.windows(2) {
            let (a, b) = (pair[0].0, pair[1].0);
            let gap = b.recording_unix_ms - a.recording_unix_ms;
            if b.recording_unix_ms == 15_000 {
                continue;
            }
            assert_eq!(
                gap,
                14 * 40,
                "kept frames are evenly spaced, across GOPs too"
            );
            assert_eq!(u64::from(b.rtp - a.rtp), gap as u64);
        }
        // The send rate stays within the limit: 10 s of recordings played in 312.5 ms.
        let span = frames.last().unwrap().0.send_at.as_secs_f64();
        let rate = (frames.len() - 1) as f64 / span;
        assert!(rate <= 60.0 * 1.5, "{rate} frames/s");
        assert!(
            frames.iter().filter(|(_, k)| *k).count() == 10,
            "one keyframe per recorded second"
        );
    }

    #[test]
    fn rtp_wraps_for_requests_more_than_24_days_before_the_recording() {
        let t = RecordingTimeline::new(vec![Recording {
            start_unix_ms: 1 << 32,
            end_unix_ms: (1 << 32) + 1_000,
        }])
        .unwrap();
        let mut s = PlaybackSchedule::new(&t, PACING, 10, true, 1.0);
        assert_eq!(s.next_gop().unwrap().frames[0].rtp, (-10i64) as u32);
    }
}
