//! A repeated failure logged at warn at most once per period, each repeat
//! in between at debug: a failure that comes back every few seconds (a
//! stuck hand-over, a hint whose copy to a pending replica keeps failing)
//! must not flood the log.
//!
//! Must not: decide what is logged, only how often it is at warn.

use std::time::Duration;
use tokio::time::Instant;

/// When a repeated failure was last logged at warn.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    /// At warn at most once per `every`.
    pub const fn new(every: Duration) -> Self {
        Throttle { every, last: None }
    }

    /// Whether this repeat is logged at warn (the first, then one per
    /// period); else at debug.
    pub fn warn_now(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|w| now - w < self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_warn_per_period() {
        let mut t = Throttle::new(Duration::from_secs(30));
        let mut warned = 0;
        // A failure every 2 s for a minute: the first, and one 30 s later.
        for _ in 0..30 {
            warned += t.warn_now() as u32;
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert_eq!(warned, 2);
    }
}
