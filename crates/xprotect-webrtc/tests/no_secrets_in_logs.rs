//! Every log line of client and emulator, at TRACE level, through a login, a REST session and a
//! token refresh (with the PATCH that hands the new token to the session): no password, no token.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::login::{TokenSource, TokenState};
use xprotect_client::session::{Session, SessionEvent, SessionOptions, SignalingKind};
use xprotect_emulator::{Emulator, EmulatorConfig};
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{Secret, SessionParams};

const PASSWORD: &str = "S3cret-Pa55word!";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_in_any_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let mut config = EmulatorConfig::ephemeral();
    config.users = vec![("operator".into(), Secret::new(PASSWORD))];
    config.token_lifetime = Duration::from_secs(3); // refresh due after 2.4 s
    let camera = config.cameras[0].id;
    let emulator = Emulator::start(config).await.unwrap();
    let gateway =
        Gateway::new(&GatewayConfig::new(emulator.gateway_url().parse().unwrap())).unwrap();
    let credentials = Credentials {
        username: "operator".into(),
        password: Secret::new(PASSWORD),
        client_id: "VmsClient".into(),
    };
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .unwrap();
    let mut seen_tokens = vec![tokens.current().unwrap()];

    let mut params = SessionParams::live(camera.into());
    params.include_audio = false;
    let mut options = SessionOptions::new(params);
    options.signaling = SignalingKind::Rest;
    options.peer.udp_bind_addrs = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)];
    let mut session = Session::start(gateway, &tokens, options);
    let mut token_watch = tokens.subscribe();
    let mut frames = 0;
    let mut refreshed = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        while frames < 25 || !refreshed {
            tokio::select! {
                event = session.next_event() => match event {
                    Some(SessionEvent::Video(_)) => frames += 1,
                    Some(SessionEvent::Ended(result)) => panic!("session ended: {result:?}"),
                    None => panic!("session gone"),
                    _ => {}
                },
                changed = token_watch.changed() => {
                    changed.unwrap();
                    if let TokenState::Valid { token, refreshes, .. } = &*token_watch.borrow_and_update() {
                        seen_tokens.push(token.clone());
                        refreshed |= *refreshes > 0;
                    }
                }
            }
        }
    })
    .await
    .expect("25 frames and a token refresh within 30 s");
    session.close().await;
    emulator.shutdown().await;

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.lines().count() > 100,
        "the subscriber must have captured the run's logs"
    );
    assert!(
        !text.contains(PASSWORD),
        "the password appeared in the logs"
    );
    for token in &seen_tokens {
        assert!(
            !text.contains(token.expose()),
            "an access token appeared in the logs"
        );
    }
}
