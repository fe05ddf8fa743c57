//! `POST <gateway>/IDP/connect/token`: the identity provider (PROTOCOL.md §1).

use axum::Json;
use axum::extract::{Request, State};
use xprotect_proto::wire::form;
use xprotect_proto::wire::idp::{OAuthError, TokenRequest, TokenRequestError, TokenResponse};

use crate::error::EmuError;
use crate::http::extract::body_text;
use crate::journal::JournalEvent;
use crate::state::AppState;

/// Issue a token for the password or refresh-token grant; OAuth errors otherwise.
pub async fn token(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<TokenResponse>, EmuError> {
    let refuse = |grant: Option<String>, error: OAuthError| {
        state.journal().record(JournalEvent::TokenRefused {
            grant,
            reason: format!(
                "{}: {}",
                error.error,
                error.error_description.as_deref().unwrap_or("")
            ),
        });
        EmuError::OAuth(error)
    };
    let body = match body_text(request, &state).await {
        Ok(body) => body,
        Err(error) => {
            return Err(refuse(
                None,
                OAuthError::new("invalid_request", error.to_string()),
            ));
        }
    };
    let grant_name = grant_type(&body);
    let token_request = TokenRequest::from_form(&body).map_err(|error| {
        let oauth = match &error {
            TokenRequestError::UnsupportedGrant(_) => {
                OAuthError::new("unsupported_grant_type", error.to_string())
            }
            TokenRequestError::Form(_) | TokenRequestError::Missing(_) => {
                OAuthError::new("invalid_request", error.to_string())
            }
        };
        refuse(grant_name.clone(), oauth)
    })?;
    let issued = state
        .tokens()
        .grant(&token_request)
        .map_err(|error| refuse(grant_name.clone(), error))?;
    state.journal().record(JournalEvent::TokenIssued {
        user: issued.user,
        client_id: issued.client_id,
        grant: issued.grant.to_owned(),
        expires_in: issued.response.expires_in,
    });
    Ok(Json(issued.response))
}

/// The `grant_type` field for the journal, limited to the names we know (never echo free text
/// that might be a secret pasted into the wrong field).
fn grant_type(body: &str) -> Option<String> {
    let pairs = form::decode(body).ok()?;
    let grant = pairs.iter().find(|(k, _)| k == "grant_type")?.1.as_str();
    Some(
        match grant {
            "password"
            | "refresh_token"
            | "client_credentials"
            | "authorization_code"
            | "windows_credentials" => grant,
            _ => "other",
        }
        .to_owned(),
    )
}
