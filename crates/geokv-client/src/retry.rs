//! When to try a call again, and how long to wait first: exponential backoff
//! with jitter (the crate's one policy, [`crate::Backoff`]), and the
//! idempotency rule for writes.
//!
//! Pure: no clock, no randomness of its own (the caller passes a uniform
//! sample), so the schedule is table-tested. Must not pick endpoints (that is
//! `endpoints.rs`).
use std::time::Duration;

use crate::{Backoff, ClientError};

/// How a call is retried: `retries` extra attempts after the first, each on
/// the next preferred endpoint, after an exponentially growing, jittered
/// pause.
///
/// Only idempotent calls (get, status) are retried on any retriable error.
/// Put and delete are retried **only** when the error proves nothing was
/// applied ([`ClientError::may_have_been_applied`] is false: a connect error,
/// or `UNAVAILABLE` from a node, raised before anything was sent): a
/// timed-out or `ABORTED` write may have been applied on some replicas, and
/// sending it again would create a second version (a sibling of the first).
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use geokv_client::RetryPolicy;
///
/// let policy = RetryPolicy { retries: 4, base: Duration::from_millis(20), max: Duration::from_secs(1) };
/// // Before the first retry: between 10 and 20 ms; the second: between 20 and 40 ms.
/// assert!(policy.backoff(1, 0.0) >= Duration::from_millis(10));
/// assert!(policy.backoff(2, 1.0) <= Duration::from_millis(40));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first one (0 disables retries).
    pub retries: u32,
    /// The nominal pause before the first retry; doubles each retry.
    pub base: Duration,
    /// Cap on the nominal pause.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// Two retries, 50 ms doubling, capped at 2 s.
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry), given a
    /// uniform sample `unit` in `[0, 1]`: "equal jitter", i.e. uniformly in
    /// `[d/2, d]` where `d = min(max, base * 2^(retry-1))`. Half the nominal
    /// pause is kept so a burst of failing clients still backs off, the other
    /// half is random so they do not retry in lockstep.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use geokv_client::RetryPolicy;
    ///
    /// let p = RetryPolicy::default();
    /// assert_eq!(p.backoff(1, 1.0), Duration::from_millis(50));
    /// assert_eq!(p.backoff(30, 1.0), Duration::from_secs(2));
    /// ```
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        Backoff::new(self.base, self.max).jittered(retry, unit)
    }

    /// The pause before retry number `retry` after `err`: the jittered
    /// [`backoff`](RetryPolicy::backoff), but at least the node's retry hint
    /// ([`ClientError::retry_after`], capped at `max` so a node cannot park
    /// the client).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use geokv_client::{ClientError, RetryPolicy};
    ///
    /// let p = RetryPolicy::default();
    /// let shed = ClientError::Overloaded { message: "busy".into(), retry_after: Some(Duration::from_millis(300)) };
    /// assert_eq!(p.pause(1, 1.0, &shed), Duration::from_millis(300));
    /// ```
    pub fn pause(&self, retry: u32, unit: f64, err: &ClientError) -> Duration {
        let hint = err.retry_after().unwrap_or_default().min(self.max);
        self.backoff(retry, unit).max(hint)
    }

    /// Whether `err`, returned by attempt number `attempt` (0 for the first),
    /// should be followed by another attempt.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::{ClientError, RetryPolicy};
    ///
    /// let p = RetryPolicy::default();
    /// let timeout = ClientError::Timeout { message: "2 of 3".into() };
    /// assert!(p.should_retry(0, &timeout, true)); // a read
    /// assert!(!p.should_retry(0, &timeout, false)); // a write: outcome unknown
    /// ```
    pub fn should_retry(&self, attempt: u32, err: &ClientError, idempotent: bool) -> bool {
        if attempt >= self.retries || !err.is_retriable() {
            return false;
        }
        idempotent || !err.may_have_been_applied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_schedule_doubles_within_jitter_bounds_and_caps() {
        let p = RetryPolicy {
            retries: 10,
            base: ms(100),
            max: ms(1000),
        };
        let nominal = [100, 200, 400, 800, 1000, 1000];
        for (i, d) in nominal.into_iter().enumerate() {
            let retry = i as u32 + 1;
            assert_eq!(p.backoff(retry, 0.0), ms(d / 2), "retry {retry} low");
            assert_eq!(p.backoff(retry, 1.0), ms(d), "retry {retry} high");
            let mid = p.backoff(retry, 0.5);
            assert!(mid > ms(d / 2) && mid < ms(d), "retry {retry} mid {mid:?}");
        }
    }

    #[test]
    fn backoff_survives_huge_attempts_and_bad_samples() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(u32::MAX, 1.0), p.max);
        assert_eq!(p.backoff(1, f64::NAN), p.base);
        assert_eq!(p.backoff(1, -3.0), p.base / 2);
        assert_eq!(p.backoff(0, 1.0), p.base);
    }

    #[test]
    fn writes_retry_only_when_nothing_was_applied() {
        let p = RetryPolicy::default();
        let connect = ClientError::Transport {
            message: "refused".into(),
        };
        let unavailable = ClientError::Unavailable {
            message: "1 of 2".into(),
        };
        let timeout = ClientError::Timeout {
            message: "1 of 2".into(),
        };
        let invalid = ClientError::InvalidArgument {
            message: "empty key".into(),
        };
        assert!(p.should_retry(0, &connect, false));
        assert!(p.should_retry(0, &connect, true));
        assert!(p.should_retry(0, &unavailable, false), "nothing was sent");
        assert!(p.should_retry(0, &unavailable, true));
        assert!(!p.should_retry(0, &timeout, false), "may have been applied");
        assert!(p.should_retry(0, &timeout, true));
        assert!(!p.should_retry(0, &invalid, true));
        assert!(!p.should_retry(p.retries, &connect, true), "budget spent");
        let shed = ClientError::Overloaded {
            message: "busy".into(),
            retry_after: Some(ms(80)),
        };
        assert!(
            p.should_retry(0, &shed, false),
            "a shed write was not applied"
        );
    }

    #[test]
    fn a_retry_waits_at_least_the_nodes_hint_but_never_past_max() {
        let p = RetryPolicy::default();
        let hinted = |n| ClientError::Overloaded {
            message: "busy".into(),
            retry_after: Some(ms(n)),
        };
        assert_eq!(p.pause(1, 0.0, &hinted(80)), ms(80));
        assert_eq!(p.pause(1, 1.0, &hinted(10)), ms(50), "backoff is longer");
        assert_eq!(p.pause(1, 0.0, &hinted(60_000)), p.max, "capped");
        let plain = ClientError::Timeout {
            message: "t".into(),
        };
        assert_eq!(p.pause(1, 0.0, &plain), p.backoff(1, 0.0));
    }
}
