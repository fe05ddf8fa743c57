//! What `ptz` and `aux` share: a live session opened only for its `commands` data channel,
//! the commands sent on it, their acknowledgement awaited, and the session closed cleanly.

use crate::cli::{ConnectionArgs, DataChannelArgs, EnvelopeArg, StreamArgs};
use crate::settings;
use anyhow::{Context, bail};
use std::io::Write;
use std::time::Duration;
use xprotect_client::commands::{Command, CommandEnvelope, CommandSendError, CommandSender};
use xprotect_client::login::TokenSource;
use xprotect_client::session::{Session, SessionError, SessionEvent};

/// How long the gateway's SCTP stack may take to acknowledge what was sent: a few round trips,
/// plus retransmissions on a lossy link.
const ACKNOWLEDGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failing session may take to report why, after the channel closed under us.
const FAILURE_REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long closing may take before we leave (the peer's own close is bounded at 3 s).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The library's envelope for the flag value.
pub fn envelope(arg: EnvelopeArg) -> CommandEnvelope {
    match arg {
        EnvelopeArg::ApiVersion => CommandEnvelope::ApiVersion1,
        EnvelopeArg::Jsonrpc => CommandEnvelope::JsonRpc2,
    }
}

/// Logs in, opens a live session to the camera, sends `commands` in order once the data
/// channel is open (printing each message on stdout), waits for their acknowledgement and
/// closes the session.
pub async fn send_on_live_session(
    connection: &ConnectionArgs,
    stream: &StreamArgs,
    channel: &DataChannelArgs,
    commands: &[Command],
) -> anyhow::Result<()> {
    if let Some(release) = connection.gateway_release
        && !release.commands_channel()
    {
        bail!(
            "--gateway-release: XProtect {release} has no commands data channel (PTZ and aux \
             need 2025R1 or later)"
        );
    }
    let (gateway, credentials) = settings::connection(connection)?;
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .context("login failed")?;
    let device = settings::resolve_camera(&gateway, &tokens, &stream.camera).await?;
    let options = settings::session_options(stream, device)?;
    let mut session = Session::start(gateway, &tokens, options);
    let sender = session
        .command_sender()
        .with_envelope(envelope(channel.envelope))
        .with_open_timeout(channel.open_timeout);
    let outcome = send_while_consuming(&mut session, &sender, commands).await;
    close(session).await;
    outcome
}

/// Sends and flushes while draining the session's events (an undrained session stalls, and its
/// commands with it); a session failure is reported as itself, not as a closed channel.
async fn send_while_consuming(
    session: &mut Session,
    sender: &CommandSender,
    commands: &[Command],
) -> anyhow::Result<()> {
    let work = async {
        let mut stdout = StdoutLines::default();
        for command in commands {
            let text = sender.send(command).await?;
            stdout.print(&text);
        }
        sender.flush(ACKNOWLEDGE_TIMEOUT).await
    };
    let mut work = std::pin::pin!(work);
    let mut interrupted = std::pin::pin!(super::interrupted());
    loop {
        tokio::select! {
            sent = &mut work => return match sent {
                Ok(()) => Ok(()),
                Err(CommandSendError::ChannelClosed) => Err(session_failure(session)
                    .await
                    .map(anyhow::Error::new)
                    .unwrap_or_else(|| CommandSendError::ChannelClosed.into())),
                Err(error) => Err(error.into()),
            },
            event = session.next_event() => match event {
                Some(SessionEvent::Ended(Err(error))) => {
                    return Err(anyhow::Error::new(error).context("the session failed before the commands were sent"));
                }
                Some(SessionEvent::Ended(Ok(()))) | None => {
                    bail!("the session ended before the commands were sent")
                }
                Some(SessionEvent::Warning(warning)) => tracing::warn!("{warning}"),
                Some(_) => {}
            },
            () = &mut interrupted => bail!("interrupted before the commands were sent"),
        }
    }
}

/// The session's own error, if it is ending with one.
async fn session_failure(session: &mut Session) -> Option<SessionError> {
    let ended = async {
        while let Some(event) = session.next_event().await {
            if let SessionEvent::Ended(result) = event {
                return result.err();
            }
        }
        None
    };
    tokio::time::timeout(FAILURE_REPORT_TIMEOUT, ended)
        .await
        .ok()
        .flatten()
}

/// Asks the session to end and waits (boundedly) until it has, so the gateway sees a clean
/// close rather than a vanished peer.
async fn close(mut session: Session) {
    session.close().await;
    let ended = async {
        while let Some(event) = session.next_event().await {
            if matches!(event, SessionEvent::Ended(_)) {
                return;
            }
        }
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, ended).await.is_err() {
        tracing::debug!("the session did not end within {CLOSE_TIMEOUT:?}; leaving anyway");
    }
}

/// Sent messages on stdout, one per line; a reader that went away is not an error (the
/// commands are sent regardless).
#[derive(Default)]
struct StdoutLines {
    closed: bool,
}

impl StdoutLines {
    fn print(&mut self, line: &str) {
        if self.closed {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!("cannot write to stdout: {error}");
            }
            self.closed = true;
        }
    }
}
