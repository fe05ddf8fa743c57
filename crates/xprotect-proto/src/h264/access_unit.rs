//! One access unit (one coded picture with its parameter sets and SEI), as the depacketiser
//! emits it.

use std::time::Instant;

use super::annex_b::START_CODE;
use super::nal::NalType;
use super::sei::FrameStamp;

/// Bytes of the big-endian length prefix in front of each stored NAL unit.
const LENGTH_PREFIX: usize = 4;

/// The NAL units of one RTP timestamp, in decoding order.
///
/// The NAL units are stored once, in AVC layout (each prefixed with its 4-byte big-endian length,
/// as an MP4 sample wants them), so [`into_avcc`](Self::into_avcc) costs nothing and
/// [`to_annex_b`](Self::to_annex_b) is one copy. Every stored NAL unit is non-empty.
///
/// # Incomplete access units
///
/// When packets were lost (a sequence gap inside or right before the access unit, or a
/// fragmented NAL unit that never finished) the depacketiser still emits what it has, with
/// [`complete`](Self::complete) `false` and the damaged NAL unit left out. Whether to decode
/// such a picture, drop it, or drop everything up to the next keyframe is the caller's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The RTP timestamp shared by all its packets (XProtect: milliseconds since the start
    /// reference; see [`crate::clock`]).
    pub rtp_timestamp: u32,
    /// Sequence number of the first packet that contributed.
    pub first_sequence: u16,
    /// Sequence number of the last packet that contributed.
    pub last_sequence: u16,
    /// Arrival time of the last packet that contributed.
    pub arrival: Instant,
    /// No packet was lost in or right before it, and no fragmented NAL unit was cut short.
    pub complete: bool,
    /// It contains a coded slice of an IDR picture (type 5).
    pub keyframe: bool,
    /// NAL units, each behind a 4-byte big-endian length.
    avcc: Vec<u8>,
    /// How many NAL units `avcc` holds.
    nal_count: usize,
}

impl AccessUnit {
    /// Builds an access unit from NAL units (without start codes), e.g. for tests or to feed a
    /// muxer from an encoder. Empty NAL units are skipped. The result is marked complete, with
    /// both sequence numbers 0.
    pub fn from_nal_units<'a, I>(rtp_timestamp: u32, arrival: Instant, nal_units: I) -> Self
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut au = Self::empty(rtp_timestamp, 0, arrival, 0);
        for nal in nal_units {
            au.push_nal(nal);
        }
        au
    }

    /// Iterates over the NAL units, without start codes or length prefixes.
    pub fn nal_units(&self) -> NalUnits<'_> {
        NalUnits {
            rest: &self.avcc,
            remaining: self.nal_count,
        }
    }

    /// How many NAL units it holds.
    pub fn nal_count(&self) -> usize {
        self.nal_count
    }

    /// The total size of its NAL units, without start codes or length prefixes.
    pub fn byte_len(&self) -> usize {
        self.avcc.len() - LENGTH_PREFIX * self.nal_count
    }

    /// The AVC (MP4 sample) form: each NAL unit behind its 4-byte big-endian length.
    pub fn avcc(&self) -> &[u8] {
        &self.avcc
    }

    /// A copy of the AVC form; see [`avcc`](Self::avcc).
    pub fn to_avcc(&self) -> Vec<u8> {
        self.avcc.clone()
    }

    /// The AVC form, without copying.
    pub fn into_avcc(self) -> Vec<u8> {
        self.avcc
    }

    /// The Annex-B form: each NAL unit behind a `00 00 00 01` start code.
    pub fn to_annex_b(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.avcc.len());
        self.write_annex_b(&mut out);
        out
    }

    /// Appends the Annex-B form to `out` (for writers that reuse one buffer).
    pub fn write_annex_b(&self, out: &mut Vec<u8>) {
        out.reserve(self.avcc.len());
        for nal in self.nal_units() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
    }

    /// The first sequence parameter set in it, if any.
    pub fn sps(&self) -> Option<&[u8]> {
        self.first_of_type(NalType::Sps)
    }

    /// The first picture parameter set in it, if any.
    pub fn pps(&self) -> Option<&[u8]> {
        self.first_of_type(NalType::Pps)
    }

    /// The emulator's frame stamp, when one of its SEI NAL units carries it
    /// (see [`FrameStamp`]).
    pub fn frame_stamp(&self) -> Option<FrameStamp> {
        self.nal_units()
            .filter(|nal| {
                nal.first()
                    .is_some_and(|&h| NalType::from_header(h) == NalType::Sei)
            })
            .find_map(FrameStamp::from_sei_nal)
    }

    fn first_of_type(&self, wanted: NalType) -> Option<&[u8]> {
        self.nal_units().find(|nal| {
            nal.first()
                .is_some_and(|&h| NalType::from_header(h) == wanted)
        })
    }

    // ---- building, for the depacketiser ----

    /// An access unit with no NAL units yet; `capacity` is a size hint for the byte buffer.
    pub(crate) fn empty(
        rtp_timestamp: u32,
        sequence: u16,
        arrival: Instant,
        capacity: usize,
    ) -> Self {
        Self {
            rtp_timestamp,
            first_sequence: sequence,
            last_sequence: sequence,
            arrival,
            complete: true,
            keyframe: false,
            avcc: Vec::with_capacity(capacity),
            nal_count: 0,
        }
    }

    /// Stored bytes so far (NAL units plus their length prefixes).
    pub(crate) fn stored_len(&self) -> usize {
        self.avcc.len()
    }

    /// Appends one whole NAL unit; empty input is ignored.
    pub(crate) fn push_nal(&mut self, nal: &[u8]) {
        if let Some(&header) = nal.first() {
            let start = self.begin_nal(header);
            self.avcc.extend_from_slice(&nal[1..]);
            self.finish_nal(start);
        }
    }

    /// Starts a NAL unit that arrives in pieces (an FU-A): reserves its length prefix and
    /// writes its header byte. Returns the handle for [`finish_nal`](Self::finish_nal) or
    /// [`abort_nal`](Self::abort_nal).
    pub(crate) fn begin_nal(&mut self, header: u8) -> usize {
        let start = self.avcc.len();
        self.avcc.extend_from_slice(&[0; LENGTH_PREFIX]);
        self.avcc.push(header);
        start
    }

    /// Appends bytes to the NAL unit begun last.
    pub(crate) fn extend_nal(&mut self, bytes: &[u8]) {
        self.avcc.extend_from_slice(bytes);
    }

    /// Completes the NAL unit begun at `start`: writes its length and notes its type.
    pub(crate) fn finish_nal(&mut self, start: usize) {
        let body = start + LENGTH_PREFIX;
        let len = self.avcc.len().saturating_sub(body);
        // The depacketiser caps access units far below 4 GiB, so the length always fits.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        if let Some(prefix) = self.avcc.get_mut(start..body) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
        if self
            .avcc
            .get(body)
            .is_some_and(|&h| NalType::from_header(h).is_idr())
        {
            self.keyframe = true;
        }
        self.nal_count += 1;
    }

    /// Throws away the NAL unit begun at `start`.
    pub(crate) fn abort_nal(&mut self, start: usize) {
        self.avcc.truncate(start);
    }
}

