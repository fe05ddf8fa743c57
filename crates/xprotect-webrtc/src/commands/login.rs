//! `login`: check credentials and show the token's lifetime.

use crate::cli::LoginArgs;
use crate::settings;
use anyhow::Context;
use std::time::{Instant, SystemTime};
use xprotect_client::login::{TokenSource, TokenState};
use xprotect_proto::clock::format_rfc3339_millis;

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let (gateway, credentials) = settings::connection(&args.connection)?;
    let user = credentials.username.clone();
    let tokens = TokenSource::login(gateway, credentials)
        .await
        .context("login failed")?;
    let TokenState::Valid {
        token,
        expires_at,
        lifetime,
        ..
    } = tokens.state()
    else {
        anyhow::bail!("login finished without a token");
    };
    let remaining = expires_at.saturating_duration_since(Instant::now());
    let expiry = time::OffsetDateTime::from(SystemTime::now() + remaining);
    println!(
        "logged in as {user}; token valid for {} s (until {})",
        lifetime.as_secs(),
        format_rfc3339_millis(expiry)
    );
    if args.show_token {
        println!("{}", token.expose());
    }
    Ok(())
}
