//! Splicing the frames of successive sessions of one camera into one stream without a missing
//! or a duplicate frame: make-before-break replacement and resume after a loss, sans IO.
//!
//! The caller numbers its sessions ([`SessionKey`]), tells the machine when one starts or ends,
//! and pushes every video frame with its metadata ([`FrameMeta`]: time, keyframe flag, a 64-bit
//! hash of the access unit's bytes). The machine answers each push with a [`Verdict`] and queues
//! [`HandoverOutput`]s: frames to deliver (with the time to deliver them at) and sessions to close.
//!
//! ```text
//!  current ──frames──┐                       ┌── Deliver(frame, time)
//!                    ├──► Handover ──────────┼── Close { old, Replaced }      (switch done)
//!  candidate ─frames─┘   (history of hashes) └── Close { candidate, NoUsableKeyframe }
//! ```
//!
//! How the two streams are spliced:
//!
//! - **Same encoder output** (live: every session of a camera carries the bytes of one encoder,
//!   a joining session starts at a keyframe the others also get or already got). The machine keeps
//!   the hashes and delivered times of the last few seconds of delivered frames. A candidate frame
//!   whose hash was delivered is a duplicate: dropped, and it *aligns* the candidate (its clock
//!   offset = delivered time − candidate time). A current frame whose hash the candidate has
//!   buffered is the splice point: it is delivered, the candidate's frames after it follow. Either
//!   way the consumer's decoder sees one continuous byte stream, and the candidate's times are
//!   moved by the offset so that they continue the current ones.
//! - **Independent encodings** (playback, gateways that encode per session): once no hash relation
//!   showed up for [`HandoverConfig::hash_wait`], the candidate's first keyframe at time `T` after
//!   the last delivered frame is the splice point: the current session delivers while its frames
//!   are before `T`, its first frame at or after `T` is dropped and the candidate takes over from
//!   its keyframe.
//! - **Resume** (the current session is gone): the candidate's frames are delivered at once, minus
//!   duplicates (hash, or time at or before the last delivered frame), and after any dropped frame
//!   only from the next keyframe: a P-frame whose reference was dropped is never delivered.
//!
//! Delivered times are strictly increasing, whatever the input.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The caller's number for one session.
pub type SessionKey = u64;

/// What the machine needs to know about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// The frame's time as its session reports it, microseconds on any fixed scale (Unix time).
    pub time_us: i64,
    /// Whether it is a keyframe (decodable on its own).
    pub keyframe: bool,
    /// A 64-bit hash of the access unit's bytes: equal bytes, equal hash.
    pub hash: u64,
}

/// Tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverConfig {
    /// How far back delivered frames can be recognised by hash.
    pub history: Duration,
    /// At most this many delivered frames are remembered (bounds memory at high frame rates).
    pub max_history_frames: usize,
    /// How long a candidate may run without a usable splice point before it is given up (while
    /// the current session still delivers).
    pub switch_timeout: Duration,
    /// How long after the candidate's first frame to wait for a hash relation before splicing by
    /// time. Live sessions of one encoder relate within a frame or two; zero for playback.
    pub hash_wait: Duration,
    /// At most this many candidate frames are held; the oldest go first.
    pub max_buffered_frames: usize,
}

impl Default for HandoverConfig {
    /// 3 s of history (75 frames at 25 fps), 10 s to switch, 1 s to find a hash relation, 30 s
    /// of buffered frames at 25 fps.
    fn default() -> Self {
        Self {
            history: Duration::from_secs(3),
            max_history_frames: 1024,
            switch_timeout: Duration::from_secs(10),
            hash_wait: Duration::from_secs(1),
            max_buffered_frames: 750,
        }
    }
}

/// The answer to one pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered: a [`HandoverOutput::Deliver`] for it is queued.
    Deliver,
    /// Held until the candidate takes over (or is given up).
    Buffer,
    /// Not delivered.
    Drop(DropReason),
}

/// Why a frame was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its bytes were delivered already (from another session).
    Duplicate,
    /// Its time is not after the last delivered frame's.
    NotAfterLastDelivered,
    /// A frame of its chain was dropped; waiting for a keyframe.
    AwaitingKeyframe,
    /// The candidate has this part of the stream and takes over from here.
    Superseded,
    /// From a session that is neither current nor candidate (closed or unknown).
    Stale,
    /// The candidate's buffer was full.
    BufferFull,
}

/// Why a session should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The candidate took over.
    Replaced,
    /// The candidate found no usable splice point within the switch timeout.
    NoUsableKeyframe,
    /// A newer candidate was started.
    Superseded,
}

/// How a candidate took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceKind {
    /// At a frame both sessions carried (same bytes).
    Hash,
    /// At the candidate's first keyframe after the last delivered frame.
    Time,
    /// The current session was gone; the candidate resumed the stream.
    Resume,
}

