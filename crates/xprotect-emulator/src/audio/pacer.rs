//! When each 20 ms audio packet of a session is due, and which samples it carries.
//!
//! Pure: the caller passes every instant in. Positions are sample indices of the recording time
//! (`unix_ms × 8`, see [`super::tone`]). The pacer maps them onto the clock through an *anchor*,
//! "recording sample `s` is playing at instant `t`", and a packet is due once its last sample has
//! played (a microphone cannot send sound before it is heard). With video, every frame sent
//! re-anchors the pacer on that frame, so the audio follows the video's pacing: across a gap the
//! next packet waits for the frame that ends the gap (skipped at once or waited out, as the video
//! is). Without video the pacer anchors itself once and runs at speed 1, jumping gaps itself when
//! asked to.
//!
//! Playback never sends audio inside a gap: a packet ends at the end of its recording, and the
//! next one starts at the next recording's start, so its RTP timestamp jumps by the gap, like the
//! video's (PROTOCOL.md §4.2).

use std::time::{Duration, Instant};

use crate::playback::Recording;

use super::tone::{PACKET_SAMPLES, SAMPLES_PER_MS, sample_index};

/// Microseconds per sample at 8 kHz.
const MICROS_PER_SAMPLE: u64 = 125;
/// How far live audio may fall behind its anchor before the stale part is dropped rather than
/// sent in one burst (an engine that stalled this long has lost real time; the receiver's jitter
/// buffer would discard such old audio anyway). Playback keeps every sample: there an anchor far
/// ahead is a skipped gap, and the audio before the gap is still to be sent.
const MAX_CATCH_UP_SAMPLES: i64 = 8_000;

/// One packet's worth of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioBlock {
    /// Sample index (recording time × 8 kHz) of the first sample.
    pub first_sample: i64,
    /// Number of samples (160, fewer at the end of a recording).
    pub samples: usize,
}

impl AudioBlock {
    /// One past the last sample.
    pub fn end(&self) -> i64 {
        self.first_sample + self.samples as i64
    }

    /// Recording time of the first sample, Unix ms (rounded down).
    pub fn recording_unix_ms(&self) -> i64 {
        self.first_sample.div_euclid(SAMPLES_PER_MS)
    }
}

/// What happens when the next packet falls in a gap between recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapMode {
    /// The anchor decides: the next packet is due when the gap has passed on the anchor's clock
    /// (a video frame after the gap re-anchors earlier when the video skips the gap).
    FollowAnchor,
    /// Skip the gap at once: the next recording starts playing when the previous one ended
    /// (`skipGaps` for an audio-only session, which has no video to follow).
    Skip,
}

/// The audio pacing of one session.
#[derive(Debug, Clone)]
pub struct AudioPacer {
    /// Sample index of RTP timestamp 0.
    origin: i64,
    /// Where the next packet starts (before gap resolution).
    next: i64,
    /// The recordings (playback), or `None` for live audio, which has no gaps.
    recordings: Option<Vec<Recording>>,
    gap_mode: GapMode,
    anchor: Option<(Instant, i64)>,
    stopped: bool,
}

impl AudioPacer {
    /// Live audio whose RTP timestamp 0 is recording time `origin_unix_ms` (the video's start
    /// reference); the first packet starts there.
    pub fn live(origin_unix_ms: i64) -> Self {
        let origin = sample_index(origin_unix_ms);
        Self {
            origin,
            next: origin,
            recordings: None,
            gap_mode: GapMode::FollowAnchor,
            anchor: None,
            stopped: false,
        }
    }

    /// Playback from `origin_unix_ms` (the requested playback time, RTP 0) through `recordings`.
    pub fn playback(origin_unix_ms: i64, recordings: &[Recording], gap_mode: GapMode) -> Self {
        Self {
            recordings: Some(recordings.to_vec()),
            gap_mode,
            ..Self::live(origin_unix_ms)
        }
    }

    /// Says that recording time `recording_unix_ms` is playing at `at`.
    pub fn anchor(&mut self, at: Instant, recording_unix_ms: i64) {
        let position = sample_index(recording_unix_ms);
        self.anchor = Some((at, position));
        if self.recordings.is_none() && position - self.next > MAX_CATCH_UP_SAMPLES {
            self.next = position - MAX_CATCH_UP_SAMPLES;
        }
    }

