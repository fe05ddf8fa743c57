//! Signaling sessions: who owns each, what was asked, the offer, the answer, the server candidates.
//!
//! The media engine owns the WebRTC state; this registry owns the signaling facts the HTTP and
//! WebSocket layers answer from (echoes, the cumulative candidate list, the session's token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

/// All live sessions. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionRegistry {
    // Held only for one map operation at a time, never across an await.
    sessions: Arc<Mutex<HashMap<SessionId, SessionRecord>>>,
}

impl SessionRegistry {
    /// Add a session.
    pub fn insert(&self, record: SessionRecord) {
        self.lock().insert(record.id, record);
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
        Some(record.clone())
    }

    /// Forget a session (the media engine closed it).
    pub fn remove(&self, id: SessionId) -> Option<SessionRecord> {
        self.lock().remove(&id)
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
