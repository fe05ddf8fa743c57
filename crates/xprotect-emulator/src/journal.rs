//! The protocol journal: one JSON object per line for every protocol event.
//!
//! ```text
//! Journal::record ──▶ broadcast<JournalEntry> (tests, live observers)
//!                 └─▶ bounded mpsc ──▶ writer task ──▶ append + flush per line (--journal FILE)
//! ```
//!
//! Entries never carry tokens or passwords: the event types below have no field that could hold
//! one, and user-supplied text is limited to names, addresses and error messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Lines queued for the file writer. A line is a few hundred bytes and the writer only appends,
/// so this absorbs bursts (a hundred sessions starting at once) without holding up handlers;
/// beyond it lines are dropped and counted rather than stalling signaling.
pub const JOURNAL_FILE_CHANNEL_CAPACITY: usize = 4096;

/// Entries kept for slow broadcast subscribers before they start missing some.
pub const JOURNAL_BROADCAST_CAPACITY: usize = 1024;

/// Which signaling transport created a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `POST /REST/v1/WebRTC/Session`.
    Rest,
    /// WebSocket `connect`.
    Ws,
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// RFC 3339 UTC time of the event.
    pub time: String,
    /// The event and its fields.
    #[serde(flatten)]
    pub event: JournalEvent,
}

