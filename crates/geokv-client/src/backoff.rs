//! The one back-off policy of the SDK and the server: an exponentially
//! growing pause (`base`, doubling, capped at `max`) with "equal jitter",
//! and a [`Streak`] of consecutive failures that walks it and resets on a
//! success. The SDK's call retries ([`crate::RetryPolicy`]), the server's
//! hinted-stream scheduler and its records hand-over all pause by it.
//!
//! Pure: no clock and no randomness of its own (the caller passes a uniform
//! sample), so schedules are table- and property-tested. Must not decide
//! whether to retry (that is the caller's rule, e.g. `retry.rs`).
use std::time::Duration;

/// Exponential back-off: the pause before retry `n` (1 for the first) is
/// `min(max, base * 2^(n-1))`, optionally jittered into its upper half.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::Backoff;
///
/// let b = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(b.nominal(1), Duration::from_millis(50));
/// assert_eq!(b.nominal(3), Duration::from_millis(200));
/// assert_eq!(b.nominal(40), Duration::from_secs(2));
/// let j = b.jittered(3, 0.5);
/// assert!(j >= Duration::from_millis(100) && j <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The pause before the first retry.
    pub base: Duration,
    /// Cap on every pause.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// The pause before retry number `retry` without jitter:
    /// `min(max, base * 2^(retry-1))` (retry 0 counts as 1).
    pub fn nominal(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// [`nominal`](Backoff::nominal) with "equal jitter": uniformly in
    /// `[d/2, d]` for a uniform sample `unit` in `[0, 1]` (a sample outside
    /// it is clamped; NaN counts as 1). Half the pause is kept so a burst of
    /// failing callers still backs off, the other half is random so they do
    /// not retry in lockstep.
    pub fn jittered(&self, retry: u32, unit: f64) -> Duration {
        let nominal = self.nominal(retry);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            1.0
        };
        nominal / 2 + (nominal / 2).mul_f64(unit)
    }
}

/// Consecutive failures of one repeated task under a [`Backoff`]: each
/// failure yields the next pause, a success starts over from `base`.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::{Backoff, Streak};
///
/// let mut s = Streak::new(Backoff::new(Duration::from_millis(50), Duration::from_millis(150)));
/// assert_eq!(s.failed(1.0), Duration::from_millis(50));
/// assert_eq!(s.failed(1.0), Duration::from_millis(100));
/// assert_eq!(s.failed(1.0), Duration::from_millis(150));
/// s.succeeded();
/// assert_eq!(s.failed(1.0), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    policy: Backoff,
    failures: u32,
}

impl Streak {
    pub const fn new(policy: Backoff) -> Streak {
        Streak {
            policy,
            failures: 0,
        }
    }

    /// One more failure: the pause before the next try, jittered by `unit`
    /// (1.0: the nominal pause).
    pub fn failed(&mut self, unit: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.jittered(self.failures, unit)
    }

    /// A success: the next failure pauses `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_schedule_doubles_then_caps() {
        let b = Backoff::new(ms(100), ms(1000));
        let got: Vec<u128> = (1..=6).map(|r| b.nominal(r).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.nominal(0), ms(100));
        assert_eq!(b.nominal(u32::MAX), ms(1000));
        assert_eq!(b.jittered(1, f64::NAN), ms(100));
        assert_eq!(b.jittered(1, -3.0), ms(50));
        assert_eq!(b.jittered(1, 7.0), ms(100));
    }

    proptest! {
        /// Bounds and cap: every pause lies in `[nominal/2, nominal]`, and
        /// the nominal pause never exceeds `max` nor falls below
        /// `min(base, max)`, whatever the retry number and the sample.
        #[test]
        fn a_pause_stays_within_its_jitter_band_and_the_cap(
            base_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            retry in any::<u32>(),
            unit in any::<f64>(),
        ) {
            let b = Backoff::new(ms(base_ms), ms(max_ms));
            let nominal = b.nominal(retry);
            prop_assert!(nominal <= b.max);
            prop_assert!(nominal >= b.base.min(b.max));
            let d = b.jittered(retry, unit);
            prop_assert!(d <= nominal && d >= nominal / 2, "{d:?} outside [{:?}, {nominal:?}]", nominal / 2);
        }

        /// Jitter: the pause grows with the sample, spanning the whole band
        /// from half the nominal pause (0.0) to all of it (1.0).
        #[test]
        fn jitter_is_monotone_in_the_sample_and_spans_the_band(
            base_ms in 1u64..10_000,
            retry in 1u32..40,
            a in 0.0f64..=1.0,
            c in 0.0f64..=1.0,
        ) {
            let b = Backoff::new(ms(base_ms), ms(60_000));
            let (lo, hi) = if a <= c { (a, c) } else { (c, a) };
            prop_assert!(b.jittered(retry, lo) <= b.jittered(retry, hi));
            prop_assert_eq!(b.jittered(retry, 1.0), b.nominal(retry));
            prop_assert_eq!(b.jittered(retry, 0.0), b.nominal(retry) / 2);
        }

        /// Monotone and reset: a streak's nominal pauses never shrink while
        /// it fails, and a success starts it over from `base`.
        #[test]
        fn a_streak_never_shrinks_until_a_success(
            base_ms in 1u64..1000,
            max_ms in 1u64..100_000,
            n in 1usize..80,
        ) {
            let mut s = Streak::new(Backoff::new(ms(base_ms), ms(max_ms)));
            let mut last = Duration::ZERO;
            for _ in 0..n {
                let d = s.failed(1.0);
                prop_assert!(d >= last);
                last = d;
            }
            prop_assert_eq!(s.failures(), n as u32);
            s.succeeded();
            prop_assert_eq!(s.failed(1.0), ms(base_ms).min(ms(max_ms)));
        }
    }
}
