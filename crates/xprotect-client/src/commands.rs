//! PTZ and aux commands on a session's `commands` data channel (PROTOCOL.md §5).
//!
//! ```text
//!  Session::command_sender() ──► CommandSender (Clone, usable from any task)
//!      send(&Command) ── wait until the channel is open (bounded) ──► session driver ──► Peer
//!      flush(limit)   ── until the gateway's SCTP acknowledged every byte ───────────────┘
//! ```
//!
//! The channel opens a little after the session connects. Calls made earlier wait for it
//! (up to [`CommandSender::open_timeout`]) instead of failing, so a caller can send right after
//! [`Session::start`]. The gateway sends no replies (§5.4): "sent" means handed to SCTP, and
//! [`CommandSender::flush`] means the gateway's stack received it, which is as far as the
//! protocol lets a client know. Keep consuming the session's events meanwhile: a session whose
//! events are not read stalls, and with it the commands.
//!
//! ```no_run
//! # async fn example(session: xprotect_client::session::Session) -> Result<(), xprotect_client::commands::CommandSendError> {
//! use xprotect_client::commands::{CommandEnvelope, PtzDirection};
//! let commands = session.command_sender().with_envelope(CommandEnvelope::JsonRpc2);
//! commands.ptz_move(PtzDirection::Left).await?;
//! commands.set_aux(2, true).await?;
//! commands.flush(std::time::Duration::from_secs(2)).await?;
//! # Ok(()) }
//! ```

use crate::media::{PeerError, PeerEvent};
use crate::session::{Session, SessionCommand};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

pub use xprotect_proto::wire::commands::{Command, CommandEnvelope, PtzDirection};

/// How long a command waits for the data channel to open, by default. The channel opens one
/// SCTP handshake after DTLS (milliseconds on a LAN); this leaves room for a slow ICE start.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// The highest aux number sent. The sample offers buttons 1 to 4; we allow more for devices
/// with more outputs, up to what the protocol core's parser (and so our emulator) accepts.
pub const MAX_AUX_NUMBER: u32 = 64;

/// Where a session's `commands` data channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandsChannelState {
    /// Not open yet (the session is connecting).
    Pending,
    /// Open: commands can be sent.
    Open,
    /// Closed, or the session ended.
    Closed,
}

impl CommandsChannelState {
    /// The state a peer event moves the channel to, if it concerns the channel.
    pub(crate) fn after(event: &PeerEvent) -> Option<Self> {
        match event {
            PeerEvent::CommandsChannelOpen => Some(Self::Open),
            PeerEvent::CommandsChannelClosed => Some(Self::Closed),
            _ => None,
        }
    }
}

/// Why a command was not sent or not confirmed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommandSendError {
    /// The data channel did not open in time.
    #[error(
        "the `commands` data channel did not open within {0:?} (does the gateway's offer include a data channel section? the session itself may still be connecting)"
    )]
    ChannelNeverOpened(Duration),
    /// The channel closed, or the session ended, before the command went out.
    #[error("the `commands` data channel is closed (the session ended)")]
    ChannelClosed,
    /// The aux number is outside 1..=[`MAX_AUX_NUMBER`].
    #[error("aux number {0} is outside 1..={MAX_AUX_NUMBER}")]
    BadAuxNumber(u32),
    /// The WebRTC stack refused the send.
    #[error(transparent)]
    Peer(PeerError),
    /// What was sent was not acknowledged by the gateway's SCTP stack in time.
    #[error("the gateway did not acknowledge the sent commands within {0:?}")]
    NotAcknowledged(Duration),
}

impl From<PeerError> for CommandSendError {
    fn from(error: PeerError) -> Self {
        match error {
            // The state said open, but the session or peer is gone by now.
            PeerError::Closed | PeerError::DataChannelNotOpen => Self::ChannelClosed,
            other => Self::Peer(other),
        }
    }
}

/// Sends commands on one session's `commands` channel. Cheap to clone; every clone talks to
/// the same session, and all fail with [`CommandSendError::ChannelClosed`] once it ended.
#[derive(Debug, Clone)]
pub struct CommandSender {
    requests: mpsc::Sender<SessionCommand>,
    channel: watch::Receiver<CommandsChannelState>,
    envelope: CommandEnvelope,
    open_timeout: Duration,
}

