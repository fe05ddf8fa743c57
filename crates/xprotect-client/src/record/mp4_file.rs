//! Fragmented MP4 through our muxer; each fragment is written and flushed as it completes.

use super::RecordError;
use crate::session::VideoFrame;
use std::io::Write;
use xprotect_mp4::{MuxError, Muxer, MuxerConfig, WallClock};

/// MP4 writer: `moov` at the first keyframe, then one `prft`+`moof`+`mdat` per GOP (≤ 1 s).
pub struct Mp4Writer {
    muxer: Muxer,
    out: Box<dyn Write + Send>,
    bytes: u64,
    nal_scratch: Vec<&'static [u8]>,
}

impl Mp4Writer {
    /// A writer for video only (audio joins in a later release of this writer).
    pub fn new(out: Box<dyn Write + Send>) -> Result<Self, RecordError> {
        let muxer = Muxer::new(MuxerConfig {
            video: true,
            audio: None,
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
