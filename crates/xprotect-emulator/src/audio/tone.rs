//! The emulated microphones' sound: a quiet tone with a loud click at every whole second of
//! recording time, as a pure function of the recording time.
//!
//! Time is counted in samples at [`SAMPLE_RATE`] since the Unix epoch (`unix_ms × 8`), the same
//! count an audio RTP timestamp advances by (PROTOCOL.md §4.2). Because the sound depends only on
//! that count, a receiver can find the clicks and check that each one sits exactly on a whole
//! second of the recording time its timestamps claim, and every session, live or playback, hears
//! the same sound for the same instant.

/// Samples per second (PCMU's fixed clock, PROTOCOL.md §4.1).
pub const SAMPLE_RATE: u32 = 8_000;
/// Samples per recording millisecond.
pub const SAMPLES_PER_MS: i64 = (SAMPLE_RATE / 1000) as i64;
/// Samples in one RTP packet: 20 ms, the usual PCMU packet time.
pub const PACKET_SAMPLES: usize = 160;
/// Length of the click at each whole second: 5 ms.
pub const CLICK_SAMPLES: i64 = 40;
/// Peak level of the click. Well above [`TONE_AMPLITUDE`], so a threshold between them finds
/// clicks without false positives, even after µ-law quantisation.
pub const CLICK_AMPLITUDE: i16 = 20_000;
/// Peak level of the background tone (about −30 dBFS).
pub const TONE_AMPLITUDE: i16 = 1_000;
/// Frequency of the background tone, Hz.
pub const TONE_HZ: u32 = 440;
/// Frequency of the click's square wave, Hz (each half-period is 4 samples).
pub const CLICK_HZ: u32 = 1_000;

const SAMPLES_PER_SECOND: i64 = SAMPLE_RATE as i64;
/// The tone repeats exactly every this many samples (440 Hz × 200 samples / 8000 Hz = 11 cycles),
/// so its phase is computed from a small number and keeps full precision at any date.
const TONE_PERIOD_SAMPLES: i64 = 200;
const CLICK_HALF_PERIOD: i64 = SAMPLES_PER_SECOND / (2 * CLICK_HZ as i64);

/// The linear sample at `sample_index` (samples since the Unix epoch at [`SAMPLE_RATE`]).
pub fn sample_at(sample_index: i64) -> i16 {
    let in_second = sample_index.rem_euclid(SAMPLES_PER_SECOND);
    if in_second < CLICK_SAMPLES {
        // A square wave that starts high, so the very first sample of the second is loud.
        return if (in_second / CLICK_HALF_PERIOD) % 2 == 0 {
            CLICK_AMPLITUDE
        } else {
            -CLICK_AMPLITUDE
        };
    }
    let phase = sample_index.rem_euclid(TONE_PERIOD_SAMPLES) as f64 * f64::from(TONE_HZ)
        / f64::from(SAMPLE_RATE);
    // |sin| ≤ 1, so the product stays within ±TONE_AMPLITUDE.
    (f64::from(TONE_AMPLITUDE) * (std::f64::consts::TAU * phase).sin()).round() as i16
}

/// Fills `out` with the samples from `first_sample` on.
pub fn fill(first_sample: i64, out: &mut [i16]) {
    for (offset, sample) in (0_i64..).zip(out.iter_mut()) {
        *sample = sample_at(first_sample + offset);
    }
}

/// The sample index of recording time `unix_ms`.
pub fn sample_index(unix_ms: i64) -> i64 {
    unix_ms.saturating_mul(SAMPLES_PER_MS)
}

/// Start indices of the clicks in `samples` (linear PCM): each run of loud samples that begins
/// after at least [`CLICK_SAMPLES`] quiet ones (or at the start). A receiver's tool and the
/// emulator's own tests use it; `threshold` should sit between the tone and the click levels.
pub fn find_clicks(samples: &[i16], threshold: i16) -> Vec<usize> {
    let mut clicks = Vec::new();
    let mut quiet_run = usize::MAX;
    for (index, sample) in samples.iter().enumerate() {
        if sample.unsigned_abs() >= threshold.unsigned_abs() {
            if quiet_run >= CLICK_SAMPLES as usize {
                clicks.push(index);
            }
            quiet_run = 0;
        } else {
            quiet_run = quiet_run.saturating_add(1);
        }
    }
    clicks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mulaw;

    /// 2025-01-15T12:00:00Z in samples.
    const NOON: i64 = 1_736_942_400_000 * SAMPLES_PER_MS;

    #[test]
    fn clicks_start_exactly_on_whole_seconds() {
        let mut samples = vec![0i16; 3 * SAMPLES_PER_SECOND as usize];
        // Start 0.5 s before a whole second: clicks at 0.5 s, 1.5 s and 2.5 s into the buffer.
        let first = NOON - SAMPLES_PER_SECOND / 2;
        fill(first, &mut samples);
        let clicks = find_clicks(&samples, CLICK_AMPLITUDE / 2);
        assert_eq!(clicks, [4_000, 12_000, 20_000]);
        for c in clicks {
            assert_eq!((first + c as i64).rem_euclid(SAMPLES_PER_SECOND), 0);
        }
    }

    #[test]
    fn the_tone_stays_below_any_click_threshold_after_mu_law() {
        let mut samples = vec![0i16; SAMPLES_PER_SECOND as usize];
        fill(
            NOON + CLICK_SAMPLES,
            &mut samples[..(SAMPLES_PER_SECOND - CLICK_SAMPLES) as usize],
        );
        let peak = samples
            .iter()
            .map(|s| mulaw::decode_sample(mulaw::encode_sample(*s)).unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak > 900 && peak <= 1_100, "tone peak {peak}");
        // Encoded and decoded, a click is still far above it.
        let click = mulaw::decode_sample(mulaw::encode_sample(CLICK_AMPLITUDE));
        assert!(click.unsigned_abs() > 18_000);
    }

    #[test]
    fn the_sound_is_a_function_of_time_alone() {
        let mut a = vec![0i16; PACKET_SAMPLES];
        let mut b = vec![0i16; 2 * PACKET_SAMPLES];
        fill(NOON + 1_000, &mut a);
        fill(NOON + 1_000 - PACKET_SAMPLES as i64, &mut b);
        assert_eq!(a[..], b[PACKET_SAMPLES..]);
        // Before 1970 too: no negative-modulo surprises.
        assert_eq!(sample_at(-SAMPLES_PER_SECOND), CLICK_AMPLITUDE);
        assert!(sample_at(-1).unsigned_abs() <= TONE_AMPLITUDE as u16);
    }

    #[test]
    fn a_click_at_the_buffer_start_counts() {
        let mut samples = vec![0i16; 100];
        fill(NOON, &mut samples);
        assert_eq!(find_clicks(&samples, 10_000), [0]);
        assert_eq!(sample_index(1_736_942_400_000), NOON);
    }
}
