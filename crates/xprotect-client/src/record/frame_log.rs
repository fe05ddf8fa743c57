//! `--frame-times`: one JSON object per frame.
//!
//! `{"type":"video","kind":"video","time":"2025-01-15T12:04:54.120Z","rtp":1200,"media_ms":1200,"keyframe":true,"bytes":48211,"received":"…"}`
//! — `time` is the frame's wall-clock time (start reference + RTP milliseconds, PROTOCOL.md
//! §4.2), `received` when its last packet arrived. Audio packets, one line each:
//! `{"type":"audio","kind":"audio","time":"…","rtp":9600,"media_us":1200000,"samples":160,"received":"…"}`
//! — `time` is the first sample's time (start reference + RTP / 8 ms). New fields may be added;
//! none will be removed.

use super::RecordError;
use crate::session::{AudioPacket, VideoFrame};
use serde::Serialize;
use std::io::Write;
use xprotect_proto::clock::format_rfc3339_millis;

#[derive(Serialize)]
struct FrameLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "kind")]
    media_kind: &'a str,
    time: String,
    rtp: u32,
    media_ms: i64,
    keyframe: bool,
    bytes: usize,
    received: String,
}

#[derive(Serialize)]
struct AudioLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "kind")]
    media_kind: &'a str,
    time: String,
    rtp: u32,
    media_us: i64,
    samples: usize,
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
            media_kind: "video",
            time: format_rfc3339_millis(frame.time.wall_clock),
            rtp: frame.access_unit.rtp_timestamp,
            media_ms: frame.time.media_ms,
            keyframe: frame.access_unit.keyframe,
            bytes: frame.access_unit.byte_len(),
            received: format_rfc3339_millis(frame.received),
        };
        serde_json::to_writer(&mut self.line, &line).map_err(std::io::Error::other)?;
        self.finish_line()
    }

    /// Write one audio packet's line.
    pub fn audio(&mut self, packet: &AudioPacket) -> Result<(), RecordError> {
        self.line.clear();
        let line = AudioLine {
            kind: "audio",
            media_kind: "audio",
            time: format_rfc3339_millis(packet.time.wall_clock),
            rtp: packet.packet.timestamp,
            media_us: packet.time.media_us,
            // PCMU: one byte per sample.
            samples: packet.packet.payload.len(),
            received: format_rfc3339_millis(packet.received),
        };
        serde_json::to_writer(&mut self.line, &line).map_err(std::io::Error::other)?;
        self.finish_line()
    }

    fn finish_line(&mut self) -> Result<(), RecordError> {
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()?;
        Ok(())
    }
}
