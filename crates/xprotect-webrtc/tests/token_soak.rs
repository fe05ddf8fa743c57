//! Soak: 10 s tokens for three minutes, live, REST and WebSocket at once against one emulator that
//! enforces token expiry (media stops 2 s after a session's token expired). REST sessions must
//! get each refreshed token PATCHed; WebSocket sessions cannot, so each refresh makes the lasting
//! session start a replacement and switch to it make-before-break. Either way the camera's frame
//! counter (SEI stamp) must run without a single missing or repeated frame.

mod common;

use std::time::Duration;
use xprotect_client::lasting::{LastingCounters, LastingOptions, LastingSession};
use xprotect_client::login::TokenState;
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{SessionEvent, SignalingKind};
use xprotect_emulator::{EmulatorConfig, JournalEvent, RunningEmulator};

/// Three minutes of live video at 25 fps: some 22 token refreshes.
const FRAMES: u64 = 4_500;
const TOKEN_LIFETIME: Duration = Duration::from_secs(10);

struct SoakResult {
    counters: LastingCounters,
    token_refreshes: u64,
}

async fn soak(emulator: &RunningEmulator, signaling: SignalingKind) -> SoakResult {
    let (gateway, tokens) = common::login(emulator).await;
    let options = LastingOptions::new(common::live_options(signaling, DtlsRole::Passive));
    let mut session = LastingSession::start(gateway, &tokens, options);
    let mut previous: Option<u64> = None;
    let mut frames = 0;
    while frames < FRAMES {
        let event = tokio::time::timeout(Duration::from_secs(10), session.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{signaling:?}: no event for 10 s after {frames} frames ({:?})",
                    session.counters()
                )
            })
            .expect("the lasting session keeps running");
        match event {
            SessionEvent::Video(frame) => {
                let stamp = frame
                    .access_unit
                    .frame_stamp()
                    .expect("every emulator frame carries its SEI stamp");
                if let Some(previous) = previous {
                    assert_eq!(
                        stamp.frame,
                        previous + 1,
                        "{signaling:?}: frame {} follows {previous} after {frames} frames ({:?})",
                        stamp.frame,
                        session.counters()
                    );
                }
                previous = Some(stamp.frame);
                frames += 1;
            }
            SessionEvent::Reconnecting { error, .. } => {
                panic!(
                    "{signaling:?}: a session was lost: {error} ({:?})",
                    session.counters()
                )
            }
            SessionEvent::Ended(result) => panic!("{signaling:?}: ended: {result:?}"),
            _ => {}
        }
    }
    let counters = session.counters();
    session.close().await;
    let token_refreshes = match tokens.state() {
        TokenState::Valid { refreshes, .. } => refreshes,
        other => panic!("the token source failed: {other:?}"),
    };
    eprintln!("{signaling:?}: {frames} frames, {token_refreshes} token refreshes, {counters:?}");
    SoakResult {
        counters,
        token_refreshes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_second_tokens_lose_no_frame_over_rest_and_websocket() {
    let mut config = EmulatorConfig::ephemeral();
    config.token_lifetime = TOKEN_LIFETIME;
    config.token_grace = Some(Duration::from_secs(2));
    let emulator = common::start_emulator(config).await;
    let mut journal = common::JournalWatch::new(&emulator);
    let (rest, ws) = tokio::join!(
        soak(&emulator, SignalingKind::Rest),
        soak(&emulator, SignalingKind::WebSocket)
    );
    let events = journal.drain();
    let patched = events
        .iter()
        .filter(|e| matches!(e, JournalEvent::SessionTokenUpdated { .. }))
        .count();
    let expired = events
        .iter()
        .filter(|e| matches!(e, JournalEvent::SessionTokenExpired { .. }))
        .count();
    eprintln!("journal: {patched} token PATCHes, {expired} sessions expired");
    // About one refresh per 8 s (0.8 × the lifetime) over 180 s.
    for result in [&rest, &ws] {
        assert!(result.token_refreshes >= 18, "{}", result.token_refreshes);
        assert_eq!(result.counters.reconnects, 0, "{:?}", result.counters);
    }
    assert!(
        patched >= 18,
        "REST sessions get the refreshed tokens: {patched}"
    );
    assert_eq!(rest.counters.sessions_started, 1, "{:?}", rest.counters);
    assert!(
        ws.counters.replacements >= 18,
        "each WebSocket token refresh replaces the session: {:?}",
        ws.counters
    );
    assert_eq!(ws.counters.sessions_started, ws.counters.replacements + 1);
}
