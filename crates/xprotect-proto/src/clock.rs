//! The frame clock: RTP timestamp → wall-clock time, the way XProtect counts (PROTOCOL.md §4.2).
//!
//! XProtect's video RTP timestamps count **milliseconds** of media (recording) time from about 0
//! at the stream's start reference (the requested playback time, or the start of a live stream),
//! even though the SDP says 90 kHz. PCMU audio counts 8 kHz samples of the same media time. So a
//! frame's wall-clock time is `start_ref + extended_timestamp` ms for video and
//! `start_ref + extended_timestamp / 8` ms for audio. The timestamps follow media time whatever
//! the playback speed, and jump across recording gaps, so no speed or gap correction applies.
//!
//! The clock is pure: the start reference is an input, and nothing here reads the system clock.
//!
//! ```
//! use time::macros::datetime;
//! use xprotect_proto::clock::{FrameClock, RtpUnits, format_rfc3339_millis};
//!
//! let mut clock = FrameClock::new(datetime!(2025-01-15 12:00:00 UTC), RtpUnits::VideoMilliseconds);
//! let t = clock.frame_time(294_123);
//! assert_eq!(format_rfc3339_millis(t.wall_clock), "2025-01-15T12:04:54.123Z");
//! ```

use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Extends 32-bit RTP timestamps to 64 bits across wraps.
///
/// Each timestamp is placed within ±2³¹ of the highest one seen so far, so packets reordered
/// backwards across a wrap land in the earlier cycle, and forward steps of up to 2³¹ − 1 (24.8
/// days of video milliseconds) are followed. A forward jump of 2³¹ or more is indistinguishable
/// from a step backwards and is read as one; that is the same ambiguity behind XProtect's own
/// "24 days" limit (PROTOCOL.md §4.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpUnwrapper {
    /// The highest extended timestamp so far; `None` before the first.
    highest: Option<i64>,
}

impl RtpUnwrapper {
    /// An unwrapper that has seen nothing; the first timestamp is taken as cycle 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The 64-bit timestamp for `rtp_timestamp`. May be negative for a packet reordered back
    /// across zero at the very start.
    pub fn extend(&mut self, rtp_timestamp: u32) -> i64 {
        let extended = match self.highest {
            None => i64::from(rtp_timestamp),
            Some(highest) => {
                // Signed distance on the 32-bit circle, in -2^31..2^31.
                let step = rtp_timestamp.wrapping_sub(highest as u32) as i32;
                highest.saturating_add(i64::from(step))
            }
        };
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        extended
    }
}

/// What one RTP timestamp tick means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtpUnits {
    /// XProtect video: one tick per millisecond of media time (despite `H264/90000` in the SDP).
    VideoMilliseconds,
    /// PCMU audio: one tick per sample at 8 kHz, i.e. 125 µs.
    AudioSamples8k,
}

impl RtpUnits {
    /// Microseconds per tick.
    pub const fn micros_per_tick(self) -> i64 {
        match self {
            Self::VideoMilliseconds => 1_000,
            Self::AudioSamples8k => 125,
        }
    }
}

/// When a frame (or audio packet) was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTime {
    /// The RTP timestamp extended to 64 bits (in ticks of the stream's [`RtpUnits`]).
    pub extended: i64,
    /// Media time since the start reference, whole milliseconds (rounded down).
    pub media_ms: i64,
    /// Media time since the start reference, microseconds (exact for both units).
    pub media_us: i64,
    /// `start_ref + media time`, in UTC.
    pub wall_clock: OffsetDateTime,
}

/// RTP timestamp → wall-clock time for one stream (PROTOCOL.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameClock {
    start_ref: OffsetDateTime,
    units: RtpUnits,
    unwrap: RtpUnwrapper,
}

impl FrameClock {
    /// A clock for a stream whose timestamps start at `start_ref`: the requested playback time,
    /// or the time the live stream was requested.
    pub fn new(start_ref: OffsetDateTime, units: RtpUnits) -> Self {
        Self {
            start_ref: start_ref.to_offset(UtcOffset::UTC),
            units,
            unwrap: RtpUnwrapper::new(),
        }
    }

