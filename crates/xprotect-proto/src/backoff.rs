//! Reconnect delays: exponential backoff with jitter, sans IO.
//!
//! The caller supplies the randomness (`rng_value`) and does the waiting; this only computes how
//! long. After a session that delivered media the next retry is (almost) immediate, because a
//! viewer notices every second of a stall; retries that keep failing back off exponentially up to
//! a cap, so a gateway that is down is not hammered.
//!
//! ```
//! use std::time::Duration;
//! use xprotect_proto::backoff::{Backoff, BackoffConfig};
//!
//! let mut backoff = Backoff::new(BackoffConfig { jitter: 0.0, ..BackoffConfig::default() });
//! assert_eq!(backoff.next_delay(0), Some(Duration::ZERO)); // right after a loss
//! assert_eq!(backoff.next_delay(0), Some(Duration::from_millis(200)));
//! assert_eq!(backoff.next_delay(0), Some(Duration::from_millis(400)));
//! backoff.reset(); // a session delivered media again
//! assert_eq!(backoff.next_delay(0), Some(Duration::ZERO));
//! ```

use std::time::Duration;

/// How retries are spaced.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The delay of the first retry after a reset (after a session that delivered media).
    pub first: Duration,
    /// The delay of the second retry; each later one is `factor` times the one before.
    pub initial: Duration,
    /// Growth per failed attempt (values below 1 are read as 1).
    pub factor: f64,
    /// No delay is longer than this (before jitter).
    pub max: Duration,
    /// The fraction of each delay that is random: the delay is drawn from
    /// `[delay × (1 − jitter), delay]`. Clamped to `0..=1`. Spreads the reconnects of many
    /// clients that lost the same gateway at the same moment.
    pub jitter: f64,
    /// Give up after this many retries in a row without success; `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Default for BackoffConfig {
    /// Immediate first retry, then 200 ms doubling up to 10 s, half of each delay random,
    /// unlimited attempts.
    fn default() -> Self {
        Self {
            first: Duration::ZERO,
            initial: Duration::from_millis(200),
            factor: 2.0,
            max: Duration::from_secs(10),
            jitter: 0.5,
            max_attempts: None,
        }
    }
}

/// The retry schedule of one lasting connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    /// Retries since the last success.
    attempts: u32,
}

impl Backoff {
    /// A schedule whose next delay is `config.first`.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            attempts: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Retries since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A session worked: the next retry is the quick first one again.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// The delay before the next retry, counting it as an attempt; `None` when
    /// `max_attempts` retries have been used up. `rng_value` is any uniformly random `u64`
    /// (the full range is used for the jitter).
    pub fn next_delay(&mut self, rng_value: u64) -> Option<Duration> {
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            return None;
        }
        let base = self.base_delay(self.attempts);
        self.attempts = self.attempts.saturating_add(1);
        let jitter = if self.config.jitter.is_nan() {
            0.0
        } else {
            self.config.jitter.clamp(0.0, 1.0)
        };
        // 53 random bits give a uniform f64 in [0, 1).
        let unit = (rng_value >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 1.0 - jitter * unit;
        // A cap near `Duration::MAX` does not survive the trip through f64: keep it unjittered.
        Some(Duration::try_from_secs_f64(base.as_secs_f64() * scale).map_or(base, |d| d.min(base)))
    }

    /// The delay of retry number `attempt` (0-based) before jitter.
    fn base_delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return self.config.first.min(self.config.max);
        }
        let factor = if self.config.factor.is_finite() {
            self.config.factor.max(1.0)
        } else {
            1.0
        };
        // Beyond ~64 doublings every realistic cap is reached; bounding the exponent keeps the
        // float finite.
        let exponent = i32::try_from(attempt - 1).unwrap_or(i32::MAX).min(1024);
        let secs = self.config.initial.as_secs_f64() * factor.powi(exponent);
        if !secs.is_finite() || secs >= self.config.max.as_secs_f64() {
            self.config.max
        } else {
            Duration::try_from_secs_f64(secs).unwrap_or(self.config.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let mut backoff = Backoff::new(no_jitter());
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.next_delay(u64::MAX).unwrap().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [0, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(backoff.attempts(), 10);
    }

    #[test]
    fn reset_makes_the_next_retry_quick_again() {
        let mut backoff = Backoff::new(no_jitter());
        for _ in 0..5 {
            backoff.next_delay(0);
        }
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.next_delay(0), Some(Duration::ZERO));
        assert_eq!(backoff.next_delay(0), Some(Duration::from_millis(200)));
    }

    #[test]
    fn jitter_stays_within_the_fraction_below_the_delay() {
        let config = BackoffConfig {
            jitter: 0.5,
            ..BackoffConfig::default()
        };
        for rng in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut backoff = Backoff::new(config.clone());
            backoff.next_delay(rng);
            let second = backoff.next_delay(rng).unwrap();
            assert!(second <= Duration::from_millis(200), "{second:?}");
            assert!(second >= Duration::from_millis(100), "{second:?}");
        }
        // The extremes of the random value reach both ends.
        let mut low = Backoff::new(config.clone());
        low.next_delay(0);
        assert_eq!(low.next_delay(0), Some(Duration::from_millis(200)));
        let mut high = Backoff::new(config);
        high.next_delay(u64::MAX);
        let d = high.next_delay(u64::MAX).unwrap();
        assert!(d < Duration::from_millis(101) && d >= Duration::from_millis(100));
    }

    #[test]
    fn gives_up_after_max_attempts_until_reset() {
        let mut backoff = Backoff::new(BackoffConfig {
            max_attempts: Some(3),
            ..no_jitter()
        });
        assert!(backoff.next_delay(0).is_some());
        assert!(backoff.next_delay(0).is_some());
        assert!(backoff.next_delay(0).is_some());
        assert_eq!(backoff.next_delay(0), None);
        assert_eq!(backoff.next_delay(0), None);
        backoff.reset();
        assert!(backoff.next_delay(0).is_some());
    }

    #[test]
    fn odd_configurations_do_not_panic() {
        for (factor, jitter, initial) in [
            (f64::NAN, f64::NAN, Duration::from_millis(1)),
            (f64::INFINITY, -3.0, Duration::MAX),
            (0.5, 7.0, Duration::ZERO),
            (1e300, 0.5, Duration::from_secs(1)),
        ] {
            let mut backoff = Backoff::new(BackoffConfig {
                first: Duration::MAX,
                initial,
                factor,
                max: Duration::from_secs(10),
                jitter,
                max_attempts: None,
            });
            for _ in 0..2000 {
                let delay = backoff.next_delay(12345).unwrap();
                assert!(delay <= Duration::from_secs(10));
            }
        }
    }
}