    /// Sends nothing more.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// The RTP timestamp of `block`: samples since the origin, wrapping at 2³² as RTP does.
    pub fn rtp(&self, block: &AudioBlock) -> u32 {
        block.first_sample.wrapping_sub(self.origin) as u32
    }

    /// When the next packet is due (`None`: not anchored yet, or nothing left to send).
    pub fn next_due(&self) -> Option<Instant> {
        self.upcoming().map(|(_, due, _)| due)
    }

    /// The next packet if it is due at `now`; call until `None` to send everything due.
    pub fn poll(&mut self, now: Instant) -> Option<AudioBlock> {
        let (block, due, anchor) = self.upcoming()?;
        if due > now {
            return None;
        }
        self.anchor = Some(anchor);
        self.next = block.end();
        Some(block)
    }

    /// The next block, when it is due, and the anchor to keep once it is sent.
    fn upcoming(&self) -> Option<(AudioBlock, Instant, (Instant, i64))> {
        if self.stopped {
            return None;
        }
        let mut anchor = self.anchor?;
        let (first_sample, limit) = match &self.recordings {
            None => (self.next, i64::MAX),
            Some(recordings) => {
                let recording = recordings
                    .iter()
                    .find(|r| sample_index(r.end_unix_ms) > self.next)?;
                let start = sample_index(recording.start_unix_ms);
                if start > self.next && self.gap_mode == GapMode::Skip {
                    // The recording starts playing the moment the stretch before it ended.
                    anchor = (at_sample(anchor, self.next), start);
                }
                (self.next.max(start), sample_index(recording.end_unix_ms))
            }
        };
        let end = (first_sample + PACKET_SAMPLES as i64).min(limit);
        let block = AudioBlock {
            first_sample,
            samples: usize::try_from(end - first_sample).unwrap_or(0),
        };
        Some((block, at_sample(anchor, end), anchor))
    }
}

