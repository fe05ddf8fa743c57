//! The gateway emulator in a child process (this binary's `emulator` subcommand), so that the
//! client's CPU and memory figures never include the emulator's. Killed when the guard drops,
//! also when the benchmark fails half-way.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use url::Url;

/// What the `emulator` subcommand prints as its first stdout line, before the URL.
const READY_PREFIX: &str = "gateway emulator running at ";
/// Starting means binding two sockets; the first encode happens later, on the first session.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running emulator child; dropping it kills the process.
#[derive(Debug)]
pub struct EmulatorChild {
    child: Child,
    url: Url,
}

impl EmulatorChild {
    /// Start `current_exe emulator --port 0` and wait for its URL.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Start `current_exe emulator --port 0 EXTRA…` (e.g. `--fault-control`,
    /// `--token-lifetime 10s`) and wait for its URL.
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()
            .context("cannot find this program's path to start the emulator")?;
        let mut child = Command::new(exe)
            .args(["emulator", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the emulator child process")?;
        let stdout = child
            .stdout
            .take()
            .context("the emulator child has no stdout pipe")?;
        // From here on, `guard` kills the child on every early return.
        let mut guard = Self {
            child,
            url: Url::parse("http://127.0.0.1/").context("placeholder URL")?,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("emulator-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let first = lines.next();
                let _ = tx.send(first);
                // Keep reading so that the child never blocks (or fails) writing to a full or
                // closed pipe; the rest is its banner.
                for _ in lines.map_while(Result::ok) {}
            })
            .context("cannot start the thread that reads the emulator's output")?;
        let first = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Some(Ok(line)))) => line,
            Ok(Ok(Some(Err(error)))) => bail!("cannot read the emulator's output: {error}"),
            Ok(_) => bail!("the emulator child exited before printing its URL"),
            Err(_) => bail!("the emulator child printed no URL within {START_TIMEOUT:?}"),
        };
        let text = first
            .strip_prefix(READY_PREFIX)
            .with_context(|| format!("unexpected first line from the emulator: {first:?}"))?;
        // The URL is the first word; the banner may go on (e.g. "(XProtect 2025R2)").
        let word = text.split_whitespace().next().unwrap_or_default();
        guard.url = Url::parse(word)
            .with_context(|| format!("the emulator printed a bad URL: {text:?}"))?;
        Ok(guard)
    }

    /// The gateway URL (`http://127.0.0.1:PORT/api`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The child's process id, for its CPU figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EmulatorChild {
    fn drop(&mut self) {
        // SIGKILL: the emulator holds nothing that needs a clean shutdown (no journal here).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
