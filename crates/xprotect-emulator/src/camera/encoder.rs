//! One camera's H.264 encoder: I420 in, a stamped access unit out.
//!
//! Wraps openh264 in the configuration the emulator needs (constrained baseline, constant bitrate,
//! fixed keyframe interval, no skipped frames) and turns its Annex-B output into an
//! [`EncodedFrame`]: NAL units without start codes, the SEI [`FrameStamp`] first, SPS/PPS in front
//! of every keyframe.

use std::sync::Arc;

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use uuid::Uuid;
use xprotect_proto::h264::sei::FrameStamp;

use super::ptz::PtzState;
use super::{CameraConfig, SourceId, StreamKind};

/// Target bitrate of every synthetic camera: in the 1-2 Mbps range of a real 360p camera stream.
pub const TARGET_BITRATE_BPS: u32 = 1_500_000;

const NAL_TYPE_IDR: u8 = 5;
const NAL_TYPE_SPS: u8 = 7;
const NAL_TYPE_PPS: u8 = 8;
const ANNEX_B_START_CODE: [u8; 4] = [0, 0, 0, 1];

/// One encoded picture of a camera, shared by every session watching it.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// The camera this frame comes from.
    pub camera_id: Uuid,
    /// Which of the camera's encodings (playback pictures are always the primary's size).
    pub stream: StreamKind,
    /// Wall-clock time at which the picture was captured (rendered), Unix ms.
    pub recording_unix_ms: i64,
    /// Camera-wide frame counter, the number printed in the picture.
    pub frame_number: u64,
    /// True for an IDR access unit (carries SPS and PPS too).
    pub keyframe: bool,
    /// NAL units without start codes: the SEI stamp first, then (keyframes) SPS, PPS, then slices.
    pub nal_units: Vec<Bytes>,
    /// The same NAL units as one Annex-B buffer, the form str0m's packetiser takes; an `Arc` so
    /// handing it to a session is a reference-count increment, not a copy.
    pub annex_b: Arc<[u8]>,
    /// `profile_idc`, constraint flags and `level_idc` from the SPS, e.g. `0x42c01e`.
    pub profile_level_id: u32,
}

impl EncodedFrame {
    /// The camera encoding the frame belongs to.
    pub fn source_id(&self) -> SourceId {
        SourceId {
            camera: self.camera_id,
            stream: self.stream,
        }
    }
}

/// Why encoding a picture failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// openh264 refused the configuration or the picture.
    #[error("openh264 failed: {0}")]
    Openh264(#[from] openh264::Error),
    /// The encoder produced no picture data (it must not skip frames in this configuration).
    #[error("the encoder produced no picture for frame {0}")]
    NoPicture(u64),
    /// The stream has no SPS yet, so the profile-level-id is unknown.
    #[error("the encoder emitted a keyframe without a sequence parameter set")]
    NoSps,
}

/// A camera's encoder with the state needed to stamp and complete each access unit.
pub struct CameraEncoder {
    camera_id: Uuid,
    stream: StreamKind,
    camera_name: String,
    encoder: Encoder,
    width: usize,
    height: usize,
    /// The latest SPS and PPS, put in front of a keyframe that comes without them.
    parameter_sets: Option<(Bytes, Bytes)>,
}

