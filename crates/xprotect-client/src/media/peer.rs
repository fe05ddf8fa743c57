//! The user-facing handle, and the one constructor: answering the gateway's offer.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::sdp::description::session::SessionDescription;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use webrtc::data_channel::RTCDataChannelInit;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceServer,
    RTCIceTransportPolicy, RTCSessionDescription, SettingEngineBuilder,
};

use super::adapter::{ADAPTER_CHANNEL_CAPACITY, ForwardingHandler};
use super::codecs;
use super::config::{DtlsRole, PeerConfig};
use super::driver::{CandidateTag, Command, Driver, bounded};
use super::error::PeerError;
use super::events::{IceCandidateInit, PeerEvent};
use crate::diagnostics::PeerStats;

/// Label of the data channel the client opens after answering (PROTOCOL.md §5.1).
pub const COMMANDS_CHANNEL_LABEL: &str = "commands";
/// Sub-protocol of that channel.
pub const COMMANDS_CHANNEL_PROTOCOL: &str = "videoos-commands";

/// Capacity of the handle → driver command channel. Each caller awaits its command's reply,
/// so only concurrent callers queue; 16 is more than any caller has in flight.
const COMMAND_CHANNEL_CAPACITY: usize = 16;

/// Capacity of the driver → owner event channel: about four seconds of 2 Mbit/s H.264 plus
/// PCMU, so an owner that stalls briefly (a disk flush, a slow decoder) loses no RTP.
const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Bound on a command's round trip through the driver (its own `webrtc` call is bounded at
/// 2 s inside the driver; this adds headroom for queueing behind another command).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on `close()`: the driver's own close is bounded at 2 s, after which we abort it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The client's WebRTC peer: receive-only answerer to the gateway's offer.
///
/// A spawned driver task owns the `webrtc` connection; this handle sends it commands.
/// Events come on the receiver returned by [`Peer::answer`]; keep draining it (RTP that
/// finds it full is dropped, lifecycle events wait for room).
///
/// Dropping the handle closes the connection too; [`Peer::close`] waits for that.
pub struct Peer {
    commands: mpsc::Sender<Command>,
    driver: JoinHandle<()>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("closed", &self.commands.is_closed())
            .finish()
    }
}

impl Peer {
    /// Answers the gateway's offer (raw SDP text) and starts the session.
    ///
    /// Returns the handle, the answer's raw SDP text (send it to the gateway, then trickle
    /// the [`PeerEvent::LocalCandidate`]s) and the event receiver. The `commands` data
    /// channel is created right after the answer and opens once SCTP is up
    /// ([`PeerEvent::CommandsChannelOpen`]).
    ///
    /// # Errors
    ///
    /// [`PeerError::BadOffer`] if the offer does not parse, [`PeerError::NoH264InOffer`] if it
    /// carries no H.264 video, [`PeerError::Negotiation`] if `webrtc` refuses a step, and
    /// [`PeerError::Timeout`] if one hangs.
    pub async fn answer(
        offer_sdp: &str,
        config: PeerConfig,
    ) -> Result<(Peer, String, mpsc::Receiver<PeerEvent>), PeerError> {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).map_err(|error| {
            PeerError::BadOffer {
                reason: error.to_string(),
            }
        })?;
        let parsed_offer = offer.unmarshal().map_err(|error| PeerError::BadOffer {
            reason: error.to_string(),
        })?;
        require_h264(&parsed_offer)?;

        let (stack_tx, stack_rx) = mpsc::channel(ADAPTER_CHANNEL_CAPACITY);
        let pc = build_peer_connection(&config, stack_tx).await?;
        let pc: Box<dyn PeerConnection> = Box::new(pc);

        let answer = match negotiate(pc.as_ref(), offer).await {
            Ok(answer) => answer,
            Err(error) => {
                let _ = bounded("closing the peer connection", pc.close()).await;
                return Err(error);
            }
        };
        let parsed_answer = answer.unmarshal().map_err(|error| PeerError::Negotiation {
            step: "reading back our answer",
            reason: error.to_string(),
        })?;
        if has_video_section(&parsed_offer) && !video_accepted(&parsed_answer) {
            let _ = bounded("closing the peer connection", pc.close()).await;
            return Err(PeerError::Negotiation {
                step: "accepting the H.264 video",
                reason: "the answer rejects the offered video section".to_owned(),
            });
        }

