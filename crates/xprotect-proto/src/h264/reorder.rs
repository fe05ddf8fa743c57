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
    /// The sequence number the next released packet must have; `None` before the first packet.
    next: Option<u16>,
    /// Packets waiting behind a hole, sorted by distance ahead of `next` (all ahead, none equal).
    pending: VecDeque<RtpPacket>,
    consecutive_late: u32,
    pub(crate) counters: SequenceCounters,
}

impl ReorderWindow {
    pub(crate) fn new(max_reorder: usize) -> Self {
        Self {
            max_reorder,
            ssrc: None,
            next: None,
            pending: VecDeque::with_capacity(max_reorder + 1),
            consecutive_late: 0,
            counters: SequenceCounters::default(),
        }
    }

    /// Packets currently held behind a hole.
    pub(crate) fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Takes one packet; hands every packet (and gap) that became releasable to `emit`.
    pub(crate) fn push(&mut self, packet: RtpPacket, emit: &mut impl FnMut(Ordered)) {
        if self.ssrc.is_some_and(|ssrc| ssrc != packet.ssrc) {
            self.restart(emit);
        }
        self.ssrc = Some(packet.ssrc);

        let Some(next) = self.next else {
            self.next = Some(packet.sequence.wrapping_add(1));
            emit(Ordered::Packet(packet));
            return;
        };

        // Signed distance in sequence space: negative is behind (already released or given up).
        let ahead = packet.sequence.wrapping_sub(next) as i16;
        if ahead < 0 {
            self.counters.late += 1;
            self.consecutive_late += 1;
            if self.consecutive_late >= RESTART_AFTER_LATE_RUN {
                self.restart(emit);
                self.next = Some(packet.sequence.wrapping_add(1));
                emit(Ordered::Packet(packet));
            }
            return;
        }
        self.consecutive_late = 0;

        if ahead == 0 && self.pending.is_empty() {
            // The common case: in order, nothing waiting.
            self.next = Some(next.wrapping_add(1));
            emit(Ordered::Packet(packet));
            return;
        }

        let distance = |p: &RtpPacket| p.sequence.wrapping_sub(next);
        match self
            .pending
            .binary_search_by_key(&distance(&packet), distance)
        {
            Ok(_) => self.counters.duplicate += 1,
            Err(at) => {
                self.pending.insert(at, packet);
                self.release(self.max_reorder, emit);
            }
        }
    }

    /// Gives up on every hole and releases everything waiting.
    pub(crate) fn flush(&mut self, emit: &mut impl FnMut(Ordered)) {
        self.release(0, emit);
    }

    /// Releases in-order packets, declaring holes lost while more than `patience` packets wait.
    fn release(&mut self, patience: usize, emit: &mut impl FnMut(Ordered)) {
        let Some(mut next) = self.next else { return };
        loop {
            while self.pending.front().is_some_and(|p| p.sequence == next) {
                if let Some(packet) = self.pending.pop_front() {
                    next = next.wrapping_add(1);
                    emit(Ordered::Packet(packet));
                }
            }
            match self.pending.front() {
                Some(front) if self.pending.len() > patience => {
                    let lost = u64::from(front.sequence.wrapping_sub(next));
                    self.counters.gaps += 1;
                    self.counters.lost += lost;
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
        self.consecutive_late = 0;
        emit(Ordered::Restart);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn packet(sequence: u16) -> RtpPacket {
        RtpPacket {
            sequence,
            timestamp: 0,
            marker: false,
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
        let mut seen = Vec::new();
        for &s in seqs {
            window.push(packet(s), &mut |o| {
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
