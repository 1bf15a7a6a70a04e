//! The adaptive streaming rate: how many rows to ask a peer for per page
//! and how long to wait before the next page, from how long pages take.
//!
//! Owns [`Rate`], a pure AIMD controller (no clocks: durations are inputs),
//! and [`Rates`], one per peer. A page's fetch + apply time is the signal:
//! it grows when the source's engine, the network or this node's engine is
//! busy with foreground requests (they share the same disks, blocking
//! threads and links), so a stream backs off under load and speeds up when
//! the cluster is idle, instead of a fixed byte rate (Cassandra's 24 MiB/s
//! cap). A page is judged against the peer's **fastest recent page** (the
//! quickest of its last `fastest_over` pages with rows: its round trip
//! and fixed costs, which neither the page size nor a pause can shorten):
//! it is slow when it takes more than `target` longer; a lasting change
//! of route becomes the new baseline once the older pages are forgotten. An
//! absolute target would count a remote datacenter's round trip alone as
//! load (issue 11: a 100 ms source shrank every page to 16 rows and paused
//! 1 s between them). Additive increase of the page size while full pages
//! are not slow; multiplicative decrease when one is; at the smallest page,
//! growing pauses between pages. An empty page (an empty range) moved
//! nothing: it is neither judged nor followed by a pause. Must not sleep or
//! do I/O: the driver does.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Bounds and target of the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// A page (fetch + apply) may take this much longer than the peer's
    /// fastest page before it counts as slow.
    pub target: Duration,
    /// Rows per page at the start.
    pub initial_rows: u32,
    pub min_rows: u32,
    pub max_rows: u32,
    /// Rows added per page that met the target.
    pub step_rows: u32,
    /// The longest pause between pages when even the smallest page is slow.
    pub max_pause: Duration,
    /// How many of the last pages with rows the fastest page is taken
    /// from: a lasting change of route (a slower path to the peer) becomes
    /// the new baseline after that many pages; so does load lasting that
    /// long, which is why it is large (over 1000 pages at the smallest
    /// size, with pauses of up to `max_pause` between them).
    pub fastest_over: usize,
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
            fastest_over: 1024,
        }
    }
}

