//! Recording a session: frames from a [`Session`] or a [`LastingSession`] into the writers until
//! a duration, a cancel signal or the end of the session, always finishing the files cleanly.
//!
//! A lasting session's reconnects keep the same writers: its frame times stay strictly
//! increasing across sessions (live: with a gap for what the outage lost), which is what the
//! MP4 and H.264 writers need.

use crate::lasting::LastingSession;
use crate::record::{FrameLog, RecordError, VideoWriter};
use crate::session::{AudioPacket, Session, SessionError, SessionEvent, VideoFrame};
use std::future::Future;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use xprotect_proto::wire::SessionId;

/// Where the recorder reads events from: a plain [`Session`] or a [`LastingSession`].
pub trait EventSource: Send {
    /// The next event; `None` after `Ended`.
    fn next_event(&mut self) -> impl Future<Output = Option<SessionEvent>> + Send;
    /// Ask it to end.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

impl EventSource for Session {
    fn next_event(&mut self) -> impl Future<Output = Option<SessionEvent>> + Send {
        Session::next_event(self)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        Session::close(self)
    }
}

impl EventSource for LastingSession {
    fn next_event(&mut self) -> impl Future<Output = Option<SessionEvent>> + Send {
        LastingSession::next_event(self)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        LastingSession::close(self)
    }
}

/// What to write and for how long.
pub struct RecordPlan {
    /// Stop after this much video (measured from the first frame).
    pub duration: Option<Duration>,
    /// Stop at the first frame whose time (for playback: its recording time) is at or after
    /// this instant; that frame is not written.
    pub until: Option<time::OffsetDateTime>,
    /// The recording, if any.
    pub video: Option<VideoWriter>,
    /// Frame times, if asked for.
    pub frame_log: Option<FrameLog>,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct RecordStats {
    /// The gateway's session id.
    pub session_id: Option<SessionId>,
    /// From [`record`] being called to the first keyframe written.
    pub time_to_first_frame: Option<Duration>,
    /// Frames written.
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Bytes of H.264 received in written frames.
    pub video_bytes: u64,
    /// Wall-clock time of the first frame.
    pub first_frame_time: Option<OffsetDateTime>,
    /// Wall-clock time of the last frame.
    pub last_frame_time: Option<OffsetDateTime>,
    /// Non-fatal problems reported by the session.
    pub warnings: Vec<String>,
    /// Bytes written to the recording.
    pub output_bytes: u64,
    /// Audio packets written.
    pub audio_packets: u64,
    /// Gateway sessions lost and reconnected (lasting sessions).
    pub reconnects: u64,
    /// Longest time from a loss being noticed to the next frame (lasting sessions).
    pub longest_outage: Option<Duration>,
}

/// Why recording stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The duration was reached.
    Duration,
    /// A frame reached the plan's `until` time.
    ReachedUntil,
    /// The caller's cancel future completed (Ctrl-C).
    Cancelled,
    /// The reader of stdout went away.
    OutputClosed,
}

/// Recording ended with an error; the files were still finished.
#[derive(Debug, thiserror::Error)]
pub enum RecordFailure {
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Writing failed.
    #[error(transparent)]
    Output(#[from] RecordError),
}

/// Record until the plan's duration, `cancel`, or a failure. `started` is when the user asked
/// (for the time-to-first-frame figure).
pub async fn record(
    mut session: impl EventSource,
    mut plan: RecordPlan,
    started: Instant,
    cancel: impl Future<Output = ()>,
) -> (RecordStats, Result<StopReason, RecordFailure>) {
    let mut stats = RecordStats::default();
    let mut cancel = std::pin::pin!(cancel);
    let mut end_at: Option<tokio::time::Instant> = None;
    let outcome = loop {
        let deadline = end_at
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        let event = tokio::select! {
            event = session.next_event() => event,
            () = &mut cancel => break Ok(StopReason::Cancelled),
            _ = tokio::time::sleep_until(deadline) => break Ok(StopReason::Duration),
        };
        match event {
            Some(SessionEvent::Video(frame)) => {
                if plan
                    .until
                    .is_some_and(|until| frame.time.wall_clock >= until)
                {
                    break Ok(StopReason::ReachedUntil);
                }
                if stats.frames == 0 {
                    stats.time_to_first_frame = Some(started.elapsed());
                    // Audio before the first keyframe is not in the file: time from the video.
                    end_at = plan.duration.map(|d| tokio::time::Instant::now() + d);
                }
                match write_frame(&mut plan, &frame) {
                    Ok(()) => {}
                    Err(error) if error.is_broken_pipe() => break Ok(StopReason::OutputClosed),
                    Err(error) => break Err(error.into()),
                }
                count(&mut stats, &frame);
            }
            Some(SessionEvent::Audio(packet)) => {
                if plan
                    .until
                    .is_some_and(|until| packet.time.wall_clock >= until)
                {
                    break Ok(StopReason::ReachedUntil);
                }
                // An audio-only recording's duration runs from its first packet.
                if stats.frames == 0 && stats.audio_packets == 0 {
                    stats.time_to_first_frame = Some(started.elapsed());
                    end_at = plan.duration.map(|d| tokio::time::Instant::now() + d);
                }
                match write_audio(&mut plan, &packet) {
                    Ok(()) => {}
                    Err(error) if error.is_broken_pipe() => break Ok(StopReason::OutputClosed),
                    Err(error) => break Err(error.into()),
                }
                stats.audio_packets += 1;
            }
            Some(SessionEvent::Created(id)) => stats.session_id = Some(id),
            Some(SessionEvent::Warning(warning)) => {
                tracing::debug!("{warning}");
                if stats.warnings.len() < 100 {
                    stats.warnings.push(warning);
                }
            }
            // A plain session records on while its media flows (a lasting one replaces it and
            // says so as a warning).
            Some(SessionEvent::SignalingLost(reason)) => {
                let warning = format!("the signaling WebSocket closed ({reason})");
                tracing::debug!("{warning}");
                if stats.warnings.len() < 100 {
                    stats.warnings.push(warning);
                }
            }
            Some(SessionEvent::Reconnecting {
                attempt,
                delay,
                error,
            }) => {
                // Said once, as it happens; the summary counts them (`reconnects`).
                stats.reconnects += 1;
                tracing::warn!(
                    "session lost ({error}); reconnecting in {} ms (attempt {attempt})",
                    delay.as_millis()
                );
            }
            Some(SessionEvent::Resumed { attempts, outage }) => {
                tracing::debug!(attempts, ?outage, "frames again after a reconnect");
                stats.longest_outage = Some(stats.longest_outage.map_or(outage, |o| o.max(outage)));
            }
            Some(SessionEvent::Ended(Err(error))) => break Err(error.into()),
            Some(SessionEvent::Ended(Ok(()))) | None => break Ok(StopReason::Cancelled),
            Some(SessionEvent::Connected | SessionEvent::CommandsReady) => {}
        }
    };
    session.close().await;
    if let Some(video) = plan.video.take() {
        match video.finish() {
            Ok(bytes) => stats.output_bytes = bytes,
            Err(error) if error.is_broken_pipe() => {}
            Err(error) => {
                if outcome.is_ok() {
                    return (stats, Err(error.into()));
                }
            }
        }
    }
    (stats, outcome)
}

fn write_frame(plan: &mut RecordPlan, frame: &VideoFrame) -> Result<(), RecordError> {
    if let Some(video) = plan.video.as_mut() {
        video.write(frame)?;
    }
    if let Some(log) = plan.frame_log.as_mut() {
        log.video(frame)?;
    }
    Ok(())
}

fn write_audio(plan: &mut RecordPlan, packet: &AudioPacket) -> Result<(), RecordError> {
    if let Some(video) = plan.video.as_mut() {
        video.write_audio(packet)?;
    }
    if let Some(log) = plan.frame_log.as_mut() {
        log.audio(packet)?;
    }
    Ok(())
}

fn count(stats: &mut RecordStats, frame: &VideoFrame) {
    stats.frames += 1;
    if frame.access_unit.keyframe {
        stats.keyframes += 1;
    }
    stats.video_bytes += frame.access_unit.byte_len() as u64;
    stats.first_frame_time.get_or_insert(frame.time.wall_clock);
    stats.last_frame_time = Some(frame.time.wall_clock);
}
