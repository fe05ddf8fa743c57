//! Where frames go: MP4 or raw H.264 to a file or stdout, and frame times as JSON lines.
//!
//! Writers are synchronous and small: each call appends complete units (an MP4 fragment, an
//! access unit, a JSON line) and flushes, so a killed process leaves a playable file.

mod frame_log;
mod h264_file;
mod mp4_file;

pub use frame_log::FrameLog;
pub use h264_file::H264Writer;
pub use mp4_file::Mp4Writer;

use crate::session::{AudioPacket, VideoFrame};
use std::io::Write;
use std::path::PathBuf;

/// Container of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Fragmented MP4 (one fragment per GOP, at most a second): playable while written.
    #[default]
    Mp4,
    /// Raw Annex-B H.264 elementary stream.
    H264,
}

/// Where bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// A file (created or truncated).
    File(PathBuf),
    /// Standard output (`-o -`), e.g. for `| ffplay -`.
    Stdout,
}

impl OutputTarget {
    /// `-` means stdout.
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            OutputTarget::Stdout
        } else {
            OutputTarget::File(PathBuf::from(text))
        }
    }

    /// Open for writing.
    pub fn open(&self) -> Result<Box<dyn Write + Send>, RecordError> {
        Ok(match self {
            OutputTarget::Stdout => Box::new(std::io::stdout()),
            OutputTarget::File(path) => Box::new(std::fs::File::create(path).map_err(
                |source| RecordError::Create {
                    path: path.clone(),
                    source,
                },
            )?),
        })
    }
}

/// Writing a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The output could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing failed (disk full, closed pipe, …).
    #[error("cannot write the recording: {0}")]
    Write(#[from] std::io::Error),
    /// The muxer refused a frame it should not have been given.
    #[error("cannot mux a frame: {0}")]
    Mux(#[from] xprotect_mp4::MuxError),
}

impl RecordError {
    /// True when the reader of a pipe went away (`| head`, ffplay closed): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, RecordError::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// A recording in either format.
pub enum VideoWriter {
    /// Fragmented MP4 (boxed: the muxer's state is large and there is one writer per recording).
    Mp4(Box<Mp4Writer>),
    /// Annex-B.
    H264(H264Writer),
}

impl VideoWriter {
    /// Open `target` for `format`.
    pub fn create(target: &OutputTarget, format: OutputFormat) -> Result<Self, RecordError> {
        let out = target.open()?;
        Ok(match format {
            OutputFormat::Mp4 => VideoWriter::Mp4(Box::new(Mp4Writer::new(out)?)),
            OutputFormat::H264 => VideoWriter::H264(H264Writer::new(out)),
        })
    }

    /// Open `target` for `format`, with a PCMU audio track when `audio` (MP4 only; raw H.264
    /// has no place for audio) and without video when `video` is false (a microphone).
    pub fn create_with_tracks(
        target: &OutputTarget,
        format: OutputFormat,
        video: bool,
        audio: bool,
    ) -> Result<Self, RecordError> {
        match format {
            OutputFormat::Mp4 => Ok(VideoWriter::Mp4(Box::new(Mp4Writer::with_tracks(
                target.open()?,
                video,
                audio,
            )?))),
            OutputFormat::H264 => Self::create(target, format),
        }
    }

    /// Append an audio packet (ignored by a raw H.264 writer).
    pub fn write_audio(&mut self, packet: &AudioPacket) -> Result<(), RecordError> {
        match self {
            VideoWriter::Mp4(w) => w.write_audio(packet),
            VideoWriter::H264(_) => Ok(()),
        }
    }

    /// Append a frame.
    pub fn write(&mut self, frame: &VideoFrame) -> Result<(), RecordError> {
        match self {
            VideoWriter::Mp4(w) => w.write(frame),
            VideoWriter::H264(w) => w.write(frame),
        }
    }

    /// Flush what is pending (the last MP4 fragment) and close.
    pub fn finish(self) -> Result<u64, RecordError> {
        match self {
            VideoWriter::Mp4(w) => w.finish(),
            VideoWriter::H264(w) => w.finish(),
        }
    }
}