/// A frame to hand to the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T> {
    /// The session it came from.
    pub session: SessionKey,
    /// The caller's frame.
    pub frame: T,
    /// The time to deliver it at (its own time plus its session's offset); strictly after the
    /// previous delivery's.
    pub time_us: i64,
    /// Whether it is a keyframe.
    pub keyframe: bool,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverOutput<T> {
    /// Hand this frame to the consumer, in this order.
    Deliver(Delivery<T>),
    /// The candidate is now the current session.
    Switched {
        /// The session replaced, if it was still there.
        from: Option<SessionKey>,
        /// The new current session.
        to: SessionKey,
        /// How.
        kind: SpliceKind,
        /// What is added to the new session's frame times.
        offset_us: i64,
    },
    /// Close this session.
    Close {
        /// Which.
        session: SessionKey,
        /// Why.
        reason: CloseReason,
    },
}

/// Frame counts, for diagnostics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoverCounters {
    /// Frames delivered.
    pub delivered: u64,
    /// Frames dropped as duplicates by hash.
    pub duplicates: u64,
    /// Frames dropped for a time not after the last delivered one.
    pub not_after_last: u64,
    /// Frames dropped while waiting for a keyframe.
    pub awaiting_keyframe: u64,
    /// Current-session frames dropped because the candidate took over there.
    pub superseded: u64,
    /// Frames from closed or unknown sessions.
    pub stale: u64,
    /// Candidate frames dropped: buffer full, or older than a frame a splice settled on.
    pub discarded_buffer: u64,
    /// Candidates that replaced a live session.
    pub replacements: u64,
    /// Candidates that resumed after the current session was gone.
    pub resumes: u64,
    /// Candidates given up.
    pub abandoned: u64,
}

#[derive(Debug)]
struct Source {
    key: SessionKey,
    offset_us: i64,
    alive: bool,
    need_keyframe: bool,
}

#[derive(Debug)]
struct Candidate<T> {
    key: SessionKey,
    /// Give up at this instant if the current session is still alive (`None`: never).
    deadline: Option<Instant>,
    first_frame_at: Option<Instant>,
    buffer: VecDeque<(FrameMeta, T)>,
    /// Set once a candidate frame was found among the delivered ones: its clock offset.
    aligned: Option<i64>,
    /// The chain state at the aligning frame.
    aligned_needs_keyframe: bool,
}

#[derive(Debug, Clone, Copy)]
struct Delivered {
    hash: u64,
    time_us: i64,
    session: SessionKey,
}

/// The splicing state machine; `T` is the caller's frame type.
#[derive(Debug)]
pub struct Handover<T> {
    config: HandoverConfig,
    current: Option<Source>,
    candidate: Option<Candidate<T>>,
    history: VecDeque<Delivered>,
    last_delivered_us: Option<i64>,
    outputs: VecDeque<HandoverOutput<T>>,
    counters: HandoverCounters,
    /// The verdict on the last frame a promotion released from the candidate's buffer.
    last_release: Verdict,
}