/// The smallest pause the controller inserts once pages at `min_rows` are slow.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// AIMD over page size, then pauses, judged against the fastest page.
#[derive(Clone, Debug)]
pub struct Rate {
    cfg: RateConfig,
    rows: u32,
    pause: Duration,
    /// How long the last `fastest_over` pages with rows took, newest
    /// last; the quickest of them is the peer's round trip and fixed costs
    /// plus a little work.
    recent: VecDeque<Duration>,
    /// The last page was empty: it loaded nobody, so no pause follows.
    empty: bool,
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
            recent: VecDeque::new(),
            empty: false,
        }
    }

    /// Rows to ask for in the next page.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// How long to wait before fetching the next page: none after an
    /// empty page.
    pub fn pause(&self) -> Duration {
        if self.empty {
            Duration::ZERO
        } else {
            self.pause
        }
    }

    /// The fastest of the last `fastest_over` pages with rows; `None`
    /// before the first.
    pub fn fastest(&self) -> Option<Duration> {
        self.recent.iter().min().copied()
    }

    /// A page of [`Rate::rows`] came back with `got` rows and took `took`
    /// to fetch and apply.
    pub fn on_page(&mut self, took: Duration, got: u32) {
        self.empty = got == 0;
        if self.empty {
            // Nothing moved: no load to pace, and no sign of what a page
            // with rows costs (a pushed empty page may not even travel).
            return;
        }
        if self.recent.len() >= self.cfg.fastest_over.max(1) {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
        let fastest = self.fastest().unwrap_or(took);
        if took > fastest.saturating_add(self.cfg.target) {
            self.slow_down();
        } else if self.pause > Duration::ZERO {
            self.pause /= 2;
            if self.pause < FIRST_PAUSE {
                self.pause = Duration::ZERO;
            }
        } else if got >= self.rows {
            // Only a full page shows that a bigger one may be as fast.
            self.rows = (self.rows + self.cfg.step_rows).min(self.cfg.max_rows);
        }
    }

    /// A page failed (timeout, source overloaded): back off as for a slow page.
    pub fn on_error(&mut self) {
        self.empty = false;
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

/// One [`Rate`] per peer (a stream's sources, a push's gainers): each
/// peer's pages are judged against that peer's own fastest page, so a near
/// source does not make a far one look slow.
#[derive(Clone, Debug)]
pub struct Rates {
    cfg: RateConfig,
    by_peer: HashMap<String, Rate>,
}

impl Rates {
    pub fn new(cfg: RateConfig) -> Rates {
        Rates {
            cfg,
            by_peer: HashMap::new(),
        }
    }

    /// `peer`'s rate (a new one on first use).
    pub fn of(&mut self, peer: &str) -> &mut Rate {
        if !self.by_peer.contains_key(peer) {
            let rate = Rate::new(self.cfg.clone());
            self.by_peer.insert(peer.to_string(), rate);
        }
        self.by_peer.get_mut(peer).expect("inserted above")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A full page (as many rows as asked) that took `took`.
    fn full(r: &mut Rate, took: Duration) {
        let rows = r.rows();
        r.on_page(took, rows);
    }

    #[test]
    fn grows_additively_while_fast_and_halves_when_slow() {
        let mut r = Rate::new(RateConfig::default());
        assert_eq!(r.rows(), 64);
        full(&mut r, ms(10));
        full(&mut r, ms(10));
        assert_eq!(r.rows(), 192);
        full(&mut r, ms(80));
        assert_eq!(r.rows(), 96, "80 ms is more than 50 ms over the fastest");
        r.on_page(ms(1), 3);
        assert_eq!(
            r.rows(),
            96,
            "a short page shows nothing about a bigger one"
        );
        for _ in 0..1000 {
            full(&mut r, ms(1));
        }
        assert_eq!(r.rows(), 4096, "capped at max_rows");
        assert_eq!(r.pause(), Duration::ZERO);
    }

    #[test]
    fn pauses_only_once_the_smallest_page_is_slow_and_recovers() {
        let mut r = Rate::new(RateConfig::default());
        full(&mut r, ms(1));
        assert_eq!(r.rows(), 128);
        full(&mut r, ms(500));
        full(&mut r, ms(500));
        full(&mut r, ms(500));
        assert_eq!((r.rows(), r.pause()), (16, Duration::ZERO));
        full(&mut r, ms(500));
        assert_eq!(r.pause(), ms(10));
        for _ in 0..20 {
            r.on_error();
        }
        assert_eq!(r.pause(), Duration::from_secs(1), "capped at max_pause");
        for _ in 0..6 {
            full(&mut r, ms(1));
        }
        assert!(r.pause() > ms(15) && r.pause() < ms(16), "{:?}", r.pause());
        full(&mut r, ms(1));
        assert_eq!((r.rows(), r.pause()), (16, Duration::ZERO));
        full(&mut r, ms(1));
        assert_eq!(r.rows(), 80, "grows again once unpaused");
    }

    /// Issue 11: a removenode's empty ranges from a 100 ms source each
    /// cost a scan and a pause of up to 1 s.
    #[test]
    fn empty_pages_from_a_far_source_cost_no_pauses() {
        let mut r = Rate::new(RateConfig::default());
        let mut paused = Duration::ZERO;
        for _ in 0..300 {
            paused += r.pause();
            r.on_page(ms(100), 0);
        }
        assert_eq!(paused, Duration::ZERO);
        assert_eq!(
            r.rows(),
            64,
            "an empty page neither shrinks nor grows the page"
        );
        assert_eq!(r.fastest(), None, "nor tells what a page with rows costs");
        // A loaded source keeps its pause for the next page with rows.
        full(&mut r, ms(100));
        for _ in 0..30 {
            r.on_error();
        }
        r.on_page(ms(100), 0);
        assert_eq!(r.pause(), Duration::ZERO, "none after an empty page");
        full(&mut r, ms(2000));
        assert_eq!(r.pause(), Duration::from_secs(1));
    }

    #[test]
    fn a_steadily_far_source_grows_to_its_largest_page() {
        let mut r = Rate::new(RateConfig::default());
        for i in 0..100 {
            assert!(r.rows() >= 64 && r.pause() == Duration::ZERO, "page {i}");
            full(&mut r, ms(100 + i % 7));
        }
        assert_eq!(r.rows(), 4096);
        assert_eq!(r.fastest(), Some(ms(100)));
    }

    #[test]
    fn a_far_source_whose_pages_grow_slower_is_slowed_down() {
        let mut r = Rate::new(RateConfig::default());
        for _ in 0..20 {
            full(&mut r, ms(100));
        }
        let grown = r.rows();
        assert!(grown > 1000, "{grown}");
        for _ in 0..20 {
            full(&mut r, ms(400));
        }
        assert_eq!(r.rows(), 16);
        assert_eq!(r.pause(), Duration::from_secs(1));
        assert_eq!(
            r.fastest(),
            Some(ms(100)),
            "load does not raise the baseline"
        );
    }

    /// A lasting route change (every page 200 ms slower from then on, with
    /// no load) becomes the peer's new baseline once the faster pages are
    /// older than the window: the stream grows again instead of crawling
    /// at 16 rows with 1 s pauses for good (review Low of stop 24: the
    /// fastest page only ever went down).
    #[test]
    fn a_lasting_route_change_becomes_the_new_baseline() {
        let mut r = Rate::new(RateConfig::default());
        for _ in 0..10 {
            full(&mut r, ms(10));
        }
        for _ in 0..RateConfig::default().fastest_over {
            full(&mut r, ms(210));
        }
        assert_eq!(r.fastest(), Some(ms(210)), "the 10 ms pages are gone");
        for _ in 0..200 {
            full(&mut r, ms(210));
        }
        assert_eq!((r.rows(), r.pause()), (4096, Duration::ZERO));
    }

    #[derive(Clone, Debug)]
    enum Event {
        Page { took_ms: u64, got_pct: u8 },
        Error,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            8 => (0u64..3000, 0u8..=100).prop_map(|(took_ms, got_pct)| Event::Page { took_ms, got_pct }),
            1 => Just(Event::Error),
        ]
    }

    proptest! {
        /// Whatever the pages: the page size and pause stay in bounds, no
        /// pause follows an empty page, a page within `target` of the
        /// fastest never slows the stream and a slower one never speeds it
        /// up, and the fastest is the quickest of the last
        /// `fastest_over` pages with rows.
        #[test]
        fn decisions_follow_the_fastest_page(events in prop::collection::vec(event(), 1..300)) {
            let cfg = RateConfig { fastest_over: 16, ..RateConfig::default() };
            let mut r = Rate::new(cfg.clone());
            let mut recent: VecDeque<Duration> = VecDeque::new();
            for e in events {
                let (rows, pause) = (r.rows(), r.pause);
                match e {
                    Event::Error => {
                        r.on_error();
                        prop_assert!(r.rows() < rows || r.pause > pause || r.pause == cfg.max_pause);
                    }
                    Event::Page { took_ms, got_pct } => {
                        let took = Duration::from_millis(took_ms);
                        let got = rows * u32::from(got_pct) / 100;
                        r.on_page(took, got);
                        if got == 0 {
                            prop_assert_eq!(r.pause(), Duration::ZERO);
                            prop_assert_eq!((r.rows(), r.pause), (rows, pause));
                            continue;
                        }
                        recent.push_back(took);
                        if recent.len() > cfg.fastest_over {
                            recent.pop_front();
                        }
                        let f = *recent.iter().min().expect("one page");
                        prop_assert_eq!(r.fastest(), Some(f));
                        if took <= f + cfg.target {
                            prop_assert!(r.rows() >= rows && r.pause <= pause);
                        } else {
                            prop_assert!(r.rows() <= rows && r.pause >= pause);
                            prop_assert!(r.rows() < rows || r.pause > pause || r.pause == cfg.max_pause);
                        }
                    }
                }
                prop_assert!((cfg.min_rows..=cfg.max_rows).contains(&r.rows()));
                prop_assert!(r.pause() <= cfg.max_pause);
            }
        }
    }

    #[test]
    fn each_peer_has_its_own_fastest_page() {
        let mut rates = Rates::new(RateConfig::default());
        full(rates.of("near"), ms(1));
        full(rates.of("far"), ms(100));
        full(rates.of("far"), ms(100));
        assert_eq!(rates.of("far").rows(), 192, "not slow next to the near one");
        assert_eq!(rates.of("near").fastest(), Some(ms(1)));
    }
}
