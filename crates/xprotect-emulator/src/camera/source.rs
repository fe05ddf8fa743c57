//! A live camera encoding: renders, encodes once and fans frames out to every subscriber.
//!
//! One source per camera stream ([`StreamKind`]): "Video stream 2" is a second, larger encoding
//! with its own thread and encoder, started only while someone watches that stream; both read
//! the camera's shared [`PtzControl`] for every picture.
//!
//! The encoder runs on its own thread only while at least one [`CameraSubscription`] exists, so
//! an idle emulator costs no CPU. Each picture is encoded once and shared as an
//! `Arc<EncodedFrame>` over a `tokio::sync::broadcast` channel, which is what makes hundreds of
//! sessions cheap.
//!
//! Fast start: a session that joins asks for a keyframe with [`CameraSource::request_keyframe`];
//! the next picture is then encoded as an IDR. The request is a flag consumed once per picture,
//! so any number of joins within one frame interval cost one IDR, and a new session waits at most
//! one frame interval for its first picture. The alternative (see STACK.md, "Fan-out without slow
//! starts") is to keep the current GOP and replay it from its keyframe to a joiner: no extra IDRs
//! at all, but the joiner's first pictures are up to a GOP old and arrive in a burst. We chose the
//! forced IDR because it keeps every session's pictures live, which is what the client's
//! time-to-first-frame measurements are about; the price is one extra IDR per frame interval in
//! which someone joins (or sends a PLI).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use uuid::Uuid;

use super::encoder::{CameraEncoder, EncodeError, EncodedFrame};
use super::ptz::PtzControl;
use super::render::FrameRenderer;
use super::{CameraConfig, SourceId, StreamKind};

/// Frames a subscriber may fall behind before it loses some (0.64 s at 25 fps). Enough to ride
/// out a scheduling hiccup of the media engine; small enough to bound memory per camera.
pub const FRAME_BROADCAST_CAPACITY: usize = 16;

/// Counters of one camera's encoder, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderStats {
    /// The camera.
    pub camera_id: Uuid,
    /// Which of its encodings.
    pub stream: StreamKind,
    /// Picture width of the encoding.
    pub width: u32,
    /// Picture height of the encoding.
    pub height: u32,
    /// Pictures encoded since the emulator started (all runs of the encoder together).
    pub frames_encoded: u64,
    /// Of those, keyframes (scheduled and forced).
    pub keyframes_encoded: u64,
    /// Keyframes forced by joining sessions or PLI/FIR.
    pub forced_keyframes: u64,
    /// Current number of subscriptions.
    pub subscribers: usize,
    /// Whether the encoder thread is running.
    pub running: bool,
}

#[derive(Debug, Default)]
struct Counters {
    next_frame_number: AtomicU64,
    frames_encoded: AtomicU64,
    keyframes_encoded: AtomicU64,
    forced_keyframes: AtomicU64,
    keyframe_requested: AtomicBool,
}

#[derive(Debug, Default)]
struct Control {
    subscribers: usize,
    /// The stop flag of the running encoder thread, if one runs.
    running: Option<Arc<AtomicBool>>,
    /// The encoder of the last run (or the start-up probe), kept for the next: creating an
    /// openh264 encoder costs tens of milliseconds, which a joining viewer would wait for.
    idle_encoder: Option<CameraEncoder>,
}

/// One encoding of a synthetic camera; share it as `Arc<CameraSource>`.
#[derive(Debug)]
pub struct CameraSource {
    config: CameraConfig,
    stream: StreamKind,
    /// Picture size of this encoding (even, at least 16).
    width: u32,
    height: u32,
    ptz: Arc<PtzControl>,
    profile_level_id: u32,
    frames: broadcast::Sender<Arc<EncodedFrame>>,
    counters: Arc<Counters>,
    control: Mutex<Control>,
}

