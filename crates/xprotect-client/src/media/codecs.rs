//! The receive-side media configuration: which codecs we accept and which RTCP we generate.

use std::time::Duration;

use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder, Registry, Slot};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_PCMU, MediaEngine,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

/// H.264 `profile-level-id`s registered locally. webrtc-rs matches an offered H.264 format
/// exactly on profile_idc + constraint flags (the first two bytes) and otherwise falls back
/// to "any H.264"; listing the profiles cameras emit keeps the match exact for them. The
/// level byte never has to match (RFC 6184 §8.2.2).
const H264_PROFILE_LEVEL_IDS: [&str; 6] = [
    "42e01f", // constrained baseline (browsers' favourite)
    "42c01f", // constrained baseline as openh264 signals it
    "42001f", // baseline
    "4d001f", // main
    "64001f", // high
    "640c1f", // constrained high
];

/// First local payload type for the H.264 registrations. Local PTs only matter for offers we
/// make, which we never do; the answer echoes the gateway's PTs.
const FIRST_H264_PAYLOAD_TYPE: u8 = 96;

/// PCMU's static payload type (RFC 3551).
const PCMU_PAYLOAD_TYPE: u8 = 0;

/// How often the NACK generator scans for holes. webrtc-rs' default; a lost packet is asked
/// for again within this time, which is well inside a frame interval at 25 fps plus RTT.
const NACK_SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How often we send RTCP receiver reports. RFC 3550's 5 s minimum is for large sessions;
/// one a second (webrtc-rs' default) keeps the gateway's loss statistics fresh for a cost of
/// a few dozen bytes.
const RECEIVER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// RTCP feedback we offer to generate for video: NACK and PLI.
fn video_feedback() -> Vec<RTCPFeedback> {
    vec![
        RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: String::new(),
        },
        RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: "pli".to_owned(),
        },
    ]
}

/// A media engine that accepts H.264 (any profile, packetization-mode 1 and 0) and PCMU/8000.
pub(crate) fn media_engine() -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    let mut payload_type = FIRST_H264_PAYLOAD_TYPE;
    for packetization_mode in [1, 0] {
        for profile_level_id in H264_PROFILE_LEVEL_IDS {
            engine.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line: format!(
                            "level-asymmetry-allowed=1;packetization-mode={packetization_mode};profile-level-id={profile_level_id}"
                        ),
                        rtcp_feedback: video_feedback(),
                    },
                    payload_type,
                },
                RtpCodecKind::Video,
            )?;
            payload_type += 1;
        }
    }
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_PCMU.to_owned(),
                clock_rate: 8000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: Vec::new(),
            },
            payload_type: PCMU_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(engine)
}

/// The receive-only interceptor chain: a NACK generator and receiver reports.
///
/// Left out on purpose: the NACK responder and sender reports (we send no media), the TWCC
/// receiver (the gateway relays a camera and does no bandwidth estimation, so per-packet
/// transport feedback would cost CPU and uplink for nothing) and the simulcast header
/// extensions. PLI needs no interceptor: it is written directly on the track.
pub(crate) fn interceptors() -> Registry {
    Registry::new()
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_SCAN_INTERVAL)
                .build(),
        )
        .with(
            Slot::ReceiverReport,
            ReceiverReportBuilder::new()
                .with_interval(RECEIVER_REPORT_INTERVAL)
                .build(),
        )
}
