//! The limit on failed authentications per client address: each address
//! has a bucket of `burst` failures refilled at `per_minute`; a failure
//! (wrong secret, unknown role) takes one, and while the bucket is empty the
//! address's credentials are refused before any secret is verified
//! (argon2 is not run for it), until a failure has been refilled. Slows a
//! guesser to `per_minute` guesses; an address that authenticates correctly
//! and is cached is never held up.
//!
//! Pure (sans-I/O): the caller passes the time. Bounded: at most
//! `max_addresses` are tracked; when full, buckets that refilled are
//! forgotten first, then the longest-idle one. Must not verify secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How failures are limited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Failures an address may make in a row.
    pub burst: u32,
    /// Failures refilled per minute.
    pub per_minute: u32,
    /// Addresses tracked at most.
    pub max_addresses: usize,
}

impl Default for ThrottleConfig {
    /// 10 failures in a row, then one every 6 s (10 a minute), 8192 addresses.
    fn default() -> Self {
        ThrottleConfig {
            burst: 10,
            per_minute: 10,
            max_addresses: 8192,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, as of `at`.
    left: f64,
    at: Instant,
}

/// Failed authentications per address.
#[derive(Debug)]
pub struct Throttle {
    cfg: ThrottleConfig,
    buckets: HashMap<IpAddr, Bucket>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            buckets: HashMap::new(),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        (b.left + secs * self.cfg.per_minute as f64 / 60.0).min(self.cfg.burst as f64)
    }

    /// `None` if `addr` may try to authenticate now, else how long until it
    /// may.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let b = *self.buckets.get(&addr)?;
        let left = self.refilled(b, now);
        if left >= 1.0 {
            return None;
        }
        if self.cfg.per_minute == 0 {
            return Some(Duration::from_secs(3600));
        }
        let secs = (1.0 - left) * 60.0 / self.cfg.per_minute as f64;
        Some(Duration::from_secs_f64(secs).max(Duration::from_millis(1)))
    }

    /// [`Throttle::check`], and if `addr` may try, counts its attempt as a
    /// failure at once ([`Throttle::refund`] gives it back): an attempt
    /// whose caller is gone before its verdict stays counted.
    pub fn take(&mut self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let wait = self.check(addr, now);
        if wait.is_none() {
            self.failed(addr, now);
        }
        wait
    }

    /// Gives back an attempt [`Throttle::take`] counted (its verdict was good).
    pub fn refund(&mut self, addr: IpAddr, now: Instant) {
        let burst = self.cfg.burst as f64;
        if let Some(b) = self.buckets.get(&addr).copied() {
            let left = (self.refilled(b, now) + 1.0).min(burst);
            self.buckets.insert(addr, Bucket { left, at: now });
        }
    }

    /// Records a failed authentication from `addr`.
    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        let left = match self.buckets.get(&addr) {
            Some(b) => self.refilled(*b, now),
            None => {
                self.make_room(now);
                self.cfg.burst as f64
            }
        };
        let left = (left - 1.0).max(0.0);
        self.buckets.insert(addr, Bucket { left, at: now });
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        if self.buckets.len() < self.cfg.max_addresses.max(1) {
            return;
        }
        let burst = self.cfg.burst as f64;
        let per_minute = self.cfg.per_minute as f64;
        self.buckets.retain(|_, b| {
            let secs = now.saturating_duration_since(b.at).as_secs_f64();
            b.left + secs * per_minute / 60.0 < burst
        });
        while self.buckets.len() >= self.cfg.max_addresses.max(1) {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(a, _)| *a);
            match oldest {
                Some(a) => self.buckets.remove(&a),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_burst_of_failures_blocks_the_address_until_one_refills() {
        let mut t = Throttle::new(ThrottleConfig {
            burst: 3,
            per_minute: 6,
            max_addresses: 16,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check(ip(1), t0), None);
            t.failed(ip(1), t0);
        }
        let wait = t.check(ip(1), t0).expect("blocked after the burst");
        assert_eq!(wait, Duration::from_secs(10), "6 a minute: one per 10 s");
        assert_eq!(t.check(ip(2), t0), None, "another address is not held up");
        assert!(t.check(ip(1), t0 + Duration::from_secs(9)).is_some());
        assert_eq!(t.check(ip(1), t0 + Duration::from_secs(10)), None);
        t.failed(ip(1), t0 + Duration::from_secs(10));
        assert!(t.check(ip(1), t0 + Duration::from_secs(10)).is_some());
    }

    #[test]
    fn an_attempt_taken_then_refunded_leaves_the_address_as_it_was() {
        let mut t = Throttle::new(ThrottleConfig {
            burst: 1,
            per_minute: 6,
            max_addresses: 16,
        });
        let t0 = Instant::now();
        assert_eq!(t.take(ip(1), t0), None);
        assert!(
            t.check(ip(1), t0).is_some(),
            "the attempt in progress counts"
        );
        assert!(t.take(ip(1), t0).is_some(), "no second one at once");
        t.refund(ip(1), t0);
        assert_eq!(t.check(ip(1), t0), None, "a good verdict gives it back");
    }

    proptest! {
        /// More addresses than slots: the table stays within its bound and
        /// a blocked address stays blocked while it is tracked.
        #[test]
        fn the_table_stays_bounded(
            steps in proptest::collection::vec((0u8..6, 0u64..5000), 1..300),
        ) {
            let cfg = ThrottleConfig { burst: 2, per_minute: 6, max_addresses: 4 };
            let mut t = Throttle::new(cfg);
            let mut now = Instant::now();
            for (who, advance_ms) in steps {
                now += Duration::from_millis(advance_ms);
                if t.check(ip(who), now).is_none() {
                    t.failed(ip(who), now);
                }
                prop_assert!(t.len() <= 4);
            }
        }

        /// With room for every address, the limit is exact.
        #[test]
        fn with_room_the_limit_is_exact(
            burst in 1u32..6,
            per_minute in 1u32..120,
            advances in proptest::collection::vec(0u64..3000, 1..300),
        ) {
            let mut t = Throttle::new(ThrottleConfig { burst, per_minute, max_addresses: 8 });
            let t0 = Instant::now();
            let mut now = t0;
            let mut through = 0u32;
            for a in advances {
                now += Duration::from_millis(a);
                if t.check(ip(1), now).is_none() {
                    t.failed(ip(1), now);
                    through += 1;
                }
            }
            let minutes = now.duration_since(t0).as_secs_f64() / 60.0;
            prop_assert!(through as f64 <= burst as f64 + minutes * per_minute as f64 + 1e-9);
        }
    }
}
