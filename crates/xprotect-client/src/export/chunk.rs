//! One chunk of a parallel export: its playback session (at the export's speed, checked the
//! same way as the first), its frames forwarded to the stitcher from its first keyframe on,
//! until the first frame at or after its end.

use super::playback::{Next, PlaybackStream};
use super::speed::{self, SpeedCheck};
use super::{CHECK_FRAMES, ExportError, MAX_EXPORT_SESSIONS, SpeedLimit};
use crate::gateway::Gateway;
use crate::login::TokenSource;
use crate::session::{SessionOptions, VideoFrame};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

/// What a chunk tells the stitcher.
pub(crate) enum ChunkEvent {
    /// A session was opened (the report counts them).
    SessionOpened,
    /// The gateway dropped frames at some speed; the chunk goes slower.
    SpeedLimited(SpeedLimit),
    /// The chunk's session passed its check and plays at `speed`.
    Playing { speed: f64 },
    /// A frame of chunk `chunk`: its first keyframe and everything after, up to and including
    /// the first frame at or after the chunk's end as the chunk knew it.
    Frame { chunk: usize, frame: VideoFrame },
    /// A frame before the chunk's first keyframe, not forwarded.
    Skipped,
    /// A non-fatal problem of a session.
    Warning(String),
    /// The chunk's session is over (and closed).
    Ended {
        chunk: usize,
        result: Result<ChunkEnd, ExportError>,
    },
}

/// How a chunk's session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkEnd {
    /// It reached a frame at or after its end.
    ReachedEnd,
    /// No frame for `end_wait`: the recordings ended.
    Quiet,
    /// The stitcher told it to stop.
    Stopped,
}

/// Where a chunk's playback speed comes from.
pub(crate) enum SpeedSource {
    /// The first chunk finds it, from `max` down, and tells the others.
    Find {
        max: f64,
        found: watch::Sender<Option<f64>>,
    },
    /// The other chunks start once it is found.
    Wait(watch::Receiver<Option<f64>>),
}

