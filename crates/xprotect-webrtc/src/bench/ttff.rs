//! Time to first frame: from "record start" (the start of the login, with a new token source as
//! `record` does) to the first keyframe the session delivers, with the time of each milestone.

use super::session::{BenchSession, ProbeEvent};
use crate::cli::StackArg;
use anyhow::{Context, bail};
use std::time::{Duration, Instant};
use xprotect_client::gateway::Gateway;
use xprotect_client::login::TokenSource;
use xprotect_client::session::SessionOptions;
use xprotect_proto::signal::Credentials;

/// A run that has no first frame by then failed (the session's own timeout is 20 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a closed session may take to say it ended before the next run starts anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The milestones of one run, each in milliseconds since the run started.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TtffRun {
    /// The login returned a token.
    pub login_ms: f64,
    /// The gateway created the session.
    pub created_ms: f64,
    /// ICE and DTLS are up.
    pub connected_ms: f64,
    /// The first keyframe was delivered.
    pub first_frame_ms: f64,
}

/// One run: log in, start a session of `stack`, wait for its first keyframe, close it.
pub async fn run_once(
    stack: StackArg,
    gateway: &Gateway,
    credentials: &Credentials,
    options: &SessionOptions,
) -> anyhow::Result<TtffRun> {
    let started = Instant::now();
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
    let tokens = TokenSource::login(gateway.clone(), credentials.clone())
        .await
        .context("login failed")?;
    let login_ms = ms(Instant::now());
    let mut session = BenchSession::start(stack, gateway.clone(), &tokens, options.clone())?;
    let (mut created, mut connected) = (None, None);
    let first_frame = tokio::time::timeout(RUN_TIMEOUT, async {
        loop {
            match session.next_event().await {
                Some(ProbeEvent::Created) => created = Some(ms(Instant::now())),
                Some(ProbeEvent::Connected) => connected = Some(ms(Instant::now())),
                Some(ProbeEvent::Frame { keyframe: true, .. }) => return Ok(ms(Instant::now())),
                Some(ProbeEvent::Frame {
                    keyframe: false, ..
                }) => bail!("the first frame was not a keyframe"),
                Some(ProbeEvent::Warning(text)) => tracing::debug!("{stack:?}: {text}"),
                Some(ProbeEvent::Ended(Err(error))) => bail!("the session failed: {error}"),
                Some(ProbeEvent::Ended(Ok(()))) | None => {
                    bail!("the session ended before its first frame")
                }
            }
        }
    })
    .await
    .with_context(|| format!("no first frame within {RUN_TIMEOUT:?}"))??;
    close(&mut session).await;
    Ok(TtffRun {
        login_ms,
        created_ms: created.context("the session never reported its creation")?,
        connected_ms: connected.context("the session never reported that media connected")?,
        first_frame_ms: first_frame,
    })
}

/// Close and wait (bounded) for the end, so that the gateway has let go of it before the next.
pub async fn close(session: &mut BenchSession) {
    session.close().await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(event) = session.next_event().await {
            if matches!(event, ProbeEvent::Ended(_)) {
                return;
            }
        }
    })
    .await;
}

/// Median, 90th percentile, minimum and maximum of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        // Nearest rank: the smallest value with at least 90 % of the sample at or below it.
        let rank = (0.9 * n as f64).ceil() as usize;
        let p90 = sorted[rank.clamp(1, n) - 1];
        Some(Self {
            median,
            p90,
            min,
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.p90, s.min, s.max), (3.0, 5.0, 1.0, 5.0));
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = Summary::of(&values).unwrap();
        assert_eq!((s.median, s.p90, s.min, s.max), (10.5, 18.0, 1.0, 20.0));
        assert!(Summary::of(&[]).is_none());
    }
}
