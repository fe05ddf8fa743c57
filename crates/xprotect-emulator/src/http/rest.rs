//! REST signaling under `<gateway>/REST/v1/WebRTC` (PROTOCOL.md §2).

use axum::Json;
use axum::extract::State;
use xprotect_proto::wire::IceCandidateInit;
use xprotect_proto::wire::rest::{
    CreateSessionRequest, IceCandidatesBody, PatchSessionRequest, SessionResponse,
};

use crate::error::EmuError;
use crate::http::extract::{Authenticated, ClientIp, LenientJson, SessionPath};
use crate::journal::Transport;
use crate::release::restrict_rest_request;
use crate::state::AppState;

/// `POST Session`: validate, create the media session, answer with the offer.
pub async fn create_session(
    State(state): State<AppState>,
    auth: Authenticated,
    LenientJson(mut request): LenientJson<CreateSessionRequest>,
) -> Result<Json<SessionResponse>, EmuError> {
    // An older gateway reads only the fields its release knows; the rest are ignored, not refused.
    let release = state.release();
    restrict_rest_request(release, &mut request)?;
    let params = request.validate()?;
    // Echo the device under both names, as a 2025 R2 gateway's schema has both; older schemas
    // have neither deviceId nor includeAudio.
    let device = params.device.to_string();
    let echo = SessionResponse {
        device_id: release.device_id_field().then(|| device.clone()),
        camera_id: Some(device),
        resolution: request.resolution.clone(),
        stream_id: params.stream.map(|s| s.to_string()),
        include_audio: release.audio().then_some(params.include_audio),
        playback_time_node: request.playback_time_node.clone(),
        ice_servers: Some(request.ice_servers.clone().unwrap_or_default()),
        ..SessionResponse::default()
    };
    let record = state
        .create_session(&auth.owner, auth.token, params, Transport::Rest, echo)
        .await?;
    Ok(Json(record.to_response()))
}

/// `PATCH Session/{id}`: the answer, a new token, or both.
pub async fn patch_session(
    State(state): State<AppState>,
    auth: Authenticated,
    SessionPath(session): SessionPath,
    LenientJson(request): LenientJson<PatchSessionRequest>,
) -> Result<Json<SessionResponse>, EmuError> {
    let owner = auth.owner.user.as_str();
    let mut record = state.owned(session, owner)?;
    if request.answer_sdp.is_none() && request.token.is_none() {
        return Err(EmuError::field(
            "answerSDP",
            "nothing to change: give answerSDP and/or token",
        ));
    }
    if let Some(token) = &request.token {
        record = state.update_session_token(owner, session, token)?;
    }
    if let Some(answer) = &request.answer_sdp {
        record = state
            .apply_answer(owner, session, answer, "answerSDP", Transport::Rest)
            .await?;
    }
    Ok(Json(record.to_response()))
}

/// `POST IceCandidates/{id}`: client candidates, each a JSON string; may precede the answer.
pub async fn post_candidates(
    State(state): State<AppState>,
    auth: Authenticated,
    SessionPath(session): SessionPath,
    ClientIp(client_ip): ClientIp,
    LenientJson(body): LenientJson<IceCandidatesBody>,
) -> Result<Json<IceCandidatesBody>, EmuError> {
    let owner = auth.owner.user.as_str();
    state.owned(session, owner)?;
    if let Some(echoed) = body
        .session_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let matches = echoed
            .parse::<xprotect_proto::wire::SessionId>()
            .is_ok_and(|id| id == session);
        if !matches {
            return Err(EmuError::field(
                "sessionId",
                "the body's sessionId differs from the session in the path",
            ));
        }
    }
    let texts = body
        .candidates
        .as_ref()
        .ok_or_else(|| EmuError::field("candidates", "missing: give an array of JSON strings"))?;
    // Parse all first, so a bad element rejects the request before anything reaches the engine.
    let candidates = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            IceCandidateInit::from_json_string(text)
                .map_err(|e| EmuError::field(format!("candidates[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, candidate) in candidates.iter().enumerate() {
        state
            .add_client_candidate(owner, session, candidate, client_ip)
            .await
            .map_err(|error| match error {
                EmuError::BadRequest { message, .. } => {
                    EmuError::field(format!("candidates[{i}]"), message)
                }
                other => other,
            })?;
    }
    Ok(Json(IceCandidatesBody {
        session_id: Some(session.to_string()),
        candidates: Some(texts.clone()),
    }))
}

/// `GET IceCandidates/{id}`: every server candidate so far, byte-identical between polls.
pub async fn get_candidates(
    State(state): State<AppState>,
    auth: Authenticated,
    SessionPath(session): SessionPath,
) -> Result<Json<IceCandidatesBody>, EmuError> {
    let record = state.owned(session, &auth.owner.user)?;
    Ok(Json(IceCandidatesBody {
        session_id: Some(session.to_string()),
        candidates: Some(record.visible_candidate_strings(tokio::time::Instant::now())),
    }))
}