impl CommandSender {
    /// A sender over a session driver's request queue and channel state.
    pub(crate) fn new(
        requests: mpsc::Sender<SessionCommand>,
        channel: watch::Receiver<CommandsChannelState>,
    ) -> Self {
        Self {
            requests,
            channel,
            envelope: CommandEnvelope::default(),
            open_timeout: DEFAULT_OPEN_TIMEOUT,
        }
    }

    /// Use this envelope for typed commands (default: `ApiVersion` 1.0, what the sample code
    /// sends; `jsonrpc` 2.0 is what the 2025 R2 README shows).
    pub fn with_envelope(mut self, envelope: CommandEnvelope) -> Self {
        self.envelope = envelope;
        self
    }

    /// Wait at most this long for the channel to open (default [`DEFAULT_OPEN_TIMEOUT`]).
    pub fn with_open_timeout(mut self, limit: Duration) -> Self {
        self.open_timeout = limit;
        self
    }

    /// The envelope typed commands are sent in.
    pub fn envelope(&self) -> CommandEnvelope {
        self.envelope
    }

    /// How long a send waits for the channel to open.
    pub fn open_timeout(&self) -> Duration {
        self.open_timeout
    }

    /// The channel's state now.
    pub fn state(&self) -> CommandsChannelState {
        *self.channel.borrow()
    }

    /// Waits until the channel is open.
    ///
    /// # Errors
    ///
    /// [`CommandSendError::ChannelNeverOpened`] after the open timeout,
    /// [`CommandSendError::ChannelClosed`] if the session ends first.
    pub async fn wait_open(&self) -> Result<(), CommandSendError> {
        let mut channel = self.channel.clone();
        let settled = channel.wait_for(|state| *state != CommandsChannelState::Pending);
        match tokio::time::timeout(self.open_timeout, settled).await {
            Err(_) => Err(CommandSendError::ChannelNeverOpened(self.open_timeout)),
            // The driver dropped the state sender: the session is over.
            Ok(Err(_)) => Err(CommandSendError::ChannelClosed),
            Ok(Ok(state)) if *state == CommandsChannelState::Open => Ok(()),
            Ok(Ok(_)) => Err(CommandSendError::ChannelClosed),
        }
    }

    /// Sends `command` in this sender's envelope, once the channel is open; returns the text
    /// sent.
    ///
    /// # Errors
    ///
    /// See [`CommandSender::wait_open`]; [`CommandSendError::Peer`] if the stack refuses.
    pub async fn send(&self, command: &Command) -> Result<String, CommandSendError> {
        let text = command.to_text(self.envelope);
        self.send_text(text.clone()).await?;
        Ok(text)
    }

    /// Sends one message verbatim (for wire messages a user wrote), once the channel is open.
    ///
    /// # Errors
    ///
    /// As [`CommandSender::send`].
    pub async fn send_text(&self, text: String) -> Result<(), CommandSendError> {
        self.wait_open().await?;
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(SessionCommand::SendCommand(text, reply))
            .await
            .map_err(|_| CommandSendError::ChannelClosed)?;
        answer
            .await
            .map_err(|_| CommandSendError::ChannelClosed)?
            .map_err(CommandSendError::from)
    }

    /// One PTZ step (`ptzMove`); returns the text sent.
    ///
    /// # Errors
    ///
    /// As [`CommandSender::send`].
    pub async fn ptz_move(&self, direction: PtzDirection) -> Result<String, CommandSendError> {
        self.send(&Command::PtzMove(direction)).await
    }

    /// Switches aux output `number` (1..=[`MAX_AUX_NUMBER`]) on or off (`setAux`); returns the
    /// text sent.
    ///
    /// # Errors
    ///
    /// [`CommandSendError::BadAuxNumber`], or as [`CommandSender::send`].
    pub async fn set_aux(&self, number: u32, on: bool) -> Result<String, CommandSendError> {
        if !(1..=MAX_AUX_NUMBER).contains(&number) {
            return Err(CommandSendError::BadAuxNumber(number));
        }
        self.send(&Command::SetAux { number, on }).await
    }

