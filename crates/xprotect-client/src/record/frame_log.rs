//! `--frame-times`: one JSON object per frame.
//!
//! `{"type":"video","time":"2025-01-15T12:04:54.120Z","rtp":1200,"media_ms":1200,"keyframe":true,"bytes":48211,"received":"…"}`
//! — `time` is the frame's wall-clock time (start reference + RTP milliseconds, PROTOCOL.md
//! §4.2), `received` when its last packet arrived. New fields may be added; none will be removed.

use super::RecordError;
use crate::session::VideoFrame;
use serde::Serialize;
use std::io::Write;
use xprotect_proto::clock::format_rfc3339_millis;

#[derive(Serialize)]
struct FrameLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    time: String,
    rtp: u32,
    media_ms: i64,
    keyframe: bool,
    bytes: usize,
    received: String,
}

/// JSON-lines writer for frame times.
pub struct FrameLog {
    out: Box<dyn Write + Send>,
    line: Vec<u8>,
}

impl FrameLog {
    /// A log on `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            line: Vec::with_capacity(256),
        }
    }

    /// Write one video frame's line.
    pub fn video(&mut self, frame: &VideoFrame) -> Result<(), RecordError> {
        self.line.clear();
        let line = FrameLine {
            kind: "video",
            time: format_rfc3339_millis(frame.time.wall_clock),
            rtp: frame.access_unit.rtp_timestamp,
            media_ms: frame.time.media_ms,
            keyframe: frame.access_unit.keyframe,
            bytes: frame.access_unit.byte_len(),
            received: format_rfc3339_millis(frame.received),
        };
        serde_json::to_writer(&mut self.line, &line).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()?;
        Ok(())
    }
}