/// One chunk's session.
pub(crate) struct ChunkTask<'t> {
    pub(crate) index: usize,
    /// The requested start of its session.
    pub(crate) start: OffsetDateTime,
    /// The export's end: the speed check looks at frames up to it, past the chunk's own end,
    /// so that a chunk lying in a gap still checks its speed on real frames.
    pub(crate) to: OffsetDateTime,
    pub(crate) gateway: Gateway,
    pub(crate) tokens: &'t TokenSource,
    pub(crate) options: &'t SessionOptions,
    /// The frame interval the probe measured.
    pub(crate) interval: Option<Duration>,
    pub(crate) end_wait: Duration,
    pub(crate) events: mpsc::UnboundedSender<ChunkEvent>,
    /// An upper bound of the chunk's end, lowered as later chunks' first frames come in.
    pub(crate) end_bound: watch::Receiver<OffsetDateTime>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl ChunkTask<'_> {
    /// Plays the chunk; always ends with [`ChunkEvent::Ended`].
    pub(crate) async fn run(self, speed: SpeedSource) {
        let index = self.index;
        let events = self.events.clone();
        let result = self.play(speed).await;
        // The stitcher may have finished already: then nobody needs to know.
        let _ = events.send(ChunkEvent::Ended {
            chunk: index,
            result,
        });
    }

    async fn play(self, source: SpeedSource) -> Result<ChunkEnd, ExportError> {
        let mut stop_signal = self.stop.clone();
        let stop = async move {
            // A stitcher that is gone means stop, too.
            let _ = stop_signal.wait_for(|stop| *stop).await;
        };
        let mut stop = std::pin::pin!(stop);
        let events = self.events.clone();
        let mut warn = move |warning: String| {
            let _ = events.send(ChunkEvent::Warning(warning));
        };
        let (mut speed, found) = match source {
            SpeedSource::Find { max, found } => (max, Some(found)),
            SpeedSource::Wait(mut wanted) => {
                let speed = tokio::select! {
                    speed = wanted.wait_for(Option::is_some) => speed.ok().and_then(|speed| *speed),
                    () = stop.as_mut() => None,
                };
                match speed {
                    Some(speed) => (speed, None),
                    None => return Ok(ChunkEnd::Stopped),
                }
            }
        };
        let mut forward = Forward {
            index: self.index,
            events: &self.events,
            end_bound: &self.end_bound,
            keyframe_seen: false,
        };
        for attempt in 1..=MAX_EXPORT_SESSIONS {
            let _ = self.events.send(ChunkEvent::SessionOpened);
            let mut playback = PlaybackStream::start(
                self.gateway.clone(),
                self.tokens,
                self.options,
                self.start,
                speed,
                self.end_wait,
            );
            let mut checked = Vec::with_capacity(CHECK_FRAMES);
            let end = loop {
                match playback.next(stop.as_mut(), &mut warn).await {
                    Ok(Next::Frame(frame)) => {
                        let at_to = frame.time.wall_clock >= self.to;
                        checked.push(frame);
                        if at_to {
                            break Some(ChunkEnd::ReachedEnd);
                        }
                        if checked.len() == CHECK_FRAMES {
                            break None;
                        }
                    }
                    Ok(Next::Quiet) => break Some(ChunkEnd::Quiet),
                    Ok(Next::Cancelled) => break Some(ChunkEnd::Stopped),
                    Err(error) => {
                        playback.close().await;
                        return Err(error.into());
                    }
                }
            };
            let times: Vec<OffsetDateTime> = checked.iter().map(|f| f.time.wall_clock).collect();
            if let (SpeedCheck::Dropping { step }, Some(interval)) =
                (speed::check(self.interval, &times), self.interval)
            {
                playback.close().await;
                if end == Some(ChunkEnd::Stopped) {
                    return Ok(ChunkEnd::Stopped);
                }
                let slower = speed::slower_speed(speed, interval, step);
                if attempt == MAX_EXPORT_SESSIONS || slower >= speed {
                    return Err(ExportError::StillDropping {
                        speed,
                        sessions: attempt,
                    });
                }
                tracing::debug!(
                    chunk = self.index,
                    speed,
                    slower,
                    ?step,
                    ?interval,
                    "the gateway drops frames"
                );
                let _ = self.events.send(ChunkEvent::SpeedLimited(SpeedLimit {
                    dropped_at: speed,
                    step,
                    interval,
                }));
                speed = slower;
                continue;
            }
            if let Some(found) = &found {
                found.send_replace(Some(speed));
            }
            let _ = self.events.send(ChunkEvent::Playing { speed });
            let mut result = Ok(end.unwrap_or(ChunkEnd::ReachedEnd));
            let mut reached = false;
            for frame in checked {
                if forward.frame(frame) {
                    reached = true;
                    result = Ok(ChunkEnd::ReachedEnd);
                    break;
                }
            }
            if !reached && end.is_none() {
                result = loop {
                    match playback.next(stop.as_mut(), &mut warn).await {
                        Ok(Next::Frame(frame)) => {
                            if forward.frame(frame) {
                                break Ok(ChunkEnd::ReachedEnd);
                            }
                        }
                        Ok(Next::Quiet) => break Ok(ChunkEnd::Quiet),
                        Ok(Next::Cancelled) => break Ok(ChunkEnd::Stopped),
                        Err(error) => break Err(error.into()),
                    }
                };
            }
            playback.close().await;
            return result;
        }
        unreachable!("the last attempt returns")
    }
}

/// Hands frames to the stitcher from the chunk's first keyframe on.
struct Forward<'a> {
    index: usize,
    events: &'a mpsc::UnboundedSender<ChunkEvent>,
    end_bound: &'a watch::Receiver<OffsetDateTime>,
    keyframe_seen: bool,
}

impl Forward<'_> {
    /// Forwards `frame` unless it comes before the first keyframe; true if it is at or after
    /// the chunk's end (known so far), which ends the chunk. Such a frame is forwarded even
    /// before a keyframe: it tells the stitcher where this chunk's session went, and is never
    /// written.
    fn frame(&mut self, frame: VideoFrame) -> bool {
        let past_end = frame.time.wall_clock >= *self.end_bound.borrow();
        if !self.keyframe_seen && !frame.access_unit.keyframe && !past_end {
            let _ = self.events.send(ChunkEvent::Skipped);
            return false;
        }
        self.keyframe_seen = true;
        let _ = self.events.send(ChunkEvent::Frame {
            chunk: self.index,
            frame,
        });
        past_end
    }
}
