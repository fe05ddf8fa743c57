//! The emulator's frame stamp: an SEI NAL unit (type 6) with one `user_data_unregistered`
//! message (payload type 5, H.264 §D.1.7) that carries the frame's true recording time, so tests
//! can check a client's frame clock to the millisecond.
//!
//! Layout of the NAL unit, before emulation prevention of everything after the header byte:
//!
//! ```text
//! 0x06 | 0x05 | size (0xFF-coded) | FRAME_STAMP_UUID (16 bytes) | compact JSON of FrameStamp | 0x80
//! ```
//!
//! Decoders ignore unregistered user data they do not recognise, so stamped streams stay
//! playable everywhere.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::emulation_prevention::{escape_into, unescape};
use super::nal::NalType;

/// The `uuid_iso_iec_11578` that marks a frame stamp: `fd438052-3bd7-427d-8191-ab492d96f7e7`,
/// a random (version 4) UUID generated once for this project.
pub const FRAME_STAMP_UUID: [u8; 16] = [
    0xfd, 0x43, 0x80, 0x52, 0x3b, 0xd7, 0x42, 0x7d, 0x81, 0x91, 0xab, 0x49, 0x2d, 0x96, 0xf7, 0xe7,
];

/// SEI payload type of `user_data_unregistered`.
pub const USER_DATA_UNREGISTERED: u32 = 5;

/// The `rbsp_stop_one_bit` plus alignment zeros that end an SEI RBSP.
const RBSP_TRAILING: u8 = 0x80;

/// What the emulator knows about a frame it sends; the JSON after [`FRAME_STAMP_UUID`].
///
/// New optional fields may be added later; readers ignore unknown fields.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FrameStamp {
    /// The frame's recording time, Unix milliseconds (UTC).
    pub recording_unix_ms: i64,
    /// Frame counter of the emulated camera.
    pub frame: u64,
    /// The camera id the frame belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// Emulated PTZ pan when the frame was taken: degrees from home, positive right
    /// (`-180..=180`). Live frames only; recordings carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<f32>,
    /// Emulated PTZ tilt when the frame was taken: degrees from home, positive up (`-90..=90`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt: Option<f32>,
    /// Emulated aux output states when the frame was taken, output 1 first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<Vec<bool>>,
}

impl FrameStamp {
    /// A stamp with only the required fields.
    pub fn new(recording_unix_ms: i64, frame: u64) -> Self {
        Self {
            recording_unix_ms,
            frame,
            camera: None,
            pan: None,
            tilt: None,
            aux: None,
        }
    }

    /// The complete SEI NAL unit (header byte included, no start code), ready to put in front of
    /// a frame's first slice.
    pub fn to_sei_nal(&self) -> Vec<u8> {
        // Serialising a struct of numbers, strings and bools cannot fail (non-finite floats become
        // `null`, which reads back as `None`).
        let json = serde_json::to_vec(self).expect("FrameStamp always serialises to JSON");
        let payload_len = FRAME_STAMP_UUID.len() + json.len();

        let mut rbsp = Vec::with_capacity(payload_len + 8);
        push_ff_coded(&mut rbsp, USER_DATA_UNREGISTERED as usize);
        push_ff_coded(&mut rbsp, payload_len);
        rbsp.extend_from_slice(&FRAME_STAMP_UUID);
        rbsp.extend_from_slice(&json);
        rbsp.push(RBSP_TRAILING);

        let mut nal = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 2);
        nal.push(NalType::Sei.as_u8());
        escape_into(&rbsp, &mut nal);
        nal
    }

    /// Reads the stamp from an SEI NAL unit (header byte included, no start code).
    ///
    /// Looks through every SEI message in the NAL unit and returns the first
    /// `user_data_unregistered` message with [`FRAME_STAMP_UUID`] whose JSON parses. Other
    /// messages and UUIDs are skipped; anything that is not a well-formed SEI NAL unit gives
    /// `None`.
    pub fn from_sei_nal(nal: &[u8]) -> Option<FrameStamp> {
        let (&header, body) = nal.split_first()?;
        if NalType::from_header(header) != NalType::Sei {
            return None;
        }
        let rbsp = unescape(body);
        sei_messages(&rbsp)
            .map_while(Result::ok)
            .filter(|m| m.payload_type == USER_DATA_UNREGISTERED)
            .filter_map(|m| m.payload.strip_prefix(&FRAME_STAMP_UUID[..]))
            .find_map(|json| serde_json::from_slice(json).ok())
    }
}

