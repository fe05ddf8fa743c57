//! The identity provider's token store: password and refresh grants, opaque JWT-shaped access
//! tokens, single-use rotating refresh tokens (PROTOCOL.md §1).
//!
//! Expiry uses `tokio::time::Instant`, so tests run hours of token lifetime under paused time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use xprotect_proto::wire::Secret;
use xprotect_proto::wire::idp::{
    GRANT_VALIDATOR_CLIENT, OAuthError, TokenRequest, TokenResponse, VMS_CLIENT,
};

use crate::ids::{IdSource, base64url, hex};

/// `scope` granted to `GrantValidatorClient` (observed on real gateways, PROTOCOL.md §1.2).
pub const GRANT_VALIDATOR_SCOPE: &str = "managementserver";
/// `scope` granted to `VmsClient` (unknown on real gateways; this adds offline access).
pub const VMS_CLIENT_SCOPE: &str = "managementserver offline_access";

/// Who a valid access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The user's name as configured.
    pub user: String,
    /// The client it was issued to.
    pub client_id: String,
}

/// Why a bearer token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// No such token was ever issued here.
    #[error("the access token is not known to this identity provider")]
    Unknown,
    /// It was, but its lifetime is over.
    #[error("the access token has expired")]
    Expired,
}

/// A successful grant, and what the journal says about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The response body.
    pub response: TokenResponse,
    /// The user.
    pub user: String,
    /// The client.
    pub client_id: String,
    /// `password` or `refresh_token`.
    pub grant: &'static str,
}

#[derive(Debug)]
struct Grant {
    owner: TokenOwner,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Tables {
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
}

/// Users, issued tokens and their lifetimes. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct TokenStore {
    users: Arc<Vec<(String, Secret)>>,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
    ids: Arc<IdSource>,
    // Held only for map lookups and inserts, never across an await.
    tables: Arc<Mutex<Tables>>,
}

impl TokenStore {
    /// A store for these users.
    pub fn new(
        users: Vec<(String, Secret)>,
        access_lifetime: Duration,
        refresh_lifetime: Duration,
        ids: Arc<IdSource>,
    ) -> Self {
        Self {
            users: Arc::new(users),
            access_lifetime,
            refresh_lifetime,
            ids,
            tables: Arc::default(),
        }
    }

    /// Handle a token request; errors are OAuth error bodies (all HTTP 400).
    pub fn grant(&self, request: &TokenRequest) -> Result<Issued, OAuthError> {
        let client_id = request.client_id();
        if client_id != VMS_CLIENT && client_id != GRANT_VALIDATOR_CLIENT {
            return Err(OAuthError::new(
                "invalid_client",
                format!("unknown client_id; use {VMS_CLIENT} or {GRANT_VALIDATOR_CLIENT}"),
            ));
        }
        match request {
            TokenRequest::Password {
                username, password, ..
            } => {
                let user = self
                    .users
                    .iter()
                    .find(|(name, secret)| {
                        name.eq_ignore_ascii_case(username) && secret.expose() == password.expose()
                    })
                    .map(|(name, _)| name.clone())
                    .ok_or_else(|| {
                        OAuthError::new("invalid_grant", "invalid_username_or_password")
                    })?;
                Ok(self.issue(user, client_id, "password"))
            }
            TokenRequest::RefreshToken { refresh_token, .. } => {
                let now = Instant::now();
                let grant = {
                    let mut tables = self.lock();
                    // Single use: whatever happens next, this refresh token is spent.
                    tables.refresh.remove(refresh_token.expose())
                };
                let grant = grant.ok_or_else(|| {
                    OAuthError::new("invalid_grant", "the refresh token is unknown or was used")
                })?;
                if grant.expires_at <= now {
                    return Err(OAuthError::new(
                        "invalid_grant",
                        "the refresh token has expired",
                    ));
                }
                if grant.owner.client_id != client_id {
                    return Err(OAuthError::new(
                        "invalid_grant",
                        "the refresh token was issued to another client",
                    ));
                }
                Ok(self.issue(grant.owner.user, client_id, "refresh_token"))
            }
        }
    }

    /// Who `token` belongs to, if it is a live access token.
    pub fn validate(&self, token: &str) -> Result<TokenOwner, TokenRejection> {
        let tables = self.lock();
        let grant = tables.access.get(token).ok_or(TokenRejection::Unknown)?;
        if grant.expires_at <= Instant::now() {
            return Err(TokenRejection::Expired);
        }
        Ok(grant.owner.clone())
    }

    /// When a known access token expires (`None` for a token this store never issued, or one
    /// swept after expiring).
    pub fn expires_at(&self, token: &str) -> Option<Instant> {
        self.lock().access.get(token).map(|grant| grant.expires_at)
    }

    /// The lifetime handed out as `expires_in`.
    pub fn access_lifetime(&self) -> Duration {
        self.access_lifetime
    }

    fn issue(&self, user: String, client_id: &str, grant: &'static str) -> Issued {
        let now = Instant::now();
        let owner = TokenOwner {
            user: user.clone(),
            client_id: client_id.to_owned(),
        };
        let access_token = self.jwt_shaped(&owner);
        let refresh_token =
            (client_id == VMS_CLIENT).then(|| hex(&self.ids.bytes::<32>()).to_uppercase());
        {
            let mut tables = self.lock();
            // Expired entries are of no further use (an expired token is rejected the same way as
            // an unknown one would be, apart from the message), so sweep them on each issue.
            tables.access.retain(|_, g| g.expires_at > now);
            tables.refresh.retain(|_, g| g.expires_at > now);
            tables.access.insert(
                access_token.clone(),
                Grant {
                    owner: owner.clone(),
                    expires_at: now + self.access_lifetime,
                },
            );
            if let Some(refresh) = &refresh_token {
                tables.refresh.insert(
                    refresh.clone(),
                    Grant {
                        owner,
                        expires_at: now + self.refresh_lifetime,
                    },
                );
            }
        }
        let scope = if client_id == VMS_CLIENT {
            VMS_CLIENT_SCOPE
        } else {
            GRANT_VALIDATOR_SCOPE
        };
        Issued {
            response: TokenResponse {
                access_token: Secret::new(access_token),
                expires_in: self.access_lifetime.as_secs(),
                token_type: "Bearer".to_owned(),
                scope: Some(scope.to_owned()),
                refresh_token: refresh_token.map(Secret::new),
            },
            user,
            client_id: client_id.to_owned(),
            grant,
        }
    }

    /// `header.payload.signature` in base64url, like the gateway's RS256 JWTs, but opaque: the
    /// emulator recognises its tokens by lookup, and the signature is random bytes.
    fn jwt_shaped(&self, owner: &TokenOwner) -> String {
        let header = json!({"alg": "RS256", "kid": "xprotect-emulator", "typ": "at+jwt"});
        let payload = json!({
            "iss": "xprotect-emulator",
            "sub": owner.user,
            "client_id": owner.client_id,
            "jti": hex(&self.ids.bytes::<16>()),
        });
        format!(
            "{}.{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(payload.to_string().as_bytes()),
            base64url(&self.ids.bytes::<64>())
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // The tables stay consistent under a panic elsewhere (every update is one insert/remove).
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}
