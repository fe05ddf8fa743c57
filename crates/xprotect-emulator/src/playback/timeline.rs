//! A camera's recordings: the sequences of recorded video playback can serve, and the gaps
//! between them.

use std::fmt;

use time::OffsetDateTime;
use time::macros::datetime;

/// One sequence of recorded video, `[start, end)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Recording {
    /// First recorded instant, Unix ms (the first frame's recording time).
    pub start_unix_ms: i64,
    /// End of the sequence, Unix ms, exclusive.
    pub end_unix_ms: i64,
}

impl Recording {
    /// The sequence from `start` (inclusive) to `end` (exclusive).
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Self {
        Self {
            start_unix_ms: unix_ms(start),
            end_unix_ms: unix_ms(end),
        }
    }
}

/// Why a timeline was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// A sequence ends at or before its start.
    #[error("recording {index} is empty or ends before it starts")]
    Empty {
        /// Its position in the list.
        index: usize,
    },
    /// Sequences overlap or are out of order.
    #[error("recording {index} starts before the previous one ends")]
    Overlap {
        /// Its position in the list.
        index: usize,
    },
}

/// A camera's recordings, sorted and disjoint (checked on construction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingTimeline {
    recordings: Vec<Recording>,
}

impl RecordingTimeline {
    /// Checks that the sequences are non-empty, in order and do not overlap.
    pub fn new(recordings: Vec<Recording>) -> Result<Self, TimelineError> {
        for (index, r) in recordings.iter().enumerate() {
            if r.end_unix_ms <= r.start_unix_ms {
                return Err(TimelineError::Empty { index });
            }
            if index > 0 && recordings[index - 1].end_unix_ms > r.start_unix_ms {
                return Err(TimelineError::Overlap { index });
            }
        }
        Ok(Self { recordings })
    }

    /// The default timeline of every emulated camera, on 2025-01-15 (UTC):
    ///
    /// | recording           | then a gap of |
    /// |---------------------|---------------|
    /// | 12:00:00 – 12:05:00 | 10 s          |
    /// | 12:05:10 – 12:10:00 | 15 min        |
    /// | 12:25:00 – 12:30:00 | 30 min        |
    /// | 13:00:00 – 14:00:00 | (end)         |
    ///
    /// Fixed absolute times, so that a playback request and its expected frames can be written
    /// down once (e.g. `--from 2025-01-15T12:04:54Z` plays 6 s, then crosses the 10 s gap).
    pub fn default_recordings() -> Self {
        let recordings = vec![
            Recording::new(
                datetime!(2025-01-15 12:00:00 UTC),
                datetime!(2025-01-15 12:05:00 UTC),
            ),
            Recording::new(
                datetime!(2025-01-15 12:05:10 UTC),
                datetime!(2025-01-15 12:10:00 UTC),
            ),
            Recording::new(
                datetime!(2025-01-15 12:25:00 UTC),
                datetime!(2025-01-15 12:30:00 UTC),
            ),
            Recording::new(
                datetime!(2025-01-15 13:00:00 UTC),
                datetime!(2025-01-15 14:00:00 UTC),
            ),
        ];
        // A literal list, sorted and disjoint by construction.
        Self { recordings }
    }

    /// The sequences, in time order.
    pub fn recordings(&self) -> &[Recording] {
        &self.recordings
    }
}

impl Default for RecordingTimeline {
    fn default() -> Self {
        Self::default_recordings()
    }
}

impl fmt::Display for RecordingTimeline {
    /// `2025-01-15T12:00:00.000Z..2025-01-15T12:05:00.000Z, …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.recordings.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{}..{}",
                format_unix_ms(r.start_unix_ms),
                format_unix_ms(r.end_unix_ms)
            )?;
        }
        Ok(())
    }
}

/// RFC 3339 with milliseconds in UTC, e.g. `2025-01-15T12:00:00.000Z`.
pub fn format_unix_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .map(xprotect_proto::wire::session::format_iso_millis)
        .unwrap_or_else(|_| format!("{unix_ms} ms"))
}

/// Unix milliseconds of `t` (saturating far outside the representable range of an i64).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_overlapping_sequences() {
        let r = |a, b| Recording {
            start_unix_ms: a,
            end_unix_ms: b,
        };
        assert_eq!(
            RecordingTimeline::new(vec![r(0, 0)]),
            Err(TimelineError::Empty { index: 0 })
        );
        assert_eq!(
            RecordingTimeline::new(vec![r(0, 10), r(5, 20)]),
            Err(TimelineError::Overlap { index: 1 })
        );
        assert!(RecordingTimeline::new(vec![r(0, 10), r(10, 20)]).is_ok());
    }

    #[test]
    fn default_timeline_is_valid_and_printable() {
        let default = RecordingTimeline::default();
        assert_eq!(
            RecordingTimeline::new(default.recordings().to_vec()),
            Ok(default.clone())
        );
        assert!(
            default
                .to_string()
                .starts_with("2025-01-15T12:00:00.000Z..2025-01-15T12:05:00.000Z, ")
        );
    }
}
