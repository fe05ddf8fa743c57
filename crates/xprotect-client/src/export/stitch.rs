//! How a range is cut into chunks for parallel sessions, and where each chunk's frames end.
//!
//! Pure: times in, times out. A gateway starts a playback session at a keyframe, not at the
//! exact time asked for: our emulator encodes a keyframe at the first grid frame at or after it,
//! a real gateway probably starts at the recorded keyframe at or before it, and with skipGaps a
//! start inside a gap jumps to the next recording (possibly past the chunk's own end). So the
//! requested chunk starts only spread the sessions over the range; what is written is decided
//! by the frames that actually came:
//!
//! - `first[k]`: the first frame chunk `k` received from its first keyframe on (the chunk
//!   skips anything before it), clamped to `to`; `None` once the chunk ended without any.
//! - chunk `k` writes its frames recorded before `end[k] = min(first[j] for j > k, to)`, and
//!   stops at the first frame at or after it.
//!
//! Each later chunk's stream begins with a keyframe at `first[j]`, so the chunk that follows in
//! the file always starts at a keyframe exactly where the one before it stopped: no frame twice,
//! none missing. A chunk whose first frame is at or after its end (it lies in a gap and its
//! session jumped into a later chunk's range, or a later session started even earlier at a
//! keyframe before its own start) contributes nothing. Taking the minimum over *all* later
//! chunks, not just the next one, is what keeps this true when a later session starts before
//! an earlier one's first frame: the earlier chunks stop there and the one with the earliest
//! start carries on.

use std::time::Duration;
use time::OffsetDateTime;

/// A chunk shorter than this costs more in session set-up than its playback saves.
pub(crate) const MIN_CHUNK: Duration = Duration::from_secs(2);

/// The requested starts of the chunks of `[from, to)`: at most `parallel`, equal in length (to
/// the millisecond), none shorter than [`MIN_CHUNK`] (but always at least one). The first is
/// `from`.
pub(crate) fn chunk_starts(
    from: OffsetDateTime,
    to: OffsetDateTime,
    parallel: usize,
) -> Vec<OffsetDateTime> {
    let range = (to - from).as_seconds_f64().max(0.0);
    let by_length = (range / MIN_CHUNK.as_secs_f64()).floor() as usize;
    let chunks = parallel.min(by_length).max(1);
    // Whole milliseconds after `from`: frame times are the requested start plus RTP
    // milliseconds (PROTOCOL.md §4.2), so a sub-millisecond start would shift every frame of
    // its session off the others' by that fraction, and the same frame would not compare equal.
    (0..chunks)
        .map(|k| {
            let offset_ms = (range * 1000.0 * k as f64 / chunks as f64).floor();
            from + time::Duration::milliseconds(offset_ms as i64)
        })
        .collect()
}

/// What is known about a chunk's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum First {
    /// Nothing has come yet.
    Unknown,
    /// Its first frame (clamped to `to`).
    At(OffsetDateTime),
    /// It ended without a frame.
    None,
}

/// The end of every chunk whose end is already certain (every later chunk's first frame is
/// known), else `None` for it.
pub(crate) fn chunk_ends(first: &[First], to: OffsetDateTime) -> Vec<Option<OffsetDateTime>> {
    let mut ends = vec![None; first.len()];
    // Walking backwards: the minimum over the later chunks, certain until an unknown one.
    let mut end = Some(to);
    for (k, later) in first.iter().enumerate().rev() {
        if let Some(slot) = ends.get_mut(k) {
            *slot = end;
        }
        end = match (*later, end) {
            (First::Unknown, _) | (_, None) => None,
            (First::At(at), Some(end)) => Some(at.min(end)),
            (First::None, end) => end,
        };
    }
    ends
}

/// An upper bound of chunk `k`'s end from what is known so far: a chunk's session may stop at
/// the first frame at or after it, since its end can only be earlier.
pub(crate) fn chunk_end_bound(first: &[First], k: usize, to: OffsetDateTime) -> OffsetDateTime {
    first
        .iter()
        .skip(k + 1)
        .filter_map(|first| match first {
            First::At(at) => Some(*at),
            First::Unknown | First::None => None,
        })
        .fold(to, OffsetDateTime::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-15 12:04:53.3 UTC);
    const TO: OffsetDateTime = datetime!(2025-01-15 12:05:14.5 UTC);

    #[test]
    fn chunks_are_equal_and_not_too_short() {
        let starts = chunk_starts(T0, TO, 4);
        assert_eq!(
            starts,
            [
                T0,
                datetime!(2025-01-15 12:04:58.6 UTC),
                datetime!(2025-01-15 12:05:03.9 UTC),
                datetime!(2025-01-15 12:05:09.2 UTC),
            ]
        );
        assert_eq!(chunk_starts(T0, T0 + MIN_CHUNK * 3, 6).len(), 3);
        assert_eq!(chunk_starts(T0, T0 + Duration::from_millis(500), 6), [T0]);
        assert_eq!(chunk_starts(T0, TO, 1), [T0]);
        assert_eq!(chunk_starts(T0, TO, 0), [T0]);
        // 7 s in 3: whole milliseconds, never a third of one.
        let from = datetime!(2025-01-15 12:05:05 UTC);
        assert_eq!(
            chunk_starts(from, from + Duration::from_secs(7), 3),
            [
                from,
                datetime!(2025-01-15 12:05:07.333 UTC),
                datetime!(2025-01-15 12:05:09.666 UTC),
            ]
        );
    }

    #[test]
    fn each_chunk_ends_at_the_earliest_later_first_frame() {
        let at = |s: &str| {
            First::At(
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap(),
            )
        };
        // Chunk 1 starts mid-GOP at its own time; chunks 2 and 3 lie in a gap and both jump
        // to 12:05:10: chunk 2 contributes nothing, chunk 1 stops at 12:05:10.
        let first = [
            at("2025-01-15T12:04:53.320Z"),
            at("2025-01-15T12:04:58.600Z"),
            at("2025-01-15T12:05:10Z"),
            at("2025-01-15T12:05:10Z"),
        ];
        let ends = chunk_ends(&first, TO);
        assert_eq!(
            ends,
            [
                Some(datetime!(2025-01-15 12:04:58.6 UTC)),
                Some(datetime!(2025-01-15 12:05:10 UTC)),
                Some(datetime!(2025-01-15 12:05:10 UTC)),
                Some(TO),
            ]
        );
    }

    #[test]
    fn a_later_session_starting_earlier_cuts_every_chunk_before_it() {
        let t = |s| T0 + Duration::from_secs(s);
        // Chunk 2's gateway started at a keyframe before chunk 1's first frame.
        let first = [
            First::At(t(0)),
            First::At(t(6)),
            First::At(t(5)),
            First::None,
        ];
        assert_eq!(
            chunk_ends(&first, TO),
            [Some(t(5)), Some(t(5)), Some(TO), Some(TO)]
        );
    }

    #[test]
    fn ends_wait_for_every_later_first_frame() {
        let t = |s| T0 + Duration::from_secs(s);
        let first = [First::At(t(0)), First::Unknown, First::At(t(10))];
        assert_eq!(chunk_ends(&first, TO), [None, Some(t(10)), Some(TO)]);
        assert_eq!(chunk_end_bound(&first, 0, TO), t(10));
        assert_eq!(chunk_end_bound(&first, 2, TO), TO);
        // A first frame after `to` never pushes an end past it.
        assert_eq!(
            chunk_ends(&[First::At(t(0)), First::At(TO)], TO),
            [Some(TO), Some(TO)]
        );
    }
}
