//! The identity provider's token endpoint: `POST <gateway>/IDP/connect/token` (PROTOCOL.md §1).

use super::form;
use super::ids::Secret;
use serde::{Deserialize, Serialize};

/// Path of the token endpoint below the gateway URL.
pub const TOKEN_PATH: &str = "IDP/connect/token";

/// The client id 2025 R1+ clients use; it is the one that receives a refresh token.
pub const VMS_CLIENT: &str = "VmsClient";
/// The client id older samples use; it gets no refresh token, so clients log in again instead.
pub const GRANT_VALIDATOR_CLIENT: &str = "GrantValidatorClient";

/// A token request, one variant per grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// `grant_type=password`.
    Password {
        /// Basic user name.
        username: String,
        /// Its password.
        password: Secret,
        /// `VmsClient` or `GrantValidatorClient`.
        client_id: String,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// The refresh token from the previous response (single use: it may rotate).
        refresh_token: Secret,
        /// The client id the token was issued to.
        client_id: String,
    },
}

/// Why a form body is not a token request; the emulator answers these with OAuth errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// The body is not a form.
    #[error(transparent)]
    Form(#[from] form::FormError),
    /// A field the grant needs is absent.
    #[error("missing form field `{0}`")]
    Missing(&'static str),
    /// `grant_type` is not one this endpoint supports.
    #[error("unsupported grant_type `{0}`")]
    UnsupportedGrant(String),
}

impl TokenRequest {
    /// The form body to POST.
    pub fn to_form(&self) -> String {
        match self {
            TokenRequest::Password {
                username,
                password,
                client_id,
            } => form::encode([
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", password.expose()),
                ("client_id", client_id.as_str()),
            ]),
            TokenRequest::RefreshToken {
                refresh_token,
                client_id,
            } => form::encode([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
                ("client_id", client_id.as_str()),
            ]),
        }
    }

    /// Parse a form body (the emulator's side).
    pub fn from_form(body: &str) -> Result<Self, TokenRequestError> {
        let pairs = form::decode(body)?;
        let field = |name: &'static str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let require = |name: &'static str| field(name).ok_or(TokenRequestError::Missing(name));
        let grant = require("grant_type")?;
        let client_id = require("client_id")?;
        match grant.as_str() {
            "password" => Ok(TokenRequest::Password {
                username: require("username")?,
                password: Secret::new(require("password")?),
                client_id,
            }),
            "refresh_token" => Ok(TokenRequest::RefreshToken {
                refresh_token: Secret::new(require("refresh_token")?),
                client_id,
            }),
            _ => Err(TokenRequestError::UnsupportedGrant(
                grant.chars().take(40).collect(),
            )),
        }
    }

    /// The client id the request names.
    pub fn client_id(&self) -> &str {
        match self {
            TokenRequest::Password { client_id, .. }
            | TokenRequest::RefreshToken { client_id, .. } => client_id,
        }
    }
}

/// HTTP 200 body of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (a JWT on a real gateway).
    pub access_token: Secret,
    /// Lifetime in seconds (3600 by default).
    pub expires_in: u64,
    /// Always `Bearer`.
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Present for clients allowed offline access (`VmsClient`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// OAuth 2.0 error body: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// `invalid_grant`, `invalid_client`, `unsupported_grant_type`, `invalid_request`, …
    pub error: String,
    /// Human-readable detail, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthError {
    /// Build an error body.
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            error_description: Some(description.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_grant_round_trips_through_the_form() {
        let request = TokenRequest::Password {
            username: "webrtc-user".into(),
            password: Secret::new("S3cret!"),
            client_id: VMS_CLIENT.into(),
        };
        let body = request.to_form();
        assert_eq!(
            body,
            "grant_type=password&username=webrtc-user&password=S3cret%21&client_id=VmsClient"
        );
        assert_eq!(TokenRequest::from_form(&body).unwrap(), request);
        assert!(!format!("{request:?}").contains("S3cret"));
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        assert_eq!(
            TokenRequest::from_form("grant_type=password&client_id=VmsClient"),
            Err(TokenRequestError::Missing("username"))
        );
        assert!(matches!(
            TokenRequest::from_form("grant_type=magic&client_id=x"),
            Err(TokenRequestError::UnsupportedGrant(g)) if g == "magic"
        ));
    }

    #[test]
    fn token_response_parses_without_optional_fields() {
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3600}"#).unwrap();
        assert_eq!(r.token_type, "Bearer");
        assert!(r.refresh_token.is_none());
    }
}
