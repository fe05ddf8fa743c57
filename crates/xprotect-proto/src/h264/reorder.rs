//! Puts RTP packets back into sequence order within a small window, and decides when a missing
//! sequence number is lost.
//!
//! Packets are held only while an earlier sequence number is missing. Once more than
//! `max_reorder` packets wait behind a hole, the hole is declared lost and the waiting packets
//! are released. Waiting is bounded by packet count, not time, so the component stays free of
//! clocks; [`ReorderWindow::flush`] gives up on every hole at once (end of stream, or a timer
//! the caller runs).

use std::collections::VecDeque;

use crate::rtp::RtpPacket;

/// A run of this many packets behind the expected sequence number means the sender restarted
/// its numbering (or the window lost track), so tracking starts over instead of dropping
/// everything that follows.
const RESTART_AFTER_LATE_RUN: u32 = 32;

/// What the window hands on, in order.
#[derive(Debug)]
pub(crate) enum Ordered {
    /// The next packet in sequence.
    Packet(RtpPacket),
    /// Sequence numbers are missing before the next packet and will not be waited for.
    Gap,
    /// Sequence tracking starts over (new SSRC or renumbered sender): whatever came before is
    /// finished.
    Restart,
}

/// Counters owned by the window; merged into the depacketiser's stats.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SequenceCounters {
    pub(crate) late: u64,
    pub(crate) duplicate: u64,
    pub(crate) gaps: u64,
    pub(crate) lost: u64,
    pub(crate) restarts: u64,
}

/// The reorder window.
#[derive(Debug)]
pub(crate) struct ReorderWindow {
    max_reorder: usize,
    ssrc: Option<u32>,
    /// The sequence number the next released packet must have; `None` until the first
    /// sequence number of the stream is settled.
    next: Option<u16>,
    /// Before `next` is known, sort keys are distances from here: half the sequence space
    /// behind the first packet, so packets shortly before and after it order correctly.
    origin: u16,
    /// Packets waiting, sorted by sequence distance ahead of `next` (or `origin`); no two equal.
    pending: VecDeque<RtpPacket>,
    /// Bit `k` set: sequence number `next - 1 - k` was released (not given up on), which tells a
    /// duplicate from a packet that came too late.
    released: u64,
    consecutive_late: u32,
    pub(crate) counters: SequenceCounters,
}

impl ReorderWindow {
    pub(crate) fn new(max_reorder: usize) -> Self {
        Self {
            max_reorder,
            ssrc: None,
            next: None,
            origin: 0,
            pending: VecDeque::with_capacity(max_reorder + 1),
            released: 0,
            consecutive_late: 0,
            counters: SequenceCounters::default(),
        }
    }

    /// Packets currently held.
    pub(crate) fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Takes one packet; hands every packet (and gap) that became releasable to `emit`.
    ///
    /// At the start of a stream (and after a restart) the first sequence number is not known:
    /// the first packet to arrive may have overtaken its predecessor. So packets are held until
    /// more than `max_reorder` wait or one of them carries the marker bit (the end of an access
    /// unit), and release starts from the lowest sequence number held.
    pub(crate) fn push(&mut self, packet: RtpPacket, emit: &mut impl FnMut(Ordered)) {
        if self.ssrc.is_some_and(|ssrc| ssrc != packet.ssrc) {
            self.restart(emit);
        }
        self.ssrc = Some(packet.ssrc);

        let Some(next) = self.next else {
            if self.pending.is_empty() {
                self.origin = packet.sequence.wrapping_sub(0x8000);
            }
            let marker = packet.marker;
            if self.insert(packet, self.origin) && (marker || self.pending.len() > self.max_reorder)
            {
                self.settle_start();
                self.release(self.max_reorder, emit);
            }
            return;
        };

        // Signed distance in sequence space: negative is behind (already released or given up).
        let ahead = packet.sequence.wrapping_sub(next) as i16;
        if ahead < 0 {
            self.take_late(next, packet, emit);
            return;
        }
        self.consecutive_late = 0;

        if ahead == 0 && self.pending.is_empty() {
            // The common case: in order, nothing waiting.
            self.next = Some(next.wrapping_add(1));
            self.released = (self.released << 1) | 1;
            emit(Ordered::Packet(packet));
            return;
        }

        if self.insert(packet, next) {
            self.release(self.max_reorder, emit);
        }
    }