        let commands_channel = bounded(
            "creating the commands data channel",
            pc.create_data_channel(
                COMMANDS_CHANNEL_LABEL,
                Some(RTCDataChannelInit {
                    protocol: COMMANDS_CHANNEL_PROTOCOL.to_owned(),
                    ..Default::default()
                }),
            ),
        )
        .await?
        .map_err(|error| PeerError::Negotiation {
            step: "creating the commands data channel",
            reason: error.to_string(),
        })?;

        let candidate_tag = CandidateTag {
            sdp_mid: first_mid(&parsed_answer),
            username_fragment: ice_ufrag(&parsed_answer),
        };
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let driver = Driver::new(
            pc,
            config.dtls_role,
            candidate_tag,
            commands_rx,
            stack_rx,
            events_tx,
            commands_channel,
        );
        let driver = tokio::spawn(driver.run());
        let peer = Peer {
            commands: commands_tx,
            driver,
        };
        Ok((peer, answer.sdp, events_rx))
    }

    /// Adds a candidate the gateway trickled. An empty candidate (end-of-candidates) is
    /// accepted and ignored.
    ///
    /// # Errors
    ///
    /// [`PeerError::BadCandidate`] if `webrtc` rejects it, [`PeerError::Closed`] after close.
    pub async fn add_remote_candidate(&self, candidate: IceCandidateInit) -> Result<(), PeerError> {
        self.call("adding a remote ICE candidate", |reply| {
            Command::AddRemoteCandidate(candidate, reply)
        })
        .await
    }

    /// Sends one text message (a JSON command, PROTOCOL.md §5) on the `commands` channel.
    ///
    /// # Errors
    ///
    /// [`PeerError::DataChannelNotOpen`] before [`PeerEvent::CommandsChannelOpen`].
    pub async fn send_command(&self, text: String) -> Result<(), PeerError> {
        self.call("sending a command", |reply| Command::SendText(text, reply))
            .await
    }

    /// Hands `reply` to the driver, which answers it once every byte sent on the `commands`
    /// channel has been acknowledged by the gateway's SCTP stack (at once if none is
    /// outstanding), or with an error when the channel is not open or closes first.
    ///
    /// Unbounded on purpose, and not awaited here: the caller bounds its own wait, so the
    /// session driver that forwards this never stalls for a network round trip.
    pub(crate) async fn flush_commands(&self, reply: oneshot::Sender<Result<(), PeerError>>) {
        // If the driver is gone the command, and `reply` in it, is dropped: the caller's
        // receiver then reports the peer as closed.
        let _ = self.commands.send(Command::FlushCommands(reply)).await;
    }

    /// Sends a PLI on the video track, asking the gateway for a keyframe. (One is sent
    /// automatically when the video track starts.) Does nothing before video started.
    ///
    /// # Errors
    ///
    /// [`PeerError::Closed`] after close.
    pub async fn request_keyframe(&self) -> Result<(), PeerError> {
        self.call("requesting a keyframe", Command::RequestKeyframe)
            .await
    }

    /// A snapshot of the connection's statistics: per received stream packets, losses and the
    /// RTCP feedback we sent, the gathered candidates on both sides and the selected pair.
    ///
    /// # Errors
    ///
    /// [`PeerError::Closed`] after close, [`PeerError::Timeout`] if the stack does not answer.
    pub async fn stats(&self) -> Result<PeerStats, PeerError> {
        self.call("reading statistics", Command::Stats).await
    }

    /// Closes the connection and waits (boundedly) for the driver to finish.
    pub async fn close(self) {
        let (done_tx, done_rx) = oneshot::channel();
        let Peer {
            commands,
            mut driver,
        } = self;
        if commands.send(Command::Close(done_tx)).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, done_rx).await;
        }
        drop(commands);
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut driver)
            .await
            .is_err()
        {
            tracing::debug!("the peer driver did not stop in time; aborting it");
            driver.abort();
        }
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        command: impl FnOnce(oneshot::Sender<Result<T, PeerError>>) -> Command,
    ) -> Result<T, PeerError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let exchange = async {
            self.commands
                .send(command(reply_tx))
                .await
                .map_err(|_| PeerError::Closed)?;
            reply_rx.await.map_err(|_| PeerError::Closed)?
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| PeerError::Timeout {
                operation,
                limit: COMMAND_TIMEOUT,
            })?
    }
}

