//! The not-yet-written samples of one track: complete samples (duration known) waiting for the
//! next fragment, plus the one "held" sample whose duration is only known when the next sample
//! arrives.

use crate::boxes::fragment::SampleInfo;
use crate::time::WallClock;

/// The newest sample of a track; its duration is the next sample's time minus its own.
#[derive(Debug, Clone, Copy)]
struct HeldSample {
    time: u64,
    wall_clock: WallClock,
    flags: u32,
    size: u32,
    /// Duration to use if the stream ends after this sample (audio knows it from its length).
    natural_duration: Option<u32>,
}

/// Decode time and wall clock of the first sample, the samples, and their media data.
pub(crate) type Prefix<'a> = ((u64, WallClock), &'a [SampleInfo], &'a [u8]);

/// Pending samples of one track. Buffers are reused across fragments, so steady-state muxing
/// does not allocate per sample.
#[derive(Debug, Default)]
pub(crate) struct PendingTrack {
    samples: Vec<SampleInfo>,
    /// Decode time and wall clock of each entry of `samples`.
    starts: Vec<(u64, WallClock)>,
    /// Media data of `samples`, followed by the held sample's.
    data: Vec<u8>,
    held: Option<HeldSample>,
    last_duration: Option<u32>,
}

impl PendingTrack {
    /// Decode time of the held sample.
    pub(crate) fn held_time(&self) -> Option<u64> {
        self.held.map(|held| held.time)
    }

    /// Decode time of the first pending sample (complete or held).
    pub(crate) fn first_time(&self) -> Option<u64> {
        self.starts
            .first()
            .map(|&(time, _)| time)
            .or(self.held_time())
    }

    /// Number of complete samples.
    pub(crate) fn complete_count(&self) -> usize {
        self.samples.len()
    }

    /// Bytes of media data pending, including the held sample.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.data.len()
    }

    /// Duration of the last sample given a duration, used when the stream ends.
    pub(crate) fn last_duration(&self) -> Option<u32> {
        self.last_duration
    }

    /// Turns the held sample into a complete one with the given duration.
    pub(crate) fn complete_held(&mut self, duration: u32) {
        if let Some(held) = self.held.take() {
            self.samples.push(SampleInfo {
                duration,
                size: held.size,
                flags: held.flags,
            });
            self.starts.push((held.time, held.wall_clock));
            self.last_duration = Some(duration);
        }
    }

    /// Completes the held sample with its natural duration, else `fallback`; for the end of
    /// the stream.
    pub(crate) fn complete_held_at_end(&mut self, fallback: u32) {
        if let Some(held) = self.held {
            self.complete_held(held.natural_duration.unwrap_or(fallback));
        }
    }

    /// Makes a new sample the held one; `write` appends its media data and the size is measured.
    /// The previous held sample must have been completed first.
    pub(crate) fn hold(
        &mut self,
        time: u64,
        wall_clock: WallClock,
        flags: u32,
        natural_duration: Option<u32>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        debug_assert!(self.held.is_none(), "held sample must be completed first");
        let before = self.data.len();
        write(&mut self.data);
        let size = self.data.len() - before;
        self.held = Some(HeldSample {
            time,
            wall_clock,
            flags,
            // The muxer rejects samples above MAX_SAMPLE_BYTES before writing them.
            size: u32::try_from(size).unwrap_or(u32::MAX),
            natural_duration,
        });
    }

    /// Number of complete samples that start before `time`.
    pub(crate) fn count_before(&self, time: u64) -> usize {
        self.starts.partition_point(|&(start, _)| start < time)
    }

    /// The first `count` complete samples: decode time and wall clock of the first, the
    /// samples and their data.
    pub(crate) fn prefix(&self, count: usize) -> Option<Prefix<'_>> {
        let first = *self.starts.first()?;
        let samples = self.samples.get(..count)?;
        let data_len: usize = samples.iter().map(|s| s.size as usize).sum();
        Some((first, samples, self.data.get(..data_len)?))
    }

    /// Removes the first `count` complete samples after they were written out.
    pub(crate) fn drain_prefix(&mut self, count: usize) {
        let count = count.min(self.samples.len());
        let data_len: usize = self.samples[..count].iter().map(|s| s.size as usize).sum();
        self.samples.drain(..count);
        self.starts.drain(..count);
        // Moves the remaining (usually only the held) sample data to the front without
        // giving up the allocation.
        self.data.copy_within(data_len.., 0);
        self.data.truncate(self.data.len() - data_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: WallClock = WallClock::from_unix_micros(0);

    #[test]
    fn held_sample_completes_and_drains() {
        let mut track = PendingTrack::default();
        track.hold(0, WALL, 1, None, |d| d.extend_from_slice(b"aaa"));
        assert_eq!(track.complete_count(), 0);
        assert_eq!(track.first_time(), Some(0));
        track.complete_held(10);
        track.hold(10, WALL, 2, Some(5), |d| d.extend_from_slice(b"bb"));
        track.complete_held(10);
        track.hold(20, WALL, 2, Some(5), |d| d.extend_from_slice(b"c"));

        assert_eq!(track.count_before(10), 1);
        assert_eq!(track.count_before(11), 2);
        let ((first_time, _), samples, data) = track.prefix(1).unwrap();
        assert_eq!((first_time, samples.len(), data), (0, 1, &b"aaa"[..]));

        track.drain_prefix(1);
        assert_eq!(track.first_time(), Some(10));
        let (_, samples, data) = track.prefix(1).unwrap();
        assert_eq!((samples[0].size, data), (2, &b"bb"[..]));
        track.complete_held_at_end(99);
        let (_, samples, data) = track.prefix(2).unwrap();
        assert_eq!(samples[1].duration, 5);
        assert_eq!(data, b"bbc");
        track.drain_prefix(2);
        assert_eq!(track.pending_bytes(), 0);
        assert_eq!(track.first_time(), None);
    }
}
