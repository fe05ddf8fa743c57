//! Shared test harness: the real emulator on loopback and its journal, the real binary run with
//! the password on stdin, a logged-in client, ffmpeg checks.
// Every test binary compiles this module and each uses a different part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::login::TokenSource;
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{SessionOptions, SignalingKind};
use xprotect_emulator::{
    DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig, JournalEntry, JournalEvent,
    RunningEmulator,
};
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{Secret, SessionParams};

/// The emulator's first default camera.
pub fn first_camera() -> uuid::Uuid {
    EmulatorConfig::ephemeral().cameras[0].id
}

/// The CLI binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_xprotect-webrtc");

/// How long [`JournalWatch::wait_for`] waits for an entry that follows what the test did.
pub const JOURNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The emulator with its default cameras and timeline, in this process on loopback.
pub async fn emulator() -> RunningEmulator {
    start_emulator(EmulatorConfig::ephemeral()).await
}

/// The emulator with `config`, in this process on loopback.
pub async fn start_emulator(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config)
        .await
        .expect("emulator starts on loopback")
}

/// The default emulator, and a temporary directory for the files the test writes.
pub async fn emulator_and_scratch_dir() -> (RunningEmulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    (emulator().await, dir)
}

/// The binary running `subcommand` against `gateway` as the default user with the password read
/// from stdin; every stream piped, and killed if the test drops it. Callers add the rest.
pub fn cli(subcommand: &str, gateway: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args([
            subcommand,
            "--gateway",
            gateway,
            "--user",
            DEFAULT_USER,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `command` (with piped stdin) on `stdin` as its whole input and waits at most `limit`
/// for it to end; returns its output whatever its exit status.
pub async fn run_with_stdin(
    mut command: tokio::process::Command,
    stdin: &str,
    limit: Duration,
) -> Output {
    let mut child = command.spawn().expect("the binary starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("the binary reads its stdin");
    drop(input);
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the binary did not end within {limit:?}"))
        .expect("the binary's output is readable")
}

/// Runs `command` with the default password on stdin and waits at most `limit` for it to end.
pub async fn run_with_password(command: tokio::process::Command, limit: Duration) -> Output {
    run_with_stdin(command, &format!("{DEFAULT_PASSWORD}\n"), limit).await
}

/// Asserts that `output` is of a successful run, showing its stderr otherwise.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Journal entries seen so far, and the subscription to wait for more.
pub struct JournalWatch {
    receiver: broadcast::Receiver<JournalEntry>,
    seen: Vec<JournalEvent>,
}

impl JournalWatch {
    /// Watches `emulator`'s journal from now on.
    pub fn new(emulator: &RunningEmulator) -> Self {
        Self {
            receiver: emulator.journal(),
            seen: Vec::new(),
        }
    }

    /// Everything recorded up to now, without waiting.
    pub fn drain(&mut self) -> &[JournalEvent] {
        loop {
            match self.receiver.try_recv() {
                Ok(entry) => self.seen.push(entry.event),
                Err(TryRecvError::Lagged(missed)) => {
                    panic!("the test fell {missed} journal entries behind")
                }
                Err(_) => return &self.seen,
            }
        }
    }

    /// Waits at most [`JOURNAL_TIMEOUT`] until an event matching `wanted` has been recorded.
    pub async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&JournalEvent) -> bool,
    ) -> JournalEvent {
        self.wait_for_map(what, |event| wanted(event).then(|| event.clone()))
            .await
    }

    /// Waits at most [`JOURNAL_TIMEOUT`] until `pick` takes something out of a recorded event.
    pub async fn wait_for_map<T>(
        &mut self,
        what: &str,
        pick: impl Fn(&JournalEvent) -> Option<T>,
    ) -> T {
        if let Some(found) = self.drain().iter().find_map(&pick) {
            return found;
        }
        let deadline = tokio::time::Instant::now() + JOURNAL_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Ok(entry)) => {
                    let picked = pick(&entry.event);
                    self.seen.push(entry.event);
                    if let Some(picked) = picked {
                        return picked;
                    }
                }
                Ok(Err(RecvError::Lagged(missed))) => {
                    panic!("the test fell {missed} journal entries behind")
                }
                Ok(Err(RecvError::Closed)) => panic!("journal closed while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} in the journal within {JOURNAL_TIMEOUT:?}; seen:\n{:#?}",
                    self.seen
                ),
            }
        }
    }

    /// How many sessions the journal has recorded up to now.
    pub fn sessions_created(&mut self) -> usize {
        self.drain()
            .iter()
            .filter(|event| matches!(event, JournalEvent::SessionCreated { .. }))
            .count()
    }
}

pub async fn login(emulator: &RunningEmulator) -> (Gateway, TokenSource) {
    let gateway =
        Gateway::new(&GatewayConfig::new(emulator.gateway_url().parse().unwrap())).unwrap();
    let credentials = Credentials {
        username: DEFAULT_USER.into(),
        password: Secret::new(DEFAULT_PASSWORD),
        client_id: "VmsClient".into(),
    };
    let tokens = tokio::time::timeout(
        Duration::from_secs(10),
        TokenSource::login(gateway.clone(), credentials),
    )
    .await
    .expect("login within 10 s")
    .expect("login succeeds");
    (gateway, tokens)
}

pub fn live_options(signaling: SignalingKind, role: DtlsRole) -> SessionOptions {
    let mut params = SessionParams::live(first_camera().into());
    params.include_audio = false;
    let mut options = SessionOptions::new(params);
    options.signaling = signaling;
    options.peer.dtls_role = role;
    options.peer.udp_bind_addrs = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)];
    options
}

/// `ffprobe` of the first video stream: (codec, frames counted by decoding, duration seconds;
/// NaN where the container has none, as for raw H.264).
pub fn ffprobe(path: &Path) -> (String, u64, f64) {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=codec_name,nb_read_frames:format=duration")
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (apt-get install ffmpeg); .ci/run installs it");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("ffprobe printed no {name}: {text}"))
            .to_owned()
    };
    let duration = field("duration").parse().unwrap_or(f64::NAN);
    (
        field("codec_name"),
        field("nb_read_frames").parse().unwrap(),
        duration,
    )
}

/// Decode the whole file; returns ffmpeg's error output (empty means a clean decode).
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    ffmpeg_decode_errors_with(path, &[])
}

/// [`ffmpeg_decode_errors`] with extra output options (e.g. how frame times are kept).
pub fn ffmpeg_decode_errors_with(path: &Path, output_options: &[&str]) -> String {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(output_options)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed (apt-get install ffmpeg); .ci/run installs it");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
