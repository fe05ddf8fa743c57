//! Starting and stopping a whole emulator: listener, router, media engine, journal; and
//! restarting its signaling server on request ([`crate::Fault::RestartSignaling`]).
//!
//! ```text
//! server task: loop { serve(listener) until stop or restart ──restart──▶ listener closed,
//!                     wait `down`, bind the same address again }
//! ```

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::camera::PtzState;
use crate::config::EmulatorConfig;
use crate::faults::{FaultControl, RestartRequest};
use crate::http::router;
use crate::journal::{JournalEntry, JournalEvent};
use crate::state::{AppState, StateError};

/// How long a restart keeps trying to bind its address again (another process may hold it
/// briefly, or the old listener's socket is still being torn down).
const REBIND_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between bind attempts.
const REBIND_RETRY: Duration = Duration::from_millis(20);

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
        let (stop, stopped) = oneshot::channel::<()>();
        let (restarter, restarts) = mpsc::channel(1);
        state.faults().set_restarter(restarter);
        let server = tokio::spawn(serve_until_stopped(
            listener,
            local_addr,
            router(state.clone()),
            state.clone(),
            stopped,
            restarts,
        ));
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

    /// Fault injection into this emulator.
    pub fn faults(&self) -> FaultControl {
        FaultControl::new(self.state.clone())
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

/// Serves `listener` until `stopped`; on a restart request closes it, waits, and serves a new
/// listener on the same address. Each listener's connections finish on their own task set, so
/// dropping this future (an aborted shutdown) drops them all.
async fn serve_until_stopped(
    first: TcpListener,
    addr: SocketAddr,
    app: Router,
    state: AppState,
    mut stopped: oneshot::Receiver<()>,
    mut restarts: mpsc::Receiver<RestartRequest>,
) {
    let mut servers = JoinSet::new();
    let mut listener = first;
    loop {
        let (end_serving, serving_ended) = oneshot::channel::<()>();
        let (closed, listener_closed) = oneshot::channel::<()>();
        servers.spawn(serve(listener, app.clone(), serving_ended, closed));
        let request = tokio::select! {
            _ = &mut stopped => None,
            request = restarts.recv() => request,
        };
        let _ = end_serving.send(());
        let Some(request) = request else {
            break;
        };
        // New connections are refused from here on.
        let _ = listener_closed.await;
        let down_since = tokio::time::Instant::now();
        let _ = request.listener_closed.send(());
        let mut down_until = down_since + request.down;
        // A restart requested while down extends the downtime.
        loop {
            tokio::select! {
                _ = &mut stopped => return finish(servers).await,
                () = tokio::time::sleep_until(down_until) => break,
                next = restarts.recv() => match next {
                    Some(next) => {
                        let _ = next.listener_closed.send(());
                        down_until = down_until.max(tokio::time::Instant::now() + next.down);
                    }
                    None => return finish(servers).await,
                },
            }
        }
        listener = match rebind(addr).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%addr, %error, "the signaling server cannot listen again after its restart");
                return finish(servers).await;
            }
        };
        let down_ms = u64::try_from(down_since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(%addr, down_ms, "signaling server listening again");
        state
            .journal()
            .record(JournalEvent::SignalingRestarted { down_ms });
    }
    finish(servers).await;
}

/// Waits for every listener's open connections to finish.
async fn finish(mut servers: JoinSet<()>) {
    while servers.join_next().await.is_some() {}
}

/// Serves one listener until `stop`; `closed` is told when the listener is dropped.
async fn serve(
    listener: TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
    closed: oneshot::Sender<()>,
) {
    // Signaling replies are several small frames (connect result, invite, trickles): with
    // Nagle on, the second waits ~40 ms for the client's delayed ACK.
    let listener = ClosingListener {
        inner: listener,
        closed: Some(closed),
    }
    .tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop.await;
    });
    if let Err(error) = serve.await {
        tracing::warn!(%error, "emulator server stopped with an error");
    }
}

/// Binds `addr` again, retrying while the address is still taken.
async fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let give_up = tokio::time::Instant::now() + REBIND_PATIENCE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(REBIND_RETRY).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A TCP listener that says when it is dropped: axum drops the listener as soon as a graceful
/// shutdown begins, which is the moment new connections are refused.
struct ClosingListener {
    inner: TcpListener,
    closed: Option<oneshot::Sender<()>>,
}

impl Drop for ClosingListener {
    fn drop(&mut self) {
        if let Some(closed) = self.closed.take() {
            let _ = closed.send(());
        }
    }
}

impl Listener for ClosingListener {
    type Io = <TcpListener as Listener>::Io;
    type Addr = <TcpListener as Listener>::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        Listener::accept(&mut self.inner).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Listener::local_addr(&self.inner)
    }
}
