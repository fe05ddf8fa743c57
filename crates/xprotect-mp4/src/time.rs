//! Wall-clock time as the muxer sees it, and its encodings in MP4 (NTP for `prft`, seconds since
//! 1904 for `mvhd`/`tkhd`/`mdhd`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant in microseconds since the Unix epoch (UTC, leap seconds ignored).
///
/// A plain integer rather than [`SystemTime`] so that the muxer stays free of clock reads and
/// platform differences; convert at the edge with [`WallClock::from_system_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallClock {
    /// Microseconds since 1970-01-01T00:00:00Z; negative before it.
    pub unix_micros: i64,
}

/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_TO_UNIX_SECONDS: i64 = 2_208_988_800;
/// Seconds from the MP4 epoch (1904) to the Unix epoch.
const MP4_TO_UNIX_SECONDS: i64 = 2_082_844_800;
const MICROS_PER_SECOND: i64 = 1_000_000;

impl WallClock {
    /// Creates a wall-clock instant from microseconds since the Unix epoch.
    pub const fn from_unix_micros(unix_micros: i64) -> Self {
        Self { unix_micros }
    }

    /// Converts from [`SystemTime`], saturating far outside ±292,000 years.
    pub fn from_system_time(time: SystemTime) -> Self {
        let unix_micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_micros())
                .map(|micros| -micros)
                .unwrap_or(i64::MIN),
        };
        Self { unix_micros }
    }

    /// Converts to [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_micros(self.unix_micros.unsigned_abs());
        if self.unix_micros >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    /// Returns this instant moved by `micros` (negative moves back), or `None` on overflow.
    pub fn checked_add_micros(self, micros: i64) -> Option<Self> {
        self.unix_micros
            .checked_add(micros)
            .map(Self::from_unix_micros)
    }

    /// Encodes as a 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
    ///
    /// NTP seconds wrap in 2036; following RFC 4330 §3, values with the top bit clear are read as
    /// era 1, so the representable range is 1968-01-20 to 2104-02-26. Outside it, `None`.
    pub(crate) fn to_ntp64(self) -> Option<u64> {
        let seconds = self.unix_micros.div_euclid(MICROS_PER_SECOND);
        let micros = self.unix_micros.rem_euclid(MICROS_PER_SECOND);
        let ntp_seconds = seconds.checked_add(NTP_TO_UNIX_SECONDS)?;
        if !(1 << 31..(1 << 32) + (1 << 31)).contains(&ntp_seconds) {
            return None;
        }
        let wrapped_seconds = (ntp_seconds as u64) & 0xffff_ffff;
        // Round to nearest so that `from_ntp64` gives back the same microsecond: one microsecond
        // is ~4295 fraction units, far coarser than the rounding error.
        let fraction = (((micros as u64) << 32) + 500_000) / 1_000_000;
        Some((wrapped_seconds << 32) | fraction)
    }

    /// Decodes a 64-bit NTP timestamp (see [`WallClock::to_ntp64`] for the era rule).
    pub(crate) fn from_ntp64(ntp: u64) -> Self {
        let ntp_seconds = (ntp >> 32) as i64;
        let fraction = ntp & 0xffff_ffff;
        let ntp_seconds = if ntp_seconds & (1 << 31) == 0 {
            ntp_seconds + (1 << 32)
        } else {
            ntp_seconds
        };
        let micros = ((fraction * 1_000_000 + (1 << 31)) >> 32) as i64;
        Self::from_unix_micros((ntp_seconds - NTP_TO_UNIX_SECONDS) * MICROS_PER_SECOND + micros)
    }

    /// Whole seconds since 1904-01-01 (the MP4 epoch), clamped to 0 before it.
    pub(crate) fn to_mp4_seconds(self) -> u64 {
        let seconds = self.unix_micros.div_euclid(MICROS_PER_SECOND) + MP4_TO_UNIX_SECONDS;
        u64::try_from(seconds).unwrap_or(0)
    }
}

impl From<SystemTime> for WallClock {
    fn from(time: SystemTime) -> Self {
        Self::from_system_time(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_round_trip_is_exact_to_the_microsecond() {
        for micros in [
            0i64,
            1,
            999_999,
            1_700_000_000_123_456,
            2_085_978_495_999_999, // just before the 2036 NTP wrap
            2_085_978_496_000_001, // just after it
            -31_000_000_000_000,   // 1969-01-08, before the Unix epoch
        ] {
            let clock = WallClock::from_unix_micros(micros);
            let ntp = clock.to_ntp64().unwrap();
            assert_eq!(WallClock::from_ntp64(ntp), clock, "micros {micros}");
        }
    }

    #[test]
    fn ntp_known_value() {
        // 2000-01-01T00:00:00.5Z = NTP 3155673600.5
        let clock = WallClock::from_unix_micros(946_684_800_500_000);
        assert_eq!(clock.to_ntp64(), Some((3_155_673_600u64 << 32) | (1 << 31)));
    }

    #[test]
    fn ntp_out_of_range_is_none() {
        assert_eq!(WallClock::from_unix_micros(i64::MIN).to_ntp64(), None);
        assert_eq!(WallClock::from_unix_micros(i64::MAX).to_ntp64(), None);
    }

    #[test]
    fn mp4_epoch() {
        assert_eq!(
            WallClock::from_unix_micros(0).to_mp4_seconds(),
            2_082_844_800
        );
        assert_eq!(WallClock::from_unix_micros(i64::MIN).to_mp4_seconds(), 0);
    }

    #[test]
    fn system_time_round_trip() {
        let time = UNIX_EPOCH + Duration::from_micros(1_700_000_000_654_321);
        assert_eq!(WallClock::from_system_time(time).to_system_time(), time);
        let before = UNIX_EPOCH - Duration::from_micros(5);
        assert_eq!(WallClock::from(before).unix_micros, -5);
        assert_eq!(WallClock::from(before).to_system_time(), before);
    }
}
