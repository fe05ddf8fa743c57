//! Signaling sessions: who owns each, what was asked, the offer, the answer, the server candidates.
//!
//! The media engine owns the WebRTC state; this registry owns the signaling facts the HTTP and
//! WebSocket layers answer from (echoes, the cumulative candidate list, the session's token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use xprotect_proto::wire::rest::SessionResponse;
use xprotect_proto::wire::{DeviceId, IceCandidateInit, Secret, SessionId, SessionParams};

use crate::journal::Transport;

/// One session as signaling sees it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Its id.
    pub id: SessionId,
    /// The user that created it; nobody else can see it.
    pub owner: String,
    /// The latest token the client gave for it (kept for media authorization on token expiry).
    pub token: Secret,
    /// How it was created.
    pub transport: Transport,
    /// What was asked for, validated.
    pub params: SessionParams,
    /// The request's echo fields, as the response repeats them.
    pub echo: SessionResponse,
    /// `{"type":"offer","sdp":…}` as a JSON string, exactly as first sent.
    pub offer_json: String,
    /// The answer as the client sent it, once it did.
    pub answer_json: Option<String>,
    /// The server's candidates.
    pub server_candidates: Vec<IceCandidateInit>,
    /// The same, each serialized once so every poll returns byte-identical strings.
    pub server_candidate_strings: Vec<String>,
    /// Deadlines and hold-backs: token expiry, scheduled drop, candidate delay.
    pub timers: SessionTimers,
}

/// The timing facts of a session that the watchdog ([`crate::watchdog`]) and the candidate
/// hold-back act on.
#[derive(Debug, Clone, Default)]
pub struct SessionTimers {
    /// When the token the session keeps expires (moved by a REST token `PATCH`).
    pub token_expires_at: Option<Instant>,
    /// Set once the session's media stopped because that token expired.
    pub token_expired: bool,
    /// When ICE and DTLS came up.
    pub connected_at: Option<Instant>,
    /// A drop scheduled for this time, with its reason (e.g. the WebSocket carrying the session
    /// was closed by a fault).
    pub drop_at: Option<(Instant, String)>,
    /// The server's candidates are held back until then (fault injection).
    pub candidates_from: Option<Instant>,
}

impl SessionRecord {
    /// The session object for REST responses (`token` is write-only and never returned).
    pub fn to_response(&self) -> SessionResponse {
        SessionResponse {
            session_id: Some(self.id),
            offer_sdp: Some(self.offer_json.clone()),
            answer_sdp: self.answer_json.clone(),
            token: None,
            ..self.echo.clone()
        }
    }

    /// The server candidates a client may see at `now` (none while they are held back).
    pub fn visible_candidate_strings(&self, now: Instant) -> Vec<String> {
        match self.timers.candidates_from {
            Some(from) if now < from => Vec::new(),
            _ => self.server_candidate_strings.clone(),
        }
    }
}

/// All live sessions. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionRegistry {
    // Held only for one map operation at a time, never across an await.
    sessions: Arc<Mutex<HashMap<SessionId, SessionRecord>>>,
    /// Woken on every change, so the watchdog re-reads the deadlines.
    changed: Arc<Notify>,
}

impl SessionRegistry {
    /// Add a session.
    pub fn insert(&self, record: SessionRecord) {
        self.lock().insert(record.id, record);
        self.changed.notify_one();
    }

    /// The session if it exists and belongs to `owner` (another user's session is "not found",
    /// so ids cannot be probed).
    pub fn get(&self, id: SessionId, owner: &str) -> Option<SessionRecord> {
        self.lock()
            .get(&id)
            .filter(|record| record.owner == owner)
            .cloned()
    }

    /// The device a session streams, whoever owns it: for events the media engine reports by
    /// session id alone (never for answering a client, which must go through [`Self::get`]).
    pub fn device_of(&self, id: SessionId) -> Option<DeviceId> {
        self.lock().get(&id).map(|record| record.params.device)
    }

    /// Change a session of `owner`; returns the updated record.
    pub fn update(
        &self,
        id: SessionId,
        owner: &str,
        change: impl FnOnce(&mut SessionRecord),
    ) -> Option<SessionRecord> {
        let mut sessions = self.lock();
        let record = sessions.get_mut(&id).filter(|r| r.owner == owner)?;
        change(record);
        let record = record.clone();
        drop(sessions);
        self.changed.notify_one();
        Some(record)
    }

    /// Change the timers of a session, whoever owns it (for the emulator's own bookkeeping,
    /// never for answering a client); false if there is no such session.
    pub fn update_timers(&self, id: SessionId, change: impl FnOnce(&mut SessionTimers)) -> bool {
        let found = self
            .lock()
            .get_mut(&id)
            .map(|record| change(&mut record.timers))
            .is_some();
        if found {
            self.changed.notify_one();
        }
        found
    }

    /// Run `inspect` on every session at once (one lock; keep it short). Does not wake the
    /// watchdog, which is its caller.
    pub fn with_all<T>(
        &self,
        inspect: impl FnOnce(&mut HashMap<SessionId, SessionRecord>) -> T,
    ) -> T {
        inspect(&mut self.lock())
    }

    /// Whether a session exists, whoever owns it.
    pub fn contains(&self, id: SessionId) -> bool {
        self.lock().contains_key(&id)
    }

    /// The ids of every session.
    pub fn ids(&self) -> Vec<SessionId> {
        self.lock().keys().copied().collect()
    }

    /// Woken whenever a session is added, changed or removed.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Forget a session (the media engine closed it, or a fault ended it).
    pub fn remove(&self, id: SessionId) -> Option<SessionRecord> {
        let removed = self.lock().remove(&id);
        self.changed.notify_one();
        removed
    }

    /// How many sessions exist.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionRecord>> {
        // Every change is a single map operation, so the map is consistent even after a panic.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
