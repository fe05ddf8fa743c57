//! A gateway that refuses a token which has not expired yet (401: a restarted gateway that forgot
//! it, a clock running ahead, a revoked grant) gets a renewed token at once, not at the refresh
//! scheduled an hour later, and the lasting session comes back on it.

mod common;

use std::time::Duration;
use xprotect_client::lasting::{LastingOptions, LastingSession};
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{SessionError, SessionEvent, SignalingKind};
use xprotect_emulator::{Fault, JournalEvent};
use xprotect_proto::signal::SignalError;

/// Everything in the test happens within this.
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_renewed_at_once_and_the_session_comes_back() {
    let emulator = common::emulator().await;
    let mut journal = common::JournalWatch::new(&emulator);
    let (gateway, tokens) = common::login(&emulator).await;
    // REST: its session request carries the bearer token, so the refusal is a typed 401.
    let options = LastingOptions::new(common::live_options(SignalingKind::Rest, DtlsRole::Passive));
    let mut session = LastingSession::start(gateway, &tokens, options);
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut next = async || {
        tokio::time::timeout_at(deadline, session.next_event())
            .await
            .expect("the lasting session keeps reporting within the test's limit")
            .expect("the lasting session keeps running")
    };

    let mut frames = 0;
    while frames < 10 {
        if let SessionEvent::Video(_) = next().await {
            frames += 1;
        }
    }
    // The session goes; the next session request is refused with 401.
    let faults = emulator.faults();
    faults.inject(Fault::DropSessions).await;
    faults
        .inject(Fault::HttpStatus {
            status: 401,
            count: 1,
        })
        .await;

    let mut refused = false;
    loop {
        match next().await {
            SessionEvent::Reconnecting { error, .. } => {
                if matches!(
                    error,
                    SessionError::Signal(SignalError::Unauthorized { .. })
                ) {
                    refused = true;
                }
            }
            SessionEvent::Video(_) if refused => break,
            SessionEvent::Ended(result) => panic!("the lasting session ended: {result:?}"),
            _ => {}
        }
    }
    // The token was renewed with the refresh grant in between, an hour before it was due.
    journal
        .wait_for("a refresh grant after the 401", |event| {
            matches!(event, JournalEvent::TokenIssued { grant, .. } if grant == "refresh_token")
        })
        .await;
    emulator.shutdown().await;
}