/// The instant sample `sample` plays, given `anchor`; samples before the anchor play at it.
fn at_sample((at, position): (Instant, i64), sample: i64) -> Instant {
    let ahead = u64::try_from(sample - position).unwrap_or(0);
    at + Duration::from_micros(ahead.saturating_mul(MICROS_PER_SAMPLE))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON_MS: i64 = 1_736_942_400_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(pacer: &mut AudioPacer, now: Instant) -> Vec<AudioBlock> {
        std::iter::from_fn(|| pacer.poll(now)).collect()
    }

    #[test]
    fn live_packets_are_due_when_their_last_sample_has_played() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::live(NOON_MS);
        assert_eq!(pacer.next_due(), None, "nothing before the first anchor");
        pacer.anchor(t0, NOON_MS);
        assert_eq!(pacer.next_due(), Some(t0 + ms(20)));
        assert_eq!(pacer.poll(t0 + ms(19)), None);
        let first = pacer.poll(t0 + ms(20)).expect("due");
        assert_eq!(pacer.rtp(&first), 0);
        assert_eq!(first.samples, 160);
        assert_eq!(first.recording_unix_ms(), NOON_MS);
        let more = drain(&mut pacer, t0 + ms(100));
        assert_eq!(more.len(), 4);
        assert_eq!(pacer.rtp(&more[3]), 4 * 160);
        assert_eq!(pacer.next_due(), Some(t0 + ms(120)));
    }

    #[test]
    fn a_later_anchor_moves_the_due_times() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::live(NOON_MS);
        pacer.anchor(t0, NOON_MS);
        // A video frame of recording time +40 ms went out 5 ms late.
        pacer.anchor(t0 + ms(45), NOON_MS + 40);
        assert_eq!(
            pacer.next_due(),
            Some(t0 + ms(45)),
            "overdue: at the anchor"
        );
        assert_eq!(drain(&mut pacer, t0 + ms(45)).len(), 2);
        assert_eq!(pacer.next_due(), Some(t0 + ms(65)));
    }

    #[test]
    fn a_live_stall_drops_stale_audio_instead_of_bursting_it() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::live(NOON_MS);
        pacer.anchor(t0, NOON_MS);
        pacer.anchor(t0 + ms(5_000), NOON_MS + 5_000);
        let sent = drain(&mut pacer, t0 + ms(5_000));
        assert_eq!(sent.len(), 50, "one second of catch-up at most");
        assert_eq!(sent[0].first_sample, sample_index(NOON_MS + 4_000));
        assert_eq!(pacer.rtp(&sent[0]), 4_000 * 8, "timestamps keep counting");
    }

    fn recordings() -> Vec<Recording> {
        vec![
            Recording {
                start_unix_ms: NOON_MS,
                end_unix_ms: NOON_MS + 1_010,
            },
            Recording {
                start_unix_ms: NOON_MS + 2_000,
                end_unix_ms: NOON_MS + 3_000,
            },
        ]
    }

    #[test]
    fn playback_stops_at_a_recording_end_and_resumes_after_the_gap_with_a_jump() {
        let t0 = Instant::now();
        // Requested 5 ms before the recording; video's first frame is at its start.
        let mut pacer = AudioPacer::playback(NOON_MS - 5, &recordings(), GapMode::FollowAnchor);
        pacer.anchor(t0, NOON_MS);
        let sent = drain(&mut pacer, t0 + ms(1_010));
        assert_eq!(sent.first().map(|b| pacer.rtp(b)), Some(5 * 8));
        let last = sent.last().copied().expect("packets");
        assert_eq!(
            last.end(),
            sample_index(NOON_MS + 1_010),
            "ends with the recording"
        );
        assert_eq!(
            last.samples, 80,
            "a short last packet: no audio inside the gap"
        );
        // Waiting out the gap on the anchor's clock.
        assert_eq!(pacer.next_due(), Some(t0 + ms(2_020)));
        // The video skips the gap: its first frame after it re-anchors.
        pacer.anchor(t0 + ms(1_040), NOON_MS + 2_000);
        // (An anchor far ahead in playback is a skipped gap, not a stall: nothing is dropped.)
        let mut far = AudioPacer::playback(NOON_MS, &recordings(), GapMode::FollowAnchor);
        far.anchor(t0, NOON_MS + 2_000);
        assert_eq!(
            far.poll(t0).map(|b| b.first_sample),
            Some(sample_index(NOON_MS))
        );
        let resumed = pacer.poll(t0 + ms(1_060)).expect("due after the jump");
        assert_eq!(resumed.first_sample, sample_index(NOON_MS + 2_000));
        assert_eq!(
            pacer.rtp(&resumed),
            2_005 * 8,
            "the timestamp jumps by the gap"
        );
        let rest = drain(&mut pacer, t0 + ms(10_000));
        assert_eq!(
            rest.last().map(AudioBlock::end),
            Some(sample_index(NOON_MS + 3_000))
        );
        assert_eq!(pacer.next_due(), None, "after the last recording");
    }

    #[test]
    fn audio_only_playback_skips_gaps_itself() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::playback(NOON_MS, &recordings(), GapMode::Skip);
        pacer.anchor(t0, NOON_MS);
        assert_eq!(drain(&mut pacer, t0 + ms(1_010)).len(), 51);
        // The next recording plays right after the first ended.
        assert_eq!(pacer.next_due(), Some(t0 + ms(1_030)));
        let resumed = pacer.poll(t0 + ms(1_030)).expect("due");
        assert_eq!(resumed.first_sample, sample_index(NOON_MS + 2_000));
        assert_eq!(pacer.next_due(), Some(t0 + ms(1_050)));
    }

    #[test]
    fn a_start_inside_a_gap_begins_at_the_next_recording() {
        let t0 = Instant::now();
        let mut pacer = AudioPacer::playback(NOON_MS + 1_500, &recordings(), GapMode::FollowAnchor);
        pacer.anchor(t0, NOON_MS + 2_000);
        let first = pacer.poll(t0 + ms(20)).expect("due");
        assert_eq!(first.first_sample, sample_index(NOON_MS + 2_000));
        assert_eq!(pacer.rtp(&first), 500 * 8);
        pacer.stop();
        assert_eq!(pacer.next_due(), None);
    }
}