/// Iterator over the NAL units of an [`AccessUnit`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (prefix, rest) = self.rest.split_first_chunk::<LENGTH_PREFIX>()?;
        let len = u32::from_be_bytes(*prefix) as usize;
        // The buffer is written only by AccessUnit's builder, which keeps prefixes exact; `get`
        // keeps a broken invariant from turning into a panic.
        let nal = rest.get(..len)?;
        self.rest = &rest[len..];
        self.remaining = self.remaining.saturating_sub(1);
        Some(nal)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for NalUnits<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];

    #[test]
    fn forms_and_lookups() {
        let au = AccessUnit::from_nal_units(90, Instant::now(), [SPS, PPS, &[][..], IDR]);
        assert_eq!(au.nal_count(), 3);
        assert!(au.keyframe);
        assert!(au.complete);
        assert_eq!(au.sps(), Some(SPS));
        assert_eq!(au.pps(), Some(PPS));
        assert_eq!(au.byte_len(), SPS.len() + PPS.len() + IDR.len());
        assert_eq!(au.nal_units().collect::<Vec<_>>(), vec![SPS, PPS, IDR]);
        assert_eq!(au.nal_units().len(), 3);

        let annex_b = au.to_annex_b();
        assert_eq!(&annex_b[..5], &[0, 0, 0, 1, 0x67]);
        let split: Vec<&[u8]> = crate::h264::annex_b::split(&annex_b).collect();
        assert_eq!(split, vec![SPS, PPS, IDR]);

        let avcc = au.to_avcc();
        assert_eq!(&avcc[..5], &[0, 0, 0, 4, 0x67]);
        assert_eq!(avcc.len(), au.byte_len() + 12);
        assert_eq!(au.clone().into_avcc(), avcc);
        assert_eq!(au.frame_stamp(), None);
    }

    #[test]
    fn non_keyframe_without_parameter_sets() {
        let au = AccessUnit::from_nal_units(0, Instant::now(), [&[0x41u8, 0x9a][..]]);
        assert!(!au.keyframe);
        assert_eq!(au.sps(), None);
        assert_eq!(au.pps(), None);
    }

    #[test]
    fn aborted_fragment_leaves_no_trace() {
        let mut au = AccessUnit::empty(0, 0, Instant::now(), 0);
        au.push_nal(SPS);
        let start = au.begin_nal(0x65);
        au.extend_nal(&[1, 2, 3]);
        au.abort_nal(start);
        assert_eq!(au.nal_count(), 1);
        assert!(!au.keyframe);
        assert_eq!(au.avcc().len(), 4 + SPS.len());
    }
}