/// A protocol event. Serialized with its name in `event` and its fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    /// The emulator started, reproducing the gateway of this XProtect release.
    Started {
        /// The release, e.g. `2025R2`.
        release: String,
        /// Whether it serves WebSocket signaling.
        websocket: bool,
        /// Whether it reads playback, `streamId` and `iceServers`.
        playback: bool,
        /// Whether it reads `deviceId` and offers audio.
        audio: bool,
    },
    /// The IDP issued a token.
    TokenIssued {
        /// The user.
        user: String,
        /// `VmsClient` or `GrantValidatorClient`.
        client_id: String,
        /// `password` or `refresh_token`.
        grant: String,
        /// Lifetime in seconds.
        expires_in: u64,
    },
    /// The IDP refused a token request.
    TokenRefused {
        /// The grant asked for, if the form said.
        grant: Option<String>,
        /// The OAuth error code and its description.
        reason: String,
    },
    /// A request was answered with an error status.
    HttpRejected {
        /// HTTP method.
        method: String,
        /// Path as received.
        path: String,
        /// Status code.
        status: u16,
        /// The error message sent.
        message: String,
        /// The field at fault.
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// A session was created.
    SessionCreated {
        /// The session.
        session: String,
        /// The device.
        device: String,
        /// How it was created.
        transport: Transport,
        /// The stream, when one was asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        /// `live` or `playback`.
        mode: &'static str,
        /// Playback start (RFC 3339), speed and skipGaps, for playback.
        #[serde(skip_serializing_if = "Option::is_none")]
        playback: Option<Value>,
        /// includeAudio as asked.
        include_audio: bool,
        /// Whether the offer has a video section (false for a microphone).
        video: bool,
        /// Whether the offer has a PCMU audio section.
        audio: bool,
    },
    /// A playback session passed the end of the camera's last recording: nothing more is sent.
    PlaybackEnded {
        /// The session.
        session: String,
        /// Recording time (RFC 3339) of the last frame sent, if any was.
        #[serde(skip_serializing_if = "Option::is_none")]
        last_recording_time: Option<String>,
        /// Why playback stopped early, if it did (an encoder failure).
        #[serde(skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
    },
    /// The client's answer was applied.
    AnswerReceived {
        /// The session.
        session: String,
        /// How it came.
        transport: Transport,
    },
    /// A client ICE candidate arrived.
    ClientCandidate {
        /// The session.
        session: String,
        /// The candidate's address (may be an mDNS name); empty for end-of-candidates.
        address: String,
        /// The signaling peer's address used for an mDNS twin.
        #[serde(skip_serializing_if = "Option::is_none")]
        twin: Option<String>,
    },
    /// The server's candidates were handed to the client (or made available for polling).
    ServerCandidates {
        /// The session.
        session: String,
        /// The candidate lines.
        candidates: Vec<String>,
    },
    /// ICE and DTLS are up.
    Connected {
        /// The session.
        session: String,
    },
    /// The first video frame went out.
    FirstFrameSent {
        /// The session.
        session: String,
        /// Its RTP timestamp.
        rtp: u32,
        /// Its recording time, Unix ms.
        recording_unix_ms: i64,
        /// Its recording time, RFC 3339.
        recording_time: String,
    },
    /// The first audio packet went out.
    FirstAudioSent {
        /// The session.
        session: String,
        /// Its RTP timestamp (8 kHz samples since the start reference).
        rtp: u32,
        /// Recording time of its first sample, RFC 3339.
        recording_time: String,
    },
    /// The client opened a data channel.
    DataChannelOpen {
        /// The session.
        session: String,
        /// Channel label.
        label: String,
        /// Channel sub-protocol.
        protocol: String,
    },
    /// A data-channel message.
    DataChannelMessage {
        /// The session.
        session: String,
        /// The text received.
        text: String,
        /// The parsed command (debug form), if it parsed.
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// Why it did not parse.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A `ptzMove` turned a camera's head (shared by every session of the camera).
    PtzMoved {
        /// The session that sent it.
        session: String,
        /// The camera.
        camera: String,
        /// The direction, as the command named it (`upLeft`, `home`, …).
        direction: String,
        /// Pan afterwards, degrees (`-180..=180`).
        pan: i32,
        /// Tilt afterwards, degrees (`-90..=90`).
        tilt: i32,
    },
    /// A `setAux` switched an aux output of a camera.
    AuxSet {
        /// The session that sent it.
        session: String,
        /// The camera.
        camera: String,
        /// The output, 1-based.
        aux: u32,
        /// On or off.
        on: bool,
    },
    /// A well-formed command the camera cannot carry out (no PTZ, no such aux output); nothing
    /// changed.
    CommandRejected {
        /// The session that sent it.
        session: String,
        /// The camera (or other device) the session streams, if the session is still known.
        camera: Option<String>,
        /// Why.
        reason: String,
    },
    /// ICE lost the client.
    Disconnected {
        /// The session.
        session: String,
    },
    /// The engine gathered its own candidates from the session's `iceServers`.
    IceGathered {
        /// The session.
        session: String,
        /// The STUN/TURN URLs the request carried (never the credentials).
        ice_servers: Vec<String>,
        /// The candidates offered, as `<type> <address>`.
        candidates: Vec<String>,
        /// Servers that gave no candidate, and why.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        failures: Vec<String>,
    },
    /// ICE selected the pair DTLS and media take, by candidate type (`host`, `srflx`, `prflx`,
    /// `relay`).
    IceSelected {
        /// The session.
        session: String,
        /// The emulator's side.
        local_type: String,
        /// The client's side.
        remote_type: String,
    },
    /// The session ended.
    Closed {
        /// The session.
        session: String,
        /// Why.
        reason: String,
    },
    /// A session's kept token was replaced (REST `PATCH Session/{id}` with `token`).
    SessionTokenUpdated {
        /// The session.
        session: String,
    },
    /// A session's token expired without a new one (REST `PATCH`) within the grace period: the
    /// session sends no more media (its ICE and data channel stay up).
    SessionTokenExpired {
        /// The session.
        session: String,
    },
    /// A fault was injected (control endpoint, [`crate::FaultControl`] or a scheduled one).
    FaultInjected {
        /// The fault and its parameters.
        fault: crate::faults::Fault,
    },
    /// A fault or a schedule ended a session: its media stopped and it is forgotten.
    SessionDropped {
        /// The session.
        session: String,
        /// Why, in words.
        reason: String,
    },
    /// The signaling server (HTTP and WebSocket) listens again after an injected restart.
    SignalingRestarted {
        /// How long it was down, in milliseconds.
        down_ms: u64,
    },
    /// A WebSocket message was refused (answered with an `error` notification).
    WsError {
        /// The session concerned, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The error code sent.
        code: i64,
        /// The message sent.
        message: String,
    },
}

/// A cheap, cloneable handle to the journal.
#[derive(Debug, Clone)]
pub struct Journal {
    broadcast: broadcast::Sender<JournalEntry>,
    file: Option<mpsc::Sender<FileCommand>>,
    dropped: Arc<AtomicU64>,
}

#[derive(Debug)]
enum FileCommand {
    Line(String),
    Flush(oneshot::Sender<()>),
}

/// The journal file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the journal file {path}: {source}")]
pub struct JournalOpenError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl Journal {
    /// A journal that only broadcasts (no file).
    pub fn in_memory() -> Self {
        let (broadcast, _) = broadcast::channel(JOURNAL_BROADCAST_CAPACITY);
        Self {
            broadcast,
            file: None,
            dropped: Arc::default(),
        }
    }

    /// A journal that also appends to `path`, through a writer task on the current runtime.
    pub async fn with_file(path: &Path) -> Result<Self, JournalOpenError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| JournalOpenError {
                path: path.to_owned(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(JOURNAL_FILE_CHANNEL_CAPACITY);
        tokio::spawn(write_lines(file, rx, path.to_owned()));
        let mut journal = Self::in_memory();
        journal.file = Some(tx);
        Ok(journal)
    }

    /// Record an event now.
    pub fn record(&self, event: JournalEvent) {
        let entry = JournalEntry {
            time: now_rfc3339(),
            event,
        };
        if let Some(file) = &self.file {
            match serde_json::to_string(&entry) {
                Ok(line) => {
                    if file.try_send(FileCommand::Line(line)).is_err() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("journal file queue full or closed; line dropped");
                    }
                }
                Err(error) => tracing::debug!(%error, "journal entry not serializable"),
            }
        }
        // No subscriber is fine: the broadcast is for whoever watches.
        let _ = self.broadcast.send(entry);
    }

    /// Subscribe to entries recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.broadcast.subscribe()
    }

    /// Lines that could not be queued for the file.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait until every line recorded so far is written and flushed.
    pub async fn flush(&self) {
        if let Some(file) = &self.file {
            let (done, wait) = oneshot::channel();
            if file.send(FileCommand::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
    }
}

async fn write_lines(
    mut file: tokio::fs::File,
    mut rx: mpsc::Receiver<FileCommand>,
    path: PathBuf,
) {
    while let Some(command) = rx.recv().await {
        match command {
            FileCommand::Line(mut line) => {
                line.push('\n');
                let written = async {
                    file.write_all(line.as_bytes()).await?;
                    file.flush().await
                };
                if let Err(error) = written.await {
                    tracing::warn!(%error, path = %path.display(), "journal write failed");
                }
            }
            FileCommand::Flush(done) => {
                let _ = file.sync_data().await;
                let _ = done.send(());
            }
        }
    }
}

/// The current UTC time in RFC 3339.
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// A time in RFC 3339 (UTC), or the Unix epoch text if it cannot be formatted (years past 9999).
pub fn format_rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
