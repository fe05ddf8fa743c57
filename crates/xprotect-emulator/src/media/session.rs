//! One client's WebRTC session: its `Rtc`, its place in the camera's stream and its timers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use uuid::Uuid;
use xprotect_proto::wire::Playback;

use super::candidate::{IceCandidateInit, local_candidate, remote_candidates};
use super::egress::Egress;
use super::mids::MidMap;
use super::player::Player;
use super::tracks::Tracks;
use super::{MediaError, MediaEvent, SessionOffer};
use crate::audio::{AudioPacer, GapMode, pcmu_payload};
use crate::camera::{CameraSource, EncodedFrame};

/// Payload type of the one H.264 format offered (as in the PROTOCOL.md §4.1 skeleton).
const H264_PT: u8 = 96;
/// Its RTX payload type: str0m only retransmits on NACK through RTX.
const H264_RTX_PT: u8 = 97;
/// PCMU's static payload type (RFC 3551), as in `m=audio 9 UDP/TLS/RTP/SAVPF 0`.
const PCMU_PT: u8 = 0;
/// The stream id shared by all tracks, so a browser's `streams[0]` holds them all.
const MSID_STREAM: &str = "xprotect";
/// Track id of the video.
const MSID_VIDEO_TRACK: &str = "video0";
/// Track id of the audio.
const MSID_AUDIO_TRACK: &str = "audio0";
/// SCTP stream of the pre-negotiated channel that only exists to put an `m=application` section
/// in the offer (str0m adds one only with a channel). It is never written to; it sits far above
/// the ids browsers pick for the first channels they open (0, 1, 2, …).
const PLACEHOLDER_CHANNEL_STREAM: u16 = 1023;
/// A client's PLI/FIR is honoured at most this often, so a lossy client cannot make the shared
/// encoder send only keyframes.
const MIN_KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// A session's audio track.
struct AudioTrack {
    mid: Mid,
    /// Paces the packets; made when the start reference is known (the first video frame, or
    /// connect for an audio-only session).
    pacer: Option<AudioPacer>,
    sent_first: bool,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Offer sent, answer not yet applied.
    AwaitingAnswer,
    /// Answer applied, ICE/DTLS not yet up.
    Connecting,
    /// ICE and DTLS up: media flows.
    Connected,
}

pub(crate) struct Session {
    pub(crate) id: Uuid,
    pub(crate) camera: Arc<CameraSource>,
    /// Whether the engine feeds this session its camera's frames (from `Connected` on).
    pub(crate) watching: bool,
    /// What to play back; `None` for live.
    pub(crate) playback: Option<Playback>,
    /// The playback player, from `Connected` on (see [`Self::set_player`]).
    pub(crate) player: Option<Player>,
    /// The ICE ufrag of the offer: the client's binding requests name the session by it.
    pub(crate) local_ufrag: String,
    rtc: Rtc,
    phase: Phase,
    pending_offer: Option<SdpPendingOffer>,
    mids: MidMap,
    /// The video section; `None` for an audio-only (microphone) session.
    video_mid: Option<Mid>,
    audio: Option<AudioTrack>,
    placeholder_channel: ChannelId,
    /// Client candidates that arrived before the answer.
    early_candidates: Vec<Candidate>,
    /// Where transmits go: straight, or through a TURN relay for relayed candidates.
    egress: Egress,
    connect_deadline: Instant,
    disconnected_since: Option<Instant>,
    /// Recording time (Unix ms) of RTP timestamp 0: the first frame sent (live) or the
    /// requested playback time (playback).
    rtp_origin_ms: Option<i64>,
    /// Whether a frame has gone out yet.
    sent_first_frame: bool,
    /// A paused playback's audio waits for the video to resume and re-anchor it: on its own
    /// it would run on through the pause and then sit silent while the video caught up.
    audio_waits_for_video: bool,
    needs_keyframe: bool,
    last_keyframe_request: Option<Instant>,
    /// When str0m next wants `Input::Timeout`.
    rtc_timeout: Instant,
    /// Set once the session is to be removed, with the reason.
    pub(crate) closing: Option<String>,
    /// No more RTP (video or audio) leaves for this session, while ICE, DTLS and SCTP stay up:
    /// the gateway's view of an expired token or a stalled stream (see [`Self::stop_media`]).
    media_stopped: bool,
}