/// One SEI message: its payload type and payload bytes (emulation prevention already removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeiMessage<'a> {
    /// `payloadType` (5 = user data unregistered, 6 = recovery point, …).
    pub payload_type: u32,
    /// The `sei_payload` bytes.
    pub payload: &'a [u8],
}

/// Why an SEI RBSP could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SeiError {
    /// The RBSP ended inside a payload type or size.
    #[error("SEI message header truncated")]
    TruncatedHeader,
    /// A message's payload size runs past the end of the RBSP.
    #[error("SEI payload of {size} bytes runs past the end ({available} left)")]
    PayloadPastEnd {
        /// The declared payload size.
        size: usize,
        /// Bytes actually left.
        available: usize,
    },
    /// A payload type or size value is absurdly large (more than 2^24).
    #[error("SEI payload type or size too large")]
    ValueTooLarge,
}

/// Iterates over the SEI messages of an SEI RBSP (the NAL payload after the header byte, with
/// emulation prevention removed). Stops at the RBSP trailing bits; after an error it yields
/// nothing more.
pub fn sei_messages(rbsp: &[u8]) -> SeiMessages<'_> {
    SeiMessages { rest: rbsp }
}

/// Iterator returned by [`sei_messages`].
#[derive(Debug, Clone)]
pub struct SeiMessages<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SeiMessages<'a> {
    type Item = Result<SeiMessage<'a>, SeiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if is_rbsp_trailing(self.rest) {
            return None;
        }
        let result = self.read_message();
        if result.is_err() {
            self.rest = &[];
        }
        Some(result)
    }
}

impl<'a> SeiMessages<'a> {
    fn read_message(&mut self) -> Result<SeiMessage<'a>, SeiError> {
        let payload_type = read_ff_coded(&mut self.rest)?;
        let size = read_ff_coded(&mut self.rest)? as usize;
        let available = self.rest.len();
        if size > available {
            return Err(SeiError::PayloadPastEnd { size, available });
        }
        let (payload, rest) = self.rest.split_at(size);
        self.rest = rest;
        Ok(SeiMessage {
            payload_type,
            payload,
        })
    }
}

/// True at the end of the messages: nothing left, or only `rbsp_trailing_bits`.
fn is_rbsp_trailing(rest: &[u8]) -> bool {
    match rest.split_first() {
        None => true,
        Some((&first, tail)) => first == RBSP_TRAILING && tail.iter().all(|&b| b == 0),
    }
}

/// Writes a value as `0xFF` bytes (255 each) followed by the remainder (§7.3.2.3.1).
fn push_ff_coded(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0xff {
        out.push(0xff);
        value -= 0xff;
    }
    // The loop leaves value < 255.
    out.push(value as u8);
}

