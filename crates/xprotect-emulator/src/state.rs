//! The shared state every handler gets (axum `State`), and the signaling operations REST and
//! WebSocket have in common: authenticate, create a session, apply an answer, add a candidate.
//!
//! Both transports call these, so they reject the same things with the same words; the transport
//! layers only translate requests in and errors out.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;
use xprotect_proto::wire::commands::Command;
use xprotect_proto::wire::rest::SessionResponse;
use xprotect_proto::wire::session::format_iso_millis;

use crate::playback::format_unix_ms;
use xprotect_proto::wire::{
    DeviceId, IceCandidateInit, SdpKind, Secret, SessionDescription, SessionId, SessionParams,
    StreamId,
};

use crate::camera::{CameraHub, PtzOutcome};
use crate::config::EmulatorConfig;
use crate::devices::{DeviceCatalog, format_last_modified};
use crate::error::EmuError;
use crate::faults::{FaultState, without_candidates};
use crate::ids::IdSource;
use crate::journal::{Journal, JournalEvent, JournalOpenError, Transport};
use crate::media::{self, MediaEngineConfig, MediaError, MediaEvent, MediaHandle, SessionRequest};
use crate::release::Release;
use crate::sessions::{SessionRecord, SessionRegistry, SessionTimers};
use crate::tokens::{TokenOwner, TokenRejection, TokenStore};
use crate::watchdog::{Watchdog, WatchdogConfig};

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tokens: TokenStore,
    sessions: SessionRegistry,
    media: MediaHandle,
    journal: Journal,
    ids: Arc<IdSource>,
    devices: HashSet<Uuid>,
    catalog: DeviceCatalog,
    cors: bool,
    release: Release,
    faults: FaultState,
    /// Enforces token expiry and scheduled drops; stops when the state is dropped.
    _watchdog: Watchdog,
}

/// An [`AppState`] that does not keep the emulator alive, for its background tasks.
#[derive(Debug, Clone)]
pub(crate) struct WeakAppState(Weak<Inner>);

impl WeakAppState {
    /// The state, while the emulator exists.
    pub(crate) fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

/// The state could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The media engine did not start.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The journal file could not be opened.
    #[error(transparent)]
    Journal(#[from] JournalOpenError),
}

impl AppState {
    /// Start the media engine and the journal for `config`, on the current runtime.
    pub async fn new(config: &EmulatorConfig) -> Result<Self, StateError> {
        let journal = match &config.journal {
            Some(path) => Journal::with_file(path).await?,
            None => Journal::in_memory(),
        };
        let microphones = microphones_of(config);
        let (media, events) = media::start(MediaEngineConfig {
            bind: config.media_bind,
            cameras: config.cameras.clone(),
            microphones: microphones.clone(),
            relay_only: config.relay_only,
            ..MediaEngineConfig::default()
        })
        .await?;
        let ids = Arc::new(IdSource::new(config.rng_seed));
        let sessions = SessionRegistry::default();
        let watchdog = WatchdogConfig {
            token_grace: config.token_grace,
            drop_sessions_after: config.drop_sessions_after,
        };
        let state = AppState {
            // The watchdog acts on the state through a weak reference, so it never keeps the
            // emulator alive; it only upgrades once a session exists, after construction.
            inner: Arc::new_cyclic(|weak| Inner {
                tokens: TokenStore::new(
                    config.users.clone(),
                    config.token_lifetime,
                    config.refresh_token_lifetime,
                    ids.clone(),
                ),
                sessions: sessions.clone(),
                media,
                journal,
                ids,
                // Cameras, and their microphones (each an audio-only device).
                devices: config
                    .cameras
                    .iter()
                    .map(|c| c.id)
                    .chain(microphones.keys().copied())
                    .collect(),
                catalog: DeviceCatalog::new(
                    &config.cameras,
                    &config.camera_details,
                    format_last_modified(time::OffsetDateTime::now_utc()),
                ),
                cors: config.cors,
                release: config.release,
                faults: FaultState::new(config),
                _watchdog: Watchdog::spawn(WeakAppState(weak.clone()), sessions, watchdog),
            }),
        };
        state.inner.journal.record(JournalEvent::Started {
            release: config.release.to_string(),
            websocket: config.release.websocket(),
            playback: config.release.playback_and_streams(),
            audio: config.release.audio(),
        });
        tokio::spawn(forward_media_events(
            events,
            state.inner.journal.clone(),
            state.inner.sessions.clone(),
            CommandTarget {
                cameras: state.inner.media.cameras(),
                catalog: state.inner.catalog.clone(),
            },
        ));
        Ok(state)
    }

    /// The token store (identity provider).
    pub fn tokens(&self) -> &TokenStore {
        &self.inner.tokens
    }

