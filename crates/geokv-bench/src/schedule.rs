//! When each operation should start. Closed loop: as soon as a worker is
//! free. Open loop (`--target-rate`): operation `i` is scheduled at
//! `start + i / rate` whatever happened before, and its latency is measured
//! from that scheduled instant, so a stall shows up as queueing in every
//! operation it delayed instead of being hidden (coordinated omission).
//!
//! Pure arithmetic over `Instant`s; the runner does the sleeping.
//! Must not: sleep, send requests or record latencies.
use std::time::{Duration, Instant};

/// The start times of a phase.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval: Option<Duration>,
    end: Option<Instant>,
    operations: Option<u64>,
}

impl Schedule {
    /// `target_rate` (ops/s) makes it open loop; `operations` and/or
    /// `duration` bound the phase (a phase with neither never ends).
    pub fn new(
        start: Instant,
        target_rate: Option<f64>,
        operations: Option<u64>,
        duration: Option<Duration>,
    ) -> Self {
        let interval = target_rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        Schedule {
            start,
            interval,
            end: duration.map(|d| start + d),
            operations,
        }
    }

    /// When the phase started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// True for an open-loop schedule.
    pub fn is_open_loop(&self) -> bool {
        self.interval.is_some()
    }

    /// The scheduled start of operation `i`, `None` in a closed loop (start
    /// when a worker is free).
    pub fn intended(&self, i: u64) -> Option<Instant> {
        self.interval.map(|iv| self.start + iv.mul_f64(i as f64))
    }

    /// Whether operation `i` belongs to the phase, given the time `now` a
    /// closed-loop worker would start it.
    pub fn admits(&self, i: u64, now: Instant) -> bool {
        if self.operations.is_some_and(|n| i >= n) {
            return false;
        }
        let at = self.intended(i).unwrap_or(now);
        self.end.is_none_or(|end| at < end)
    }

    /// The instant a latency is measured from: the scheduled start in an
    /// open loop, else `now`.
    pub fn latency_origin(&self, i: u64, now: Instant) -> Instant {
        self.intended(i).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_schedules_at_fixed_intervals() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Some(1000.0), Some(100), None);
        assert!(s.is_open_loop());
        assert_eq!(s.intended(0), Some(t0));
        assert_eq!(s.intended(10), Some(t0 + Duration::from_millis(10)));
        assert_eq!(s.intended(1000), Some(t0 + Duration::from_secs(1)));
        // Measured from the schedule, not from when the worker got to it.
        let late = t0 + Duration::from_secs(5);
        assert_eq!(s.latency_origin(10, late), t0 + Duration::from_millis(10));
        assert!(s.admits(99, late) && !s.admits(100, t0));
    }

    #[test]
    fn closed_loop_measures_from_now_and_stops_at_the_deadline() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, None, None, Some(Duration::from_secs(2)));
        assert!(!s.is_open_loop());
        assert_eq!(s.intended(5), None);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(s.latency_origin(5, now), now);
        assert!(s.admits(1_000_000, now));
        assert!(!s.admits(0, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn open_loop_deadline_uses_the_schedule() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Some(10.0), None, Some(Duration::from_secs(1)));
        // Op 9 is due at 0.9 s, op 10 at 1.0 s: only ten ops fit.
        assert!(s.admits(9, t0));
        assert!(!s.admits(10, t0));
        // A zero or negative rate means closed loop.
        assert!(!Schedule::new(t0, Some(0.0), None, None).is_open_loop());
    }
}
