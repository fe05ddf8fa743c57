//! A playback session's player: walks its [`PlaybackSchedule`], gets each GOP from the shared
//! cache (encoding it on a blocking thread on a miss, one GOP ahead) and hands every frame to
//! the engine when it is due. The schedule says when in media time; this task is the only place
//! that maps media time onto the clock.
//!
//! While the client's ICE is down the engine pauses the player ([`Player::set_paused`]): it sends
//! nothing and starts no encode (the GOP already being encoded finishes), so a client that
//! vanished without closing costs the camera's playback encoder nothing while its session waits
//! for the disconnect timeout. When ICE comes back the player goes on from where it stopped, its
//! media-time origin moved on by the pause: no burst of late frames. A pause is not a gap in the
//! recording: RTP timestamps follow recording time (PROTOCOL.md §4.2), so the first frame after
//! the pause carries the recording time after the last one sent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::engine::Feed;
use crate::camera::CameraConfig;
use crate::playback::{EncodePriority, EncodedGop, GopCache, PlannedGop, PlaybackSchedule};

type Encoding = JoinHandle<Result<EncodedGop, crate::camera::EncodeError>>;

/// A running player. Dropping it stops the task.
pub(crate) struct Player {
    task: JoinHandle<()>,
    paused: watch::Sender<bool>,
}

impl Player {
    /// Pauses (`true`) or resumes (`false`) the playback; repeating the current state is a no-op.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.send_if_modified(|current| {
            let changed = *current != paused;
            *current = paused;
            changed
        });
    }

    /// Whether the playback is over (its last frame sent, or stopped).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the task now.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts playing `schedule` to `session_id`; the task ends after the last frame (sending
/// [`Feed::PlaybackEnded`]), when the engine goes away, or when the [`Player`] is dropped.
pub(crate) fn spawn(
    session_id: Uuid,
    camera: CameraConfig,
    cache: Arc<GopCache>,
    schedule: PlaybackSchedule,
    feed: mpsc::Sender<Feed>,
) -> Player {
    let (paused, gate) = watch::channel(false);
    let task = tokio::spawn(run(
        session_id,
        Arc::new(camera),
        cache,
        schedule,
        feed,
        PauseGate(gate),
    ));
    Player { task, paused }
}

/// The player's side of the pause switch. Every method returns `None` once the [`Player`] is
/// gone: the task then has nobody to play to.
struct PauseGate(watch::Receiver<bool>);

impl PauseGate {
    /// Returns at once while playing; otherwise waits for the resume and says how long it took.
    async fn playing(&mut self) -> Option<Duration> {
        if !*self.0.borrow_and_update() {
            return Some(Duration::ZERO);
        }
        let since = Instant::now();
        self.0.wait_for(|paused| !*paused).await.ok().map(drop)?;
        Some(since.elapsed())
    }

    /// Sleeps until `due`, later by whatever time is spent paused meanwhile; returns that time.
    async fn sleep_until(&mut self, due: Instant) -> Option<Duration> {
        let mut paused_for = Duration::ZERO;
        loop {
            paused_for += self.playing().await?;
            tokio::select! {
                () = tokio::time::sleep_until(due + paused_for) => return Some(paused_for),
                changed = self.0.changed() => changed.ok()?,
            }
        }
    }
}

