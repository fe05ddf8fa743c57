//! The identity provider: grants, clients, refresh rotation, expiry (PROTOCOL.md §1).

mod protocol_support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use protocol_support::*;
use xprotect_emulator::EmulatorConfig;

async fn token_request(app: &axum::Router, body: &str) -> Reply {
    send(
        app,
        Method::POST,
        "/IDP/connect/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.to_owned(),
    )
    .await
}

#[tokio::test]
async fn vms_client_gets_a_rotating_single_use_refresh_token() {
    let (app, state) = app().await;
    let reply = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "Bearer");
    assert_eq!(reply.json["expires_in"], 3600);
    assert!(reply.json["scope"].is_string());
    let access = reply.json["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "JWT-shaped: {access}");
    assert!(
        access
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    );
    assert!(state.tokens().validate(access).is_ok());

    let refresh = reply.json["refresh_token"].as_str().unwrap().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}&client_id=VmsClient");
    let renewed = token_request(&app, &body).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    let rotated = renewed.json["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh, "refresh tokens rotate");
    assert_ne!(renewed.json["access_token"], reply.json["access_token"]);

    let reused = token_request(&app, &body).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(reused.json["error"], "invalid_grant", "{}", reused.text);
}

#[tokio::test]
async fn grant_validator_client_gets_no_refresh_token() {
    let (app, _) = app().await;
    let reply = login_as(&app, "ADMIN", PASSWORD, "GrantValidatorClient").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.json.get("refresh_token").is_none(), "{}", reply.text);
    assert_eq!(reply.json["scope"], "managementserver");
}

#[tokio::test]
async fn refusals_are_oauth_errors() {
    let (app, _) = app().await;
    let wrong = login_as(&app, "admin", "nope", "VmsClient").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong.json,
        serde_json::json!({"error":"invalid_grant","error_description":"invalid_username_or_password"})
    );
    let cases = [
        (
            "grant_type=password&username=admin&password=x&client_id=Evil",
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_id=VmsClient",
            "unsupported_grant_type",
        ),
        ("grant_type=password&client_id=VmsClient", "invalid_request"),
        ("grant_type=password&username=%zz", "invalid_request"),
        ("", "invalid_request"),
        (
            "grant_type=refresh_token&refresh_token=forged&client_id=VmsClient",
            "invalid_grant",
        ),
    ];
    for (body, error) in cases {
        let reply = token_request(&app, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"], error, "{body}: {}", reply.text);
    }
    let not_utf8 = send(
        &app,
        Method::POST,
        "/api/idp/connect/token",
        &[],
        vec![0xffu8, 0xfe],
    )
    .await;
    assert_eq!(not_utf8.json["error"], "invalid_request");
    let get = send(&app, Method::GET, "/api/IDP/connect/token", &[], "").await;
    assert_error(&get, StatusCode::METHOD_NOT_ALLOWED, None);
}

#[tokio::test]
async fn a_refresh_token_only_works_for_its_client() {
    let (app, _) = app().await;
    let reply = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    let refresh = reply.json["refresh_token"].as_str().unwrap();
    let body =
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=GrantValidatorClient");
    let other = token_request(&app, &body).await;
    assert_eq!(other.json["error"], "invalid_grant", "{}", other.text);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_their_lifetime() {
    let (app, _) = app_with(EmulatorConfig {
        token_lifetime: Duration::from_secs(60),
        ..config()
    })
    .await;
    let reply = login_as(&app, "admin", PASSWORD, "VmsClient").await;
    assert_eq!(reply.json["expires_in"], 60);
    let access = reply.json["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.json["refresh_token"].as_str().unwrap().to_owned();

    let session = create_session(&app, &access).await;
    let id = session["sessionId"].as_str().unwrap();
    let path = format!("/api/REST/v1/WebRTC/IceCandidates/{id}");
    let auth = bearer(&access);
    let fresh = send(&app, Method::GET, &path, &[("authorization", &auth)], "").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);

    tokio::time::advance(Duration::from_secs(61)).await;
    let expired = send(&app, Method::GET, &path, &[("authorization", &auth)], "").await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, None);
    assert!(
        expired.json["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(expired.headers.contains_key("www-authenticate"));

    // The refresh token outlives the access token.
    let body = format!("grant_type=refresh_token&refresh_token={refresh}&client_id=VmsClient");
    let renewed = token_request(&app, &body).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
}