impl std::fmt::Debug for CameraEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraEncoder")
            .field("camera_id", &self.camera_id)
            .field("stream", &self.stream)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl CameraEncoder {
    /// An encoder for `camera`'s primary stream at `width` x `height` (the picture size), its
    /// frame rate and keyframe interval.
    pub fn new(camera: &CameraConfig, width: usize, height: usize) -> Result<Self, EncodeError> {
        Self::for_stream(camera, StreamKind::Primary, width, height)
    }

    /// As [`Self::new`], for one of the camera's encodings; its frames say which.
    pub fn for_stream(
        camera: &CameraConfig,
        stream: StreamKind,
        width: usize,
        height: usize,
    ) -> Result<Self, EncodeError> {
        let fps = camera.fps.max(1);
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(TARGET_BITRATE_BPS))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            // Buffer-based control adapts quality without skipping frames; the bitrate modes
            // would need frame skipping (and openh264 prints a warning without it).
            .rate_control_mode(RateControlMode::Bufferbased)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .complexity(Complexity::Low)
            // A skipped frame would leave a session without the picture its RTP clock promised.
            .skip_frames(false)
            // Keyframes only where the interval (or a session join) asks for them.
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                camera.keyframe_interval_frames.max(1),
            ))
            // One thread per camera: the emulator's CPU belongs to the sessions.
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
        Ok(Self {
            camera_id: camera.id,
            stream,
            camera_name: camera.name.clone(),
            encoder,
            width,
            height,
            parameter_sets: None,
        })
    }

    /// Encodes one I420 picture (tightly packed planes of this encoder's size). With
    /// `force_keyframe` the picture becomes an IDR. The stamp carries no PTZ state (recordings).
    pub fn encode(
        &mut self,
        planes: (&[u8], &[u8], &[u8]),
        recording_unix_ms: i64,
        frame_number: u64,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, EncodeError> {
        self.encode_stamped(
            planes,
            recording_unix_ms,
            frame_number,
            force_keyframe,
            None,
        )
    }

    /// As [`Self::encode`], for a live picture taken with the head at `ptz`: the SEI stamp
    /// carries pan, tilt (degrees) and the aux outputs.
    pub fn encode_live(
        &mut self,
        planes: (&[u8], &[u8], &[u8]),
        recording_unix_ms: i64,
        frame_number: u64,
        force_keyframe: bool,
        ptz: &PtzState,
    ) -> Result<EncodedFrame, EncodeError> {
        self.encode_stamped(
            planes,
            recording_unix_ms,
            frame_number,
            force_keyframe,
            Some(ptz),
        )
    }

    fn encode_stamped(
        &mut self,
        planes: (&[u8], &[u8], &[u8]),
        recording_unix_ms: i64,
        frame_number: u64,
        force_keyframe: bool,
        ptz: Option<&PtzState>,
    ) -> Result<EncodedFrame, EncodeError> {
        if force_keyframe {
            self.encoder.force_intra_frame();
        }
        let source = YUVSlices::new(
            planes,
            (self.width, self.height),
            (self.width, self.width / 2, self.width / 2),
        );
        let bitstream = self.encoder.encode(&source)?;
        let keyframe = matches!(bitstream.frame_type(), FrameType::IDR);
        let mut annex_b = Vec::new();
        bitstream.write_vec(&mut annex_b);

        let mut sps = None;
        let mut pps = None;
        let mut slices = Vec::new();
        for nal in split_annex_b(&annex_b) {
            match nal.first().map(|h| h & 0x1F) {
                Some(NAL_TYPE_SPS) => sps = Some(Bytes::copy_from_slice(nal)),
                Some(NAL_TYPE_PPS) => pps = Some(Bytes::copy_from_slice(nal)),
                Some(_) => slices.push(Bytes::copy_from_slice(nal)),
                None => {}
            }
        }
        if let (Some(sps), Some(pps)) = (&sps, &pps) {
            self.parameter_sets = Some((sps.clone(), pps.clone()));
        }
        if !slices
            .iter()
            .any(|n| n.first().is_some_and(|h| h & 0x1F <= NAL_TYPE_IDR))
        {
            return Err(EncodeError::NoPicture(frame_number));
        }

        let stamp = FrameStamp {
            recording_unix_ms,
            frame: frame_number,
            camera: Some(self.camera_name.clone()),
            // Whole degrees well inside f32's exact integer range.
            pan: ptz.map(|p| p.pan as f32),
            tilt: ptz.map(|p| p.tilt as f32),
            aux: ptz.map(|p| p.aux.to_vec()),
        };
        let mut nal_units = Vec::with_capacity(slices.len() + 3);
        nal_units.push(Bytes::from(stamp.to_sei_nal()));
        let profile_level_id = match &self.parameter_sets {
            Some((sps, pps)) => {
                if keyframe {
                    // Every keyframe is a complete entry point, even a forced one that openh264
                    // emitted without repeating the parameter sets.
                    nal_units.push(sps.clone());
                    nal_units.push(pps.clone());
                }
                profile_level_id_of(sps).ok_or(EncodeError::NoSps)?
            }
            None => return Err(EncodeError::NoSps),
        };
        nal_units.extend(slices);

        let mut annex_b = Vec::with_capacity(nal_units.iter().map(|n| n.len() + 4).sum());
        for nal in &nal_units {
            annex_b.extend_from_slice(&ANNEX_B_START_CODE);
            annex_b.extend_from_slice(nal);
        }

        Ok(EncodedFrame {
            camera_id: self.camera_id,
            stream: self.stream,
            recording_unix_ms,
            frame_number,
            keyframe,
            nal_units,
            annex_b: annex_b.into(),
            profile_level_id,
        })
    }
}

/// `profile_idc << 16 | constraint flags << 8 | level_idc` from an SPS NAL (header byte first).
pub fn profile_level_id_of(sps: &[u8]) -> Option<u32> {
    match sps {
        [_, profile, constraints, level, ..] => {
            Some(u32::from(*profile) << 16 | u32::from(*constraints) << 8 | u32::from(*level))
        }
        _ => None,
    }
}

/// The NAL units of an Annex-B buffer (3- or 4-byte start codes), without the start codes.
pub fn split_annex_b(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &(_, payload_start)) in starts.iter().enumerate() {
        let end = match starts.get(k + 1) {
            Some(&(next_code, _)) => {
                // A 4-byte start code's leading zero belongs to the code, not to this NAL.
                let mut end = next_code;
                while end > payload_start && data[end - 1] == 0 {
                    end -= 1;
                }
                end
            }
            None => data.len(),
        };
        if let Some(nal) = data.get(payload_start..end)
            && !nal.is_empty()
        {
            units.push(nal);
        }
    }
    units.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals: Vec<&[u8]> = split_annex_b(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert_eq!(split_annex_b(&[1, 2, 3]).count(), 0);
        assert_eq!(split_annex_b(&[]).count(), 0);
    }

    #[test]
    fn reads_profile_level_id_from_sps() {
        assert_eq!(
            profile_level_id_of(&[0x67, 0x42, 0xc0, 0x1e, 0xaa]),
            Some(0x42c01e)
        );
        assert_eq!(profile_level_id_of(&[0x67, 0x42]), None);
    }
}