/// A live view of a camera; the encoder runs while any subscription exists.
#[derive(Debug)]
pub struct CameraSubscription {
    source: Arc<CameraSource>,
    /// The camera's frames, from the next one encoded.
    pub frames: broadcast::Receiver<Arc<EncodedFrame>>,
}

impl Drop for CameraSubscription {
    fn drop(&mut self) {
        self.source.unsubscribe();
    }
}

impl CameraSource {
    /// Creates the camera's `stream` encoding, moved by `ptz`, and probes its encoder once to
    /// learn the stream's profile-level-id (which the SDP offer must carry before any session
    /// has started the encoder).
    pub fn new(
        config: CameraConfig,
        stream: StreamKind,
        ptz: Arc<PtzControl>,
    ) -> Result<Self, EncodeError> {
        let (width, height) = stream.picture_size(&config);
        let mut renderer = FrameRenderer::new(width, height);
        let (w, h) = (renderer.width(), renderer.height());
        let mut encoder = CameraEncoder::for_stream(&config, stream, w, h)?;
        let planes = renderer.render(0, 0, &config.name);
        let probe = encoder.encode(planes, 0, 0, true)?;
        let (frames, _) = broadcast::channel(FRAME_BROADCAST_CAPACITY);
        Ok(Self {
            config,
            stream,
            // The renderer's sizes are at most the u32 asked for.
            width: u32::try_from(w).unwrap_or(width),
            height: u32::try_from(h).unwrap_or(height),
            ptz,
            profile_level_id: probe.profile_level_id,
            frames,
            counters: Arc::default(),
            control: Mutex::new(Control {
                idle_encoder: Some(encoder),
                ..Control::default()
            }),
        })
    }

    /// The camera's configuration.
    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// Which of the camera's encodings this is.
    pub fn stream(&self) -> StreamKind {
        self.stream
    }

    /// The camera and stream, as frames name them.
    pub fn source_id(&self) -> SourceId {
        SourceId {
            camera: self.config.id,
            stream: self.stream,
        }
    }

    /// Picture size of this encoding, `(width, height)`.
    pub fn picture_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The camera's PTZ head (shared with its other encoding).
    pub fn ptz(&self) -> &Arc<PtzControl> {
        &self.ptz
    }

    /// The H.264 profile-level-id of this camera's stream, e.g. `0x42c01e`.
    pub fn profile_level_id(&self) -> u32 {
        self.profile_level_id
    }

    /// Starts watching: the encoder starts if this is the first subscription.
    pub fn subscribe(self: &Arc<Self>) -> CameraSubscription {
        let frames = self.frames.subscribe();
        let mut control = self.lock_control();
        control.subscribers += 1;
        if control.running.is_none() {
            let stop = Arc::new(AtomicBool::new(false));
            control.running = Some(stop.clone());
            let source = self.clone();
            let spawned = thread::Builder::new()
                .name(match self.stream {
                    StreamKind::Primary => format!("camera-{}", self.config.id),
                    StreamKind::Secondary => format!("camera-{}-2", self.config.id),
                })
                .spawn(move || source.run(&stop));
            if let Err(e) = spawned {
                tracing::warn!(camera = %self.config.id, "cannot start encoder thread: {e}");
                control.running = None;
            }
        }
        CameraSubscription {
            source: self.clone(),
            frames,
        }
    }

    /// Asks for the next picture to be a keyframe. Requests within one frame interval merge.
    pub fn request_keyframe(&self) {
        self.counters
            .keyframe_requested
            .store(true, Ordering::Relaxed);
    }

    /// The encoder's counters.
    pub fn stats(&self) -> EncoderStats {
        let control = self.lock_control();
        EncoderStats {
            camera_id: self.config.id,
            stream: self.stream,
            width: self.width,
            height: self.height,
            frames_encoded: self.counters.frames_encoded.load(Ordering::Relaxed),
            keyframes_encoded: self.counters.keyframes_encoded.load(Ordering::Relaxed),
            forced_keyframes: self.counters.forced_keyframes.load(Ordering::Relaxed),
            subscribers: control.subscribers,
            running: control.running.is_some(),
        }
    }

