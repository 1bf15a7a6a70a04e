//! φ-accrual failure detector for one peer (Hayashibara et al., 2004), in the
//! form Cassandra's `FailureDetector.ArrivalWindow` uses.
//!
//! Owns the bounded window of heartbeat inter-arrival times and the φ
//! arithmetic. Must not read a clock (every call takes `now` in monotonic
//! milliseconds), and knows nothing of gossip, datacenters or thresholds: the
//! caller compares φ with the threshold that fits the peer.
//!
//! # Why the exponential distribution, not Akka's normal CDF
//!
//! φ(Δt) = −log10 P(silence ≥ Δt). Modelling inter-arrivals as exponential
//! with mean μ gives P = e^(−Δt/μ), so **φ = Δt / μ · log10(e)**.
//!
//! Our heartbeats are not sent to us directly: they reach us second-hand
//! through gossip, after 1 to O(log N) hops, so the gaps between observed
//! advances are bursty (0 ms, then 3 s). A normal CDF learns a small σ in a
//! quiet period and convicts on the first slow hop; the exponential's σ *is*
//! μ, so only the length of the silence relative to the average gap matters.
//! Cassandra made the same choice for the same reason. The price is slow
//! detection: φ crosses a threshold T after T · ln 10 · μ (≈ 18 s at T = 8,
//! μ = 1 s), and the threshold is the knob that trades speed for flapping.
//!
//! Bootstrapping: the first heartbeat seeds the window with one sample of
//! `bootstrap_interval_ms` (the gossip interval), which real samples dilute.

use std::collections::VecDeque;

/// log10(e): converts Δt/μ (nats) into φ (decades of improbability).
const LOG10_E: f64 = std::f64::consts::LOG10_E;

/// Tuning of one detector. Derived from
/// [`MembershipConfig`](super::MembershipConfig) by the membership table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhiParams {
    /// How many inter-arrival samples are kept (Cassandra: 1000).
    pub window: usize,
    /// The expected interval assumed before anything was measured.
    pub bootstrap_interval_ms: u64,
    /// Gaps longer than this are not recorded: a long partition must not
    /// teach the detector to wait longer next time (Cassandra's
    /// `MAX_INTERVAL`). The silence still counts towards φ.
    pub max_recorded_interval_ms: u64,
    /// Floor under μ. The exponential's standard deviation equals its mean,
    /// so this is the "minimum σ" knob: a burst of back-to-back arrivals must
    /// not make the detector hair-triggered.
    pub min_mean_ms: u64,
    /// Silence that is always acceptable (GC pause, slow hop): subtracted
    /// from Δt before φ is computed.
    pub acceptable_pause_ms: u64,
}

/// The detector for one peer. See the module docs for the model.
#[derive(Clone, Debug)]
pub struct PhiDetector {
    params: PhiParams,
    /// Recent inter-arrival times in ms, oldest first; at most `params.window`.
    intervals: VecDeque<u64>,
    /// Sum of `intervals`, kept so `mean` is O(1).
    sum: u64,
    /// When the last heartbeat arrived; `None` until the first one.
    last_ms: Option<u64>,
}

impl PhiDetector {
    /// A detector that has seen nothing yet: [`phi`](Self::phi) is `None`.
    pub fn new(params: PhiParams) -> Self {
        Self {
            params,
            intervals: VecDeque::with_capacity(params.window.clamp(1, 1024)),
            sum: 0,
            last_ms: None,
        }
    }

    /// Records a heartbeat arriving at `now_ms`. A clock that went backwards
    /// counts as a zero-length gap.
    pub fn heartbeat(&mut self, now_ms: u64) {
        let sample = match self.last_ms {
            None => Some(self.params.bootstrap_interval_ms),
            Some(last) => {
                let gap = now_ms.saturating_sub(last);
                (gap <= self.params.max_recorded_interval_ms).then_some(gap)
            }
        };
        if let Some(gap) = sample {
            self.push(gap);
        }
        self.last_ms = Some(self.last_ms.map_or(now_ms, |last| last.max(now_ms)));
    }

    /// φ at `now_ms`, or `None` if no heartbeat has arrived yet.
    pub fn phi(&self, now_ms: u64) -> Option<f64> {
        let last = self.last_ms?;
        Some(phi_for_silence(
            now_ms.saturating_sub(last),
            self.mean_ms(),
            self.params.acceptable_pause_ms,
        ))
    }

    /// μ, the mean inter-arrival time used by φ (after the floor).
    pub fn mean_ms(&self) -> f64 {
        let mean = if self.intervals.is_empty() {
            self.params.bootstrap_interval_ms as f64
        } else {
            self.sum as f64 / self.intervals.len() as f64
        };
        mean.max(self.params.min_mean_ms as f64).max(1.0)
    }

    /// When the last heartbeat arrived, if any.
    pub fn last_heartbeat_ms(&self) -> Option<u64> {
        self.last_ms
    }

    /// How many samples are in the window (the bootstrap sample included).
    pub fn samples(&self) -> usize {
        self.intervals.len()
    }

