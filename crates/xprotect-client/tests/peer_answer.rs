//! The answer the client peer writes for gateway-shaped offers (PROTOCOL.md §4.1), and its
//! errors for offers it cannot take. SDP only: no media flows in these tests.

use xprotect_client::media::{DtlsRole, Peer, PeerConfig, PeerError};

/// A gateway-shaped offer (the skeleton of PROTOCOL.md §4.1) with the given video format
/// lines, optional PCMU audio, and the SCTP section.
fn gateway_offer(video_formats: &str, rtpmap_fmtp: &str, with_audio: bool) -> String {
    let fingerprint = (0..32)
        .map(|i| format!("{i:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let transport = format!(
        "c=IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=ice-ufrag:Ab12\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
         a=ice-options:trickle\r\na=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\n"
    );
    let bundle = if with_audio { "0 1 2" } else { "0 2" };
    let mut sdp = format!(
        "v=0\r\no=- 5186352139273490717 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE {bundle}\r\na=msid-semantic: WMS xprotect\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF {video_formats}\r\n{transport}a=mid:0\r\na=sendonly\r\n\
         a=msid:xprotect video0\r\n{rtpmap_fmtp}a=ssrc:11111111 cname:xprotect\r\n"
    );
    if with_audio {
        sdp.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n{transport}a=mid:1\r\na=sendonly\r\n\
             a=msid:xprotect audio0\r\na=rtpmap:0 PCMU/8000\r\na=ssrc:22222222 cname:xprotect\r\n"
        ));
    }
    sdp.push_str(&format!(
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n{transport}a=mid:2\r\na=sctp-port:5000\r\n"
    ));
    sdp
}

fn h264_offer(profile_level_id: &str, with_audio: bool) -> String {
    gateway_offer(
        "96",
        &format!(
            "a=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile_level_id}\r\n\
             a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n"
        ),
        with_audio,
    )
}

fn loopback_config(dtls_role: DtlsRole) -> PeerConfig {
    PeerConfig {
        dtls_role,
        udp_bind_addrs: vec!["127.0.0.1:0".parse().expect("addr")],
        ..PeerConfig::default()
    }
}

/// The media section of `kind` in `sdp`, as text.
fn section<'a>(sdp: &'a str, kind: &str) -> &'a str {
    let start = sdp
        .find(&format!("m={kind} "))
        .unwrap_or_else(|| panic!("no m={kind} in:\n{sdp}"));
    let rest = &sdp[start..];
    let end = rest[2..].find("\nm=").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[tokio::test]
async fn every_camera_h264_profile_is_accepted_with_the_offered_payload_type() {
    for profile in ["42e01f", "42c01e", "42c01f", "4d0029", "640028", "640c1f"] {
        let (peer, answer, _events) = Peer::answer(
            &h264_offer(profile, false),
            loopback_config(DtlsRole::Passive),
        )
        .await
        .unwrap_or_else(|e| panic!("{profile}: {e}"));
        let video = section(&answer, "video");
        assert!(
            !video.starts_with("m=video 0 "),
            "{profile}: video rejected:\n{answer}"
        );
        assert!(
            video.contains("a=rtpmap:96 H264/90000"),
            "{profile}:\n{answer}"
        );
        assert!(
            video.contains("a=recvonly"),
            "{profile}: answer must be receive-only:\n{answer}"
        );
        assert!(
            video.contains("a=rtcp-fb:96 nack pli"),
            "{profile}: PLI must be negotiated:\n{answer}"
        );
        peer.close().await;
    }
}

#[tokio::test]
async fn pcmu_audio_is_accepted_receive_only() {
    let (peer, answer, _events) = Peer::answer(
        &h264_offer("42e01f", true),
        loopback_config(DtlsRole::Passive),
    )
    .await
    .expect("answer");
    let audio = section(&answer, "audio");
    assert!(
        !audio.starts_with("m=audio 0 "),
        "audio rejected:\n{answer}"
    );
    assert!(audio.contains("a=rtpmap:0 PCMU/8000"), "{answer}");
    assert!(audio.contains("a=recvonly"), "{answer}");
    assert!(answer.contains("m=application"), "{answer}");
    peer.close().await;
}

#[tokio::test]
async fn the_answer_claims_the_configured_dtls_role() {
    for (role, setup) in [
        (DtlsRole::Passive, "a=setup:passive"),
        (DtlsRole::Active, "a=setup:active"),
    ] {
        let (peer, answer, _events) =
            Peer::answer(&h264_offer("42e01f", false), loopback_config(role))
                .await
                .expect("answer");
        assert!(answer.contains(setup), "{role:?}:\n{answer}");
        peer.close().await;
    }
    assert_eq!(PeerConfig::default().dtls_role, DtlsRole::Passive);
    assert!(!PeerConfig::default().mdns);
}

#[tokio::test]
async fn a_garbage_offer_is_an_error_quoting_the_parser() {
    for garbage in [
        "",
        "hello",
        "v=0\r\nthis is not sdp\r\n",
        "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video x\r\n",
    ] {
        match Peer::answer(garbage, loopback_config(DtlsRole::Passive)).await {
            Err(PeerError::BadOffer { reason }) => assert!(!reason.is_empty()),
            Err(PeerError::NoH264InOffer { .. }) => {}
            Err(other) => panic!("{garbage:?}: unexpected error {other}"),
            Ok(_) => panic!("{garbage:?} was accepted"),
        }
    }
}

#[tokio::test]
async fn an_offer_without_h264_says_what_it_offered() {
    let vp8 = gateway_offer("97", "a=rtpmap:97 VP8/90000\r\n", false);
    match Peer::answer(&vp8, loopback_config(DtlsRole::Passive)).await {
        Err(PeerError::NoH264InOffer { offered }) => assert_eq!(offered, "VP8"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a VP8-only offer was accepted"),
    }
}
