//! Exporting a recorded range to MP4, as fast as the gateway sends every frame.
//!
//! ```text
//!  export(plan) ─► probe session, speed 1: the frame interval, and is there recording in range?
//!              ─► [from, to) cut into N chunks (stitch), one skipGaps session each, all at once:
//!                 chunk 0 checks its first frames at speed ≤ 32; if the gateway drops frames,
//!                 it starts again slower (speed); the others start at the speed it found, and
//!                 check theirs the same way
//!              ─► chunk frames ─► stitcher: chunk k's frames before chunk k+1's first keyframe,
//!                 in chunk order (later chunks wait in a ChunkBuffer: memory, then spill file)
//!              ─► MediaTimeline over the stitched frames (gaps kept, or closed) ─► Mp4Writer
//!  stops at: the first frame at/after `to` (not written) │ no frame for `end_wait` (the
//!            recordings ended) │ cancel │ the reader of stdout went away
//! ```
//!
//! A gateway paces each playback session (our emulator sends at most 60 frames/s), but runs many
//! at once: N sessions export about N times faster. With `parallel = 1` there is one chunk and
//! one session, the sequential export. The stitching rule (module `stitch`) makes the file the
//! same frame sequence whatever N is, so gaps are counted over the stitched sequence exactly as
//! a single session would have them. The file is written in order only, one fragment per GOP:
//! a killed export leaves a valid file that lacks at most its last fragment.
//!
//! Frame times are recording times (PROTOCOL.md §4.2). In the file, media time is recording time
//! minus the first frame's, so gaps stay gaps unless [`ExportPlan::close_gaps`] is set; either
//! way each fragment's `prft` carries the true recording time of its first frame.

mod buffer;
mod chunk;
mod playback;
mod speed;
mod stitch;
mod timeline;

pub use buffer::MEMORY_BUDGET;
pub use timeline::Gap;

use crate::gateway::Gateway;
use crate::login::TokenSource;
use crate::record::{Mp4Writer, OutputTarget, RecordError};
use crate::session::{SessionError, SessionOptions, VideoFrame};
use buffer::{Budget, ChunkBuffer};
use chunk::{ChunkEvent, ChunkTask, SpeedSource};
use playback::{Next, PlaybackStream};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};
use stitch::First;
use time::OffsetDateTime;
use timeline::MediaTimeline;
use tokio::sync::{mpsc, watch};
use xprotect_proto::clock::format_rfc3339_millis;

/// The fastest playback the protocol allows (PROTOCOL.md §4.3).
pub const MAX_SPEED: f64 = 32.0;
/// Frames the speed-1 probe looks at to measure the frame interval (one gap among them is fine).
const PROBE_FRAMES: usize = 5;
/// Frames of a fast session checked against the interval before anything is written.
const CHECK_FRAMES: usize = 5;
/// Sessions at ever lower speeds before giving up on a gateway that keeps dropping frames.
const MAX_EXPORT_SESSIONS: u32 = 4;
/// Concurrent playback sessions of an export unless told otherwise.
pub const DEFAULT_PARALLEL: usize = 6;
/// The most concurrent sessions one export opens.
pub const MAX_PARALLEL: usize = 32;
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
    /// Concurrent playback sessions, each playing one chunk of the range,
    /// `1 ≤ parallel ≤ MAX_PARALLEL`; 1 plays the range in one session. Fewer are used for
    /// short ranges (no chunk is shorter than 2 s).
    pub parallel: usize,
}