impl<T> Handover<T> {
    /// A machine with no session yet.
    pub fn new(config: HandoverConfig) -> Self {
        Self {
            config,
            current: None,
            candidate: None,
            history: VecDeque::new(),
            last_delivered_us: None,
            outputs: VecDeque::new(),
            counters: HandoverCounters::default(),
            last_release: Verdict::Buffer,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HandoverConfig {
        &self.config
    }

    /// A session starts. The first one becomes current; later ones are candidates (a previous
    /// candidate is closed as superseded).
    pub fn start(&mut self, now: Instant, key: SessionKey) {
        if self.current.is_none() && self.last_delivered_us.is_none() {
            self.current = Some(Source {
                key,
                offset_us: 0,
                alive: true,
                need_keyframe: true,
            });
            return;
        }
        if let Some(old) = self.candidate.take() {
            self.counters.discarded_buffer += old.buffer.len() as u64;
            self.counters.abandoned += 1;
            self.outputs.push_back(HandoverOutput::Close {
                session: old.key,
                reason: CloseReason::Superseded,
            });
        }
        self.candidate = Some(Candidate {
            key,
            deadline: now.checked_add(self.config.switch_timeout),
            first_frame_at: None,
            buffer: VecDeque::new(),
            aligned: None,
            aligned_needs_keyframe: true,
        });
    }

    /// A session ended by itself (or was closed). A candidate buffered while the current session
    /// was alive takes over at once when the current one ends.
    pub fn ended(&mut self, key: SessionKey) {
        if self.candidate.as_ref().is_some_and(|c| c.key == key) {
            if let Some(candidate) = self.candidate.take() {
                self.counters.discarded_buffer += candidate.buffer.len() as u64;
            }
            return;
        }
        let Some(current) = self.current.as_mut().filter(|c| c.key == key) else {
            return;
        };
        current.alive = false;
        let ready = self
            .candidate
            .as_ref()
            .is_some_and(|c| c.aligned.is_some() || !c.buffer.is_empty());
        if ready {
            self.promote_candidate();
        }
    }

    /// The current session, if any (the one whose audio and commands count).
    pub fn current(&self) -> Option<SessionKey> {
        self.current.as_ref().map(|c| c.key)
    }

    /// Whether the current session is still running.
    pub fn current_alive(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.alive)
    }

    /// The candidate, if one is running.
    pub fn candidate(&self) -> Option<SessionKey> {
        self.candidate.as_ref().map(|c| c.key)
    }

    /// What is added to the current session's times.
    pub fn current_offset_us(&self) -> i64 {
        self.current.as_ref().map_or(0, |c| c.offset_us)
    }

    /// The time of the last delivered frame.
    pub fn last_delivered_us(&self) -> Option<i64> {
        self.last_delivered_us
    }

    /// Frame counts so far.
    pub fn counters(&self) -> &HandoverCounters {
        &self.counters
    }

    /// When [`Handover::handle_timeout`] wants to be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.current_alive() {
            return None;
        }
        self.candidate.as_ref()?.deadline
    }

    /// Time passed: gives up a candidate that found no splice point in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired = self
            .candidate
            .as_ref()
            .is_some_and(|c| c.deadline.is_some_and(|d| now >= d) && self.current_alive());
        if expired && let Some(candidate) = self.candidate.take() {
            self.counters.discarded_buffer += candidate.buffer.len() as u64;
            self.counters.abandoned += 1;
            self.outputs.push_back(HandoverOutput::Close {
                session: candidate.key,
                reason: CloseReason::NoUsableKeyframe,
            });
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<HandoverOutput<T>> {
        self.outputs.pop_front()
    }

    /// A video frame from session `key`.
    pub fn push(&mut self, now: Instant, key: SessionKey, meta: FrameMeta, frame: T) -> Verdict {
        if self.candidate.as_ref().is_some_and(|c| c.key == key) {
            return self.push_candidate(now, meta, frame);
        }
        if self.current.as_ref().is_some_and(|c| c.key == key) {
            return self.push_current(now, meta, frame);
        }
        self.counters.stale += 1;
        Verdict::Drop(DropReason::Stale)
    }

    fn push_current(&mut self, now: Instant, meta: FrameMeta, frame: T) -> Verdict {
        let Some(candidate) = self.candidate.as_mut() else {
            return self.steady(meta, frame);
        };
        // Both sessions carry this very frame: deliver it here, the candidate continues after it.
        if let Some(pos) = candidate
            .buffer
            .iter()
            .position(|(m, _)| m.hash == meta.hash)
        {
            let candidate_time = candidate.buffer[pos].0.time_us;
            let discarded = candidate.buffer.drain(..=pos).count();
            self.counters.discarded_buffer += discarded as u64;
            let current_offset = self.current_offset_us();
            let verdict = self.steady(meta, frame);
            let offset = meta
                .time_us
                .saturating_add(current_offset)
                .saturating_sub(candidate_time);
            let need_keyframe = self.current.as_ref().is_none_or(|c| c.need_keyframe);
            if let Some(candidate) = self.candidate.as_mut() {
                candidate.aligned = Some(offset);
                candidate.aligned_needs_keyframe = need_keyframe;
            }
            self.promote_candidate();
            return verdict;
        }
        // Independent encodings: the candidate takes over at its first keyframe after what was
        // delivered, once the current session reaches it.
        let hash_wait_over = candidate.aligned.is_none()
            && candidate
                .first_frame_at
                .and_then(|at| at.checked_add(self.config.hash_wait))
                .is_some_and(|over_at| now >= over_at);
        if hash_wait_over {
            let current_time = meta.time_us.saturating_add(self.current_offset_us());
            if let Some(splice) = self.time_splice_point()
                && current_time >= splice
            {
                self.counters.superseded += 1;
                self.promote_candidate();
                return Verdict::Drop(DropReason::Superseded);
            }
        }
        self.steady(meta, frame)
    }

    fn push_candidate(&mut self, now: Instant, meta: FrameMeta, frame: T) -> Verdict {
        let delivered = self
            .history
            .iter()
            .rev()
            .find(|d| d.hash == meta.hash)
            .copied();
        let current_alive = self.current_alive();
        let Some(candidate) = self.candidate.as_mut() else {
            return Verdict::Drop(DropReason::Stale);
        };
        candidate.first_frame_at.get_or_insert(now);
        if let Some(delivered) = delivered {
            // Its bytes were delivered: it aligns the candidate, and anything it buffered before
            // is older than a delivered frame.
            candidate.aligned = Some(delivered.time_us.saturating_sub(meta.time_us));
            // The consumer's chain is intact at a delivered frame.
            candidate.aligned_needs_keyframe = false;
            self.counters.discarded_buffer += candidate.buffer.len() as u64;
            candidate.buffer.clear();
            self.counters.duplicates += 1;
            return Verdict::Drop(DropReason::Duplicate);
        }
        if candidate.aligned.is_some() || !current_alive {
            // Aligned: this is the first frame the consumer has not seen. Or nothing else will
            // come: resume from here.
            if let Some(candidate) = self.candidate.as_mut() {
                candidate.buffer.push_back((meta, frame));
            }
            self.promote_candidate();
            return self.last_verdict();
        }
        if candidate.buffer.len() >= self.config.max_buffered_frames {
            candidate.buffer.pop_front();
            self.counters.discarded_buffer += 1;
        }
        candidate.buffer.push_back((meta, frame));
        Verdict::Buffer
    }

    /// The verdict on the frame that triggered a promotion: it was pushed last to the buffer.
    fn last_verdict(&self) -> Verdict {
        self.last_release
    }

    /// The candidate's first keyframe after the last delivered frame, in delivery time.
    fn time_splice_point(&self) -> Option<i64> {
        let candidate = self.candidate.as_ref()?;
        candidate
            .buffer
            .iter()
            .map(|(m, _)| m)
            .find(|m| m.keyframe && self.last_delivered_us.is_none_or(|last| m.time_us > last))
            .map(|m| m.time_us)
    }

    /// The candidate becomes current: the old one is closed if alive, the buffer released.
    fn promote_candidate(&mut self) {
        let Some(mut candidate) = self.candidate.take() else {
            return;
        };
        let old = self.current.take();
        let old_alive = old.as_ref().is_some_and(|o| o.alive);
        let (kind, offset_us, need_keyframe) = match candidate.aligned {
            Some(offset) => (SpliceKind::Hash, offset, candidate.aligned_needs_keyframe),
            None if old_alive => (SpliceKind::Time, 0, true),
            None => (SpliceKind::Resume, 0, true),
        };
        if old_alive {
            self.counters.replacements += 1;
        } else {
            self.counters.resumes += 1;
        }
        let from = old.as_ref().map(|o| o.key).filter(|_| old_alive);
        if let Some(from) = from {
            self.outputs.push_back(HandoverOutput::Close {
                session: from,
                reason: CloseReason::Replaced,
            });
        }
        self.outputs.push_back(HandoverOutput::Switched {
            from,
            to: candidate.key,
            kind,
            offset_us,
        });
        self.current = Some(Source {
            key: candidate.key,
            offset_us,
            alive: true,
            need_keyframe,
        });
        self.last_release = Verdict::Buffer;
        for (meta, frame) in candidate.buffer.drain(..) {
            self.last_release = self.steady(meta, frame);
        }
    }

    /// One frame of the current session, with no candidate involved.
    fn steady(&mut self, meta: FrameMeta, frame: T) -> Verdict {
        let Some(current) = self.current.as_mut() else {
            self.counters.stale += 1;
            return Verdict::Drop(DropReason::Stale);
        };
        let key = current.key;
        // A frame another session delivered (a resumed session replaying its first GOP): the
        // consumer's decoder is exactly at this point of the stream.
        if self
            .history
            .iter()
            .any(|d| d.hash == meta.hash && d.session != key)
        {
            current.need_keyframe = false;
            self.counters.duplicates += 1;
            return Verdict::Drop(DropReason::Duplicate);
        }
        let time_us = meta.time_us.saturating_add(current.offset_us);
        if self.last_delivered_us.is_some_and(|last| time_us <= last) {
            // Whatever follows may reference it.
            current.need_keyframe = true;
            self.counters.not_after_last += 1;
            return Verdict::Drop(DropReason::NotAfterLastDelivered);
        }
        if current.need_keyframe && !meta.keyframe {
            self.counters.awaiting_keyframe += 1;
            return Verdict::Drop(DropReason::AwaitingKeyframe);
        }
        current.need_keyframe = false;
        self.remember(meta.hash, time_us, key);
        self.counters.delivered += 1;
        self.outputs.push_back(HandoverOutput::Deliver(Delivery {
            session: key,
            frame,
            time_us,
            keyframe: meta.keyframe,
        }));
        Verdict::Deliver
    }

    fn remember(&mut self, hash: u64, time_us: i64, session: SessionKey) {
        self.last_delivered_us = Some(time_us);
        self.history.push_back(Delivered {
            hash,
            time_us,
            session,
        });
        let window = i64::try_from(self.config.history.as_micros()).unwrap_or(i64::MAX);
        let oldest = time_us.saturating_sub(window);
        while self.history.front().is_some_and(|d| {
            d.time_us < oldest || self.history.len() > self.config.max_history_frames
        }) {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME_US: i64 = 40_000;
    const GOP: u64 = 25;

    /// Frame `i` of one encoder: 25 fps, a keyframe every 25 frames, hash = index.
    fn frame(i: u64) -> FrameMeta {
        FrameMeta {
            time_us: i as i64 * FRAME_US,
            keyframe: i.is_multiple_of(GOP),
            hash: i,
        }
    }

    /// The same frame as seen by a session whose clock is off by `skew_us`.
    fn skewed(i: u64, skew_us: i64) -> FrameMeta {
        FrameMeta {
            time_us: frame(i).time_us + skew_us,
            ..frame(i)
        }
    }

    /// A frame of an independent encoding of the same recording (different bytes).
    fn reencoded(i: u64, keyframe_every: u64) -> FrameMeta {
        FrameMeta {
            time_us: i as i64 * FRAME_US,
            keyframe: i.is_multiple_of(keyframe_every),
            hash: 1_000_000 + i,
        }
    }

    struct Harness {
        machine: Handover<u64>,
        now: Instant,
        delivered: Vec<(u64, i64)>,
        closed: Vec<(SessionKey, CloseReason)>,
        switches: Vec<SpliceKind>,
    }

    impl Harness {
        fn new(config: HandoverConfig) -> Self {
            Self {
                machine: Handover::new(config),
                now: Instant::now(),
                delivered: Vec::new(),
                closed: Vec::new(),
                switches: Vec::new(),
            }
        }

        fn start(&mut self, key: SessionKey) {
            self.machine.start(self.now, key);
            self.drain();
        }

        fn push(&mut self, key: SessionKey, meta: FrameMeta) -> Verdict {
            self.now += Duration::from_millis(40);
            let verdict = self.machine.push(self.now, key, meta, meta.hash);
            self.drain();
            verdict
        }

        fn ended(&mut self, key: SessionKey) {
            self.machine.ended(key);
            self.drain();
        }

        fn drain(&mut self) {
            while let Some(output) = self.machine.poll_output() {
                match output {
                    HandoverOutput::Deliver(d) => self.delivered.push((d.frame, d.time_us)),
                    HandoverOutput::Close { session, reason } => {
                        self.closed.push((session, reason))
                    }
                    HandoverOutput::Switched { kind, .. } => self.switches.push(kind),
                }
            }
        }

        fn hashes(&self) -> Vec<u64> {
            self.delivered.iter().map(|(h, _)| *h).collect()
        }

        fn assert_times_step(&self, step: i64) {
            for pair in self.delivered.windows(2) {
                assert_eq!(pair[1].1 - pair[0].1, step, "{:?}", self.delivered);
            }
        }
    }

    fn live() -> HandoverConfig {
        HandoverConfig::default()
    }

    fn playback() -> HandoverConfig {
        HandoverConfig {
            hash_wait: Duration::ZERO,
            ..HandoverConfig::default()
        }
    }

    #[test]
    fn one_session_delivers_in_order_and_never_twice() {
        let mut h = Harness::new(live());
        h.start(1);
        for i in 0..10 {
            assert_eq!(h.push(1, frame(i)), Verdict::Deliver);
        }
        // A repeat and a step back are dropped, and then everything up to the next keyframe.
        assert_eq!(
            h.push(1, frame(9)),
            Verdict::Drop(DropReason::NotAfterLastDelivered)
        );
        assert_eq!(
            h.push(1, frame(11)),
            Verdict::Drop(DropReason::AwaitingKeyframe)
        );
        assert_eq!(h.push(1, frame(25)), Verdict::Deliver);
        assert_eq!(h.hashes(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 25]);
    }

    #[test]
    fn first_frame_must_be_a_keyframe() {
        let mut h = Harness::new(live());
        h.start(1);
        assert_eq!(
            h.push(1, frame(3)),
            Verdict::Drop(DropReason::AwaitingKeyframe)
        );
        assert_eq!(h.push(1, frame(25)), Verdict::Deliver);
    }

    /// Live, emulator style: the joiner's first frame is an IDR both sessions get; here the old
    /// session delivers it first.
    #[test]
    fn live_switch_when_the_old_session_delivered_the_shared_keyframe_first() {
        let mut h = Harness::new(live());
        h.start(1);
        for i in 0..30 {
            h.push(1, frame(i));
        }
        h.start(2);
        h.push(1, frame(30));
        h.push(1, frame(31));
        // The new session's clock is 7 ms off: its times are moved onto the old one's.
        assert_eq!(
            h.push(2, skewed(30, 7_000)),
            Verdict::Drop(DropReason::Duplicate)
        );
        assert_eq!(
            h.push(2, skewed(31, 7_000)),
            Verdict::Drop(DropReason::Duplicate)
        );
        assert_eq!(h.push(2, skewed(32, 7_000)), Verdict::Deliver);
        assert_eq!(h.closed, [(1, CloseReason::Replaced)]);
        assert_eq!(h.push(1, frame(32)), Verdict::Drop(DropReason::Stale));
        for i in 33..60 {
            assert_eq!(h.push(2, skewed(i, 7_000)), Verdict::Deliver);
        }
        assert_eq!(h.hashes(), (0..60).collect::<Vec<_>>());
        h.assert_times_step(FRAME_US);
        assert_eq!(h.switches, [SpliceKind::Hash]);
        assert_eq!(h.machine.counters().replacements, 1);
    }

    /// Live: the joiner gets the shared frames before the old session does.
    #[test]
    fn live_switch_when_the_new_session_is_ahead() {
        let mut h = Harness::new(live());
        h.start(1);
        for i in 0..30 {
            h.push(1, frame(i));
        }
        h.start(2);
        assert_eq!(h.push(2, skewed(30, -12_000)), Verdict::Buffer);
        assert_eq!(h.push(2, skewed(31, -12_000)), Verdict::Buffer);
        assert_eq!(h.push(2, skewed(32, -12_000)), Verdict::Buffer);
        // The old session's copy of frame 30 is the splice point; 31 and 32 follow from the new.
        assert_eq!(h.push(1, frame(30)), Verdict::Deliver);
        assert_eq!(h.closed, [(1, CloseReason::Replaced)]);
        assert_eq!(h.push(1, frame(31)), Verdict::Drop(DropReason::Stale));
        for i in 33..40 {
            assert_eq!(h.push(2, skewed(i, -12_000)), Verdict::Deliver);
        }
        assert_eq!(h.hashes(), (0..40).collect::<Vec<_>>());
        h.assert_times_step(FRAME_US);
    }

    /// A gateway that replays the current GOP to a joiner, whose clock is then off by the GOP's
    /// age: the replayed frames are recognised and the offset learnt.
    #[test]
    fn gop_replay_with_a_late_clock_is_deduplicated_and_retimed() {
        let mut h = Harness::new(live());
        h.start(1);
        for i in 0..40 {
            h.push(1, frame(i));
        }
        h.start(2);
        // The joiner starts at keyframe 25 with its clock 600 ms late.
        let skew = 600_000;
        for i in 25..40 {
            assert_eq!(
                h.push(2, skewed(i, skew)),
                Verdict::Drop(DropReason::Duplicate)
            );
        }
        h.push(1, frame(40));
        assert_eq!(
            h.push(2, skewed(40, skew)),
            Verdict::Drop(DropReason::Duplicate)
        );
        assert_eq!(h.push(2, skewed(41, skew)), Verdict::Deliver);
        assert_eq!(h.hashes(), (0..42).collect::<Vec<_>>());
        h.assert_times_step(FRAME_US);
    }

    /// Playback with independent encodings: the replacement starts ahead at its keyframe T; the
    /// old session fills in up to T.
    #[test]
    fn time_splice_at_the_candidates_keyframe() {
        let mut h = Harness::new(playback());
        h.start(1);
        for i in 0..20 {
            h.push(1, frame(i));
        }
        h.start(2);
        // Started 2 s ahead (frame 70 is a keyframe of the re-encoding at 5-frame GOPs).
        for i in 70..75 {
            assert_eq!(h.push(2, reencoded(i, 5)), Verdict::Buffer);
        }
        for i in 20..70 {
            assert_eq!(h.push(1, frame(i)), Verdict::Deliver, "frame {i}");
        }
        assert_eq!(h.push(1, frame(70)), Verdict::Drop(DropReason::Superseded));
        assert_eq!(h.closed, [(1, CloseReason::Replaced)]);
        assert_eq!(h.switches, [SpliceKind::Time]);
        let times: Vec<i64> = h.delivered.iter().map(|(_, t)| t / FRAME_US).collect();
        assert_eq!(times, (0..75).collect::<Vec<_>>());
        assert_eq!(h.delivered[70].0, 1_000_070);
    }

    #[test]
    fn a_candidate_keyframe_not_after_the_last_delivered_is_skipped() {
        let mut h = Harness::new(playback());
        h.start(1);
        for i in 0..20 {
            h.push(1, frame(i));
        }
        h.start(2);
        // Its first keyframe (15) is behind; its frames are buffered but the splice waits for 30.
        for i in 10..32 {
            h.push(2, reencoded(i, 15));
        }
        for i in 20..30 {
            assert_eq!(h.push(1, frame(i)), Verdict::Deliver);
        }
        assert_eq!(h.push(1, frame(30)), Verdict::Drop(DropReason::Superseded));
        let times: Vec<i64> = h.delivered.iter().map(|(_, t)| t / FRAME_US).collect();
        assert_eq!(times, (0..32).collect::<Vec<_>>());
    }

    /// Live sessions that do not share bytes: the time splice waits for the hash wait, then for
    /// a keyframe after what was delivered.
    #[test]
    fn time_splice_in_live_waits_for_hash_evidence_first() {
        let mut h = Harness::new(live());
        h.start(1);
        for i in 0..10 {
            h.push(1, frame(i));
        }
        h.start(2);
        h.push(2, reencoded(10, 50));
        // Within the hash wait (1 s = 25 pushes of 40 ms) the old session goes on.
        for i in 10..30 {
            assert_eq!(h.push(1, frame(i)), Verdict::Deliver);
        }
        for i in 11..60 {
            h.push(2, reencoded(i, 50));
        }
        for i in 30..50 {
            assert_eq!(h.push(1, frame(i)), Verdict::Deliver);
        }
        assert_eq!(h.push(1, frame(50)), Verdict::Drop(DropReason::Superseded));
        let times: Vec<i64> = h.delivered.iter().map(|(_, t)| t / FRAME_US).collect();
        assert_eq!(times, (0..60).collect::<Vec<_>>());
    }

    #[test]
    fn resume_after_a_loss_drops_what_was_delivered_and_waits_for_a_keyframe() {
        let mut h = Harness::new(playback());
        h.start(1);
        for i in 0..32 {
            h.push(1, frame(i));
        }
        h.ended(1);
        h.start(2);
        // Resumed at 31 + 1 ms; this gateway restarts at the previous keyframe, re-encoded.
        for i in 25..32 {
            assert_eq!(
                h.push(2, reencoded(i, 25)),
                Verdict::Drop(DropReason::NotAfterLastDelivered)
            );
        }
        // 32 needs 25..31 of this encoding, which the consumer never got.
        assert_eq!(
            h.push(2, reencoded(32, 25)),
            Verdict::Drop(DropReason::AwaitingKeyframe)
        );
        for i in 33..50 {
            h.push(2, reencoded(i, 25));
        }
        assert_eq!(h.push(2, reencoded(50, 25)), Verdict::Deliver);
        assert_eq!(h.switches, [SpliceKind::Resume]);
        assert!(h.closed.is_empty());
    }

    #[test]
    fn resume_with_the_same_bytes_continues_without_a_hole() {
        let mut h = Harness::new(playback());
        h.start(1);
        for i in 0..32 {
            h.push(1, frame(i));
        }
        h.ended(1);
        h.start(2);
        for i in 25..32 {
            assert_eq!(h.push(2, frame(i)), Verdict::Drop(DropReason::Duplicate));
        }
        for i in 32..40 {
            assert_eq!(h.push(2, frame(i)), Verdict::Deliver);
        }
        assert_eq!(h.hashes(), (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_candidate_buffered_when_the_old_session_dies_takes_over() {
        let mut h = Harness::new(playback());
        h.start(1);
        for i in 0..20 {
            h.push(1, frame(i));
        }
        h.start(2);
        for i in 25..30 {
            h.push(2, reencoded(i, 25));
        }
        h.ended(1);
        assert_eq!(h.switches, [SpliceKind::Resume]);
        assert!(h.closed.is_empty());
        assert_eq!(h.delivered.len(), 25);
    }

    #[test]
    fn a_candidate_without_a_splice_point_is_given_up_and_the_old_goes_on() {
        let mut h = Harness::new(live());
        h.start(1);
        h.push(1, frame(0));
        h.start(2);
        let deadline = h.machine.poll_timeout().unwrap();
        h.machine
            .handle_timeout(deadline - Duration::from_millis(1));
        h.drain();
        assert!(h.closed.is_empty());
        h.machine.handle_timeout(deadline);
        h.drain();
        assert_eq!(h.closed, [(2, CloseReason::NoUsableKeyframe)]);
        assert_eq!(h.machine.poll_timeout(), None);
        assert_eq!(h.push(2, frame(1)), Verdict::Drop(DropReason::Stale));
        assert_eq!(h.push(1, frame(1)), Verdict::Deliver);
    }

    #[test]
    fn a_newer_candidate_supersedes_the_previous_one() {
        let mut h = Harness::new(live());
        h.start(1);
        h.push(1, frame(0));
        h.start(2);
        h.start(3);
        assert_eq!(h.closed, [(2, CloseReason::Superseded)]);
        assert_eq!(h.machine.candidate(), Some(3));
    }

    #[test]
    fn a_candidate_that_ends_is_forgotten() {
        let mut h = Harness::new(live());
        h.start(1);
        h.push(1, frame(0));
        h.start(2);
        h.push(2, frame(5));
        h.ended(2);
        assert_eq!(h.machine.candidate(), None);
        assert_eq!(h.push(1, frame(1)), Verdict::Deliver);
    }

    /// A unit-level soak: an hour of 25 fps live with a replacement every 10 s, the joiner
    /// getting the shared IDR before or after the old session, clocks skewed per session.
    #[test]
    fn soak_an_hour_of_replacements_loses_and_repeats_nothing() {
        let mut h = Harness::new(live());
        let mut key = 1;
        h.start(key);
        let mut skew = 0i64;
        let mut i = 0u64;
        let frames = 25 * 3600;
        while i < frames {
            h.push(key, skewed(i, skew));
            i += 1;
            if i.is_multiple_of(250) && i < frames - 10 {
                let new_key = key + 1;
                let new_skew = ((new_key * 7919) % 60) as i64 * 1_000 - 30_000;
                h.start(new_key);
                // The joiner's first frame is the IDR at i; alternate who gets it first.
                if new_key % 2 == 0 {
                    h.push(key, skewed(i, skew));
                    h.push(new_key, skewed(i, new_skew));
                    h.push(new_key, skewed(i + 1, new_skew));
                } else {
                    h.push(new_key, skewed(i, new_skew));
                    h.push(new_key, skewed(i + 1, new_skew));
                    h.push(key, skewed(i, skew));
                    h.push(key, skewed(i + 1, skew));
                }
                i += 2;
                key = new_key;
                skew = new_skew;
            }
        }
        assert_eq!(h.hashes(), (0..frames).collect::<Vec<_>>());
        h.assert_times_step(FRAME_US);
        assert_eq!(h.machine.counters().replacements, u64::from(key as u32) - 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Old(u8),
        New(u8),
        Start,
        EndOld,
        EndNew,
        Timeout(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => any::<u8>().prop_map(Op::Old),
            8 => any::<u8>().prop_map(Op::New),
            1 => Just(Op::Start),
            1 => Just(Op::EndOld),
            1 => Just(Op::EndNew),
            1 => any::<u16>().prop_map(Op::Timeout),
        ]
    }

    fn skew(key: SessionKey) -> i64 {
        (key * 7919 % 90) as i64 * 1_000 - 45_000
    }

    proptest! {
        /// Any interleaving of any frames: no panic, delivered times strictly increase, no
        /// frame is delivered twice.
        #[test]
        fn never_panics_and_deliveries_strictly_increase(
            ops in proptest::collection::vec(op(), 0..400),
            hash_wait_ms in 0u64..2000,
        ) {
            let mut h = Harness::new(HandoverConfig {
                hash_wait: Duration::from_millis(hash_wait_ms),
                max_buffered_frames: 16,
                max_history_frames: 32,
                ..HandoverConfig::default()
            });
            let (mut old, mut new) = (1u64, 0u64);
            h.start(old);
            for op in ops {
                match op {
                    // Each session's clock has its own constant skew.
                    Op::Old(x) => { h.push(old, skewed(u64::from(x), skew(old))); }
                    Op::New(x) => { h.push(new, skewed(u64::from(x) / 2, skew(new))); }
                    Op::Start => {
                        // The caller replaces what is current; a closed session may still
                        // have frames in flight (pushed as stale).
                        if let Some(current) = h.machine.current() {
                            old = current;
                        }
                        new = old.max(new) + 1;
                        h.start(new);
                    }
                    Op::EndOld => h.ended(old),
                    Op::EndNew => h.ended(new),
                    Op::Timeout(ms) => {
                        h.now += Duration::from_millis(u64::from(ms));
                        h.machine.handle_timeout(h.now);
                        h.drain();
                    }
                }
            }
            for pair in h.delivered.windows(2) {
                prop_assert!(pair[1].1 > pair[0].1);
            }
            let mut hashes = h.hashes();
            hashes.sort_unstable();
            let before = hashes.len();
            hashes.dedup();
            prop_assert_eq!(before, hashes.len());
        }

        /// Two lossless views of one encoder, joined at any point, interleaved any way: the
        /// consumer sees every frame exactly once.
        #[test]
        fn shared_encoder_switch_is_lossless(
            join in 25u64..200,
            new_first in prop::bool::ANY,
            lag in 0usize..6,
            skew_ms in -500i64..500,
        ) {
            let mut h = Harness::new(live());
            h.start(1);
            let end = join + 60;
            let mut old_next = 0u64;
            // The old session runs `lag` frames ahead of or behind the join point.
            while old_next < join { h.push(1, frame(old_next)); old_next += 1; }
            h.start(2);
            let mut new_next = join;
            let skew = skew_ms * 1_000;
            if new_first {
                for _ in 0..lag { h.push(2, skewed(new_next, skew)); new_next += 1; }
            } else {
                for _ in 0..lag { h.push(1, frame(old_next)); old_next += 1; }
            }
            while new_next < end || old_next < end {
                if old_next < end { h.push(1, frame(old_next)); old_next += 1; }
                if new_next < end { h.push(2, skewed(new_next, skew)); new_next += 1; }
            }
            prop_assert_eq!(h.hashes(), (0..end).collect::<Vec<_>>());
            h.assert_times_step(FRAME_US);
        }
    }
}
