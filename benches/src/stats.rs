//! Percentiles over real samples, by the nearest-rank method: every figure reported is one
//! that was actually measured, never an interpolation between two.

use std::time::Duration;

/// Latency samples in milliseconds, sorted once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    sorted: Vec<f64>,
}

impl Samples {
    pub(crate) fn from_millis(mut millis: Vec<f64>) -> Self {
        millis.retain(|m| m.is_finite());
        millis.sort_by(f64::total_cmp);
        Self { sorted: millis }
    }

    pub(crate) fn from_durations(durations: impl IntoIterator<Item = Duration>) -> Self {
        Self::from_millis(durations.into_iter().map(millis).collect())
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The smallest sample with at least `p` percent of the samples at or below it.
    pub(crate) fn percentile(&self, p: f64) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        let rank = (p / 100.0 * self.sorted.len() as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, self.sorted.len()) - 1])
    }

    pub(crate) fn p50(&self) -> Option<f64> {
        self.percentile(50.0)
    }

    pub(crate) fn p99(&self) -> Option<f64> {
        self.percentile(99.0)
    }
}

pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `count` events over `elapsed`, per second.
pub(crate) fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_measured_samples() {
        let s = Samples::from_millis((1..=100).rev().map(f64::from).collect());
        assert_eq!(s.p50(), Some(50.0));
        assert_eq!(s.p99(), Some(99.0));
        assert_eq!(s.percentile(100.0), Some(100.0));
        assert_eq!(s.percentile(0.0), Some(1.0));
    }

    #[test]
    fn small_and_empty_sets() {
        assert_eq!(Samples::default().p50(), None);
        let three = Samples::from_millis(vec![3.0, 1.0, 2.0]);
        assert_eq!(three.p50(), Some(2.0));
        assert_eq!(three.p99(), Some(3.0));
    }
}
