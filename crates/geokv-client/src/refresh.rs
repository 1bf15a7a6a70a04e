//! Keeping the node list current after `build()`: when to ask the cluster
//! for its members again, and how a new member list replaces the known one.
//!
//! Pure (sans-I/O): the caller feeds the clock, connection failures and
//! Status answers in and gets decisions out; `discovery.rs` owns the task that
//! sleeps, asks and swaps. Must not open channels or sleep.
use std::time::{Duration, Instant};

use crate::endpoints::NodeAddr;

/// The shortest gap between two refreshes that connection failures ask for,
/// so a dead node hit by every call does not turn into a Status storm.
pub(crate) const MIN_FAILURE_GAP: Duration = Duration::from_secs(1);

/// When the next refresh is due.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    interval: Duration,
    last: Instant,
    /// A connection failure since the last refresh.
    failed: bool,
}

impl Schedule {
    /// A schedule whose last refresh (discovery at `build()`) was at `now`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        Schedule {
            interval,
            last: now,
            failed: false,
        }
    }

    /// A node could not be reached: refresh soon (after [`MIN_FAILURE_GAP`]).
    pub fn connection_failed(&mut self) {
        self.failed = true;
    }

    /// When the next refresh is due: `interval` after the last one, or
    /// [`MIN_FAILURE_GAP`] after it once a connection failed.
    pub fn next_due(&self) -> Instant {
        let gap = if self.failed {
            MIN_FAILURE_GAP.min(self.interval)
        } else {
            self.interval
        };
        self.last + gap
    }

    /// Whether a refresh is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_due()
    }

    /// A refresh was made at `now` (whatever it found).
    pub fn refreshed(&mut self, now: Instant) {
        self.last = now;
        self.failed = false;
    }
}

/// How a discovered member list replaces the known one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merge {
    /// The new list, in the answer's order, each with the index of the
    /// known node of the same URL (whose channel is kept) if any.
    pub nodes: Vec<(NodeAddr, Option<usize>)>,
    /// URLs no longer in the cluster.
    pub removed: Vec<String>,
}

impl Merge {
    /// Whether anything changed: a node added or removed, or a known node's
    /// datacenter or health.
    pub fn changes(&self, known: &[NodeAddr]) -> bool {
        !self.removed.is_empty()
            || self.nodes.len() != known.len()
            || (self.nodes.iter()).any(|(n, i)| i.is_none_or(|i| known[i] != *n))
    }
}

/// Merges a Status answer's nodes into the `known` ones. An empty answer
/// changes nothing: a node that knows no members is not evidence that the
/// cluster has none.
pub(crate) fn merge(known: &[NodeAddr], discovered: Vec<NodeAddr>) -> Merge {
    if discovered.is_empty() {
        return Merge {
            nodes: known
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, n)| (n, Some(i)))
                .collect(),
            removed: Vec::new(),
        };
    }
    let removed = (known.iter())
        .filter(|k| !discovered.iter().any(|d| d.url == k.url))
        .map(|k| k.url.clone())
        .collect();
    let nodes = (discovered.into_iter())
        .map(|d| {
            let at = known.iter().position(|k| k.url == d.url);
            (d, at)
        })
        .collect();
    Merge { nodes, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str, dc: &str, up: bool) -> NodeAddr {
        NodeAddr {
            url: url.to_string(),
            datacenter: Some(dc.to_string()),
            up,
        }
    }

    #[test]
    fn a_refresh_is_due_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(30), t0);
        assert!(!s.due(t0 + Duration::from_secs(29)));
        assert!(s.due(t0 + Duration::from_secs(30)));
        s.refreshed(t0 + Duration::from_secs(31));
        assert!(!s.due(t0 + Duration::from_secs(60)));
        assert_eq!(s.next_due(), t0 + Duration::from_secs(61));
    }

    #[test]
    fn a_connection_failure_brings_the_refresh_forward_but_not_below_the_gap() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(30), t0);
        s.connection_failed();
        assert!(!s.due(t0 + MIN_FAILURE_GAP / 2));
        assert!(s.due(t0 + MIN_FAILURE_GAP));
        s.refreshed(t0 + MIN_FAILURE_GAP);
        // The failure was answered: back to the interval.
        assert!(!s.due(t0 + 2 * MIN_FAILURE_GAP));
        // An interval shorter than the gap is not lengthened by a failure.
        let mut fast = Schedule::new(Duration::from_millis(100), t0);
        fast.connection_failed();
        assert!(fast.due(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_joined_node_is_added_and_known_ones_keep_their_slots() {
        let known = [node("http://a", "dc1", true), node("http://b", "dc1", true)];
        let found = vec![
            node("http://a", "dc1", true),
            node("http://b", "dc1", true),
            node("http://c", "dc1", true),
        ];
        let m = merge(&known, found);
        let at: Vec<_> = m.nodes.iter().map(|(n, i)| (n.url.as_str(), *i)).collect();
        assert_eq!(
            at,
            [
                ("http://a", Some(0)),
                ("http://b", Some(1)),
                ("http://c", None)
            ]
        );
        assert!(m.removed.is_empty());
        assert!(m.changes(&known));
    }

    #[test]
    fn a_removed_node_is_forgotten() {
        let known = [node("http://a", "dc1", true), node("http://b", "dc2", true)];
        let m = merge(&known, vec![node("http://b", "dc2", true)]);
        assert_eq!(m.removed, ["http://a"]);
        assert_eq!(m.nodes, [(node("http://b", "dc2", true), Some(1))]);
        assert!(m.changes(&known));
    }

    #[test]
    fn health_changes_count_and_the_same_list_does_not() {
        let known = [node("http://a", "dc1", true), node("http://b", "dc1", true)];
        let same = merge(&known, known.to_vec());
        assert!(!same.changes(&known));
        let down = merge(
            &known,
            vec![
                node("http://a", "dc1", true),
                node("http://b", "dc1", false),
            ],
        );
        assert!(down.changes(&known));
        assert!(down.removed.is_empty());
    }

    #[test]
    fn an_empty_answer_keeps_every_known_node() {
        let known = [node("http://a", "dc1", true)];
        let m = merge(&known, Vec::new());
        assert_eq!(m.nodes, [(node("http://a", "dc1", true), Some(0))]);
        assert!(!m.changes(&known));
    }
}