    /// Gives up on every hole and releases everything waiting.
    pub(crate) fn flush(&mut self, emit: &mut impl FnMut(Ordered)) {
        if self.next.is_none() {
            self.settle_start();
        }
        self.release(0, emit);
    }

    /// Inserts in order of distance from `reference`; `false` (and counted) for a duplicate.
    fn insert(&mut self, packet: RtpPacket, reference: u16) -> bool {
        let distance = |p: &RtpPacket| p.sequence.wrapping_sub(reference);
        match self
            .pending
            .binary_search_by_key(&distance(&packet), distance)
        {
            Ok(_) => {
                self.counters.duplicate += 1;
                false
            }
            Err(at) => {
                self.pending.insert(at, packet);
                true
            }
        }
    }

    /// A packet behind `next`: a duplicate of a released one, or one given up on already.
    fn take_late(&mut self, next: u16, packet: RtpPacket, emit: &mut impl FnMut(Ordered)) {
        let behind = u32::from(next.wrapping_sub(packet.sequence)) - 1;
        if behind < u64::BITS && self.released & (1 << behind) != 0 {
            self.counters.duplicate += 1;
            return;
        }
        self.counters.late += 1;
        self.consecutive_late += 1;
        if self.consecutive_late >= RESTART_AFTER_LATE_RUN {
            self.restart(emit);
            self.push(packet, emit);
        }
    }

    /// Starts sequence tracking at the lowest packet held.
    fn settle_start(&mut self) {
        if let Some(front) = self.pending.front() {
            self.next = Some(front.sequence);
            self.released = 0;
        }
    }

    /// Releases in-order packets, declaring holes lost while more than `patience` packets wait.
    fn release(&mut self, patience: usize, emit: &mut impl FnMut(Ordered)) {
        let Some(mut next) = self.next else { return };
        loop {
            while self.pending.front().is_some_and(|p| p.sequence == next) {
                if let Some(packet) = self.pending.pop_front() {
                    next = next.wrapping_add(1);
                    self.released = (self.released << 1) | 1;
                    emit(Ordered::Packet(packet));
                }
            }
            match self.pending.front() {
                Some(front) if self.pending.len() > patience => {
                    let lost = front.sequence.wrapping_sub(next);
                    self.counters.gaps += 1;
                    self.counters.lost += u64::from(lost);
                    self.released = self.released.checked_shl(lost.into()).unwrap_or(0);
                    next = front.sequence;
                    emit(Ordered::Gap);
                }
                _ => break,
            }
        }
        self.next = Some(next);
    }