    /// Starts over after a reconnect: the new stream counts from 0 at `start_ref` again (the
    /// official sample forgets this; PROTOCOL.md §4.2).
    pub fn reset(&mut self, start_ref: OffsetDateTime) {
        self.start_ref = start_ref.to_offset(UtcOffset::UTC);
        self.unwrap = RtpUnwrapper::new();
    }

    /// The start reference, in UTC.
    pub fn start_ref(&self) -> OffsetDateTime {
        self.start_ref
    }

    /// The units this clock counts in.
    pub fn units(&self) -> RtpUnits {
        self.units
    }

    /// The time of a frame with this RTP timestamp. Call it for every frame in arrival order,
    /// so the wrap tracking sees them all.
    ///
    /// The wall-clock time saturates at the limits `time` can represent (years ±9999), which
    /// only a stream wrapping more than 70 000 times could reach.
    pub fn frame_time(&mut self, rtp_timestamp: u32) -> FrameTime {
        let extended = self.unwrap.extend(rtp_timestamp);
        let media_us = extended.saturating_mul(self.units.micros_per_tick());
        let wall_clock = self
            .start_ref
            .checked_add(Duration::microseconds(media_us))
            .unwrap_or_else(|| {
                let limit = if media_us < 0 {
                    PrimitiveDateTime::MIN
                } else {
                    PrimitiveDateTime::MAX
                };
                limit.assume_utc()
            });
        FrameTime {
            extended,
            media_ms: media_us.div_euclid(1_000),
            media_us,
            wall_clock,
        }
    }
}

/// RFC 3339 in UTC with exactly three decimals, e.g. `2025-01-15T12:04:54.123Z`: the format of
/// frame times in JSON output. Sub-millisecond parts are truncated, not rounded, so a time never
/// moves into the next millisecond.
pub fn format_rfc3339_millis(time: OffsetDateTime) -> String {
    let utc = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn unwrapper_follows_wraps_both_ways() {
        let mut u = RtpUnwrapper::new();
        assert_eq!(u.extend(u32::MAX - 1), i64::from(u32::MAX - 1));
        assert_eq!(u.extend(3), (1 << 32) + 3);
        // Reordered back across the wrap.
        assert_eq!(u.extend(u32::MAX), i64::from(u32::MAX));
        assert_eq!(u.extend(10), (1 << 32) + 10);
    }

    #[test]
    fn unwrapper_can_go_negative_at_the_start() {
        let mut u = RtpUnwrapper::new();
        assert_eq!(u.extend(5), 5);
        assert_eq!(u.extend(u32::MAX - 4), -5);
        assert_eq!(u.extend(6), 6);
    }

    #[test]
    fn format_is_utc_with_three_decimals() {
        assert_eq!(
            format_rfc3339_millis(datetime!(2025-01-15 12:04:54 UTC)),
            "2025-01-15T12:04:54.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(datetime!(2025-01-15 13:04:54.123999 +01:00)),
            "2025-01-15T12:04:54.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(datetime!(0999-12-31 23:59:59.9 UTC)),
            "0999-12-31T23:59:59.900Z"
        );
    }

    #[test]
    fn saturates_instead_of_panicking() {
        let mut clock =
            FrameClock::new(datetime!(9999-12-31 00:00 UTC), RtpUnits::VideoMilliseconds);
        let mut last = clock.frame_time(0).wall_clock;
        // Keep stepping forward just under half the circle.
        let mut ts = 0u32;
        for _ in 0..4 {
            ts = ts.wrapping_add((1 << 31) - 1);
            let t = clock.frame_time(ts);
            assert!(t.wall_clock >= last);
            last = t.wall_clock;
        }
        assert_eq!(last, PrimitiveDateTime::MAX.assume_utc());
    }
}
