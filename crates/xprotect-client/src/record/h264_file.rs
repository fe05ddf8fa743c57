//! Raw Annex-B H.264: start codes before every NAL unit, parameter sets before every IDR.

use super::RecordError;
use crate::session::VideoFrame;
use std::io::Write;

/// Annex-B writer.
pub struct H264Writer {
    out: Box<dyn Write + Send>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    buffer: Vec<u8>,
    bytes: u64,
}

impl H264Writer {
    /// A writer on `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            sps: None,
            pps: None,
            buffer: Vec::new(),
            bytes: 0,
        }
    }

    /// Append an access unit. A keyframe that arrives without SPS/PPS gets the last ones seen,
    /// so that a player can start at any IDR of the file.
    pub fn write(&mut self, frame: &VideoFrame) -> Result<(), RecordError> {
        let unit = &frame.access_unit;
        if let Some(sps) = unit.sps() {
            self.sps = Some(sps.to_vec());
        }
        if let Some(pps) = unit.pps() {
            self.pps = Some(pps.to_vec());
        }
        self.buffer.clear();
        if unit.keyframe && unit.sps().is_none() {
            for parameter_set in [&self.sps, &self.pps].into_iter().flatten() {
                xprotect_proto::h264::annex_b::push_nal(&mut self.buffer, parameter_set);
            }
        }
        unit.write_annex_b(&mut self.buffer);
        self.out.write_all(&self.buffer)?;
        self.out.flush()?;
        self.bytes += self.buffer.len() as u64;
        Ok(())
    }

    /// Close; returns the bytes written.
    pub fn finish(mut self) -> Result<u64, RecordError> {
        self.out.flush()?;
        Ok(self.bytes)
    }
}
