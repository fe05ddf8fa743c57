//! Choosing the playback speed of an export: as fast as the gateway sends *every* frame.
//!
//! A gateway may cap how many frames per second it sends a playback session and drop frames
//! evenly above that (our emulator keeps 60 fps: speed 32 of a 25 fps camera sends one frame in
//! fourteen). An export must hold every frame, so the frame interval is measured at speed 1
//! first, and the first frames of a fast session are checked against it: if they are further
//! apart, the gateway is dropping, and the speed is lowered by the observed factor. Pure
//! functions of recording times, so every case is a unit test.

use super::timeline::GAP_FACTOR;
use std::time::Duration;
use time::OffsetDateTime;

/// The typical step between consecutive frames: the median step, so that one gap among the
/// frames does not count. `None` for fewer than two frames.
pub(crate) fn median_step(times: &[OffsetDateTime]) -> Option<Duration> {
    let mut steps: Vec<Duration> = times
        .windows(2)
        .filter_map(|pair| match pair {
            [earlier, later] => Duration::try_from(*later - *earlier).ok(),
            _ => None,
        })
        .filter(|step| !step.is_zero())
        .collect();
    steps.sort_unstable();
    // The lower median: with two steps, one of which spans a gap, the smaller is the interval.
    steps.get(steps.len().saturating_sub(1) / 2).copied()
}

/// What the first frames of a session at some speed say about the gateway's sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SpeedCheck {
    /// Every frame arrives (or there were too few frames to tell).
    Complete,
    /// Frames arrive `step` apart instead of `interval`: the gateway keeps about one in
    /// `step / interval`.
    Dropping {
        /// The median step between the frames received.
        step: Duration,
    },
}

/// Checks the first frames received at some speed against the frame interval measured at
/// speed 1.
pub(crate) fn check(interval: Option<Duration>, first_frames: &[OffsetDateTime]) -> SpeedCheck {
    match (interval, median_step(first_frames)) {
        (Some(interval), Some(step))
            if step.as_secs_f64() > interval.as_secs_f64() * GAP_FACTOR =>
        {
            SpeedCheck::Dropping { step }
        }
        _ => SpeedCheck::Complete,
    }
}

/// The speed at which a gateway that kept one frame per `step` at `speed` sends every frame
/// `interval` apart: the send rate it managed (`speed / step`) in frames of `interval`, rounded
/// down to a hundredth so that it stays at or below that rate. At least 0.01.
pub(crate) fn slower_speed(speed: f64, interval: Duration, step: Duration) -> f64 {
    let ratio = interval.as_secs_f64() / step.as_secs_f64().max(f64::MIN_POSITIVE);
    let slower = (speed * ratio * 100.0).floor() / 100.0;
    slower.clamp(0.01, speed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-15 13:00:00 UTC);

    fn at(ms: &[u64]) -> Vec<OffsetDateTime> {
        ms.iter()
            .map(|&ms| T0 + Duration::from_millis(ms))
            .collect()
    }

    #[test]
    fn median_step_ignores_one_gap() {
        let ms = Duration::from_millis;
        assert_eq!(median_step(&at(&[0, 40, 80, 10_080, 10_120])), Some(ms(40)));
        assert_eq!(median_step(&at(&[0, 40, 10_040])), Some(ms(40)));
        assert_eq!(median_step(&at(&[0])), None);
        assert_eq!(median_step(&[]), None);
    }

    #[test]
    fn emulator_cap_at_speed_32_is_detected_and_undone() {
        // 25 fps at speed 32 under a 60 fps cap: one frame in ceil(800 / 60) = 14.
        let interval = Some(Duration::from_millis(40));
        let first = at(&[0, 560, 1120, 1680, 2240]);
        let SpeedCheck::Dropping { step } = check(interval, &first) else {
            panic!("dropping not detected")
        };
        let speed = slower_speed(32.0, Duration::from_millis(40), step);
        assert_eq!(speed, 2.28);
        // At that speed the emulator's rule keeps every frame: 25 × 2.28 = 57 ≤ 60.
        assert!(25.0 * speed <= 60.0);
    }

    #[test]
    fn every_frame_or_too_few_frames_is_complete() {
        let interval = Some(Duration::from_millis(40));
        assert_eq!(
            check(interval, &at(&[0, 40, 80, 120])),
            SpeedCheck::Complete
        );
        assert_eq!(check(interval, &at(&[0, 40, 10_040])), SpeedCheck::Complete);
        assert_eq!(check(interval, &at(&[0])), SpeedCheck::Complete);
        assert_eq!(check(None, &at(&[0, 560, 1120])), SpeedCheck::Complete);
    }

    #[test]
    fn slower_speed_never_rises() {
        let ms = Duration::from_millis;
        assert_eq!(slower_speed(2.0, ms(40), ms(40)), 2.0);
        assert_eq!(slower_speed(1.0, ms(40), ms(400)), 0.1);
        assert_eq!(slower_speed(1.0, ms(40), ms(100_000)), 0.01);
    }
}