    /// Waits until everything sent so far has been acknowledged by the gateway's SCTP stack,
    /// e.g. before closing the session, so that closing does not cut off the last command.
    ///
    /// # Errors
    ///
    /// [`CommandSendError::NotAcknowledged`] after `limit`; [`CommandSendError::ChannelClosed`]
    /// if the channel is not open or closes meanwhile.
    pub async fn flush(&self, limit: Duration) -> Result<(), CommandSendError> {
        let exchange = async {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(SessionCommand::FlushCommands(reply))
                .await
                .map_err(|_| CommandSendError::ChannelClosed)?;
            answer
                .await
                .map_err(|_| CommandSendError::ChannelClosed)?
                .map_err(CommandSendError::from)
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| CommandSendError::NotAcknowledged(limit))?
    }
}

impl Session {
    /// One PTZ step in the default envelope, waiting (boundedly) for the channel to open.
    /// For another envelope or timeout, use [`Session::command_sender`].
    ///
    /// # Errors
    ///
    /// As [`CommandSender::send`].
    pub async fn ptz_move(&self, direction: PtzDirection) -> Result<String, CommandSendError> {
        self.command_sender().ptz_move(direction).await
    }

    /// Aux output `number` on or off in the default envelope, waiting for the channel.
    ///
    /// # Errors
    ///
    /// As [`CommandSender::set_aux`].
    pub async fn set_aux(&self, number: u32, on: bool) -> Result<String, CommandSendError> {
        self.command_sender().set_aux(number, on).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender whose "session driver" is the test: it sees the requests and sets the state.
    fn sender() -> (
        CommandSender,
        mpsc::Receiver<SessionCommand>,
        watch::Sender<CommandsChannelState>,
    ) {
        let (requests, requests_rx) = mpsc::channel(4);
        let (state, state_rx) = watch::channel(CommandsChannelState::Pending);
        (CommandSender::new(requests, state_rx), requests_rx, state)
    }

    #[tokio::test]
    async fn a_command_waits_for_the_channel_then_goes_out_in_the_envelope() {
        let (sender, mut requests, state) = sender();
        let sender = sender.with_envelope(CommandEnvelope::JsonRpc2);
        let sending = tokio::spawn(async move { sender.ptz_move(PtzDirection::UpLeft).await });
        tokio::task::yield_now().await;
        assert!(requests.try_recv().is_err(), "nothing goes out before open");
        state.send_replace(CommandsChannelState::Open);
        let Some(SessionCommand::SendCommand(text, reply)) = requests.recv().await else {
            panic!("expected a send request")
        };
        reply.send(Ok(())).unwrap();
        assert_eq!(sending.await.unwrap().unwrap(), text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["jsonrpc"], "2.0");
        assert_eq!(value["params"]["direction"], "upLeft");
        assert_eq!(
            Command::parse(&text).unwrap(),
            Command::PtzMove(PtzDirection::UpLeft)
        );
    }

    #[tokio::test]
    async fn a_channel_that_never_opens_is_a_typed_error() {
        let (sender, _requests, _state) = sender();
        let limit = Duration::from_millis(100);
        let error = sender
            .with_open_timeout(limit)
            .set_aux(2, true)
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandSendError::ChannelNeverOpened(d) if d == limit),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_session_that_ends_first_reports_the_channel_closed() {
        let (sender, requests, state) = sender();
        drop((requests, state));
        assert!(matches!(
            sender.ptz_move(PtzDirection::Home).await,
            Err(CommandSendError::ChannelClosed)
        ));
        assert!(matches!(
            sender.flush(Duration::from_secs(1)).await,
            Err(CommandSendError::ChannelClosed)
        ));
    }

    #[tokio::test]
    async fn aux_numbers_are_checked_before_anything_is_sent() {
        let (sender, _requests, state) = sender();
        state.send_replace(CommandsChannelState::Open);
        for bad in [0, MAX_AUX_NUMBER + 1] {
            assert!(matches!(
                sender.set_aux(bad, true).await,
                Err(CommandSendError::BadAuxNumber(n)) if n == bad
            ));
        }
    }

    #[tokio::test]
    async fn an_unanswered_flush_times_out() {
        let (sender, mut requests, _state) = sender();
        let flushing = tokio::spawn(async move { sender.flush(Duration::from_millis(100)).await });
        // Hold the reply without answering, as a gateway that never acknowledges would.
        let Some(SessionCommand::FlushCommands(_reply)) = requests.recv().await else {
            panic!("expected a flush request")
        };
        assert!(matches!(
            flushing.await.unwrap(),
            Err(CommandSendError::NotAcknowledged(_))
        ));
    }
}