impl Session {
    /// Creates the session's `Rtc` and its offer with `tracks`' sections. For an audio-only
    /// session `camera` is the microphone's camera (whose recordings playback follows).
    #[allow(clippy::too_many_arguments)] // each is a distinct input of the offer
    pub(crate) fn create(
        id: Uuid,
        camera: Arc<CameraSource>,
        tracks: Tracks,
        playback: Option<Playback>,
        host_addrs: &[SocketAddr],
        gathered: Vec<Candidate>,
        egress: Egress,
        connect_timeout: Duration,
        now: Instant,
    ) -> Result<(Self, SessionOffer), MediaError> {
        let mut config = RtcConfig::new()
            .clear_codecs()
            .set_extension_map(video_extensions());
        config.codec_config().add_h264(
            Pt::from(H264_PT),
            Some(Pt::from(H264_RTX_PT)),
            true,
            camera.profile_level_id(),
        );
        config.codec_config().enable_pcmu(tracks.audio, false);
        let mut rtc = config.build(now);

        let mut local = Vec::new();
        for addr in host_addrs {
            let c = Candidate::host(*addr, "udp")
                .map_err(|e| MediaError::Offer(format!("host candidate {addr}: {e}")))?;
            if let Some(added) = rtc.add_local_candidate(c) {
                local.push(added.clone());
            }
        }
        // Server-reflexive and relay candidates from the session's STUN/TURN servers.
        for c in gathered {
            if let Some(added) = rtc.add_local_candidate(c) {
                local.push(added.clone());
            }
        }

        let mut api = rtc.sdp_api();
        // Video first, then audio, in one msid stream: a browser's `streams[0]` holds both.
        let video_mid = tracks.video.then(|| {
            api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(MSID_STREAM.to_owned()),
                Some(MSID_VIDEO_TRACK.to_owned()),
                None,
            )
        });
        let audio_mid = tracks.audio.then(|| {
            api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(MSID_STREAM.to_owned()),
                Some(MSID_AUDIO_TRACK.to_owned()),
                None,
            )
        });
        let placeholder_channel = api.add_channel_with_config(ChannelConfig {
            label: "xprotect-sctp".to_owned(),
            negotiated: Some(PLACEHOLDER_CHANNEL_STREAM),
            ..ChannelConfig::default()
        });
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| MediaError::Offer("str0m produced no offer".to_owned()))?;
        let (mids, offer_sdp) = MidMap::from_offer(&offer.to_sdp_string());
        // Candidates name the first media section, whichever it is.
        let (wire_mid, m_line_index) = video_mid
            .or(audio_mid)
            .and_then(|mid| mids.wire(&mid))
            .ok_or_else(|| MediaError::Offer("the offer lacks a media section".to_owned()))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let local_candidates = local
            .iter()
            .map(|c| local_candidate(c, wire_mid, m_line_index, &ufrag))
            .collect();

        let session = Self {
            id,
            camera,
            watching: false,
            rtp_origin_ms: playback.as_ref().map(|p| crate::playback::unix_ms(p.start)),
            playback,
            player: None,
            local_ufrag: ufrag,
            sent_first_frame: false,
            audio_waits_for_video: false,
            rtc,
            phase: Phase::AwaitingAnswer,
            pending_offer: Some(pending),
            mids,
            video_mid,
            audio: audio_mid.map(|mid| AudioTrack {
                mid,
                pacer: None,
                sent_first: false,
            }),
            placeholder_channel,
            early_candidates: Vec::new(),
            egress,
            connect_deadline: now + connect_timeout,
            disconnected_since: None,
            needs_keyframe: true,
            last_keyframe_request: None,
            rtc_timeout: now,
            closing: None,
            media_stopped: false,
        };
        Ok((
            session,
            SessionOffer {
                offer_sdp,
                local_candidates,
                video: tracks.video,
                audio: tracks.audio,
            },
        ))
    }

    pub(crate) fn apply_answer(&mut self, answer_sdp: &str) -> Result<(), MediaError> {
        let pending = self
            .pending_offer
            .take()
            .ok_or(MediaError::AnswerNotExpected(self.id))?;
        let answer_sdp = self.mids.answer_to_internal(answer_sdp);
        let answer = match SdpAnswer::from_sdp_string(&answer_sdp) {
            Ok(a) => a,
            Err(e) => {
                self.pending_offer = Some(pending);
                return Err(MediaError::BadAnswer(e.to_string()));
            }
        };
        // str0m consumes the pending offer even when it rejects the answer, and a rejected
        // answer may leave the Rtc half-configured: the session cannot be retried.
        if let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer) {
            self.closing = Some(format!("bad answer: {e}"));
            return Err(MediaError::BadAnswer(e.to_string()));
        }
        if let Some(video_mid) = self.video_mid
            && !self.accepted(video_mid, Codec::H264)
        {
            self.closing = Some("answer rejected the video".to_owned());
            return Err(MediaError::BadAnswer(
                "the answer rejects the H.264 video section".to_owned(),
            ));
        }
        if let Some(audio_mid) = self.audio.as_ref().map(|a| a.mid)
            && !self.accepted(audio_mid, Codec::PCMU)
        {
            if self.video_mid.is_none() {
                self.closing = Some("answer rejected the audio".to_owned());
                return Err(MediaError::BadAnswer(
                    "the answer rejects the PCMU audio section of an audio-only session".to_owned(),
                ));
            }
            // A client may decline audio and keep the video.
            tracing::debug!(session = %self.id, "the answer declines the audio");
            self.audio = None;
        }
        self.phase = Phase::Connecting;
        for c in self.early_candidates.drain(..) {
            self.rtc.add_remote_candidate(c);
        }
        Ok(())
    }

    /// Whether the answer kept `mid` enabled with `codec` among its formats.
    fn accepted(&mut self, mid: Mid, codec: Codec) -> bool {
        self.rtc.media(mid).is_some_and(|m| !m.disabled())
            && self
                .rtc
                .writer(mid)
                .is_some_and(|w| w.payload_params().any(|p| p.spec().codec == codec))
    }

    /// Hands the session its playback player, paused at once if ICE is already down.
    pub(crate) fn set_player(&mut self, player: Player) {
        self.player = Some(player);
        if self.disconnected_since.is_some() || self.media_stopped {
            self.pause_playback();
        }
    }

    /// ICE lost the client: a playback stops sending and encoding until it is back (a client
    /// that vanished without closing costs no encoding while the session awaits its timeout).
    fn pause_playback(&mut self) {
        if let Some(player) = self.player.as_ref().filter(|p| !p.is_finished()) {
            player.set_paused(true);
            self.audio_waits_for_video = true;
        }
    }

    /// ICE is back: the player goes on where it stopped (its audio with its next frame).
    fn resume_playback(&mut self) {
        if let Some(player) = self.player.as_ref().filter(|_| !self.media_stopped) {
            player.set_paused(false);
        }
    }

    /// Stops sending media for good: no video frame or audio packet leaves from now on, while
    /// str0m keeps answering ICE consent checks and the DTLS/SCTP association (the data channel)
    /// stays up. A playback's player is paused so it stops encoding for nobody.
    pub(crate) fn stop_media(&mut self) {
        self.media_stopped = true;
        self.stop_audio();
        if let Some(player) = &self.player {
            player.set_paused(true);
        }
    }

    /// Whether the session sends video (false for a microphone's audio-only session).
    pub(crate) fn has_video(&self) -> bool {
        self.video_mid.is_some()
    }

    pub(crate) fn add_remote_candidate(
        &mut self,
        init: &IceCandidateInit,
        twin_ip: Option<IpAddr>,
    ) -> Result<(), MediaError> {
        for c in remote_candidates(init, twin_ip)? {
            self.egress.remote_candidate(&c);
            if self.phase == Phase::AwaitingAnswer {
                self.early_candidates.push(c);
            } else {
                self.rtc.add_remote_candidate(c);
            }
        }
        Ok(())
    }

    pub(crate) fn accepts(&self, input: &Input) -> bool {
        self.rtc.accepts(input)
    }

    pub(crate) fn handle_input(
        &mut self,
        input: Input,
        socket: &UdpSocket,
        events: &mut Vec<MediaEvent>,
    ) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(session = %self.id, "input rejected: {e}");
            self.close_with(format!("WebRTC error: {e}"));
        }
        self.drain(socket, events);
    }

    /// Sends `frame` if the session is connected and past its first keyframe.
    pub(crate) fn send_frame(
        &mut self,
        frame: &EncodedFrame,
        socket: &UdpSocket,
        events: &mut Vec<MediaEvent>,
    ) {
        if self.phase != Phase::Connected || self.closing.is_some() || self.media_stopped {
            return;
        }
        if self.needs_keyframe {
            if !frame.keyframe {
                return;
            }
            self.needs_keyframe = false;
        }
        let first = !self.sent_first_frame;
        let origin = *self.rtp_origin_ms.get_or_insert(frame.recording_unix_ms);
        // Milliseconds since the start reference (live: the first frame; playback: the
        // requested time, so the value jumps across gaps), wrapping at 2^32 as RTP does.
        let rtp = frame.recording_unix_ms.wrapping_sub(origin) as u32;
        let Some(writer) = self.video_mid.and_then(|mid| self.rtc.writer(mid)) else {
            return;
        };
        // The track is declared H264/90000, but XProtect's RTP timestamps count ms (PROTOCOL.md
        // §4.2): a MediaTime in the 90 kHz base is written to the wire unscaled.
        let rtp_time = MediaTime::new(u64::from(rtp), Frequency::NINETY_KHZ);
        match writer.write(
            Pt::from(H264_PT),
            Instant::now(),
            rtp_time,
            frame.annex_b.clone(),
        ) {
            Ok(()) => {
                self.sent_first_frame = true;
                self.audio_waits_for_video = false;
                self.anchor_audio(origin, frame.recording_unix_ms);
                if first {
                    events.push(MediaEvent::FirstFrameSent {
                        session_id: self.id,
                        rtp,
                        recording_unix_ms: frame.recording_unix_ms,
                    });
                }
            }
            Err(e) => {
                tracing::debug!(session = %self.id, "frame {} not sent: {e}", frame.frame_number)
            }
        }
        self.drain(socket, events);
    }

    /// Audio follows the video: the frame of recording time `recording_unix_ms` left now. The
    /// first frame fixes the audio's start reference (`origin`, shared with the video).
    fn anchor_audio(&mut self, origin: i64, recording_unix_ms: i64) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let pacer = audio.pacer.get_or_insert_with(|| match &self.playback {
            None => AudioPacer::live(origin),
            Some(_) => AudioPacer::playback(
                origin,
                self.camera.config().recordings.recordings(),
                GapMode::FollowAnchor,
            ),
        });
        pacer.anchor(Instant::now(), recording_unix_ms);
    }

    /// Starts an audio-only session's clock at connect: live from the current time, playback
    /// from the requested time (skipping gaps itself when asked to, as there is no video to
    /// follow).
    fn start_audio_only(&mut self, now: Instant) {
        if self.video_mid.is_some() {
            return;
        }
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let (origin, pacer) = match &self.playback {
            None => {
                let origin = unix_ms_now();
                (origin, AudioPacer::live(origin))
            }
            Some(playback) => {
                let origin = crate::playback::unix_ms(playback.start);
                let gaps = if playback.skip_gaps {
                    GapMode::Skip
                } else {
                    GapMode::FollowAnchor
                };
                let recordings = self.camera.config().recordings.recordings();
                (origin, AudioPacer::playback(origin, recordings, gaps))
            }
        };
        let pacer = audio.pacer.insert(pacer);
        pacer.anchor(now, origin);
        self.rtp_origin_ms = Some(origin);
    }

    /// Stops the audio (a playback whose video stopped early).
    pub(crate) fn stop_audio(&mut self) {
        if let Some(pacer) = self.audio.as_mut().and_then(|a| a.pacer.as_mut()) {
            pacer.stop();
        }
    }

    /// Sends every audio packet that is due at `now`.
    fn send_due_audio(&mut self, now: Instant, socket: &UdpSocket, events: &mut Vec<MediaEvent>) {
        if self.phase != Phase::Connected
            || self.closing.is_some()
            || self.audio_waits_for_video
            || self.media_stopped
        {
            return;
        }
        let Self { audio, rtc, id, .. } = self;
        let Some(AudioTrack {
            mid,
            pacer: Some(pacer),
            sent_first,
        }) = audio.as_mut()
        else {
            return;
        };
        let mut wrote = false;
        while let Some(block) = pacer.poll(now) {
            let rtp = pacer.rtp(&block);
            let Some(writer) = rtc.writer(*mid) else {
                break;
            };
            // PCMU's clock is 8 kHz in the SDP and on the wire alike.
            let rtp_time = MediaTime::new(u64::from(rtp), Frequency::EIGHT_KHZ);
            match writer.write(Pt::from(PCMU_PT), now, rtp_time, pcmu_payload(&block)) {
                Ok(()) => {
                    wrote = true;
                    if !*sent_first {
                        *sent_first = true;
                        events.push(MediaEvent::FirstAudioSent {
                            session_id: *id,
                            rtp,
                            recording_unix_ms: block.recording_unix_ms(),
                        });
                    }
                }
                Err(e) => tracing::debug!(session = %id, "audio packet not sent: {e}"),
            }
        }
        if wrote {
            self.drain(socket, events);
        }
    }

    /// Marks that frames were lost upstream: restart at the next keyframe.
    pub(crate) fn frames_lost(&mut self) {
        self.needs_keyframe = true;
    }

    /// Runs str0m's timers and the session's own deadlines.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        disconnect_timeout: Duration,
        socket: &UdpSocket,
        events: &mut Vec<MediaEvent>,
    ) {
        if self.phase != Phase::Connected && now >= self.connect_deadline {
            self.close_with("not connected before the connect timeout".to_owned());
        }
        if self
            .disconnected_since
            .is_some_and(|since| now >= since + disconnect_timeout)
        {
            self.close_with("ICE disconnected for longer than the disconnect timeout".to_owned());
        }
        if now >= self.rtc_timeout {
            self.handle_input(Input::Timeout(now), socket, events);
        }
        self.send_due_audio(now, socket, events);
    }

    /// The next instant [`Self::handle_timeout`] has work to do.
    pub(crate) fn next_deadline(&self, disconnect_timeout: Duration) -> Instant {
        let mut deadline = self.rtc_timeout;
        if self.phase != Phase::Connected {
            deadline = deadline.min(self.connect_deadline);
        }
        if let Some(since) = self.disconnected_since {
            deadline = deadline.min(since + disconnect_timeout);
        }
        if self.phase == Phase::Connected
            && !self.audio_waits_for_video
            && let Some(due) = self
                .audio
                .as_ref()
                .and_then(|a| a.pacer.as_ref())
                .and_then(AudioPacer::next_due)
        {
            deadline = deadline.min(due);
        }
        deadline
    }

    /// Starts closing: the engine removes the session after this drain.
    pub(crate) fn close_with(&mut self, reason: String) {
        if self.closing.is_none() {
            tracing::debug!(session = %self.id, "closing: {reason}");
            self.closing = Some(reason);
            // Tell the peer (RTCP BYE, DTLS close_notify); the following drain sends it.
            if self.rtc.close().is_err() {
                self.rtc.disconnect();
            }
        }
    }

    /// Polls str0m until it only has a timeout left (str0m's contract after every input).
    fn drain(&mut self, socket: &UdpSocket, events: &mut Vec<MediaEvent>) {
        loop {
            if !self.rtc.is_alive() {
                if self.closing.is_none() {
                    self.closing = Some("the connection closed".to_owned());
                }
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.egress.send(socket, &t),
                Ok(Output::Event(e)) => self.handle_event(e, events),
                Err(e) => {
                    tracing::debug!(session = %self.id, "poll failed: {e}");
                    self.closing
                        .get_or_insert_with(|| format!("WebRTC error: {e}"));
                    self.rtc.disconnect();
                    return;
                }
            }
        }
    }

    fn handle_event(&mut self, event: Event, events: &mut Vec<MediaEvent>) {
        let session_id = self.id;
        match event {
            Event::Connected => {
                self.phase = Phase::Connected;
                self.needs_keyframe = true;
                // Fast start: the shared encoder makes its next picture an IDR. (A playback
                // session's player starts with a keyframe of its own.)
                if self.playback.is_none() && self.video_mid.is_some() {
                    self.camera.request_keyframe();
                }
                self.start_audio_only(Instant::now());
                events.push(MediaEvent::Connected { session_id });
                // DTLS has just gone over the nominated pair.
                if let Some(path) = self.egress.path_types() {
                    events.push(MediaEvent::IceSelected {
                        session_id,
                        local_type: path.local.to_owned(),
                        remote_type: path.remote.to_owned(),
                    });
                }
            }
            Event::IceConnectionStateChange(state) => match state {
                IceConnectionState::Disconnected if self.disconnected_since.is_none() => {
                    self.disconnected_since = Some(Instant::now());
                    self.pause_playback();
                    events.push(MediaEvent::Disconnected { session_id });
                }
                IceConnectionState::Connected | IceConnectionState::Completed
                    if self.disconnected_since.is_some() =>
                {
                    self.disconnected_since = None;
                    self.resume_playback();
                }
                _ => {}
            },
            Event::ChannelOpen(id, label) if id != self.placeholder_channel => {
                let protocol = self
                    .rtc
                    .channel(id)
                    .and_then(|c| c.config().map(|config| config.protocol.clone()))
                    .unwrap_or_default();
                events.push(MediaEvent::DataChannelOpen {
                    session_id,
                    label,
                    protocol,
                });
            }
            Event::ChannelData(data) => match String::from_utf8(data.data) {
                Ok(text) => events.push(MediaEvent::DataChannelMessage { session_id, text }),
                Err(_) => {
                    tracing::debug!(session = %session_id, "non-UTF-8 data channel message ignored")
                }
            },
            Event::KeyframeRequest(_) => {
                let now = Instant::now();
                let allowed = self
                    .last_keyframe_request
                    .is_none_or(|last| now >= last + MIN_KEYFRAME_REQUEST_INTERVAL);
                // Playback GOPs are pre-encoded: the next keyframe is at most a GOP away.
                if allowed && self.playback.is_none() {
                    self.last_keyframe_request = Some(now);
                    self.camera.request_keyframe();
                }
            }
            Event::Closed => {
                self.closing
                    .get_or_insert_with(|| "the client closed the connection".to_owned());
            }
            _ => {}
        }
    }
}

/// RTP header extensions offered for video. `sdes:mid` is left out on purpose (see `mids.rs`).
fn video_extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    exts.set(2, Extension::AbsoluteSendTime);
    exts.set(3, Extension::TransportSequenceNumber);
    exts
}

/// The current time as Unix ms: an audio-only live session's start reference.
fn unix_ms_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}
