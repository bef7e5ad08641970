//! Retry policies for activities.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// What happens when an activity has used all its attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// The step fails and the error is returned to the workflow (the default).
    #[default]
    Fail,
    /// The run is parked for a human; nothing is recorded as failed.
    Pause,
}

/// How an activity is retried. Durations read as `humantime` in config and macros (`"500ms"`).
///
/// Defaults: 5 attempts, 1 s initial interval doubling up to 60 s, no overall limit,
/// 10 % jitter, every error kind retryable, [`OnExhausted::Fail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 means no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    #[serde(with = "humantime_serde_compat")]
    pub initial_interval: Duration,
    /// Each delay is the previous one times this.
    pub backoff_coefficient: f64,
    /// Upper bound of one delay.
    #[serde(with = "humantime_serde_compat")]
    pub max_interval: Duration,
    /// Give up once this much time has passed since the first attempt (`None`: no limit).
    #[serde(default)]
    pub max_duration: Option<Duration>,
    /// Fraction of each delay that is randomised (0.1 = ±10 %), so retries spread out.
    pub jitter: f64,
    /// Error kinds (see [`ActivityError::with_kind`](crate::ActivityError::with_kind)) never retried.
    #[serde(default)]
    pub non_retryable: Vec<String>,
    /// What to do when attempts run out.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            max_interval: Duration::from_secs(60),
            max_duration: None,
            jitter: 0.1,
            non_retryable: Vec::new(),
            on_exhausted: OnExhausted::Fail,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retry() -> Self {
        Self::default().max_attempts(1)
    }

    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets [`initial_interval`](Self::initial_interval).
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }

    /// Sets [`backoff_coefficient`](Self::backoff_coefficient) (at least 1.0).
    pub fn backoff_coefficient(mut self, c: f64) -> Self {
        self.backoff_coefficient = c.max(1.0);
        self
    }

    /// Sets [`max_interval`](Self::max_interval).
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }

    /// Sets [`max_duration`](Self::max_duration).
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = Some(d);
        self
    }

    /// Sets [`jitter`](Self::jitter), clamped to `0.0..=1.0`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Sets [`non_retryable`](Self::non_retryable).
    pub fn non_retryable(mut self, kinds: &[&str]) -> Self {
        self.non_retryable = kinds.iter().map(|k| k.to_string()).collect();
        self
    }

    /// Sets [`on_exhausted`](Self::on_exhausted).
    pub fn on_exhausted(mut self, what: OnExhausted) -> Self {
        self.on_exhausted = what;
        self
    }

    /// The delay before attempt `failed_attempt + 1`, without jitter.
    pub fn base_delay(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_interval.as_secs_f64() * self.backoff_coefficient.powi(exponent);
        Duration::from_secs_f64(secs.min(self.max_interval.as_secs_f64()))
    }

    /// The delay before attempt `failed_attempt + 1`, with jitter applied.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let base = self.base_delay(failed_attempt).as_secs_f64();
        let spread = base * self.jitter;
        let jittered = if spread > 0.0 {
            base + rand::rng().random_range(-spread..=spread)
        } else {
            base
        };
        Duration::from_secs_f64(jittered.max(0.0))
    }

    /// Whether an error of this kind may be retried at all under this policy.
    pub fn allows_kind(&self, kind: Option<&str>) -> bool {
        kind.is_none_or(|k| !self.non_retryable.iter().any(|n| n == k))
    }
}

/// Serde helpers that read and write durations as humantime strings (`"1s"`, `"500ms"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default()
            .initial_interval(Duration::from_millis(100))
            .backoff_coefficient(2.0)
            .max_interval(Duration::from_millis(500));
        assert_eq!(p.base_delay(1), Duration::from_millis(100));
        assert_eq!(p.base_delay(2), Duration::from_millis(200));
        assert_eq!(p.base_delay(3), Duration::from_millis(400));
        assert_eq!(p.base_delay(4), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = RetryPolicy::default()
            .initial_interval(Duration::from_secs(1))
            .jitter(0.2);
        let delays: Vec<_> = (0..200).map(|_| p.delay(1).as_secs_f64()).collect();
        assert!(delays.iter().all(|d| (0.8..=1.2).contains(d)));
        assert!(
            delays.iter().any(|d| (d - 1.0).abs() > 0.01),
            "jitter never moved a delay"
        );
    }

    #[test]
    fn non_retryable_kinds_are_refused() {
        let p = RetryPolicy::default().non_retryable(&["card_declined"]);
        assert!(!p.allows_kind(Some("card_declined")));
        assert!(p.allows_kind(Some("timeout")));
        assert!(p.allows_kind(None));
    }
}
