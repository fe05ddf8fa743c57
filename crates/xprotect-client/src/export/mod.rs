//! Exporting a recorded range to MP4, as fast as the gateway sends every frame of it.
//!
//! ```text
//!  export(plan) ─► probe session, speed 1: the frame interval, and is there recording in range?
//!              ─► export session, skipGaps, speed ≤ 32: its first frames are checked; if the
//!                 gateway drops frames at that speed, close it and start again slower (speed)
//!              ─► frames before `to` ─► MediaTimeline (gaps kept, or closed) ─► Mp4Writer
//!  stops at: the first frame at/after `to` (not written) │ no frame for `end_wait` (the
//!            recordings ended) │ cancel │ the reader of stdout went away
//! ```
//!
//! Frame times are recording times (PROTOCOL.md §4.2). In the file, media time is recording time
//! minus the first frame's, so gaps stay gaps unless [`ExportPlan::close_gaps`] is set; either
//! way each fragment's `prft` carries the true recording time of its first frame.

mod speed;
mod timeline;

pub use timeline::Gap;

use crate::gateway::Gateway;
use crate::login::TokenSource;
use crate::record::{Mp4Writer, OutputTarget, RecordError};
use crate::session::{Session, SessionError, SessionEvent, SessionOptions, VideoFrame};
use speed::SpeedCheck;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use timeline::MediaTimeline;
use xprotect_proto::clock::format_rfc3339_millis;
use xprotect_proto::wire::Playback;

/// The fastest playback the protocol allows (PROTOCOL.md §4.3).
pub const MAX_SPEED: f64 = 32.0;
/// Frames the speed-1 probe looks at to measure the frame interval (one gap among them is fine).
const PROBE_FRAMES: usize = 5;
/// Frames of a fast session checked against the interval before anything is written.
const CHECK_FRAMES: usize = 5;
/// Sessions at ever lower speeds before giving up on a gateway that keeps dropping frames.
const MAX_EXPORT_SESSIONS: u32 = 4;
/// How long a closed session may take to end before we move on (the gateway frees it then).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Warnings kept in the report; the rest are only logged.
const MAX_WARNINGS: usize = 100;

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// Start of the range (a frame recorded at this instant is included).
    pub from: OffsetDateTime,
    /// End of the range: the first frame recorded at or after it ends the export, unwritten.
    pub to: OffsetDateTime,
    /// Where the MP4 goes. Created when the first frame is written, so a range without
    /// recording leaves no empty file behind.
    pub output: OutputTarget,
    /// Take the gaps out of the file's timeline (frames stay at their true wall-clock times in
    /// the `prft` boxes, so `frames FILE` prints recording times either way).
    pub close_gaps: bool,
    /// The fastest speed to ask for, `0 < speed ≤ 32`; lowered automatically if the gateway
    /// drops frames at it.
    pub max_speed: f64,
    /// After this long without a frame (once media is connected) the recordings count as
    /// ended. Far longer than a gateway needs to jump a gap with skipGaps.
    pub end_wait: Duration,
}

impl ExportPlan {
    /// Defaults: speed 32, gaps kept, 5 s of silence means the recordings ended.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, output: OutputTarget) -> Self {
        Self {
            from,
            to,
            output,
            close_gaps: false,
            max_speed: MAX_SPEED,
            end_wait: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> Result<(), ExportError> {
        if self.from >= self.to {
            return Err(ExportError::EmptyRange {
                from: self.from,
                to: self.to,
            });
        }
        if !(self.max_speed.is_finite() && self.max_speed > 0.0 && self.max_speed <= MAX_SPEED) {
            return Err(ExportError::InvalidSpeed(self.max_speed));
        }
        Ok(())
    }
}

/// How far an export is, after each frame written.
#[derive(Debug, Clone, Copy)]
pub struct ExportProgress {
    /// Recording time of the frame just written.
    pub recorded_up_to: OffsetDateTime,
    /// Frames written so far.
    pub frames: u64,
    /// The session's playback speed.
    pub speed: f64,
    /// Share of the range done, 0..=1.
    pub done: f64,
}

/// Why an export ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportEnd {
    /// A frame at or after `to` arrived: the range is complete.
    ReachedTo,
    /// No frame came for `end_wait`: the gateway has no recording after the last frame written.
    RecordingsEnded,
    /// The caller's cancel future completed (Ctrl-C); the file is finished.
    Cancelled,
    /// The reader of stdout went away.
    OutputClosed,
}

