//! The frames of a chunk that cannot be written yet: in memory up to a shared budget, then in a
//! spill file.
//!
//! Chunks after the one being written arrive as fast as their sessions play, and wait until
//! every earlier chunk is in the file. Their frames stay in memory while all the chunks' waiting
//! frames together fit in [`MEMORY_BUDGET`]; beyond it, a chunk's further frames go to a spill
//! file of its own (next to the output file, or in the temp directory for stdout), read back in
//! order when its turn comes. The file is deleted when the buffer is dropped. A frame's order is
//! kept: once a chunk spills, all its later frames follow in the file, behind the ones in memory.

use crate::session::VideoFrame;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use time::OffsetDateTime;
use xprotect_proto::clock::FrameTime;
use xprotect_proto::h264::AccessUnit;

/// Bytes of H.264 all chunks together may hold in memory while they wait.
pub const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// The memory all buffers share.
#[derive(Debug)]
pub(crate) struct Budget {
    available: usize,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Self { available: bytes }
    }
}

/// One chunk's waiting frames.
pub(crate) struct ChunkBuffer {
    memory: VecDeque<VideoFrame>,
    memory_bytes: usize,
    spill: Option<SpillFile>,
    /// Where a spill file would go, and its name's distinguishing part.
    spill_dir: PathBuf,
    spill_name: String,
}

impl ChunkBuffer {
    /// An empty buffer whose spill file, if needed, is `spill_dir/spill_name`.
    pub(crate) fn new(spill_dir: PathBuf, spill_name: String) -> Self {
        Self {
            memory: VecDeque::new(),
            memory_bytes: 0,
            spill: None,
            spill_dir,
            spill_name,
        }
    }

    /// Appends a frame: to memory if the budget allows and nothing is spilled yet, else to the
    /// spill file.
    pub(crate) fn push(&mut self, frame: VideoFrame, budget: &mut Budget) -> io::Result<()> {
        let size = frame.access_unit.avcc().len();
        if self.spill.is_none() && size <= budget.available {
            budget.available -= size;
            self.memory_bytes += size;
            self.memory.push_back(frame);
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self
                .spill
                .insert(SpillFile::create(&self.spill_dir.join(&self.spill_name))?),
        };
        spill.push(&frame)
    }

    /// The oldest frame, if any.
    pub(crate) fn pop(&mut self, budget: &mut Budget) -> io::Result<Option<VideoFrame>> {
        if let Some(frame) = self.memory.pop_front() {
            let size = frame.access_unit.avcc().len();
            self.memory_bytes -= size;
            budget.available += size;
            return Ok(Some(frame));
        }
        match &mut self.spill {
            Some(spill) => spill.pop(),
            None => Ok(None),
        }
    }

    /// Gives its memory back to the budget and deletes its spill file.
    pub(crate) fn discard(&mut self, budget: &mut Budget) {
        budget.available += self.memory_bytes;
        self.memory_bytes = 0;
        self.memory.clear();
        self.spill = None;
    }

    /// True if it has ever spilled to a file.
    pub(crate) fn spilled(&self) -> bool {
        self.spill.is_some()
    }
}

/// Frames appended at the end and read from the front; deleted on drop.
struct SpillFile {
    path: PathBuf,
    writer: BufWriter<File>,
    reader: BufReader<File>,
    /// Frames written but not read back yet.
    waiting: u64,
}