/// Reads a `0xFF`-coded value, refusing anything above 2^24 (no real SEI comes close, and the
/// cap keeps a run of 0xFF bytes from meaning something silly).
fn read_ff_coded(rest: &mut &[u8]) -> Result<u32, SeiError> {
    let mut value = 0u32;
    loop {
        let (&byte, tail) = rest.split_first().ok_or(SeiError::TruncatedHeader)?;
        *rest = tail;
        value += u32::from(byte);
        if value > 1 << 24 {
            return Err(SeiError::ValueTooLarge);
        }
        if byte != 0xff {
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_stamp() -> FrameStamp {
        FrameStamp {
            recording_unix_ms: 1_736_942_694_123,
            frame: 42,
            camera: Some("5f1c0e5b-6ad0-4a3c-9d2b-1b6b0e3c9a11".into()),
            pan: Some(-0.25),
            tilt: Some(0.5),
            aux: Some(vec![true, false]),
        }
    }

    #[test]
    fn round_trips_minimal_and_full() {
        for stamp in [
            FrameStamp::new(0, 0),
            FrameStamp::new(-5, u64::MAX),
            full_stamp(),
        ] {
            let nal = stamp.to_sei_nal();
            assert_eq!(nal[0], 0x06);
            assert_eq!(nal[1], 0x05);
            assert_eq!(*nal.last().unwrap(), 0x80);
            assert_eq!(FrameStamp::from_sei_nal(&nal), Some(stamp));
        }
    }

    #[test]
    fn compact_json_omits_absent_fields() {
        let nal = FrameStamp::new(7, 1).to_sei_nal();
        let json = br#"{"recording_unix_ms":7,"frame":1}"#;
        assert_eq!(nal[2] as usize, 16 + json.len());
        assert_eq!(&nal[3..19], &FRAME_STAMP_UUID);
        assert_eq!(&nal[19..19 + json.len()], json);
    }

    #[test]
    fn long_payload_uses_ff_coding_and_round_trips() {
        let mut stamp = full_stamp();
        stamp.camera = Some("c".repeat(600));
        let nal = stamp.to_sei_nal();
        assert_eq!(&nal[2..4], &[0xff, 0xff]);
        assert_eq!(FrameStamp::from_sei_nal(&nal), Some(stamp));
    }

    #[test]
    fn finds_stamp_among_other_messages() {
        let json = br#"{"recording_unix_ms":99,"frame":3,"future_field":true}"#;
        let mut rbsp = Vec::new();
        // A recovery point message (type 6), then user data with another UUID, then ours.
        rbsp.extend_from_slice(&[6, 1, 0x84]);
        rbsp.extend_from_slice(&[5, 17]);
        rbsp.extend_from_slice(&[0u8; 16]);
        rbsp.push(b'x');
        push_ff_coded(&mut rbsp, 5);
        push_ff_coded(&mut rbsp, 16 + json.len());
        rbsp.extend_from_slice(&FRAME_STAMP_UUID);
        rbsp.extend_from_slice(json);
        rbsp.push(0x80);
        let mut nal = vec![0x06];
        escape_into(&rbsp, &mut nal);

        assert_eq!(sei_messages(&rbsp).count(), 3);
        assert_eq!(FrameStamp::from_sei_nal(&nal), Some(FrameStamp::new(99, 3)));
    }

    #[test]
    fn rejects_wrong_type_foreign_uuid_and_garbage() {
        let mut nal = FrameStamp::new(1, 2).to_sei_nal();
        assert_eq!(FrameStamp::from_sei_nal(&[]), None);
        assert_eq!(FrameStamp::from_sei_nal(&[0x06]), None);
        assert_eq!(FrameStamp::from_sei_nal(&[0x06, 0x05]), None);
        assert_eq!(FrameStamp::from_sei_nal(&[0x06, 0x05, 0xff]), None);
        assert_eq!(FrameStamp::from_sei_nal(&[0x06, 0x05, 200, 1, 2]), None);
        let mut other = nal.clone();
        other[0] = 0x65;
        assert_eq!(FrameStamp::from_sei_nal(&other), None);
        nal[3] ^= 1;
        assert_eq!(FrameStamp::from_sei_nal(&nal), None);
        assert_eq!(
            sei_messages(&[5, 9, 1]).next(),
            Some(Err(SeiError::PayloadPastEnd {
                size: 9,
                available: 1
            }))
        );
        assert_eq!(
            sei_messages(&[0xff; 70_000]).next(),
            Some(Err(SeiError::ValueTooLarge))
        );
    }

    #[test]
    fn escapes_zero_runs_from_the_uuid_region() {
        // The JSON never contains zero bytes, but the payload size byte and UUID could be
        // followed by patterns the escape must handle; a stamp round-trips either way, and the
        // NAL never contains a start code.
        let nal = full_stamp().to_sei_nal();
        assert!(!nal.windows(3).any(|w| w == [0, 0, 1]));
    }
}