/// Builds the `webrtc` connection with our codecs, interceptors and settings.
async fn build_peer_connection(
    config: &PeerConfig,
    stack_events: mpsc::Sender<super::adapter::StackEvent>,
) -> Result<impl PeerConnection + use<>, PeerError> {
    let media_engine = codecs::media_engine().map_err(|error| PeerError::Negotiation {
        step: "registering codecs",
        reason: error.to_string(),
    })?;
    let setting_engine = SettingEngineBuilder::new()
        .with_answering_dtls_role(match config.dtls_role {
            DtlsRole::Passive => RTCDtlsRole::Server,
            DtlsRole::Active => RTCDtlsRole::Client,
        })
        .with_multicast_dns_mode(if config.mdns {
            MulticastDnsMode::QueryOnly
        } else {
            MulticastDnsMode::Disabled
        })
        .build();
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect();
    let rtc_config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .with_ice_transport_policy(if config.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        })
        .build();
    bounded(
        "building the peer connection",
        PeerConnectionBuilder::new()
            .with_configuration(rtc_config)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(codecs::interceptors())
            .with_handler(Arc::new(ForwardingHandler::new(stack_events)))
            .with_udp_addrs(config.udp_bind_addrs.clone())
            .build(),
    )
    .await?
    .map_err(|error| PeerError::Negotiation {
        step: "building the peer connection",
        reason: error.to_string(),
    })
}

/// Applies the offer and produces the applied answer.
async fn negotiate(
    pc: &dyn PeerConnection,
    offer: RTCSessionDescription,
) -> Result<RTCSessionDescription, PeerError> {
    let step_failed = |step: &'static str| {
        move |error: webrtc::error::Error| PeerError::Negotiation {
            step,
            reason: error.to_string(),
        }
    };
    bounded("applying the offer", pc.set_remote_description(offer))
        .await?
        .map_err(step_failed("applying the offer"))?;
    let answer = bounded("creating the answer", pc.create_answer(None))
        .await?
        .map_err(step_failed("creating the answer"))?;
    bounded(
        "applying the answer",
        pc.set_local_description(answer.clone()),
    )
    .await?
    .map_err(step_failed("applying the answer"))?;
    Ok(answer)
}

/// The `rtpmap` encoding names of every video section, e.g. `["H264", "VP8"]`.
fn video_codec_names(sdp: &SessionDescription) -> Vec<String> {
    sdp.media_descriptions
        .iter()
        .filter(|media| media.media_name.media.eq_ignore_ascii_case("video"))
        .flat_map(|media| media.attributes.iter())
        .filter(|attribute| attribute.key == "rtpmap")
        .filter_map(|attribute| attribute.value.as_deref())
        // "96 H264/90000" → "H264"
        .filter_map(|value| value.split_whitespace().nth(1))
        .filter_map(|encoding| encoding.split('/').next())
        .map(str::to_owned)
        .collect()
}

/// Whether the offer has a video section: a microphone's session offers audio alone.
fn has_video_section(offer: &SessionDescription) -> bool {
    offer
        .media_descriptions
        .iter()
        .any(|media| media.media_name.media.eq_ignore_ascii_case("video"))
}

fn require_h264(offer: &SessionDescription) -> Result<(), PeerError> {
    // An audio-only offer (a microphone) needs no video codec.
    if !has_video_section(offer)
        && offer
            .media_descriptions
            .iter()
            .any(|media| media.media_name.media.eq_ignore_ascii_case("audio"))
    {
        return Ok(());
    }
    let names = video_codec_names(offer);
    if names.iter().any(|name| name.eq_ignore_ascii_case("H264")) {
        return Ok(());
    }
    let offered = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    Err(PeerError::NoH264InOffer { offered })
}

/// Whether the answer keeps a video section open (port ≠ 0) with H.264 in it.
fn video_accepted(answer: &SessionDescription) -> bool {
    answer.media_descriptions.iter().any(|media| {
        media.media_name.media.eq_ignore_ascii_case("video")
            && media.media_name.port.value != 0
            && media.attributes.iter().any(|attribute| {
                attribute.key == "rtpmap"
                    && attribute
                        .value
                        .as_deref()
                        .is_some_and(|value| value.to_ascii_uppercase().contains(" H264/"))
            })
    })
}

/// The `a=mid` of the first media section (the bundle tag candidates are signaled against).
fn first_mid(sdp: &SessionDescription) -> Option<String> {
    sdp.media_descriptions
        .first()
        .and_then(|media| media.attribute("mid").flatten())
        .map(str::to_owned)
}

/// Our ICE username fragment, at media or session level.
fn ice_ufrag(sdp: &SessionDescription) -> Option<String> {
    sdp.media_descriptions
        .iter()
        .find_map(|media| media.attribute("ice-ufrag").flatten().map(str::to_owned))
        .or_else(|| sdp.attribute("ice-ufrag").cloned())
}
