//! Admission of client requests: a per-node bound on the client requests
//! (get, put, delete) in flight. Past it a request is shed at once with
//! `RESOURCE_EXHAUSTED` and a retry hint (`GeokvError::Overloaded`: the
//! `retry-after-ms` metadata, `geokv-applied: no`) instead of waiting in an
//! unbounded queue. Nothing is buffered: a request either holds a
//! [`Permit`] for its whole life or is refused before it touches anything.
//!
//! Only the client edge is admitted here. Internode traffic (replica
//! writes, hint and stream batches, forwarded writes) is never shed by this
//! gate, so nothing a coordinator already acknowledged can be dropped by
//! it; the peer port is bounded per connection by HTTP/2 stream limits
//! instead, where excess calls wait (`node::limits`).
//!
//! The decision ([`decide`]) is pure; [`Admission`] applies it to an
//! atomic count. Must not know about gRPC or the coordinator.

use crate::error::GeokvError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why a request was shed (the `reason` label of `geokv_requests_shed_total`).
pub const SHED_METRIC: &str = "geokv_requests_shed_total";
/// Client requests holding a permit (gauge).
pub const IN_FLIGHT_METRIC: &str = "geokv_requests_in_flight";

/// The bound and the hint sent with a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Client requests this node coordinates at once; 0 means no bound.
    pub max_in_flight: usize,
    /// What a shed request is told to wait before trying again.
    pub retry_after: Duration,
}

impl Default for AdmissionConfig {
    /// 2048 requests in flight, retry after 50 ms.
    fn default() -> Self {
        AdmissionConfig {
            max_in_flight: 2048,
            retry_after: Duration::from_millis(50),
        }
    }
}

/// What to do with one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// Refuse it; the client may try again after `retry_after`.
    Shed {
        retry_after: Duration,
    },
}

/// The pure rule: admit while fewer than `max_in_flight` are in flight.
/// The hint grows with how far past the bound the node has been pushed
/// (`refused_in_a_row` consecutive sheds, doubling every `max_in_flight`
/// refusals, at most 16 × the base), so a herd of clients spreads out
/// instead of coming back in lockstep.
pub fn decide(in_flight: usize, refused_in_a_row: usize, cfg: &AdmissionConfig) -> Decision {
    if cfg.max_in_flight == 0 || in_flight < cfg.max_in_flight {
        return Decision::Admit;
    }
    let doublings = (refused_in_a_row / cfg.max_in_flight).min(4) as u32;
    Decision::Shed {
        retry_after: cfg.retry_after * (1u32 << doublings),
    }
}

/// The node's gate: counts requests in flight and applies [`decide`].
#[derive(Debug, Default)]
pub struct Admission {
    cfg: AdmissionConfig,
    in_flight: AtomicUsize,
    refused_in_a_row: AtomicUsize,
}

/// A request's place in flight; dropping it frees the place.
#[derive(Debug)]
pub struct Permit(Arc<Admission>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(IN_FLIGHT_METRIC).decrement(1.0);
    }
}

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Arc<Self> {
        Arc::new(Admission {
            cfg,
            ..Default::default()
        })
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// A permit, or `Overloaded` (counted) when the bound is reached.
    pub fn enter(self: &Arc<Self>) -> Result<Permit, GeokvError> {
        // Decide on the count seen and take the place only if it is still
        // that count: concurrent callers never push it past the bound.
        let mut seen = self.in_flight.load(Ordering::Acquire);
        loop {
            let refused = self.refused_in_a_row.load(Ordering::Relaxed);
            match decide(seen, refused, &self.cfg) {
                Decision::Admit => match self.in_flight.compare_exchange_weak(
                    seen,
                    seen + 1,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.refused_in_a_row.store(0, Ordering::Relaxed);
                        metrics::gauge!(IN_FLIGHT_METRIC).increment(1.0);
                        return Ok(Permit(self.clone()));
                    }
                    Err(now) => seen = now,
                },
                Decision::Shed { retry_after } => return Err(self.shed(retry_after)),
            }
        }
    }

    fn shed(&self, retry_after: Duration) -> GeokvError {
        self.refused_in_a_row.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(SHED_METRIC, "reason" => "in_flight_limit").increment(1);
        GeokvError::Overloaded {
            limit: self.cfg.max_in_flight,
            retry_after_ms: retry_after.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(max: usize) -> AdmissionConfig {
        AdmissionConfig {
            max_in_flight: max,
            retry_after: Duration::from_millis(50),
        }
    }

    #[test]
    fn sheds_exactly_at_the_bound_with_a_growing_capped_hint() {
        let c = cfg(4);
        assert_eq!(decide(3, 0, &c), Decision::Admit);
        let shed = |refused| match decide(4, refused, &c) {
            Decision::Shed { retry_after } => retry_after.as_millis(),
            Decision::Admit => panic!("admitted at the bound"),
        };
        assert_eq!(shed(0), 50);
        assert_eq!(shed(4), 100);
        assert_eq!(shed(8), 200);
        assert_eq!(shed(1000), 800, "capped at 16x");
        assert_eq!(
            decide(1_000_000, 0, &cfg(0)),
            Decision::Admit,
            "0: no bound"
        );
    }

    #[test]
    fn a_shed_request_is_overloaded_and_nothing_applied() {
        let gate = Admission::new(cfg(1));
        let held = gate.enter().expect("first admitted");
        let err = gate.enter().expect_err("second shed");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.nothing_applied());
        assert_eq!(gate.in_flight(), 1);
        drop(held);
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.enter().is_ok(), "a freed place is taken again");
    }

    proptest! {
        /// Any interleaving of arrivals and completions: the count never
        /// passes the bound, a request is shed iff the bound was reached,
        /// and every place is given back.
        #[test]
        fn the_gate_matches_a_counting_model(
            max in 1usize..8,
            ops in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let gate = Admission::new(cfg(max));
            let mut held = Vec::new();
            for arrive in ops {
                if arrive {
                    let full = held.len() >= max;
                    match gate.enter() {
                        Ok(p) => { prop_assert!(!full); held.push(p) }
                        Err(e) => {
                            prop_assert!(full);
                            let ok = matches!(e, GeokvError::Overloaded { .. });
                            prop_assert!(ok);
                        }
                    }
                } else {
                    held.pop();
                }
                prop_assert!(gate.in_flight() <= max);
                prop_assert_eq!(gate.in_flight(), held.len());
            }
            held.clear();
            prop_assert_eq!(gate.in_flight(), 0);
        }
    }

    #[test]
    fn concurrent_callers_never_exceed_the_bound() {
        let gate = Admission::new(cfg(3));
        let peak = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (gate, peak) = (gate.clone(), peak.clone());
                s.spawn(move || {
                    for _ in 0..2000 {
                        if let Ok(p) = gate.enter() {
                            peak.fetch_max(gate.in_flight(), Ordering::Relaxed);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 3);
        assert_eq!(gate.in_flight(), 0);
    }
}