/// The gateway dropped frames at the speed first asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedLimit {
    /// The speed at which frames were dropped.
    pub dropped_at: f64,
    /// Frames came this far apart in recording time…
    pub step: Duration,
    /// …instead of this (measured at speed 1).
    pub interval: Duration,
}

impl SpeedLimit {
    /// Frames per second the gateway sent at `dropped_at`: its send-rate cap.
    pub fn send_fps(&self) -> f64 {
        self.dropped_at / self.step.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The range asked for.
    pub from: OffsetDateTime,
    /// The range asked for.
    pub to: OffsetDateTime,
    /// Frames written.
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Bytes of H.264 written.
    pub video_bytes: u64,
    /// Bytes of MP4 written.
    pub output_bytes: u64,
    /// Recording time of the first frame written.
    pub first_frame: Option<OffsetDateTime>,
    /// Recording time of the last frame written.
    pub last_frame: Option<OffsetDateTime>,
    /// The first frame at or after `to` (when the export ended there).
    pub first_after: Option<OffsetDateTime>,
    /// The frame interval measured at speed 1.
    pub frame_interval: Option<Duration>,
    /// Gaps between the frames written, in order.
    pub gaps: Vec<Gap>,
    /// The speed of the session that was written.
    pub speed: f64,
    /// Set if the gateway dropped frames at a faster speed (the first one that did).
    pub speed_limit: Option<SpeedLimit>,
    /// Sessions opened: the probe, and one per speed tried.
    pub sessions: u32,
    /// Frames received but not written: repeats of a time already written, frames before
    /// `from`, or before the first keyframe.
    pub skipped_frames: u64,
    /// From the caller's start to the end (file finished).
    pub wall_time: Duration,
    /// Non-fatal problems (gateway notifications, lost packets, a gap left open).
    pub warnings: Vec<String>,
}

impl ExportReport {
    fn new(plan: &ExportPlan) -> Self {
        Self {
            from: plan.from,
            to: plan.to,
            frames: 0,
            keyframes: 0,
            video_bytes: 0,
            output_bytes: 0,
            first_frame: None,
            last_frame: None,
            first_after: None,
            frame_interval: None,
            gaps: Vec::new(),
            speed: plan.max_speed,
            speed_limit: None,
            sessions: 0,
            skipped_frames: 0,
            wall_time: Duration::ZERO,
            warnings: Vec::new(),
        }
    }

    /// Recording time the file covers: first frame to last, plus one frame interval (gaps
    /// included).
    pub fn recorded_span(&self) -> Duration {
        match (self.first_frame, self.last_frame) {
            (Some(first), Some(last)) => {
                Duration::try_from(last - first).unwrap_or_default()
                    + self.frame_interval.unwrap_or_default()
            }
            _ => Duration::ZERO,
        }
    }

    /// Gap time inside the file's span.
    pub fn gap_total(&self) -> Duration {
        self.gaps.iter().map(|gap| gap.length).sum()
    }

