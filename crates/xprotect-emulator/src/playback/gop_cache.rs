//! Recorded GOPs, encoded once and shared by every playback session that plays them.
//!
//! A GOP is identified by its camera, the recording time of its keyframe and the frame step
//! (which frames were kept, see [`super::schedule`]); its frames are fully determined by those,
//! so two sessions playing the same stretch at similar speeds send the same bytes. Encoding is
//! serialized per camera (one playback encoder each), and a miss re-checks the cache once it has
//! the encoder, so concurrent sessions asking for the same GOP encode it once. The cache is
//! bounded in bytes and forgets the least recently used GOPs first.
//!
//! Many sessions of one camera each encode a GOP ahead of the one they play; a new session's
//! first GOP must not queue behind all of those, or its first picture waits seconds. So a request
//! says what it is for ([`EncodePriority`]): a session's first picture gets the camera's encoder
//! next, before any look-ahead already waiting (it still waits for the GOP being encoded).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use uuid::Uuid;

use super::schedule::PlannedGop;
use crate::camera::{CameraConfig, CameraEncoder, EncodeError, EncodedFrame, FrameRenderer};

/// Default bound of the cache: about 180 GOPs of a 640x360 camera at 1.5 Mbit/s.
pub const DEFAULT_GOP_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// One encoded GOP: its keyframe first.
pub type EncodedGop = Arc<[Arc<EncodedFrame>]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GopKey {
    camera: Uuid,
    first_unix_ms: i64,
    step: u32,
}

#[derive(Debug, Default)]
struct Entries {
    gops: HashMap<GopKey, (EncodedGop, usize)>,
    /// Least recently used first.
    order: VecDeque<GopKey>,
    bytes: usize,
}

/// A camera's playback encoder and renderer, created on first use.
struct PlaybackEncoder {
    renderer: FrameRenderer,
    encoder: CameraEncoder,
}

/// What a GOP is wanted for, which decides who gets a busy camera encoder next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodePriority {
    /// A session waits for it to show its first picture: it goes before every look-ahead
    /// request waiting for the same camera.
    FirstPicture,
    /// The GOP after the one playing: not needed for about a GOP's duration.
    LookAhead,
}

/// One camera's playback encoder and the queue for it.
#[derive(Default)]
struct EncoderSlot {
    state: Mutex<SlotState>,
    /// Signalled whenever `state` changes (the encoder handed back, a first picture queued).
    changed: Condvar,
}

#[derive(Default)]
struct SlotState {
    /// Someone is encoding (the encoder is out of `encoder` meanwhile).
    busy: bool,
    /// First-picture requests waiting: look-ahead requests let them go first.
    first_pictures_waiting: usize,
    /// `None` until first used, and while busy.
    encoder: Option<PlaybackEncoder>,
}

impl EncoderSlot {
    /// Waits for this request's turn at the encoder: when it is free and, for a look-ahead,
    /// no first picture is waiting.
    fn take_turn(&self, priority: EncodePriority) -> EncoderTurn<'_> {
        let first_picture = priority == EncodePriority::FirstPicture;
        let mut state = lock(&self.state);
        if first_picture {
            state.first_pictures_waiting += 1;
            self.changed.notify_all();
        }
        while state.busy || (!first_picture && state.first_pictures_waiting > 0) {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if first_picture {
            state.first_pictures_waiting -= 1;
        }
        state.busy = true;
        EncoderTurn {
            slot: self,
            encoder: state.encoder.take(),
        }
    }
}

/// The encoder of a camera, held by one request; handed back (even on a panic) when dropped.
struct EncoderTurn<'a> {
    slot: &'a EncoderSlot,
    encoder: Option<PlaybackEncoder>,
}

impl Drop for EncoderTurn<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.slot.state);
        state.busy = false;
        if let Some(encoder) = self.encoder.take() {
            state.encoder = Some(encoder);
        }
        drop(state);
        self.slot.changed.notify_all();
    }
}

/// Counters of the cache, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GopCacheStats {
    /// GOPs encoded (cache misses).
    pub gops_encoded: u64,
    /// GOPs served from the cache.
    pub hits: u64,
    /// GOPs currently held.
    pub gops_cached: usize,
    /// Their size in bytes.
    pub bytes_cached: usize,
}

