//! The adaptive streaming rate: how many rows to ask for per page and how
//! long to wait before the next page, from how long the last page took.
//!
//! Owns [`Rate`], a pure AIMD controller (no clocks: durations are inputs).
//! A page's fetch + apply time is the signal: it grows when the source's
//! engine, the network or this node's engine is busy with foreground
//! requests (they share the same disks, blocking threads and links), so a
//! stream backs off under load and speeds up when the cluster is idle,
//! instead of a fixed byte rate (Cassandra's 24 MiB/s cap). Additive
//! increase of the page size while pages take less than the target;
//! multiplicative decrease when one takes longer; at the smallest page,
//! growing pauses between pages. Must not sleep or do I/O: the driver does.

use std::time::Duration;

/// Bounds and target of the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// A page (fetch + apply) should take about this long.
    pub target: Duration,
    /// Rows per page at the start.
    pub initial_rows: u32,
    pub min_rows: u32,
    pub max_rows: u32,
    /// Rows added per page that met the target.
    pub step_rows: u32,
    /// The longest pause between pages when even the smallest page is slow.
    pub max_pause: Duration,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            target: Duration::from_millis(50),
            initial_rows: 64,
            min_rows: 16,
            max_rows: 4096,
            step_rows: 64,
            max_pause: Duration::from_secs(1),
        }
    }
}

/// The smallest pause the controller inserts once pages at `min_rows` are slow.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// AIMD over page size, then pauses.
#[derive(Clone, Debug)]
pub struct Rate {
    cfg: RateConfig,
    rows: u32,
    pause: Duration,
}

impl Rate {
    pub fn new(cfg: RateConfig) -> Rate {
        let rows = cfg
            .initial_rows
            .clamp(cfg.min_rows.max(1), cfg.max_rows.max(1));
        Rate {
            cfg,
            rows,
            pause: Duration::ZERO,
        }
    }

    /// Rows to ask for in the next page.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// How long to wait before fetching the next page.
    pub fn pause(&self) -> Duration {
        self.pause
    }

    /// A page of [`Rate::rows`] took `took` to fetch and apply.
    pub fn on_page(&mut self, took: Duration) {
        if took <= self.cfg.target {
            if self.pause > Duration::ZERO {
                self.pause /= 2;
                if self.pause < FIRST_PAUSE {
                    self.pause = Duration::ZERO;
                }
            } else {
                self.rows = (self.rows + self.cfg.step_rows).min(self.cfg.max_rows);
            }
        } else {
            self.slow_down();
        }
    }

    /// A page failed (timeout, source overloaded): back off as for a slow page.
    pub fn on_error(&mut self) {
        self.slow_down();
    }

    fn slow_down(&mut self) {
        let min = self.cfg.min_rows.max(1);
        if self.rows > min {
            self.rows = (self.rows / 2).max(min);
        } else {
            self.pause = (self.pause * 2).clamp(FIRST_PAUSE, self.cfg.max_pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_additively_while_fast_and_halves_when_slow() {
        let mut r = Rate::new(RateConfig::default());
        assert_eq!(r.rows(), 64);
        r.on_page(ms(10));
        r.on_page(ms(10));
        assert_eq!(r.rows(), 192);
        r.on_page(ms(80));
        assert_eq!(r.rows(), 96);
        for _ in 0..1000 {
            r.on_page(ms(1));
        }
        assert_eq!(r.rows(), 4096, "capped at max_rows");
        assert_eq!(r.pause(), Duration::ZERO);
    }

    #[test]
    fn pauses_only_once_the_smallest_page_is_slow_and_recovers() {
        let mut r = Rate::new(RateConfig::default());
        r.on_page(ms(500));
        r.on_page(ms(500));
        assert_eq!((r.rows(), r.pause()), (16, Duration::ZERO));
        r.on_page(ms(500));
        assert_eq!(r.pause(), ms(10));
        for _ in 0..20 {
            r.on_error();
        }
        assert_eq!(r.pause(), Duration::from_secs(1), "capped at max_pause");
        for _ in 0..6 {
            r.on_page(ms(1));
        }
        assert!(r.pause() > ms(15) && r.pause() < ms(16), "{:?}", r.pause());
        r.on_page(ms(1));
        assert_eq!((r.rows(), r.pause()), (16, Duration::ZERO));
        r.on_page(ms(1));
        assert_eq!(r.rows(), 80, "grows again once unpaused");
    }
}
