//! The engine task: one UDP socket, every session, the camera feeds, and the command channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use str0m::Input;
use str0m::net::{Protocol, Receive};
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::candidate::IceCandidateInit;
use super::demux::Demux;
use super::egress::{Egress, kind_name};
use super::ice_servers::ResolvedServer;
use super::relays::{Gathered, Intercepted, Relays};
use super::session::Session;
use super::tracks::{DeviceKind, TracksError, choose_tracks};
use super::{MediaError, MediaEvent, SessionOffer, SessionRequest};
use crate::camera::{CameraHub, EncodedFrame, SourceId, StreamKind};
use crate::playback::{GopCache, MAX_PLAYBACK_SEND_FPS, PacingConfig, PlaybackSchedule, unix_ms};

/// Frames queued from the camera forwarders to the engine: a few per camera. The forwarders wait
/// when it is full, and the broadcast behind them absorbs more (see FRAME_BROADCAST_CAPACITY).
const FRAME_FEED_CAPACITY: usize = 64;
/// Largest datagram read: above any MTU str0m or browsers use.
const MAX_DATAGRAM: usize = 2048;
/// The loop wakes at least this often even with nothing to do (keeps deadline arithmetic sane).
const MAX_IDLE: Duration = Duration::from_secs(1);

type Reply<T> = oneshot::Sender<Result<T, MediaError>>;

/// A request from a [`super::MediaHandle`].
pub(crate) enum Command {
    Create {
        req: SessionRequest,
        /// The request's usable STUN/TURN servers, resolved.
        servers: Vec<ResolvedServer>,
        /// Its servers that cannot be used, and why.
        skipped: Vec<String>,
        reply: Reply<SessionOffer>,
    },
    Answer {
        session_id: Uuid,
        answer_sdp: String,
        reply: Reply<()>,
    },
    Candidate {
        session_id: Uuid,
        candidate: IceCandidateInit,
        twin_ip: Option<IpAddr>,
        reply: Reply<()>,
    },
    Close {
        session_id: Uuid,
        reply: Reply<()>,
    },
    StopMedia {
        session_id: Uuid,
        reply: Reply<()>,
    },
    Count {
        reply: Reply<usize>,
    },
}

/// What a camera forwarder or a playback player hands the engine.
pub(crate) enum Feed {
    Frame(Arc<EncodedFrame>),
    /// The forwarder fell behind the camera and lost frames.
    Lagged(SourceId),
    /// A recorded frame for one playback session, due now.
    PlaybackFrame {
        session_id: Uuid,
        frame: Arc<EncodedFrame>,
    },
    /// A playback session's player has sent its last frame.
    PlaybackEnded {
        session_id: Uuid,
        last_recording_unix_ms: Option<i64>,
        failure: Option<String>,
    },
}

/// A camera some session watches: its forwarder task holds the camera subscription.
struct CameraFeed {
    forwarder: JoinHandle<()>,
    sessions: usize,
}

pub(crate) struct Engine {
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    host_addrs: Vec<SocketAddr>,
    connect_timeout: Duration,
    disconnect_timeout: Duration,
    cameras: Arc<CameraHub>,
    /// Microphone id → its camera.
    microphones: HashMap<Uuid, Uuid>,
    gop_cache: Arc<GopCache>,
    events: mpsc::Sender<MediaEvent>,
    sessions: HashMap<Uuid, Session>,
    /// Which session each datagram is for (see `demux.rs`).
    demux: Demux,
    feeds: HashMap<SourceId, CameraFeed>,
    feed_tx: mpsc::Sender<Feed>,
    feed_rx: Option<mpsc::Receiver<Feed>>,
    /// Events gathered while handling one input, sent after it.
    pending_events: Vec<MediaEvent>,
    /// STUN/TURN gathering for sessions being created, and the shared TURN allocations.
    relays: Relays<PendingCreate>,
    /// Offer relay candidates only.
    relay_only: bool,
}