/// The shared cache of encoded playback GOPs.
pub struct GopCache {
    capacity_bytes: usize,
    entries: Mutex<Entries>,
    /// One playback encoder per camera, each with its own queue (created on first use).
    encoders: Mutex<HashMap<Uuid, Arc<EncoderSlot>>>,
    gops_encoded: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for GopCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GopCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl GopCache {
    /// A cache holding at most `capacity_bytes` of encoded video.
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            entries: Mutex::default(),
            encoders: Mutex::default(),
            gops_encoded: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The encoded frames of `gop` (planned with frame step `step`) for `camera`; encodes them
    /// on a miss, its turn at the camera's encoder decided by `priority`. Blocking (tens of
    /// milliseconds on a miss, more while the encoder is busy): call it from a blocking thread.
    pub fn get_or_encode(
        &self,
        camera: &CameraConfig,
        gop: &PlannedGop,
        step: u32,
        priority: EncodePriority,
    ) -> Result<EncodedGop, EncodeError> {
        let key = GopKey {
            camera: camera.id,
            first_unix_ms: gop.first_unix_ms,
            step,
        };
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let slot = lock(&self.encoders).entry(camera.id).or_default().clone();
        let mut turn = slot.take_turn(priority);
        // Another session may have encoded it while this one waited for the encoder.
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let playback = match turn.encoder.as_mut() {
            Some(p) => p,
            None => {
                let renderer = FrameRenderer::new(camera.width, camera.height);
                let encoder = CameraEncoder::new(camera, renderer.width(), renderer.height())?;
                turn.encoder.insert(PlaybackEncoder { renderer, encoder })
            }
        };
        let interval_ms = i64::from((1000 / camera.fps.max(1)).max(1));
        let mut frames = Vec::with_capacity(gop.frames.len());
        for (i, planned) in gop.frames.iter().enumerate() {
            // The number a live camera would have given the frame at that time: the same picture
            // for every session, whatever its start.
            let frame_number = u64::try_from(planned.recording_unix_ms / interval_ms).unwrap_or(0);
            let planes =
                playback
                    .renderer
                    .render(planned.recording_unix_ms, frame_number, &camera.name);
            let frame =
                playback
                    .encoder
                    .encode(planes, planned.recording_unix_ms, frame_number, i == 0)?;
            frames.push(Arc::new(frame));
        }
        let size: usize = frames
            .iter()
            .map(|f| f.annex_b.len() + f.nal_units.iter().map(|n| n.len()).sum::<usize>())
            .sum();
        let encoded: EncodedGop = frames.into();
        self.gops_encoded.fetch_add(1, Ordering::Relaxed);
        self.insert(key, encoded.clone(), size);
        Ok(encoded)
    }

    /// The cache's counters.
    pub fn stats(&self) -> GopCacheStats {
        let entries = lock(&self.entries);
        GopCacheStats {
            gops_encoded: self.gops_encoded.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            gops_cached: entries.gops.len(),
            bytes_cached: entries.bytes,
        }
    }

    fn lookup(&self, key: &GopKey) -> Option<EncodedGop> {
        let mut entries = lock(&self.entries);
        let gop = entries.gops.get(key).map(|(gop, _)| gop.clone())?;
        if let Some(pos) = entries.order.iter().position(|k| k == key) {
            entries.order.remove(pos);
        }
        entries.order.push_back(*key);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(gop)
    }

    fn insert(&self, key: GopKey, gop: EncodedGop, size: usize) {
        let mut entries = lock(&self.entries);
        if let Some((_, old)) = entries.gops.insert(key, (gop, size)) {
            entries.bytes -= old;
            entries.order.retain(|k| *k != key);
        }
        entries.bytes += size;
        entries.order.push_back(key);
        // The newest GOP stays even if it alone exceeds the bound: the session needs it now.
        while entries.bytes > self.capacity_bytes && entries.order.len() > 1 {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = entries.gops.remove(&oldest) {
                entries.bytes -= bytes;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded values are replaced whole or not at all; a panic elsewhere cannot tear them.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::default_cameras;
    use crate::playback::{PacingConfig, PlaybackSchedule, RecordingTimeline};

    fn gops(start_unix_ms: i64, count: usize) -> (Vec<PlannedGop>, u32) {
        let pacing = PacingConfig {
            fps: 25,
            gop_frames: 25,
            max_send_fps: 60,
        };
        let timeline = RecordingTimeline::default_recordings();
        let mut schedule = PlaybackSchedule::new(&timeline, pacing, start_unix_ms, true, 1.0);
        let planned = (0..count).filter_map(|_| schedule.next_gop()).collect();
        (planned, schedule.step())
    }

    #[test]
    fn encodes_each_gop_once_and_stamps_recording_times() {
        let camera = &default_cameras()[0];
        let cache = GopCache::new(DEFAULT_GOP_CACHE_BYTES);
        let start = RecordingTimeline::default_recordings().recordings()[0].start_unix_ms;
        let (planned, step) = gops(start, 2);
        let first = cache
            .get_or_encode(camera, &planned[0], step, EncodePriority::LookAhead)
            .unwrap();
        assert_eq!(first.len(), 25);
        assert!(first[0].keyframe, "a GOP starts with a keyframe");
        assert!(first.iter().skip(1).all(|f| !f.keyframe));
        for (frame, due) in first.iter().zip(&planned[0].frames) {
            assert_eq!(frame.recording_unix_ms, due.recording_unix_ms);
        }
        // A second session playing the same stretch gets the same bytes without encoding.
        let again = cache
            .get_or_encode(camera, &planned[0], step, EncodePriority::LookAhead)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.stats().gops_encoded, 1);
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn a_first_picture_gets_the_encoder_before_waiting_look_aheads() {
        let slot = Arc::new(EncoderSlot::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let busy = slot.take_turn(EncodePriority::LookAhead);
        let request = |name: &'static str, priority| {
            let (slot, order) = (slot.clone(), order.clone());
            std::thread::spawn(move || {
                let _turn = slot.take_turn(priority);
                lock(&order).push(name);
            })
        };
        let look_aheads = [
            request("look-ahead", EncodePriority::LookAhead),
            request("look-ahead", EncodePriority::LookAhead),
        ];
        let first_picture = request("first picture", EncodePriority::FirstPicture);
        // Hand the encoder back only once the first picture is queued.
        drop(
            slot.changed
                .wait_while(lock(&slot.state), |s| s.first_pictures_waiting == 0)
                .unwrap(),
        );
        drop(busy);
        first_picture.join().unwrap();
        for handle in look_aheads {
            handle.join().unwrap();
        }
        assert_eq!(
            *lock(&order),
            ["first picture", "look-ahead", "look-ahead"],
            "the first picture went before the look-aheads"
        );
        let state = lock(&slot.state);
        assert!(!state.busy && state.first_pictures_waiting == 0);
    }

    #[test]
    fn forgets_the_least_recently_used_gop_beyond_its_bound() {
        let camera = &default_cameras()[0];
        let start = RecordingTimeline::default_recordings().recordings()[0].start_unix_ms;
        let (planned, step) = gops(start, 3);
        // Room for about one GOP: each new one pushes the older out.
        let probe = GopCache::new(usize::MAX);
        let size = {
            probe
                .get_or_encode(camera, &planned[0], step, EncodePriority::LookAhead)
                .unwrap();
            probe.stats().bytes_cached
        };
        let cache = GopCache::new(size + size / 2);
        for gop in &planned {
            cache
                .get_or_encode(camera, gop, step, EncodePriority::LookAhead)
                .unwrap();
        }
        let stats = cache.stats();
        assert_eq!(stats.gops_cached, 1);
        assert!(stats.bytes_cached <= size * 2);
        cache
            .get_or_encode(camera, &planned[0], step, EncodePriority::LookAhead)
            .unwrap();
        assert_eq!(
            cache.stats().gops_encoded,
            4,
            "the evicted GOP is encoded again"
        );
    }
}
