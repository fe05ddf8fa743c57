//! The frame clock against the cases PROTOCOL.md §4.2/§4.4 describe.

use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use xprotect_proto::clock::{FrameClock, RtpUnits, RtpUnwrapper, format_rfc3339_millis};

const START: OffsetDateTime = datetime!(2025-01-15 12:00:00 UTC);
const WRAP: i64 = 1 << 32;

struct Case {
    name: &'static str,
    units: RtpUnits,
    /// Raw timestamps in arrival order.
    timestamps: &'static [u32],
    /// Expected media time since the start reference, microseconds.
    media_us: &'static [i64],
}

const CASES: &[Case] = &[
    Case {
        name: "live from zero, 25 fps",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, 40, 80, 120],
        media_us: &[0, 40_000, 80_000, 120_000],
    },
    Case {
        name: "wrap at 2^32 ms (49.7 days in)",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[u32::MAX - 39, u32::MAX, 40, 80],
        media_us: &[
            (WRAP - 40) * 1000,
            (WRAP - 1) * 1000,
            (WRAP + 40) * 1000,
            (WRAP + 80) * 1000,
        ],
    },
    Case {
        name: "reordered back across the wrap",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[u32::MAX - 10, 5, u32::MAX - 3, 12],
        media_us: &[
            (WRAP - 11) * 1000,
            (WRAP + 5) * 1000,
            (WRAP - 4) * 1000,
            (WRAP + 12) * 1000,
        ],
    },
    Case {
        name: "recording gap of one hour jumps the timestamp",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, 40, 3_600_040, 3_600_080],
        media_us: &[0, 40_000, 3_600_040_000, 3_600_080_000],
    },
    Case {
        // At speed 4 frames arrive four times as fast, but timestamps stay media time.
        name: "speed 4",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, 160, 320, 4_000],
        media_us: &[0, 160_000, 320_000, 4_000_000],
    },
    Case {
        name: "just under the 24-day limit is a forward step",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, (1 << 31) - 1],
        media_us: &[0, ((1 << 31) - 1) * 1000],
    },
    Case {
        // The ambiguity XProtect's "24 days" limitation comes from: a jump of 2^31 ms or more
        // cannot be told from a step backwards.
        name: "a jump of 2^31 ms reads as backwards",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, 1 << 31],
        media_us: &[0, -(1 << 31) * 1000],
    },
    Case {
        name: "24-day limit reached in steps is fine",
        units: RtpUnits::VideoMilliseconds,
        timestamps: &[0, 1 << 30, 1 << 31, 3 << 30, 5],
        media_us: &[
            0,
            (1 << 30) * 1000,
            (1 << 31) * 1000,
            (3 << 30) * 1000,
            (WRAP + 5) * 1000,
        ],
    },
    Case {
        name: "PCMU audio counts 8 kHz samples",
        units: RtpUnits::AudioSamples8k,
        timestamps: &[0, 160, 161, 8_000],
        media_us: &[0, 20_000, 20_125, 1_000_000],
    },
    Case {
        name: "audio wraps after 2^32 samples",
        units: RtpUnits::AudioSamples8k,
        timestamps: &[u32::MAX - 159, 0],
        media_us: &[(WRAP - 160) * 125, WRAP * 125],
    },
];

#[test]
fn table() {
    for case in CASES {
        let mut clock = FrameClock::new(START, case.units);
        for (&ts, &us) in case.timestamps.iter().zip(case.media_us) {
            let t = clock.frame_time(ts);
            assert_eq!(t.media_us, us, "{}: ts {ts}", case.name);
            assert_eq!(t.media_ms, us.div_euclid(1000), "{}: ts {ts}", case.name);
            assert_eq!(
                t.wall_clock,
                START + Duration::microseconds(us),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn reset_starts_a_new_stream() {
    let mut clock = FrameClock::new(START, RtpUnits::VideoMilliseconds);
    clock.frame_time(u32::MAX - 5);
    clock.frame_time(10);
    let reconnect = datetime!(2025-01-15 13:00:00 UTC);
    clock.reset(reconnect);
    let t = clock.frame_time(250);
    assert_eq!(t.extended, 250);
    assert_eq!(
        format_rfc3339_millis(t.wall_clock),
        "2025-01-15T13:00:00.250Z"
    );
    assert_eq!(clock.start_ref(), reconnect);
}

#[test]
fn start_reference_in_another_offset_reports_utc() {
    let mut clock = FrameClock::new(
        datetime!(2025-01-15 14:00:00 +02:00),
        RtpUnits::VideoMilliseconds,
    );
    let t = clock.frame_time(294_123);
    assert_eq!(t.wall_clock.offset(), time::UtcOffset::UTC);
    assert_eq!(
        format_rfc3339_millis(t.wall_clock),
        "2025-01-15T12:04:54.123Z"
    );
}

proptest! {
    /// Timestamps that only move forward (by less than half the circle) map to wall-clock times
    /// that only move forward, however many times they wrap.
    #[test]
    fn monotonic_across_wraps(
        first in any::<u32>(),
        steps in proptest::collection::vec(0u32..(1 << 31), 1..200),
        audio in any::<bool>(),
    ) {
        let units = if audio { RtpUnits::AudioSamples8k } else { RtpUnits::VideoMilliseconds };
        let mut clock = FrameClock::new(START, units);
        let mut ts = first;
        let mut last = clock.frame_time(ts);
        let mut expected = i64::from(first);
        for step in steps {
            ts = ts.wrapping_add(step);
            expected += i64::from(step);
            let now = clock.frame_time(ts);
            prop_assert!(now.extended >= last.extended);
            prop_assert!(now.wall_clock >= last.wall_clock);
            prop_assert_eq!(now.extended, expected);
            last = now;
        }
    }

    /// Small backwards reordering never moves a timestamp into another cycle.
    #[test]
    fn tolerates_reordering(base in any::<u32>(), jitter in proptest::collection::vec(0u32..1000, 1..50)) {
        let mut u = RtpUnwrapper::new();
        let anchor = u.extend(base);
        for j in jitter {
            let back = u.extend(base.wrapping_sub(j));
            prop_assert_eq!(back, anchor - i64::from(j));
        }
    }

    #[test]
    fn format_always_has_three_decimals_and_z(ms in -1_000_000_000_000i64..100_000_000_000_000) {
        let t = OffsetDateTime::UNIX_EPOCH + Duration::milliseconds(ms);
        let s = format_rfc3339_millis(t);
        prop_assert_eq!(s.len(), 24);
        prop_assert!(s.ends_with('Z'));
        prop_assert_eq!(&s[19..20], ".");
        let parsed = OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339);
        prop_assert_eq!(parsed.ok(), Some(t));
    }
}