async fn run(
    session_id: Uuid,
    camera: Arc<CameraConfig>,
    cache: Arc<GopCache>,
    mut schedule: PlaybackSchedule,
    feed: mpsc::Sender<Feed>,
    mut gate: PauseGate,
) {
    let step = schedule.step();
    let encode = |gop: PlannedGop, priority: EncodePriority| -> (PlannedGop, Encoding) {
        let (camera, cache, planned) = (camera.clone(), cache.clone(), gop.clone());
        let job = tokio::task::spawn_blocking(move || {
            cache.get_or_encode(&camera, &planned, step, priority)
        });
        (gop, job)
    };
    if gate.playing().await.is_none() {
        return;
    }
    let mut next = schedule
        .next_gop()
        .map(|gop| encode(gop, EncodePriority::FirstPicture));
    // Media time 0: when the first GOP is ready to go; moved on by every pause.
    let mut origin: Option<Instant> = None;
    let mut last_sent = None;
    let mut failure = None;
    while let Some((planned, job)) = next.take() {
        let frames = match job.await {
            Ok(Ok(frames)) => frames,
            Ok(Err(e)) => {
                failure = Some(format!("cannot encode the recording: {e}"));
                break;
            }
            Err(e) => {
                failure = Some(format!("the encoder task failed: {e}"));
                break;
            }
        };
        // Encode the following GOP while this one plays, but only for a client that is there.
        let Some(paused_for) = gate.playing().await else {
            return;
        };
        let origin = match origin.as_mut() {
            Some(origin) => {
                *origin += paused_for;
                origin
            }
            None => origin.insert(Instant::now()),
        };
        next = schedule
            .next_gop()
            .map(|gop| encode(gop, EncodePriority::LookAhead));
        for (due, frame) in planned.frames.iter().zip(frames.iter()) {
            let Some(paused_for) = gate.sleep_until(*origin + due.send_at).await else {
                return;
            };
            *origin += paused_for;
            let frame = Feed::PlaybackFrame {
                session_id,
                frame: frame.clone(),
            };
            if feed.send(frame).await.is_err() {
                return;
            }
            last_sent = Some(due.recording_unix_ms);
        }
    }
    if let Some(reason) = &failure {
        tracing::warn!(session = %session_id, "playback stopped: {reason}");
    }
    let _ = feed
        .send(Feed::PlaybackEnded {
            session_id,
            last_recording_unix_ms: last_sent,
            failure,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::default_cameras;
    use crate::playback::{DEFAULT_GOP_CACHE_BYTES, MAX_PLAYBACK_SEND_FPS, PacingConfig};

    /// Frames of a 25 fps recording are 40 ms apart, in recording time and at speed 1 in
    /// media time.
    const FRAME_INTERVAL: Duration = Duration::from_millis(40);

    struct Received {
        at: Instant,
        recording_unix_ms: i64,
    }

    async fn next_frame(feed: &mut mpsc::Receiver<Feed>) -> Received {
        match feed.recv().await {
            Some(Feed::PlaybackFrame { frame, .. }) => Received {
                at: Instant::now(),
                recording_unix_ms: frame.recording_unix_ms,
            },
            Some(_) => panic!("only frames before the end of the recording"),
            None => panic!("the player stopped"),
        }
    }

    /// With tokio's clock paused, time only moves when every task waits (never while a GOP
    /// is encoded on a blocking thread), so frames arrive exactly when they are due.
    #[tokio::test(start_paused = true)]
    async fn a_paused_player_sends_and_encodes_nothing_then_goes_on_where_it_stopped() {
        let camera = default_cameras().remove(0);
        let start = camera.recordings.recordings()[0].start_unix_ms;
        let schedule = PlaybackSchedule::new(
            &camera.recordings,
            PacingConfig {
                fps: camera.fps,
                gop_frames: camera.keyframe_interval_frames,
                max_send_fps: MAX_PLAYBACK_SEND_FPS,
            },
            start,
            true,
            1.0,
        );
        let cache = Arc::new(GopCache::new(DEFAULT_GOP_CACHE_BYTES));
        let (feed_tx, mut feed) = mpsc::channel(4);
        let player = spawn(Uuid::new_v4(), camera, cache.clone(), schedule, feed_tx);

        // Into the second GOP: the third is encoded ahead meanwhile.
        let mut before = Vec::new();
        for _ in 0..30 {
            before.push(next_frame(&mut feed).await);
        }
        let last = before.last().expect("30 frames");
        assert_eq!(last.recording_unix_ms, start + 29 * 40);
        assert_eq!(cache.stats().gops_encoded, 3);

        player.set_paused(true);
        let pause = Duration::from_secs(10);
        assert!(
            tokio::time::timeout(pause, feed.recv()).await.is_err(),
            "nothing is sent while paused"
        );
        assert_eq!(
            cache.stats().gops_encoded,
            3,
            "nothing is encoded while paused, though the playback reached the look-ahead"
        );

        player.set_paused(false);
        let resumed = Instant::now();
        let mut after = Vec::new();
        for _ in 0..60 {
            after.push(next_frame(&mut feed).await);
        }
        // The frame that was due 40 ms after the last comes 40 ms after the resume, with the
        // next recording time; the rest keep the frame rate (no burst of late frames).
        assert_eq!(after[0].recording_unix_ms, last.recording_unix_ms + 40);
        assert_eq!(after[0].at - resumed, FRAME_INTERVAL);
        assert_eq!(after[0].at - last.at, pause + FRAME_INTERVAL);
        for pair in after.windows(2) {
            assert_eq!(pair[1].at - pair[0].at, FRAME_INTERVAL);
            assert_eq!(pair[1].recording_unix_ms - pair[0].recording_unix_ms, 40);
        }
        assert!(
            cache.stats().gops_encoded >= 5,
            "encoding goes on after the resume"
        );

        drop(player);
        assert!(
            feed.recv().await.is_none(),
            "a dropped player stops (and drops its feed)"
        );
    }
}