    /// The session registry.
    pub fn sessions(&self) -> &SessionRegistry {
        &self.inner.sessions
    }

    /// The media engine.
    pub fn media(&self) -> &MediaHandle {
        &self.inner.media
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The cameras and microphones as the Config API describes them.
    pub fn catalog(&self) -> &DeviceCatalog {
        &self.inner.catalog
    }

    /// Whether CORS is on.
    pub fn cors(&self) -> bool {
        self.inner.cors
    }

    /// The XProtect release whose gateway is reproduced.
    pub fn release(&self) -> Release {
        self.inner.release
    }

    /// The fault injection settings.
    pub fn faults(&self) -> &FaultState {
        &self.inner.faults
    }

    /// A fresh random UUID from the (possibly seeded) id source.
    pub fn new_uuid(&self) -> Uuid {
        self.inner.ids.uuid()
    }

    /// Who a raw access token belongs to (401 otherwise).
    pub fn authenticate(&self, token: &str) -> Result<TokenOwner, EmuError> {
        self.inner.tokens.validate(token).map_err(|rejection| {
            EmuError::Unauthorized(match rejection {
                TokenRejection::Unknown => "the bearer token is not valid".to_owned(),
                TokenRejection::Expired => "the bearer token has expired".to_owned(),
            })
        })
    }

    /// Create a media session for `owner` and record it.
    pub async fn create_session(
        &self,
        owner: &TokenOwner,
        token: Secret,
        mut params: SessionParams,
        transport: Transport,
        echo: SessionResponse,
    ) -> Result<SessionRecord, EmuError> {
        // Before 2025 R2 the gateway has no audio: `includeAudio` is an unknown field to it.
        params.include_audio &= self.release().audio();
        let stream_field = match transport {
            Transport::Rest => "streamId",
            Transport::Ws => "streamID",
        };
        self.check_device(params.device)?;
        // Before 2025 R2 a session's device is a camera: a microphone's id is no camera to it.
        if !self.release().microphones() && self.inner.catalog.microphone(params.device.0).is_some()
        {
            return Err(EmuError::NotFound(format!(
                "no camera {} (microphones are session devices from XProtect 2025R2 on)",
                params.device
            )));
        }
        self.check_stream(params.device, params.stream, stream_field)?;
        let id = SessionId(self.new_uuid());
        let offer = self
            .inner
            .media
            .create_session(SessionRequest {
                session_id: id.0,
                camera_id: params.device.0,
                ice_servers: params.ice_servers.iter().map(Into::into).collect(),
                include_audio: params.include_audio,
                playback: params.playback,
                stream_id: params.stream.map(|s| s.0),
            })
            .await?;
        let server_candidates: Vec<IceCandidateInit> = offer.local_candidates.clone();
        let now = tokio::time::Instant::now();
        let candidate_delay = self.faults().candidate_delay();
        let token_expires_at = self.inner.tokens.expires_at(token.expose());
        let offer_sdp = match candidate_delay {
            // Held-back candidates must not reach the client inside the offer either.
            Some(_) => without_candidates(&offer.offer_sdp),
            None => offer.offer_sdp,
        };
        let record = SessionRecord {
            id,
            owner: owner.user.clone(),
            token,
            transport,
            offer_json: SessionDescription::offer(offer_sdp).to_json_string(),
            answer_json: None,
            server_candidate_strings: server_candidates
                .iter()
                .map(IceCandidateInit::to_json_string)
                .collect(),
            server_candidates,
            params,
            echo,
            timers: SessionTimers {
                token_expires_at,
                candidates_from: candidate_delay.map(|delay| now + delay),
                ..SessionTimers::default()
            },
        };
        self.inner.sessions.insert(record.clone());
        self.journal().record(JournalEvent::SessionCreated {
            session: id.to_string(),
            device: record.params.device.to_string(),
            transport,
            stream: record.params.stream.map(|s| s.to_string()),
            mode: if record.params.playback.is_some() {
                "playback"
            } else {
                "live"
            },
            playback: record.params.playback.map(|p| {
                // The recordings the request plays from, so a user can see what exists.
                let recordings: Vec<Value> = self
                    .inner
                    .media
                    .recordings(record.params.device.0)
                    .map(|timeline| {
                        timeline
                            .recordings()
                            .iter()
                            .map(|r| json!({"start": format_unix_ms(r.start_unix_ms), "end": format_unix_ms(r.end_unix_ms)}))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"start": format_iso_millis(p.start), "speed": p.speed, "skipGaps": p.skip_gaps, "recordings": recordings})
            }),
            include_audio: record.params.include_audio,
            video: offer.video,
            audio: offer.audio,
        });
        self.journal().record(JournalEvent::ServerCandidates {
            session: id.to_string(),
            candidates: record
                .server_candidates
                .iter()
                .map(|c| c.candidate.clone())
                .collect(),
        });
        Ok(record)
    }

    /// Apply the client's answer (a JSON string of `{type:"answer",sdp}`); `field` names it in
    /// errors (`answerSDP` for REST, `answer` for WebSocket).
    pub async fn apply_answer(
        &self,
        owner: &str,
        session: SessionId,
        answer_json: &str,
        field: &str,
        transport: Transport,
    ) -> Result<SessionRecord, EmuError> {
        let description = SessionDescription::from_json_string(answer_json, SdpKind::Answer)
            .map_err(|e| EmuError::field(field, format!("not an answer description: {e}")))?;
        self.owned(session, owner)?;
        self.inner
            .media
            .apply_answer(session.0, &description.sdp)
            .await
            .map_err(|error| match EmuError::from(error) {
                EmuError::BadRequest { message, .. } => EmuError::field(field, message),
                other => other,
            })?;
        let record = self
            .inner
            .sessions
            .update(session, owner, |r| {
                r.answer_json = Some(answer_json.to_owned())
            })
            .ok_or_else(|| not_found(session))?;
        self.journal().record(JournalEvent::AnswerReceived {
            session: session.to_string(),
            transport,
        });
        Ok(record)
    }

    /// Hand a client candidate to the media engine (before or after the answer). `twin_ip` is the
    /// signaling peer's address, used in place of an mDNS name (PROTOCOL.md §4.5).
    pub async fn add_client_candidate(
        &self,
        owner: &str,
        session: SessionId,
        candidate: &IceCandidateInit,
        twin_ip: Option<IpAddr>,
    ) -> Result<(), EmuError> {
        self.owned(session, owner)?;
        let address = candidate.address().unwrap_or_default().to_owned();
        let is_mdns = address.to_ascii_lowercase().ends_with(".local");
        self.inner
            .media
            .add_remote_candidate(session.0, candidate.clone(), twin_ip)
            .await?;
        self.journal().record(JournalEvent::ClientCandidate {
            session: session.to_string(),
            address,
            twin: twin_ip.filter(|_| is_mdns).map(|ip| ip.to_string()),
        });
        Ok(())
    }

    /// Replace the token a session keeps; the new token must be valid and of the same user.
    pub fn update_session_token(
        &self,
        owner: &str,
        session: SessionId,
        token: &Secret,
    ) -> Result<SessionRecord, EmuError> {
        self.owned(session, owner)?;
        let new_owner = self.authenticate(token.expose())?;
        if new_owner.user != owner {
            return Err(EmuError::Forbidden(
                "the new token belongs to another user than the session".to_owned(),
            ));
        }
        let expires_at = self.inner.tokens.expires_at(token.expose());
        self.inner
            .sessions
            .update(session, owner, |r| {
                r.token = token.clone();
                r.timers.token_expires_at = expires_at;
            })
            .ok_or_else(|| not_found(session))
            .inspect(|_| {
                self.journal().record(JournalEvent::SessionTokenUpdated {
                    session: session.to_string(),
                })
            })
    }

    /// A session of `owner`, or 404.
    pub fn owned(&self, session: SessionId, owner: &str) -> Result<SessionRecord, EmuError> {
        self.inner
            .sessions
            .get(session, owner)
            .ok_or_else(|| not_found(session))
    }

    fn check_device(&self, device: DeviceId) -> Result<(), EmuError> {
        if self.inner.devices.contains(&device.0) {
            Ok(())
        } else {
            Err(EmuError::NotFound(format!("no device {device}")))
        }
    }

    /// A `streamId` must be one of the camera's stream usages (`cameras/{id}/streams`,
    /// PROTOCOL.md §11.K.8). Live, "Video stream 2" is a second, larger encoding of the camera
    /// (see [`crate::camera::StreamKind`]); every other listed stream serves the primary.
    fn check_stream(
        &self,
        device: DeviceId,
        stream: Option<StreamId>,
        field: &str,
    ) -> Result<(), EmuError> {
        match stream {
            None => Ok(()),
            // A microphone has no video streams: its session ignores a `streamId`.
            Some(_) if self.inner.catalog.microphone(device.0).is_some() => Ok(()),
            Some(stream) => self
                .inner
                .catalog
                .check_stream(device.0, stream.0)
                .map_err(|message| EmuError::field(field, message)),
        }
    }
}

/// Microphone id → camera id, for the cameras of `config` whose details name a microphone.
fn microphones_of(config: &EmulatorConfig) -> HashMap<Uuid, Uuid> {
    config
        .cameras
        .iter()
        .filter_map(|camera| {
            let microphone = config.camera_details.get(&camera.id)?.microphone.as_ref()?;
            Some((microphone.id, camera.id))
        })
        .collect()
}

/// Where data-channel commands take effect: the PTZ heads of the cameras, and whether the
/// configuration gives each camera PTZ. Holds no media handle, so it does not keep the engine
/// alive.
struct CommandTarget {
    cameras: Arc<CameraHub>,
    catalog: DeviceCatalog,
}

impl CommandTarget {
    /// Applies `command` to the camera of `session`; the journal entry says what happened.
    fn apply(&self, sessions: &SessionRegistry, session: Uuid, command: &Command) -> JournalEvent {
        let Some(DeviceId(camera)) = sessions.device_of(SessionId(session)) else {
            return JournalEvent::CommandRejected {
                session: session.to_string(),
                camera: None,
                reason: "the session is gone".to_owned(),
            };
        };
        let ptz_enabled = self.catalog.ptz_enabled(camera).unwrap_or(false);
        match self.cameras.apply_command(&camera, command, ptz_enabled) {
            Ok(PtzOutcome::Moved { direction, state }) => JournalEvent::PtzMoved {
                session: session.to_string(),
                camera: camera.to_string(),
                direction: serde_json::to_value(direction)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                pan: state.pan,
                tilt: state.tilt,
            },
            Ok(PtzOutcome::AuxSet { aux, on, .. }) => JournalEvent::AuxSet {
                session: session.to_string(),
                camera: camera.to_string(),
                aux,
                on,
            },
            Err(rejection) => JournalEvent::CommandRejected {
                session: session.to_string(),
                camera: Some(camera.to_string()),
                reason: rejection.to_string(),
            },
        }
    }
}

fn not_found(session: SessionId) -> EmuError {
    EmuError::NotFound(format!("no session {session}"))
}

/// Journal every media event; forget sessions the engine closed.
async fn forward_media_events(
    mut events: mpsc::Receiver<MediaEvent>,
    journal: Journal,
    sessions: SessionRegistry,
    commands: CommandTarget,
) {
    while let Some(event) = events.recv().await {
        let entry = match event {
            MediaEvent::Connected { session_id } => {
                sessions.update_timers(SessionId(session_id), |timers| {
                    timers.connected_at = Some(tokio::time::Instant::now());
                });
                JournalEvent::Connected {
                    session: session_id.to_string(),
                }
            }
            MediaEvent::FirstFrameSent {
                session_id,
                rtp,
                recording_unix_ms,
            } => JournalEvent::FirstFrameSent {
                session: session_id.to_string(),
                rtp,
                recording_unix_ms,
                recording_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(recording_unix_ms) * 1_000_000,
                )
                .map(crate::journal::format_rfc3339)
                .unwrap_or_default(),
            },
            MediaEvent::FirstAudioSent {
                session_id,
                rtp,
                recording_unix_ms,
            } => JournalEvent::FirstAudioSent {
                session: session_id.to_string(),
                rtp,
                recording_time: format_unix_ms(recording_unix_ms),
            },
            MediaEvent::DataChannelOpen {
                session_id,
                label,
                protocol,
            } => JournalEvent::DataChannelOpen {
                session: session_id.to_string(),
                label,
                protocol,
            },
            MediaEvent::DataChannelMessage { session_id, text } => {
                let parsed = Command::parse(&text);
                let (command, error) = match &parsed {
                    Ok(command) => (Some(format!("{command:?}")), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                journal.record(JournalEvent::DataChannelMessage {
                    session: session_id.to_string(),
                    text,
                    command,
                    error,
                });
                // A message that is not a command was journaled as such; nothing to apply.
                let Ok(command) = parsed else { continue };
                commands.apply(&sessions, session_id, &command)
            }
            MediaEvent::Disconnected { session_id } => JournalEvent::Disconnected {
                session: session_id.to_string(),
            },
            MediaEvent::PlaybackEnded {
                session_id,
                last_recording_unix_ms,
                failure,
            } => JournalEvent::PlaybackEnded {
                session: session_id.to_string(),
                last_recording_time: last_recording_unix_ms.map(format_unix_ms),
                failure,
            },
            MediaEvent::IceGathered {
                session_id,
                ice_servers,
                candidates,
                failures,
            } => JournalEvent::IceGathered {
                session: session_id.to_string(),
                ice_servers,
                candidates,
                failures,
            },
            MediaEvent::IceSelected {
                session_id,
                local_type,
                remote_type,
            } => JournalEvent::IceSelected {
                session: session_id.to_string(),
                local_type,
                remote_type,
            },
            MediaEvent::Closed { session_id, reason } => {
                sessions.remove(SessionId(session_id));
                JournalEvent::Closed {
                    session: session_id.to_string(),
                    reason,
                }
            }
        };
        journal.record(entry);
    }
}