impl ExportPlan {
    /// Defaults: speed 32, gaps kept, 5 s of silence means the recordings ended,
    /// [`DEFAULT_PARALLEL`] sessions.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, output: OutputTarget) -> Self {
        Self {
            from,
            to,
            output,
            close_gaps: false,
            max_speed: MAX_SPEED,
            end_wait: Duration::from_secs(5),
            parallel: DEFAULT_PARALLEL,
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
        if !(1..=MAX_PARALLEL).contains(&self.parallel) {
            return Err(ExportError::InvalidParallel(self.parallel));
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
    /// The playback speed of the sessions that were written (the slowest, if chunks differed).
    pub speed: f64,
    /// Set if the gateway dropped frames at a faster speed (the first one that did).
    pub speed_limit: Option<SpeedLimit>,
    /// Sessions opened: the probe, and one per chunk and speed tried.
    pub sessions: u32,
    /// Chunks the range was played in, one session each at a time.
    pub chunks: u32,
    /// Chunks that waited for their turn in a spill file (memory budget exceeded).
    pub spilled_chunks: u32,
    /// Frames received but not written: repeats of a time already written, frames before
    /// `from`, or before a chunk's first keyframe. Frames of a chunk past its end (where the
    /// next chunk took over) are not counted.
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
            chunks: 0,
            spilled_chunks: 0,
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
    /// The number of sessions is outside `1 ≤ parallel ≤ MAX_PARALLEL`.
    #[error("parallel {0} is outside 1 to {MAX_PARALLEL}")]
    InvalidParallel(usize),
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
        plan,
        writer: None,
        progress,
    };
    let mut outcome = exporter.run(gateway, tokens, &options, cancel).await;
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

struct Exporter<P> {
    plan: ExportPlan,
    report: ExportReport,
    timeline: MediaTimeline,
    writer: Option<Mp4Writer>,
    progress: P,
}

impl<P> Exporter<P>
where
    P: FnMut(&ExportProgress),
{
    async fn run<C: Future<Output = ()>>(
        &mut self,
        gateway: Gateway,
        tokens: &TokenSource,
        options: &SessionOptions,
        mut cancel: Pin<&mut C>,
    ) -> Result<ExportEnd, ExportError> {
        self.plan.validate()?;
        let Some(probe) = self
            .probe(gateway.clone(), tokens, options, cancel.as_mut())
            .await?
        else {
            return Ok(ExportEnd::Cancelled);
        };
        self.report.frame_interval = probe.interval;
        self.timeline = MediaTimeline::new(self.plan.close_gaps, probe.interval);

        let starts = stitch::chunk_starts(self.plan.from, self.plan.to, self.plan.parallel);
        self.report.chunks = u32::try_from(starts.len()).unwrap_or(u32::MAX);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (speed_tx, speed_rx) = watch::channel(None);
        let mut speed_tx = Some(speed_tx);
        let mut end_bounds = Vec::with_capacity(starts.len());
        let mut tasks = Vec::with_capacity(starts.len());
        for (index, &start) in starts.iter().enumerate() {
            let (bound_tx, bound_rx) = watch::channel(self.plan.to);
            end_bounds.push(bound_tx);
            let source = match speed_tx.take() {
                Some(found) => SpeedSource::Find {
                    max: self.plan.max_speed,
                    found,
                },
                None => SpeedSource::Wait(speed_rx.clone()),
            };
            let task = ChunkTask {
                index,
                start,
                to: self.plan.to,
                gateway: gateway.clone(),
                tokens,
                options,
                interval: probe.interval,
                end_wait: self.plan.end_wait,
                events: events_tx.clone(),
                end_bound: bound_rx,
                stop: stop_rx.clone(),
            };
            tasks.push(task.run(source));
        }
        drop(events_tx);
        let stitching = async {
            let result = self.stitch(events, &end_bounds, cancel).await;
            // Every session still playing is closed (they wait for this) before we return.
            stop_tx.send_replace(true);
            result
        };
        let (_, result) = tokio::join!(futures_util::future::join_all(tasks), stitching);
        result
    }

    /// Plays the first few frames at speed 1: the frame interval, and whether the range has
    /// any recording at all. `None` if cancelled.
    async fn probe<C: Future<Output = ()>>(
        &mut self,
        gateway: Gateway,
        tokens: &TokenSource,
        options: &SessionOptions,
        mut cancel: Pin<&mut C>,
    ) -> Result<Option<Probe>, ExportError> {
        self.report.sessions += 1;
        let mut playback = PlaybackStream::start(
            gateway,
            tokens,
            options,
            self.plan.from,
            1.0,
            self.plan.end_wait,
        );
        let mut times = Vec::with_capacity(PROBE_FRAMES);
        let report = &mut self.report;
        let mut warn = |warning| report.warn(warning);
        while times.len() < PROBE_FRAMES {
            match playback.next(cancel.as_mut(), &mut warn).await {
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

    /// Writes the chunks' frames in chunk order as they come: the active chunk's frames go
    /// straight to the file once its end is certain (every later chunk has sent its first
    /// frame, or ended without one: at most a second or so after the start), later chunks'
    /// frames wait in their buffers until every chunk before them is complete.
    async fn stitch<C: Future<Output = ()>>(
        &mut self,
        mut events: mpsc::UnboundedReceiver<ChunkEvent>,
        end_bounds: &[watch::Sender<OffsetDateTime>],
        mut cancel: Pin<&mut C>,
    ) -> Result<ExportEnd, ExportError> {
        let to = self.plan.to;
        let chunks = end_bounds.len();
        let mut first = vec![First::Unknown; chunks];
        let mut ended = vec![false; chunks];
        let (spill_dir, spill_stem) = spill_place(&self.plan.output);
        let mut buffers: Vec<ChunkBuffer> = (0..chunks)
            .map(|k| {
                let name = format!("{spill_stem}.chunk{k}.{}.spill", std::process::id());
                ChunkBuffer::new(spill_dir.clone(), name)
            })
            .collect();
        let mut budget = Budget::new(MEMORY_BUDGET);
        let mut playing_speed: Option<f64> = None;
        let mut active = 0;
        loop {
            // Write whatever the active chunk has, moving on as chunks complete.
            while let Some(buffer) = buffers.get_mut(active) {
                let Some(end) = stitch::chunk_ends(&first, to)
                    .get(active)
                    .copied()
                    .flatten()
                else {
                    break;
                };
                let frame = buffer
                    .pop(&mut budget)
                    .map_err(|error| ExportError::Output(error.into()))?;
                match frame {
                    Some(frame) if frame.time.wall_clock >= end => {
                        tracing::debug!(
                            chunk = active,
                            end = %format_rfc3339_millis(end),
                            "chunk complete"
                        );
                        if frame.time.wall_clock >= to {
                            self.report.first_after.get_or_insert(frame.time.wall_clock);
                        }
                        buffer.discard(&mut budget);
                        active += 1;
                    }
                    Some(frame) => {
                        if !self.write(frame)? {
                            return Ok(ExportEnd::OutputClosed);
                        }
                    }
                    None if ended.get(active).copied().unwrap_or(true) => {
                        tracing::debug!(chunk = active, "chunk complete: its session ended");
                        buffer.discard(&mut budget);
                        active += 1;
                    }
                    None => break,
                }
            }
            if active >= chunks {
                return Ok(match self.report.first_after {
                    Some(_) => ExportEnd::ReachedTo,
                    None => ExportEnd::RecordingsEnded,
                });
            }
            let event = tokio::select! {
                event = events.recv() => event,
                () = cancel.as_mut() => return Ok(ExportEnd::Cancelled),
            };
            // Every chunk ends with `Ended`, so the channel closes only after all have ended.
            let Some(event) = event else {
                return Ok(ExportEnd::RecordingsEnded);
            };
            match event {
                ChunkEvent::Frame { chunk, frame } => {
                    if first.get(chunk) == Some(&First::Unknown) {
                        first[chunk] = First::At(frame.time.wall_clock.min(to));
                        publish_end_bounds(&first, end_bounds, to);
                    }
                    if chunk < active {
                        continue;
                    }
                    if let Some(buffer) = buffers.get_mut(chunk) {
                        buffer
                            .push(frame, &mut budget)
                            .map_err(|error| ExportError::Output(error.into()))?;
                        if buffer.spilled() && chunk > active {
                            tracing::debug!(chunk, "the memory budget is used up: spilling");
                        }
                    }
                }
                ChunkEvent::Ended { chunk, result } => {
                    match result {
                        Ok(end) => tracing::debug!(chunk, ?end, "chunk session ended"),
                        // A chunk already in the file has nothing more to give.
                        Err(error) if chunk < active => {
                            self.report
                                .warn(format!("chunk {chunk} after its end: {error}"));
                        }
                        Err(error) => return Err(error),
                    }
                    if let Some(done) = ended.get_mut(chunk) {
                        *done = true;
                    }
                    if first.get(chunk) == Some(&First::Unknown) {
                        first[chunk] = First::None;
                        publish_end_bounds(&first, end_bounds, to);
                    }
                }
                ChunkEvent::SessionOpened => self.report.sessions += 1,
                ChunkEvent::SpeedLimited(limit) => {
                    self.report.speed_limit.get_or_insert(limit);
                }
                ChunkEvent::Playing { speed } => {
                    let slowest = playing_speed.map_or(speed, |s| s.min(speed));
                    playing_speed = Some(slowest);
                    self.report.speed = slowest;
                }
                ChunkEvent::Skipped => self.report.skipped_frames += 1,
                ChunkEvent::Warning(warning) => self.report.warn(warning),
            }
            self.report.spilled_chunks =
                u32::try_from(buffers.iter().filter(|b| b.spilled()).count()).unwrap_or(u32::MAX);
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
        tracing::trace!(time = %format_rfc3339_millis(time), media_ms = placement.media_ms, keyframe, "write");
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

/// Tells every chunk the latest bound of its end.
fn publish_end_bounds(
    first: &[First],
    end_bounds: &[watch::Sender<OffsetDateTime>],
    to: OffsetDateTime,
) {
    for (k, bound) in end_bounds.iter().enumerate() {
        let value = stitch::chunk_end_bound(first, k, to);
        bound.send_if_modified(|current| {
            let changed = *current != value;
            *current = value;
            changed
        });
    }
}

/// Where spill files go: next to the output file (same disk, same permissions, and the user
/// sees them if the export is killed), or the temp directory for stdout; and the stem of their
/// names.
fn spill_place(output: &OutputTarget) -> (PathBuf, String) {
    match output {
        OutputTarget::File(path) => {
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from);
            let name = path.file_name().map_or_else(
                || "export".into(),
                |name| name.to_string_lossy().into_owned(),
            );
            (dir, format!(".{name}"))
        }
        OutputTarget::Stdout => (std::env::temp_dir(), "xprotect-export".into()),
    }
}
