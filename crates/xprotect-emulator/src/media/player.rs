//! A playback session's player: walks its [`PlaybackSchedule`], gets each GOP from the shared
//! cache (encoding it on a blocking thread on a miss, one GOP ahead) and hands every frame to
//! the engine when it is due. The schedule says when in media time; this task is the only place
//! that maps media time onto the clock.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::engine::Feed;
use crate::camera::CameraConfig;
use crate::playback::{EncodedGop, GopCache, PlannedGop, PlaybackSchedule};

type Encoding = JoinHandle<Result<EncodedGop, crate::camera::EncodeError>>;

/// Starts playing `schedule` to `session_id`; the task ends after the last frame (sending
/// [`Feed::PlaybackEnded`]) or when the engine goes away. Abort it to stop early.
pub(crate) fn spawn(
    session_id: Uuid,
    camera: CameraConfig,
    cache: Arc<GopCache>,
    schedule: PlaybackSchedule,
    feed: mpsc::Sender<Feed>,
) -> JoinHandle<()> {
    tokio::spawn(run(session_id, Arc::new(camera), cache, schedule, feed))
}

async fn run(
    session_id: Uuid,
    camera: Arc<CameraConfig>,
    cache: Arc<GopCache>,
    mut schedule: PlaybackSchedule,
    feed: mpsc::Sender<Feed>,
) {
    let step = schedule.step();
    let encode = |gop: PlannedGop| -> (PlannedGop, Encoding) {
        let (camera, cache, planned) = (camera.clone(), cache.clone(), gop.clone());
        let job = tokio::task::spawn_blocking(move || cache.get_or_encode(&camera, &planned, step));
        (gop, job)
    };
    let mut next = schedule.next_gop().map(encode);
    // Media time 0: when the first GOP is ready to go.
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
        // Encode the following GOP while this one plays.
        next = schedule.next_gop().map(encode);
        let origin = *origin.get_or_insert_with(Instant::now);
        for (due, frame) in planned.frames.iter().zip(frames.iter()) {
            tokio::time::sleep_until(origin + due.send_at).await;
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