    fn unsubscribe(&self) {
        let mut control = self.lock_control();
        control.subscribers = control.subscribers.saturating_sub(1);
        if control.subscribers == 0
            && let Some(stop) = control.running.take()
        {
            stop.store(true, Ordering::Relaxed);
        }
    }

    fn lock_control(&self) -> MutexGuard<'_, Control> {
        // The lock only guards two plain fields; a panic elsewhere cannot leave them torn.
        self.control
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The encoder thread: one picture per frame interval on the wall clock until `stop`.
    fn run(&self, stop: &AtomicBool) {
        let camera = &self.config;
        let mut renderer = FrameRenderer::new(self.width, self.height);
        let idle = self.lock_control().idle_encoder.take();
        let mut encoder = match idle.map_or_else(
            || CameraEncoder::for_stream(camera, self.stream, renderer.width(), renderer.height()),
            Ok,
        ) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(camera = %camera.id, "cannot create encoder: {e}");
                self.forget_run(stop);
                return;
            }
        };
        let interval = Duration::from_secs(1) / camera.fps.max(1);
        let mut deadline = Instant::now();
        // A camera stamps pictures on its capture clock: the recording time of a picture is its
        // slot on the frame grid, not the moment this thread got to run (which a busy machine
        // delays, and which would put two pictures a few ms apart).
        let grid_origin = (deadline, unix_ms_now());
        // A run starts with an IDR (a kept encoder is told to; a fresh one does anyway); it is
        // the scheduled keyframe, not a forced one.
        let mut first = true;
        tracing::debug!(camera = %camera.id, "encoder started");
        while !stop.load(Ordering::Relaxed) {
            let recording_unix_ms = grid_origin.1
                + i64::try_from(deadline.duration_since(grid_origin.0).as_millis())
                    .unwrap_or(i64::MAX);
            let frame_number = self
                .counters
                .next_frame_number
                .fetch_add(1, Ordering::Relaxed);
            let requested = self
                .counters
                .keyframe_requested
                .swap(false, Ordering::Relaxed);
            let forced = requested && !first;
            // One snapshot per picture: the overlay, the scene and the SEI stamp agree.
            let ptz = self.ptz.state();
            let planes =
                renderer.render_with_ptz(recording_unix_ms, frame_number, &camera.name, Some(&ptz));
            let encoded = encoder.encode_live(
                planes,
                recording_unix_ms,
                frame_number,
                forced || first,
                &ptz,
            );
            first = false;
            match encoded {
                Ok(frame) => {
                    self.counters.frames_encoded.fetch_add(1, Ordering::Relaxed);
                    if frame.keyframe {
                        self.counters
                            .keyframes_encoded
                            .fetch_add(1, Ordering::Relaxed);
                        if forced {
                            self.counters
                                .forced_keyframes
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // No receiver is fine: the last subscription may just have gone.
                    let _ = self.frames.send(Arc::new(frame));
                }
                Err(e) => tracing::warn!(camera = %camera.id, frame_number, "encode failed: {e}"),
            }

            deadline += interval;
            let now = Instant::now();
            if now > deadline + interval {
                // Far behind (machine overloaded): skip the missed slots instead of bursting.
                deadline = now;
            }
            if let Some(wait) = deadline.checked_duration_since(now) {
                thread::sleep(wait);
            }
        }
        tracing::debug!(camera = %camera.id, "encoder stopped");
        self.lock_control().idle_encoder = Some(encoder);
    }

    /// Clears the running marker after a failed start, unless a newer run replaced it.
    fn forget_run(&self, stop: &AtomicBool) {
        let mut control = self.lock_control();
        if control
            .running
            .as_deref()
            .is_some_and(|s| std::ptr::eq(s, stop))
        {
            control.running = None;
        }
    }
}

fn unix_ms_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}