    fn restart(&mut self, emit: &mut impl FnMut(Ordered)) {
        self.flush(emit);
        self.counters.restarts += 1;
        self.next = None;
        self.released = 0;
        self.consecutive_late = 0;
        emit(Ordered::Restart);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A packet with the marker bit (one packet per frame), unless `marker` is false.
    fn packet(sequence: u16) -> RtpPacket {
        packet_with_marker(sequence, true)
    }

    fn packet_with_marker(sequence: u16, marker: bool) -> RtpPacket {
        RtpPacket {
            sequence,
            timestamp: 0,
            marker,
            payload_type: 96,
            ssrc: 1,
            payload: vec![],
            arrival: Instant::now(),
        }
    }

    #[derive(Debug, PartialEq)]
    enum Seen {
        P(u16),
        Gap,
        Restart,
    }

    fn run(window: &mut ReorderWindow, seqs: &[u16]) -> Vec<Seen> {
        run_packets(window, seqs.iter().map(|&s| packet(s)))
    }

    fn run_packets(
        window: &mut ReorderWindow,
        packets: impl IntoIterator<Item = RtpPacket>,
    ) -> Vec<Seen> {
        let mut seen = Vec::new();
        for p in packets {
            window.push(p, &mut |o| {
                seen.push(match o {
                    Ordered::Packet(p) => Seen::P(p.sequence),
                    Ordered::Gap => Seen::Gap,
                    Ordered::Restart => Seen::Restart,
                })
            });
        }
        seen
    }

    #[test]
    fn reorders_within_window_across_wrap() {
        let mut w = ReorderWindow::new(4);
        let seen = run(&mut w, &[65534, 0, 65535, 2, 1]);
        assert_eq!(
            seen,
            vec![
                Seen::P(65534),
                Seen::P(65535),
                Seen::P(0),
                Seen::P(1),
                Seen::P(2)
            ]
        );
        assert_eq!(w.buffered(), 0);
    }

    #[test]
    fn declares_loss_when_window_overflows() {
        let mut w = ReorderWindow::new(2);
        let seen = run(&mut w, &[10, 12, 13, 14, 11]);
        assert_eq!(
            seen,
            vec![
                Seen::P(10),
                Seen::Gap,
                Seen::P(12),
                Seen::P(13),
                Seen::P(14)
            ]
        );
        assert_eq!(w.counters.gaps, 1);
        assert_eq!(w.counters.lost, 1);
        assert_eq!(w.counters.late, 1);
    }

    #[test]
    fn counts_duplicates_and_flushes() {
        let mut w = ReorderWindow::new(8);
        let mut seen = run(&mut w, &[1, 3, 3, 5]);
        assert_eq!(w.counters.duplicate, 1);
        w.flush(&mut |o| {
            seen.push(match o {
                Ordered::Packet(p) => Seen::P(p.sequence),
                Ordered::Gap => Seen::Gap,
                Ordered::Restart => Seen::Restart,
            })
        });
        assert_eq!(
            seen,
            vec![Seen::P(1), Seen::Gap, Seen::P(3), Seen::Gap, Seen::P(5)]
        );
        assert_eq!((w.counters.gaps, w.counters.lost), (2, 2));
    }

    #[test]
    fn restarts_after_a_run_of_late_packets() {
        let mut w = ReorderWindow::new(4);
        let mut seqs = vec![40000];
        seqs.extend(39000..39000 + RESTART_AFTER_LATE_RUN as u16 + 2);
        let seen = run(&mut w, &seqs);
        let restart_at = seen.iter().position(|s| *s == Seen::Restart).unwrap();
        assert_eq!(
            seen[restart_at + 1],
            Seen::P(39000 + RESTART_AFTER_LATE_RUN as u16 - 1)
        );
        assert_eq!(
            seen.last(),
            Some(&Seen::P(39000 + RESTART_AFTER_LATE_RUN as u16 + 1))
        );
        assert_eq!(seen.len(), 5);
        assert_eq!(w.counters.restarts, 1);
    }

    #[test]
    fn holds_the_start_until_a_marker_or_a_full_window() {
        let mut w = ReorderWindow::new(4);
        let unmarked = [7, 6, 8].map(|s| packet_with_marker(s, false));
        assert_eq!(run_packets(&mut w, unmarked), vec![]);
        assert_eq!(w.buffered(), 3);
        assert_eq!(
            run(&mut w, &[9]),
            vec![Seen::P(6), Seen::P(7), Seen::P(8), Seen::P(9)]
        );

        let mut w = ReorderWindow::new(2);
        let seen = run_packets(&mut w, [11, 10, 13].map(|s| packet_with_marker(s, false)));
        assert_eq!(seen, vec![Seen::P(10), Seen::P(11)]);
        assert_eq!(w.buffered(), 1);
    }

    #[test]
    fn tells_duplicates_from_late_packets() {
        let mut w = ReorderWindow::new(1);
        run(&mut w, &[1, 2, 4, 5, 6]); // 3 is given up on
        run(&mut w, &[2, 3, 5]);
        assert_eq!((w.counters.duplicate, w.counters.late), (2, 1));
    }

    #[test]
    fn restarts_on_ssrc_change() {
        let mut w = ReorderWindow::new(4);
        let mut seen = run(&mut w, &[5]);
        let mut other = packet(900);
        other.ssrc = 2;
        w.push(other, &mut |o| {
            seen.push(match o {
                Ordered::Packet(p) => Seen::P(p.sequence),
                Ordered::Gap => Seen::Gap,
                Ordered::Restart => Seen::Restart,
            })
        });
        assert_eq!(seen, vec![Seen::P(5), Seen::Restart, Seen::P(900)]);
    }
}
