//! Arbitrary timestamps into the frame clock: no panic (including at the limits of the date
//! range), and formatting always gives the fixed-width UTC form.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use xprotect_proto::clock::{FrameClock, RtpUnits, format_rfc3339_millis};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(start_s) = u.int_in_range(-62_000_000_000i64..=253_000_000_000) else {
        return;
    };
    let Ok(start) = OffsetDateTime::from_unix_timestamp(start_s) else {
        return;
    };
    let Ok(audio) = bool::arbitrary(&mut u) else {
        return;
    };
    let units = if audio {
        RtpUnits::AudioSamples8k
    } else {
        RtpUnits::VideoMilliseconds
    };
    let mut clock = FrameClock::new(start, units);
    // `Unstructured` keeps yielding zeros once empty, so stop on the data, not on errors.
    while u.len() >= 4 {
        let Ok(ts) = u32::arbitrary(&mut u) else {
            return;
        };
        if u.ratio(1, 64).unwrap_or(false) {
            clock.reset(start);
        }
        let t = clock.frame_time(ts);
        assert_eq!(t.media_ms, t.media_us.div_euclid(1000));
        let s = format_rfc3339_millis(t.wall_clock);
        assert!(s.ends_with('Z'));
    }
});