/// A create request waiting for its candidates.
pub(crate) struct PendingCreate {
    req: SessionRequest,
    reply: Reply<SessionOffer>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)] // each is a distinct piece of the engine's configuration
    pub(crate) fn new(
        socket: UdpSocket,
        microphones: HashMap<Uuid, Uuid>,
        host_addrs: Vec<SocketAddr>,
        connect_timeout: Duration,
        disconnect_timeout: Duration,
        cameras: Arc<CameraHub>,
        gop_cache: Arc<GopCache>,
        events: mpsc::Sender<MediaEvent>,
        relay_only: bool,
    ) -> Self {
        let local_addr = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (feed_tx, feed_rx) = mpsc::channel(FRAME_FEED_CAPACITY);
        Self {
            socket: Arc::new(socket),
            local_addr,
            host_addrs,
            connect_timeout,
            disconnect_timeout,
            cameras,
            microphones,
            gop_cache,
            events,
            sessions: HashMap::new(),
            demux: Demux::default(),
            feeds: HashMap::new(),
            feed_tx,
            feed_rx: Some(feed_rx),
            pending_events: Vec::new(),
            relays: Relays::default(),
            relay_only,
        }
    }

    /// Runs until every [`super::MediaHandle`] is dropped.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let socket = self.socket.clone();
        let Some(mut feed_rx) = self.feed_rx.take() else {
            return;
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.handle_datagram(buf.get(..n).unwrap_or_default(), source),
                    // ICMP errors (port unreachable from a vanished client) surface here on some
                    // platforms; they concern one peer, not the socket.
                    Err(e) => tracing::debug!("UDP receive: {e}"),
                },
                Some(feed) = feed_rx.recv() => self.handle_feed(feed),
                () = tokio::time::sleep_until(deadline) => {}
            }
            self.handle_timeouts();
            self.service_relays();
            self.reap();
            self.flush_events();
        }
        self.relays.release_all(&self.socket);
        for session in self.sessions.values_mut() {
            session.close_with("the media engine stopped".to_owned());
        }
        tracing::debug!("media engine stopped");
    }

    fn next_deadline(&self) -> Instant {
        let now = std::time::Instant::now();
        let latest = now + MAX_IDLE;
        let next = self
            .sessions
            .values()
            .map(|s| s.next_deadline(self.disconnect_timeout))
            .min()
            .unwrap_or(latest)
            .min(latest);
        let next = self.relays.next_deadline().map_or(next, |r| r.min(next));
        Instant::from_std(next)
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Create {
                req,
                servers,
                skipped,
                reply,
            } => self.start_create(req, servers, skipped, reply),
            Command::Answer {
                session_id,
                answer_sdp,
                reply,
            } => {
                let result = self.with_session(session_id, |s, socket, events| {
                    let r = s.apply_answer(&answer_sdp);
                    s.handle_input(Input::Timeout(std::time::Instant::now()), socket, events);
                    r
                });
                let _ = reply.send(result);
            }
            Command::Candidate {
                session_id,
                candidate,
                twin_ip,
                reply,
            } => {
                let result = self.with_session(session_id, |s, socket, events| {
                    let r = s.add_remote_candidate(&candidate, twin_ip);
                    s.handle_input(Input::Timeout(std::time::Instant::now()), socket, events);
                    r
                });
                let _ = reply.send(result);
            }
            Command::Close { session_id, reply } => {
                let result = self.with_session(session_id, |s, socket, events| {
                    s.close_with("closed by the signaling layer".to_owned());
                    s.handle_input(Input::Timeout(std::time::Instant::now()), socket, events);
                    Ok(())
                });
                let _ = reply.send(result);
            }
            Command::StopMedia { session_id, reply } => {
                let result = self.with_session(session_id, |s, _, _| {
                    s.stop_media();
                    Ok(())
                });
                let _ = reply.send(result);
            }
            Command::Count { reply } => {
                let _ = reply.send(Ok(self.sessions.len()));
            }
        }
    }

    /// Creates the session at once, or after gathering from its STUN/TURN servers.
    fn start_create(
        &mut self,
        req: SessionRequest,
        servers: Vec<ResolvedServer>,
        skipped: Vec<String>,
        reply: Reply<SessionOffer>,
    ) {
        if self.sessions.contains_key(&req.session_id) {
            let _ = reply.send(Err(MediaError::DuplicateSession(req.session_id)));
            return;
        }
        let has_turn = servers
            .iter()
            .any(|s| matches!(s, ResolvedServer::Turn { .. }));
        if self.relay_only && !has_turn {
            let mut reason =
                "relay-only, and the session's iceServers have no usable TURN server".to_owned();
            if !skipped.is_empty() {
                reason = format!("{reason} ({})", skipped.join("; "));
            }
            let _ = reply.send(Err(MediaError::NoRelay(reason)));
            return;
        }
        if servers.is_empty() {
            let gathered = Gathered {
                failures: skipped,
                ..Gathered::default()
            };
            let _ = reply.send(self.create(req, gathered));
            return;
        }
        let session_id = req.session_id;
        self.relays.start(
            session_id,
            &servers,
            skipped,
            PendingCreate { req, reply },
            std::time::Instant::now(),
        );
        self.relays.flush(&self.socket);
    }

    /// STUN/TURN timers, finished gatherings, and the datagrams they queued.
    fn service_relays(&mut self) {
        let now = std::time::Instant::now();
        self.relays.handle_timeout(now);
        let host_addrs = self.host_addrs.clone();
        for (_, pending, gathered) in self.relays.take_finished(now, &host_addrs, self.local_addr) {
            let session_id = pending.req.session_id;
            let result = self.create(pending.req, gathered);
            if result.is_err() {
                // No session holds the allocations it was gathering with.
                self.relays.session_ended(session_id, &self.socket);
            }
            if let Err(Ok(_offer)) = pending.reply.send(result) {
                // The caller gave up waiting: nobody will ever answer this offer.
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    session.close_with("the creator stopped waiting for the offer".to_owned());
                }
            }
        }
        self.relays.flush(&self.socket);
    }

    fn create(
        &mut self,
        req: SessionRequest,
        gathered: Gathered,
    ) -> Result<SessionOffer, MediaError> {
        if self.sessions.contains_key(&req.session_id) {
            return Err(MediaError::DuplicateSession(req.session_id));
        }
        // A microphone streams on its camera's timeline; a camera may have a microphone.
        let (camera_id, device) = match self.microphones.get(&req.camera_id) {
            Some(camera_id) => (*camera_id, DeviceKind::Microphone),
            None => (
                req.camera_id,
                DeviceKind::Camera {
                    has_microphone: self.microphones.values().any(|c| *c == req.camera_id),
                },
            ),
        };
        // Live sessions watch the encoding their streamId names; playback serves the primary's
        // recording whatever the stream (recordings exist once, at the configured size).
        let stream = match req.playback {
            Some(_) => StreamKind::Primary,
            None => StreamKind::for_stream_id(req.stream_id),
        };
        let camera = self
            .cameras
            .source(&SourceId {
                camera: camera_id,
                stream,
            })
            .ok_or(MediaError::UnknownCamera(req.camera_id))?
            .clone();
        let tracks = choose_tracks(device, req.include_audio, req.playback.as_ref()).map_err(
            |e| match e {
                TracksError::AudioOnlyAtSpeed(speed) => MediaError::AudioSpeed(speed),
            },
        )?;
        if self.relay_only && gathered.relays.is_empty() {
            return Err(MediaError::NoRelay(gathered.failures.join("; ")));
        }
        let host_addrs: &[SocketAddr] = if self.relay_only {
            &[]
        } else {
            &self.host_addrs
        };
        let mut offered: Vec<String> = host_addrs.iter().map(|a| format!("host {a}")).collect();
        offered.extend(
            gathered
                .candidates
                .iter()
                .map(|c| format!("{} {}", kind_name(c.kind()), c.addr())),
        );
        let now = std::time::Instant::now();
        let (mut session, offer) = Session::create(
            req.session_id,
            camera,
            tracks,
            req.playback,
            host_addrs,
            gathered.candidates,
            Egress::new(gathered.relays),
            self.connect_timeout,
            now,
        )?;
        if !req.ice_servers.is_empty() {
            self.pending_events.push(MediaEvent::IceGathered {
                session_id: req.session_id,
                ice_servers: req
                    .ice_servers
                    .iter()
                    .flat_map(|s| s.urls.iter().cloned())
                    .collect(),
                candidates: offered,
                failures: gathered.failures,
            });
        }
        let mut events = Vec::new();
        session.handle_input(Input::Timeout(now), &self.socket, &mut events);
        self.pending_events.extend(events);
        // The camera is watched from the moment the session connects (see `flush_events`).
        self.demux.add_session(req.session_id, &session.local_ufrag);
        self.sessions.insert(req.session_id, session);
        Ok(offer)
    }

    fn with_session<T>(
        &mut self,
        session_id: Uuid,
        f: impl FnOnce(&mut Session, &UdpSocket, &mut Vec<MediaEvent>) -> Result<T, MediaError>,
    ) -> Result<T, MediaError> {
        let session = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.closing.is_none())
            .ok_or(MediaError::UnknownSession(session_id))?;
        f(session, &self.socket, &mut self.pending_events)
    }

    fn handle_datagram(&mut self, data: &[u8], source: SocketAddr) {
        match self
            .relays
            .handle_datagram(data, source, std::time::Instant::now())
        {
            None => self.deliver(data, source, self.local_addr),
            Some(Intercepted::Consumed) => {}
            // A peer's datagram through our relay: to the sessions it comes from the peer, to
            // the relayed address (their relay candidate).
            Some(Intercepted::Relayed {
                peer,
                relayed,
                payload,
            }) => self.deliver(payload, peer, relayed),
        }
    }

    /// Hands a datagram from `source` to `destination` (one of our candidates) to its session.
    fn deliver(&mut self, data: &[u8], source: SocketAddr, destination: SocketAddr) {
        let Ok(contents) = data.try_into() else {
            tracing::trace!("unrecognised datagram from {source}");
            return;
        };
        let input = Input::Receive(
            std::time::Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let sessions = &self.sessions;
        let target = self.demux.route(
            data,
            source,
            |id| sessions.get(&id).is_some_and(|s| s.accepts(&input)),
            sessions.keys().copied(),
        );
        let Some(id) = target else {
            tracing::trace!("no session accepts a datagram from {source}");
            return;
        };
        if let Some(session) = self.sessions.get_mut(&id) {
            session.handle_input(input, &self.socket, &mut self.pending_events);
        }
    }

    fn handle_feed(&mut self, feed: Feed) {
        match feed {
            Feed::Frame(frame) => {
                // Live sessions only: playback sessions are fed by their players.
                for session in self.sessions.values_mut() {
                    if session.watching && session.camera.source_id() == frame.source_id() {
                        session.send_frame(&frame, &self.socket, &mut self.pending_events);
                    }
                }
            }
            Feed::PlaybackFrame { session_id, frame } => {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    session.send_frame(&frame, &self.socket, &mut self.pending_events);
                }
            }
            Feed::PlaybackEnded {
                session_id,
                last_recording_unix_ms,
                failure,
            } => {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    if failure.is_some() {
                        // The video stopped early; its audio must not run on alone.
                        session.stop_audio();
                    }
                    self.pending_events.push(MediaEvent::PlaybackEnded {
                        session_id,
                        last_recording_unix_ms,
                        failure,
                    });
                }
            }
            Feed::Lagged(source) => {
                tracing::debug!(camera = %source.camera, stream = ?source.stream, "engine fell behind the camera");
                for session in self.sessions.values_mut() {
                    if session.watching && session.camera.source_id() == source {
                        session.frames_lost();
                    }
                }
                if let Some(camera) = self.cameras.source(&source) {
                    camera.request_keyframe();
                }
            }
        }
    }

    fn handle_timeouts(&mut self) {
        let now = std::time::Instant::now();
        for session in self.sessions.values_mut() {
            if session.next_deadline(self.disconnect_timeout) <= now {
                session.handle_timeout(
                    now,
                    self.disconnect_timeout,
                    &self.socket,
                    &mut self.pending_events,
                );
            }
        }
    }

    /// Removes sessions that are closing, and stops feeds nobody watches.
    fn reap(&mut self) {
        let closed: Vec<Uuid> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.closing.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            let Some(session) = self.sessions.remove(&id) else {
                continue;
            };
            self.demux.remove_session(id);
            self.relays.session_ended(id, &self.socket);
            if let Some(player) = &session.player {
                player.abort();
            }
            if session.watching {
                self.unwatch_camera(session.camera.source_id());
            }
            self.pending_events.push(MediaEvent::Closed {
                session_id: id,
                reason: session.closing.unwrap_or_default(),
            });
        }
    }

    fn flush_events(&mut self) {
        self.watch_cameras_of_connected_sessions();
        for event in self.pending_events.drain(..) {
            if let Err(e) = self.events.try_send(event) {
                tracing::debug!("media event dropped (consumer too slow or gone): {e}");
            }
        }
    }

    /// A session starts watching its camera when it connects, not when it is created: an idle
    /// camera then starts encoding (with an IDR) the moment its first viewer can receive it, so
    /// the first frame leaves at once instead of on a frame grid that began at session creation;
    /// a running camera keeps its cadence for everyone and gives the joiner an IDR at its next
    /// picture. Sessions that never connect cost no encoding at all.
    fn watch_cameras_of_connected_sessions(&mut self) {
        let connected: Vec<(Uuid, SourceId)> = self
            .pending_events
            .iter()
            .filter_map(|event| match event {
                MediaEvent::Connected { session_id } => Some(*session_id),
                _ => None,
            })
            .filter_map(|id| {
                let session = self.sessions.get_mut(&id)?;
                // An audio-only session needs no pictures: its audio paces itself.
                if session.watching || session.player.is_some() || !session.has_video() {
                    return None;
                }
                if let Some(playback) = session.playback.as_ref() {
                    // Playback: the session's own player, not the shared live encoder.
                    let camera = session.camera.config().clone();
                    let schedule = PlaybackSchedule::new(
                        &camera.recordings,
                        PacingConfig {
                            fps: camera.fps,
                            gop_frames: camera.keyframe_interval_frames,
                            max_send_fps: MAX_PLAYBACK_SEND_FPS,
                        },
                        unix_ms(playback.start),
                        playback.skip_gaps,
                        playback.speed,
                    );
                    session.set_player(super::player::spawn(
                        id,
                        camera,
                        self.gop_cache.clone(),
                        schedule,
                        self.feed_tx.clone(),
                    ));
                    return None;
                }
                session.watching = true;
                Some((id, session.camera.source_id()))
            })
            .collect();
        for (_, source) in connected {
            self.watch_camera(source);
        }
    }

    fn watch_camera(&mut self, source: SourceId) {
        if let Some(feed) = self.feeds.get_mut(&source) {
            feed.sessions += 1;
            return;
        }
        let Some(camera) = self.cameras.source(&source) else {
            return;
        };
        let mut subscription = camera.subscribe();
        let feed_tx = self.feed_tx.clone();
        let forwarder = tokio::spawn(async move {
            loop {
                let feed = match subscription.frames.recv().await {
                    Ok(frame) => Feed::Frame(frame),
                    Err(RecvError::Lagged(_)) => Feed::Lagged(source),
                    Err(RecvError::Closed) => break,
                };
                if feed_tx.send(feed).await.is_err() {
                    break;
                }
            }
        });
        self.feeds.insert(
            source,
            CameraFeed {
                forwarder,
                sessions: 1,
            },
        );
    }

    fn unwatch_camera(&mut self, source: SourceId) {
        let Some(feed) = self.feeds.get_mut(&source) else {
            return;
        };
        feed.sessions = feed.sessions.saturating_sub(1);
        if feed.sessions == 0
            && let Some(feed) = self.feeds.remove(&source)
        {
            // Dropping the forwarder drops its subscription; the encoder stops with the last.
            feed.forwarder.abort();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for feed in self.feeds.values() {
            feed.forwarder.abort();
        }
        for player in self.sessions.values().filter_map(|s| s.player.as_ref()) {
            player.abort();
        }
    }
}
