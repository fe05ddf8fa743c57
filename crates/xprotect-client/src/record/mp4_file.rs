//! Fragmented MP4 through our muxer; each fragment is written and flushed as it completes.
//!
//! Audio is stored as received: G.711 µ-law in a `ulaw` track at 8 kHz, not decoded to linear
//! PCM (`sowt`/`lpcm`) nor transcoded to AAC. Why: it is lossless with respect to what the
//! gateway sent at half the size of 16-bit PCM, needs no codec dependency, and ffmpeg/ffprobe
//! (`pcm_mulaw`), VLC and mpv play it. What it costs: browsers' `<video>` do not play `ulaw` (nor
//! `lpcm`: only AAC/Opus would do), and QuickTime Player is unreliable with `ulaw` in MP4; a
//! viewer there can remux with `ffmpeg -i in.mp4 -c:v copy -c:a aac out.mp4`. Both tracks share
//! the session's start reference (video ms and audio samples from the same instant, PROTOCOL.md
//! §4.2), so their media times line up in the file as they did on the wire.

use super::RecordError;
use crate::session::{AudioPacket, VideoFrame};
use std::io::Write;
use xprotect_mp4::{AudioConfig, MuxError, Muxer, MuxerConfig, WallClock};

/// MP4 writer: `moov` at the first keyframe, then one `prft`+`moof`+`mdat` per GOP (≤ 1 s).
pub struct Mp4Writer {
    muxer: Muxer,
    out: Box<dyn Write + Send>,
    bytes: u64,
    nal_scratch: Vec<&'static [u8]>,
}

impl Mp4Writer {
    /// A writer for video only.
    pub fn new(out: Box<dyn Write + Send>) -> Result<Self, RecordError> {
        Self::with_tracks(out, true, false)
    }

    /// A writer with a video track, a PCMU audio track (8 kHz mono), or both.
    pub fn with_tracks(
        out: Box<dyn Write + Send>,
        video: bool,
        audio: bool,
    ) -> Result<Self, RecordError> {
        let muxer = Muxer::new(MuxerConfig {
            video,
            audio: audio.then(AudioConfig::default),
            ..MuxerConfig::default()
        })?;
        Ok(Self {
            muxer,
            out,
            bytes: 0,
            nal_scratch: Vec::new(),
        })
    }

    /// Append a frame; writes whenever a fragment completes.
    pub fn write(&mut self, frame: &VideoFrame) -> Result<(), RecordError> {
        let nal_units: Vec<&[u8]> = frame.access_unit.nal_units().collect();
        let wall_clock = WallClock::from_system_time(frame.time.wall_clock.into());
        let pushed = self.muxer.push_video(&xprotect_mp4::VideoFrame {
            media_time_ms: frame.time.media_ms,
            wall_clock,
            keyframe: frame.access_unit.keyframe,
            nal_units: &nal_units,
        });
        self.nal_scratch.clear();
        match pushed {
            Ok(bytes) => self.append(&bytes),
            // The session delivers a keyframe first, so this only happens for a keyframe
            // without SPS/PPS; the next one will start the file.
            Err(MuxError::NotStarted) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Append a PCMU packet at its place on the session's timeline.
    pub fn write_audio(&mut self, packet: &AudioPacket) -> Result<(), RecordError> {
        if packet.packet.payload.is_empty() {
            return Ok(());
        }
        // Audio media time is whole 8 kHz samples: 125 µs each.
        let pushed = self.muxer.push_audio(&xprotect_mp4::AudioFrame {
            media_time_samples: packet.time.media_us.div_euclid(125),
            wall_clock: WallClock::from_system_time(packet.time.wall_clock.into()),
            payload: &packet.packet.payload,
        });
        match pushed {
            Ok(bytes) => self.append(&bytes),
            // Before the first video keyframe starts the file: that audio has no picture.
            Err(MuxError::NotStarted) => Ok(()),
            // A duplicated or reordered packet: drop it rather than end the recording.
            Err(MuxError::NonMonotonicTime { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Write the pending fragment; returns the bytes written in all.
    pub fn finish(mut self) -> Result<u64, RecordError> {
        let bytes = self.muxer.finish()?;
        self.append(&bytes)?;
        Ok(self.bytes)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.out.write_all(bytes)?;
        self.out.flush()?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}