    /// How many times faster than real time the export ran: recorded span / wall time.
    pub fn realtime_ratio(&self) -> f64 {
        self.recorded_span().as_secs_f64() / self.wall_time.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn warn(&mut self, warning: String) {
        tracing::debug!("{warning}");
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `from` is not before `to`.
    #[error("the range is empty: {} is not before {}", format_rfc3339_millis(*from), format_rfc3339_millis(*to))]
    EmptyRange {
        /// Start asked for.
        from: OffsetDateTime,
        /// End asked for.
        to: OffsetDateTime,
    },
    /// The speed is outside `0 < speed ≤ 32`.
    #[error("speed {0} is outside 0 < speed ≤ 32")]
    InvalidSpeed(f64),
    /// The gateway has no recording in the range.
    #[error("{}", describe_no_recording(*from, *to, *next))]
    NoRecording {
        /// Start asked for.
        from: OffsetDateTime,
        /// End asked for.
        to: OffsetDateTime,
        /// The first recorded frame after `from`, if there is one (it is at or after `to`).
        next: Option<OffsetDateTime>,
    },
    /// Every speed tried lost frames.
    #[error(
        "the gateway drops frames even at speed {speed} (after {sessions} sessions): cannot export every frame"
    )]
    StillDropping {
        /// The last speed tried.
        speed: f64,
        /// Export sessions tried.
        sessions: u32,
    },
    /// A session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Writing the file failed.
    #[error(transparent)]
    Output(#[from] RecordError),
}

fn describe_no_recording(
    from: OffsetDateTime,
    to: OffsetDateTime,
    next: Option<OffsetDateTime>,
) -> String {
    let (from, to) = (format_rfc3339_millis(from), format_rfc3339_millis(to));
    match next {
        Some(next) => format!(
            "no recording from {from} to {to}: the next recording starts at {}",
            format_rfc3339_millis(next)
        ),
        None => format!("no recording from {from} to {to}, nor after it"),
    }
}

/// Export `plan`'s range: see the module documentation. `options` are the session options for
/// the camera (their playback parameters are replaced); `started` is when the user asked (for
/// the wall time); `progress` is called after every frame written. The file is finished on
/// every path, also on errors after frames were written.
pub async fn export(
    gateway: Gateway,
    tokens: &TokenSource,
    options: SessionOptions,
    plan: ExportPlan,
    started: Instant,
    progress: impl FnMut(&ExportProgress),
    cancel: impl Future<Output = ()>,
) -> (ExportReport, Result<ExportEnd, ExportError>) {
    let cancel = std::pin::pin!(cancel);
    let mut exporter = Exporter {
        report: ExportReport::new(&plan),
        timeline: MediaTimeline::new(plan.close_gaps, None),
        gateway,
        tokens,
        options,
        plan,
        writer: None,
        progress,
        cancel,
    };
    let mut outcome = exporter.run().await;
    let Exporter {
        mut report, writer, ..
    } = exporter;
    if let Some(writer) = writer {
        match writer.finish() {
            Ok(bytes) => report.output_bytes = bytes,
            Err(error) if error.is_broken_pipe() => {}
            Err(error) => {
                if outcome.is_ok() {
                    outcome = Err(error.into());
                }
            }
        }
    }
    report.wall_time = started.elapsed();
    (report, outcome)
}

/// What the speed-1 probe found.
struct Probe {
    interval: Option<Duration>,
}

struct Exporter<'t, P, C> {
    gateway: Gateway,
    tokens: &'t TokenSource,
    options: SessionOptions,
    plan: ExportPlan,
    report: ExportReport,
    timeline: MediaTimeline,
    writer: Option<Mp4Writer>,
    progress: P,
    cancel: Pin<&'t mut C>,
}

impl<P, C> Exporter<'_, P, C>
where
    P: FnMut(&ExportProgress),
    C: Future<Output = ()>,
{
    async fn run(&mut self) -> Result<ExportEnd, ExportError> {
        self.plan.validate()?;
        let Some(probe) = self.probe().await? else {
            return Ok(ExportEnd::Cancelled);
        };
        self.report.frame_interval = probe.interval;
        self.timeline = MediaTimeline::new(self.plan.close_gaps, probe.interval);

        let mut speed = self.plan.max_speed;
        for attempt in 1..=MAX_EXPORT_SESSIONS {
            self.report.sessions += 1;
            self.report.speed = speed;
            let mut playback = self.start(speed);
            let mut checked = Vec::with_capacity(CHECK_FRAMES);
            let end = loop {
                match playback.next(self.cancel.as_mut(), &mut self.report).await {
                    Ok(Next::Frame(frame)) if frame.time.wall_clock >= self.plan.to => {
                        self.report.first_after = Some(frame.time.wall_clock);
                        break Some(ExportEnd::ReachedTo);
                    }
                    Ok(Next::Frame(frame)) => {
                        checked.push(frame);
                        if checked.len() == CHECK_FRAMES {
                            break None;
                        }
                    }
                    Ok(Next::Quiet) => break Some(ExportEnd::RecordingsEnded),
                    Ok(Next::Cancelled) => break Some(ExportEnd::Cancelled),
                    Err(error) => {
                        playback.close().await;
                        return Err(error.into());
                    }
                }
            };
            let mut times: Vec<OffsetDateTime> =
                checked.iter().map(|f| f.time.wall_clock).collect();
            times.extend(self.report.first_after);
            if let (SpeedCheck::Dropping { step }, Some(interval)) =
                (speed::check(probe.interval, &times), probe.interval)
            {
                playback.close().await;
                if end == Some(ExportEnd::Cancelled) {
                    return Ok(ExportEnd::Cancelled);
                }
                let slower = speed::slower_speed(speed, interval, step);
                if attempt == MAX_EXPORT_SESSIONS || slower >= speed {
                    return Err(ExportError::StillDropping {
                        speed,
                        sessions: attempt,
                    });
                }
                tracing::debug!(speed, slower, ?step, ?interval, "the gateway drops frames");
                self.report.speed_limit.get_or_insert(SpeedLimit {
                    dropped_at: speed,
                    step,
                    interval,
                });
                self.report.first_after = None;
                speed = slower;
                continue;
            }
            let result = self.write_session(&mut playback, checked, end).await;
            playback.close().await;
            return result;
        }
        unreachable!("the last attempt returns")
    }

    /// Plays the first few frames at speed 1: the frame interval, and whether the range has
    /// any recording at all. `None` if cancelled.
    async fn probe(&mut self) -> Result<Option<Probe>, ExportError> {
        self.report.sessions += 1;
        let mut playback = self.start(1.0);
        let mut times = Vec::with_capacity(PROBE_FRAMES);
        while times.len() < PROBE_FRAMES {
            match playback.next(self.cancel.as_mut(), &mut self.report).await {
                Ok(Next::Frame(frame)) => times.push(frame.time.wall_clock),
                Ok(Next::Quiet) => break,
                Ok(Next::Cancelled) => {
                    playback.close().await;
                    return Ok(None);
                }
                Err(error) => {
                    playback.close().await;
                    return Err(error.into());
                }
            }
        }
        playback.close().await;
        let no_recording = |next| ExportError::NoRecording {
            from: self.plan.from,
            to: self.plan.to,
            next,
        };
        match times.first() {
            None => Err(no_recording(None)),
            Some(&first) if first >= self.plan.to => Err(no_recording(Some(first))),
            Some(_) => Ok(Some(Probe {
                interval: speed::median_step(&times),
            })),
        }
    }

    fn start(&self, speed: f64) -> PlaybackStream {
        let mut options = self.options.clone();
        options.params.playback = Some(Playback {
            start: self.plan.from,
            // Gaps cost no time this way; the file keeps them (or not) from the frame times.
            skip_gaps: true,
            speed,
        });
        PlaybackStream {
            session: Session::start(self.gateway.clone(), self.tokens, options),
            end_wait: self.plan.end_wait,
            connected: false,
            last_activity: tokio::time::Instant::now(),
        }
    }

    /// Writes the checked frames, then the rest of the session until the range ends.
    async fn write_session(
        &mut self,
        playback: &mut PlaybackStream,
        checked: Vec<VideoFrame>,
        end: Option<ExportEnd>,
    ) -> Result<ExportEnd, ExportError> {
        for frame in checked {
            if !self.write(frame)? {
                return Ok(ExportEnd::OutputClosed);
            }
        }
        if let Some(end) = end {
            return Ok(end);
        }
        loop {
            match playback
                .next(self.cancel.as_mut(), &mut self.report)
                .await?
            {
                Next::Frame(frame) if frame.time.wall_clock >= self.plan.to => {
                    self.report.first_after = Some(frame.time.wall_clock);
                    return Ok(ExportEnd::ReachedTo);
                }
                Next::Frame(frame) => {
                    if !self.write(frame)? {
                        return Ok(ExportEnd::OutputClosed);
                    }
                }
                Next::Quiet => return Ok(ExportEnd::RecordingsEnded),
                Next::Cancelled => return Ok(ExportEnd::Cancelled),
            }
        }
    }

    /// Writes one frame; `false` when the reader of stdout went away.
    fn write(&mut self, mut frame: VideoFrame) -> Result<bool, ExportError> {
        let time = frame.time.wall_clock;
        let keyframe = frame.access_unit.keyframe;
        let repeated = self.report.last_frame.is_some_and(|last| time <= last);
        let before_start = self.report.first_frame.is_none() && !keyframe;
        if time < self.plan.from || repeated || before_start {
            self.report.skipped_frames += 1;
            return Ok(true);
        }
        let placement = self.timeline.place(time, keyframe);
        if let Some(gap) = placement.gap {
            self.report.gaps.push(gap);
            if placement.gap_left_open {
                self.report.warn(format!(
                    "the gap ending at {} is kept: the frame after it is not a keyframe",
                    format_rfc3339_millis(time)
                ));
            }
        }
        frame.time.media_ms = placement.media_ms;
        frame.time.media_us = placement.media_ms.saturating_mul(1000);
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self
                .writer
                .insert(Mp4Writer::new(self.plan.output.open()?)?),
        };
        match writer.write(&frame) {
            Ok(()) => {}
            Err(error) if error.is_broken_pipe() => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        let report = &mut self.report;
        report.frames += 1;
        report.keyframes += u64::from(keyframe);
        report.video_bytes += frame.access_unit.byte_len() as u64;
        report.first_frame.get_or_insert(time);
        report.last_frame = Some(time);
        let range = (self.plan.to - self.plan.from).as_seconds_f64();
        (self.progress)(&ExportProgress {
            recorded_up_to: time,
            frames: report.frames,
            speed: report.speed,
            done: ((time - self.plan.from).as_seconds_f64() / range).clamp(0.0, 1.0),
        });
        Ok(true)
    }
}

/// One playback session as a stream of frames, with "nothing for `end_wait`" as its end.
struct PlaybackStream {
    session: Session,
    end_wait: Duration,
    connected: bool,
    last_activity: tokio::time::Instant,
}

enum Next {
    Frame(VideoFrame),
    /// Connected, but no frame for `end_wait`: the gateway has nothing more to send.
    Quiet,
    Cancelled,
}

impl PlaybackStream {
    async fn next<C: Future<Output = ()>>(
        &mut self,
        mut cancel: Pin<&mut C>,
        report: &mut ExportReport,
    ) -> Result<Next, SessionError> {
        loop {
            // Before media is connected the session's own first-frame timeout applies.
            let quiet_at = self.connected.then(|| self.last_activity + self.end_wait);
            let event = tokio::select! {
                event = self.session.next_event() => event,
                () = cancel.as_mut() => return Ok(Next::Cancelled),
                () = sleep_until(quiet_at) => return Ok(Next::Quiet),
            };
            match event {
                Some(SessionEvent::Video(frame)) => {
                    self.last_activity = tokio::time::Instant::now();
                    return Ok(Next::Frame(frame));
                }
                Some(SessionEvent::Connected) => {
                    self.connected = true;
                    self.last_activity = tokio::time::Instant::now();
                }
                Some(SessionEvent::Warning(warning)) => report.warn(warning),
                Some(SessionEvent::Ended(Err(error))) => return Err(error),
                // Only after our own close.
                Some(SessionEvent::Ended(Ok(()))) | None => return Ok(Next::Quiet),
                Some(
                    SessionEvent::Created(_) | SessionEvent::CommandsReady | SessionEvent::Audio(_),
                ) => {}
            }
        }
    }

    /// Closes the session and waits (bounded) until it has ended, so that the gateway has let
    /// go of it before the next one starts.
    async fn close(mut self) {
        self.session.close().await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(event) = self.session.next_event().await {
                if matches!(event, SessionEvent::Ended(_)) {
                    return;
                }
            }
        })
        .await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
