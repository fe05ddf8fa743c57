//! Starting and stopping a whole emulator: listener, router, media engine, journal.

use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::camera::PtzState;
use crate::config::EmulatorConfig;
use crate::http::router;
use crate::journal::JournalEntry;
use crate::state::{AppState, StateError};

/// Why an emulator did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The HTTP listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The media engine or journal did not start.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Entry point: see [`Emulator::start`].
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Bind the listener, start the media engine and journal, and serve until shutdown.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| EmulatorError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Listen {
                addr: config.listen,
                source,
            })?;
        let state = AppState::new(&config).await?;
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            // Signaling replies are several small frames (connect result, invite, trickles):
            // with Nagle on, the second waits ~40 ms for the client's delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "emulator server stopped with an error");
            }
        });
        tracing::debug!(%local_addr, media = %state.media().local_addr(), "emulator listening");
        Ok(RunningEmulator {
            local_addr,
            state,
            stop,
            server,
            shutdown_timeout: config.shutdown_timeout,
        })
    }
}

/// A running emulator. Dropping it without [`RunningEmulator::shutdown`] leaves it serving until
/// the runtime ends.
#[derive(Debug)]
pub struct RunningEmulator {
    local_addr: SocketAddr,
    state: AppState,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl RunningEmulator {
    /// The gateway URL clients are given: `http://127.0.0.1:PORT/api`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/api", self.local_addr)
    }

    /// The HTTP listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The media engine's UDP address.
    pub fn media_addr(&self) -> SocketAddr {
        self.state.media().local_addr()
    }

    /// Journal entries from now on.
    pub fn journal(&self) -> broadcast::Receiver<JournalEntry> {
        self.state.journal().subscribe()
    }

    /// The shared state (sessions, tokens, media handle).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The PTZ head and aux outputs of `camera` (`None`: no such camera), as data-channel
    /// commands from every session of the camera left them.
    pub fn ptz_state(&self, camera: uuid::Uuid) -> Option<PtzState> {
        self.state
            .media()
            .cameras()
            .ptz(&camera)
            .map(|ptz| ptz.state())
    }

    /// Stop accepting, wait up to the configured timeout for open requests and sockets, then
    /// drop them; flush the journal file.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut server = self.server;
        if tokio::time::timeout(self.shutdown_timeout, &mut server)
            .await
            .is_err()
        {
            tracing::debug!("open connections outlived the shutdown timeout; aborting them");
            server.abort();
        }
        let _ = tokio::time::timeout(self.shutdown_timeout, self.state.journal().flush()).await;
    }
}