    /// Treats `now_ms` as the last arrival without recording a gap. Used when
    /// *we* were paused (GC, suspended VM): the silence was ours, not theirs.
    pub fn rebase(&mut self, now_ms: u64) {
        if let Some(last) = self.last_ms.as_mut() {
            *last = (*last).max(now_ms);
        }
    }

    /// How long a silence makes φ reach `threshold` with this detector's
    /// current μ: the detection time if the peer died just now.
    pub fn silence_for_phi(&self, threshold: f64) -> u64 {
        silence_for_phi(threshold, self.mean_ms(), self.params.acceptable_pause_ms)
    }

    fn push(&mut self, gap: u64) {
        if self.intervals.len() >= self.params.window.max(1) {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
            }
        }
        self.intervals.push_back(gap);
        self.sum += gap;
    }
}

/// φ after `silence_ms` without a heartbeat, for mean gap `mean_ms`.
pub fn phi_for_silence(silence_ms: u64, mean_ms: f64, acceptable_pause_ms: u64) -> f64 {
    let dt = silence_ms.saturating_sub(acceptable_pause_ms) as f64;
    dt / mean_ms.max(1.0) * LOG10_E
}

/// The silence after which φ reaches `threshold`: the inverse of
/// [`phi_for_silence`], rounded up to whole milliseconds.
pub fn silence_for_phi(threshold: f64, mean_ms: f64, acceptable_pause_ms: u64) -> u64 {
    let dt = (threshold.max(0.0) / LOG10_E * mean_ms.max(1.0)).ceil();
    acceptable_pause_ms.saturating_add(dt as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PhiParams {
        PhiParams {
            window: 1000,
            bootstrap_interval_ms: 1000,
            max_recorded_interval_ms: 2000,
            min_mean_ms: 500,
            acceptable_pause_ms: 0,
        }
    }

    #[test]
    fn no_phi_before_first_heartbeat() {
        let d = PhiDetector::new(params());
        assert_eq!(d.phi(5_000), None);
        assert_eq!(d.samples(), 0);
    }

    #[test]
    fn phi_grows_with_silence() {
        let mut d = PhiDetector::new(params());
        for i in 0..100 {
            d.heartbeat(i * 1000);
        }
        let last = 99 * 1000;
        let mut prev = -1.0;
        for silence in (0..60_000).step_by(500) {
            let phi = d.phi(last + silence).unwrap();
            assert!(
                phi > prev || silence == 0,
                "phi must grow: {phi} after {prev}"
            );
            prev = phi;
        }
        // μ = 1 s: φ = Δt/μ · log10 e.
        let at_10s = d.phi(last + 10_000).unwrap();
        assert!((at_10s - 10.0 * LOG10_E).abs() < 1e-9, "{at_10s}");
    }

    #[test]
    fn phi_stays_low_with_regular_heartbeats() {
        let mut d = PhiDetector::new(params());
        let mut max_phi: f64 = 0.0;
        for i in 0..5_000u64 {
            let t = i * 1000;
            if let Some(phi) = d.phi(t) {
                max_phi = max_phi.max(phi);
            }
            d.heartbeat(t);
        }
        assert!(max_phi < 0.5, "max φ {max_phi}");
        assert_eq!(d.samples(), 1000, "window is bounded");
    }

    #[test]
    fn long_gaps_are_not_learned() {
        let mut d = PhiDetector::new(params());
        for i in 0..10 {
            d.heartbeat(i * 1000);
        }
        let before = d.mean_ms();
        d.heartbeat(9_000 + 60_000); // a partition healed
        assert_eq!(d.mean_ms(), before);
        assert_eq!(d.phi(69_000), Some(0.0));
    }

    #[test]
    fn min_mean_and_acceptable_pause() {
        let mut d = PhiDetector::new(PhiParams {
            acceptable_pause_ms: 3_000,
            ..params()
        });
        for i in 0..1000 {
            d.heartbeat(i * 10); // a burst of 10 ms gaps
        }
        assert_eq!(d.mean_ms(), 500.0, "floored");
        let last = d.last_heartbeat_ms().unwrap();
        assert_eq!(d.phi(last + 3_000), Some(0.0), "pause forgiven");
        let t = d.silence_for_phi(8.0);
        assert!(d.phi(last + t).unwrap() >= 8.0);
        assert!(d.phi(last + t - 1).unwrap() < 8.0);
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let mut d = PhiDetector::new(params());
        d.heartbeat(10_000);
        d.heartbeat(9_000);
        assert_eq!(d.last_heartbeat_ms(), Some(10_000));
        assert_eq!(d.phi(9_500), Some(0.0));
    }

    #[test]
    fn rebase_forgives_our_own_pause() {
        let mut d = PhiDetector::new(params());
        d.heartbeat(0);
        d.heartbeat(1_000);
        d.rebase(30_000);
        assert_eq!(d.phi(30_000), Some(0.0));
        assert_eq!(d.samples(), 2, "no gap recorded");
    }
}