impl SpillFile {
    fn create(path: &Path) -> io::Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let reader = File::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::new(file),
            reader: BufReader::new(reader),
            waiting: 0,
        })
    }

    /// Record: wall clock (i128 ns), received (i128 ns), extended RTP (i64), RTP timestamp
    /// (u32), AVC bytes length (u32), AVC bytes. The media time is not kept: the export places
    /// every frame on its own timeline when writing it.
    fn push(&mut self, frame: &VideoFrame) -> io::Result<()> {
        let avcc = frame.access_unit.avcc();
        let length = u32::try_from(avcc.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
        let w = &mut self.writer;
        w.write_all(&frame.time.wall_clock.unix_timestamp_nanos().to_le_bytes())?;
        w.write_all(&frame.received.unix_timestamp_nanos().to_le_bytes())?;
        w.write_all(&frame.time.extended.to_le_bytes())?;
        w.write_all(&frame.access_unit.rtp_timestamp.to_le_bytes())?;
        w.write_all(&length.to_le_bytes())?;
        w.write_all(avcc)?;
        self.waiting += 1;
        Ok(())
    }

    fn pop(&mut self) -> io::Result<Option<VideoFrame>> {
        if self.waiting == 0 {
            return Ok(None);
        }
        // What the reader is about to read may still sit in the writer's buffer.
        self.writer.flush()?;
        let r = &mut self.reader;
        let wall_clock = read_time(r)?;
        let received = read_time(r)?;
        let extended = i64::from_le_bytes(read_array(r)?);
        let rtp_timestamp = u32::from_le_bytes(read_array(r)?);
        let length = u32::from_le_bytes(read_array(r)?) as usize;
        let mut avcc = vec![0; length];
        r.read_exact(&mut avcc)?;
        self.waiting -= 1;
        let access_unit =
            AccessUnit::from_nal_units(rtp_timestamp, Instant::now(), AvccNalUnits(&avcc));
        Ok(Some(VideoFrame {
            access_unit,
            time: FrameTime {
                extended,
                media_ms: 0,
                media_us: 0,
                wall_clock,
            },
            received,
        }))
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), %error, "could not delete a spill file");
        }
    }
}

fn read_array<const N: usize>(reader: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_time(reader: &mut impl Read) -> io::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from_le_bytes(read_array(reader)?))
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// The NAL units of an AVC sample (each behind a 4-byte big-endian length); stops at a
/// truncated one (which our own spill file never holds).
struct AvccNalUnits<'a>(&'a [u8]);

impl<'a> Iterator for AvccNalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.0.split_first_chunk::<4>()?;
        let length = u32::from_be_bytes(*length) as usize;
        let (nal, rest) = rest.split_at_checked(length)?;
        self.0 = rest;
        Some(nal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn frame(ms: i64, key: bool) -> VideoFrame {
        let nal_type: u8 = if key { 0x65 } else { 0x41 };
        let payload = vec![nal_type, ms as u8, 7, 7, 7];
        let sps: &[u8] = &[0x67, 0x42, 0, 0x1e];
        let nal_units: Vec<&[u8]> = if key {
            vec![sps, &payload]
        } else {
            vec![&payload]
        };
        let wall_clock = datetime!(2025-01-15 12:00 UTC) + time::Duration::milliseconds(ms);
        VideoFrame {
            access_unit: AccessUnit::from_nal_units(ms as u32, Instant::now(), nal_units),
            time: FrameTime {
                extended: ms,
                media_ms: ms,
                media_us: ms * 1000,
                wall_clock,
            },
            received: wall_clock + time::Duration::seconds(1),
        }
    }

    #[test]
    fn frames_come_back_in_order_across_memory_and_spill() {
        let dir = std::env::temp_dir();
        let name = format!("xprotect-buffer-test-{}.spill", std::process::id());
        // Room for two frames in memory: the rest spills.
        let two =
            frame(0, true).access_unit.avcc().len() + frame(40, false).access_unit.avcc().len();
        let mut budget = Budget::new(two);
        let mut buffer = ChunkBuffer::new(dir.clone(), name.clone());
        let sent: Vec<VideoFrame> = (0..6).map(|i| frame(i * 40, i % 3 == 0)).collect();
        for f in sent.iter().take(4) {
            buffer.push(f.clone(), &mut budget).unwrap();
        }
        assert!(buffer.spilled() && dir.join(&name).exists());
        let mut got = vec![buffer.pop(&mut budget).unwrap().unwrap()];
        // Pushing while reading keeps the order.
        for f in sent.iter().skip(4) {
            buffer.push(f.clone(), &mut budget).unwrap();
        }
        while let Some(f) = buffer.pop(&mut budget).unwrap() {
            got.push(f);
        }
        assert_eq!(got.len(), sent.len());
        for (got, sent) in got.iter().zip(&sent) {
            assert_eq!(got.time.wall_clock, sent.time.wall_clock);
            assert_eq!(got.received, sent.received);
            assert_eq!(got.access_unit.avcc(), sent.access_unit.avcc());
            assert_eq!(got.access_unit.keyframe, sent.access_unit.keyframe);
        }
        assert_eq!(budget.available, two, "memory is given back");
        drop(buffer);
        assert!(!dir.join(&name).exists(), "the spill file is deleted");
    }
}
