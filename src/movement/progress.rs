//! What this node reports about the movement it is streaming: a board per
//! node id (process-wide, so the admin port finds the one its node's
//! movement driver writes to without new wiring), read by `GET /movement`
//! and `geokv ring`.
//!
//! Owns [`Board`], [`board`] and [`Report`] (ranges done/total, keys and
//! bytes streamed, rate, ETA). Must not stream or change the layout.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use super::stream::Progress;

/// The movement a node streams for, with its [`Progress`].
#[derive(Default)]
pub struct Board {
    current: Mutex<Option<Entry>>,
    liveness: Mutex<Option<IsUp>>,
}

/// This node's failure detector's verdict on a node id.
pub type IsUp = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Entry {
    movement: String,
    layout_version: u64,
    started: Instant,
    progress: Arc<Progress>,
    status: String,
    warnings: Vec<String>,
}

/// A movement's progress as `GET /movement` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Report {
    /// E.g. "replacement of dc1-n2 by dc1-n9".
    pub movement: String,
    /// `streaming`, `waiting: …` (why it retries), `failed: …` or `done`.
    pub status: String,
    /// The layout version this status is about (the movement's pass
    /// started on it); 0 from nodes that send none. A status from before
    /// the layout a caller acted on (a `removenode --force`) is stale.
    #[serde(default)]
    pub layout_version: u64,
    pub ranges_done: u64,
    pub ranges_total: u64,
    pub keys: u64,
    pub bytes: u64,
    pub elapsed_secs: f64,
    pub keys_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Estimated seconds left, from the ranges done so far.
    pub eta_secs: Option<f64>,
    /// What the operator should know, e.g. the ranges a forced removal
    /// copied from fewer survivors than a quorum needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The board of node `node_id` in this process.
pub fn board(node_id: &str) -> Arc<Board> {
    static BOARDS: OnceLock<Mutex<HashMap<String, Arc<Board>>>> = OnceLock::new();
    BOARDS
        .get_or_init(Default::default)
        .lock()
        .entry(node_id.to_string())
        .or_default()
        .clone()
}

impl Board {
    /// The node's failure detector, for admin operations that refuse live
    /// nodes (`POST /removenode`); set once the node runs.
    pub fn set_liveness(&self, is_up: IsUp) {
        *self.liveness.lock() = Some(is_up);
    }

    /// The node's failure detector, if it runs.
    pub fn liveness(&self) -> Option<IsUp> {
        self.liveness.lock().clone()
    }

    /// `movement` starts (or resumes) streaming into `progress`, on
    /// layout `layout_version`.
    pub fn start(&self, movement: &str, layout_version: u64, progress: Arc<Progress>) {
        *self.current.lock() = Some(Entry {
            movement: movement.to_string(),
            layout_version,
            started: Instant::now(),
            progress,
            status: "streaming".into(),
            warnings: Vec::new(),
        });
    }

    /// The movement's warnings (replacing earlier ones).
    pub fn warn(&self, warnings: Vec<String>) {
        if let Some(e) = self.current.lock().as_mut() {
            e.warnings = warnings;
        }
    }

    /// The movement's status line (`streaming`, `waiting: …`, `done`).
    pub fn status(&self, status: &str) {
        if let Some(e) = self.current.lock().as_mut() {
            e.status = status.to_string();
        }
    }

    /// The movement this node streams for, if any.
    pub fn report(&self) -> Option<Report> {
        let g = self.current.lock();
        let e = g.as_ref()?;
        let p = e.progress.snapshot();
        let secs = e.started.elapsed().as_secs_f64().max(1e-3);
        let eta = (p.ranges_done > 0 && e.status != "done").then(|| {
            let per = secs / p.ranges_done as f64;
            per * p.ranges_total.saturating_sub(p.ranges_done) as f64
        });
        Some(Report {
            movement: e.movement.clone(),
            status: e.status.clone(),
            layout_version: e.layout_version,
            ranges_done: p.ranges_done,
            ranges_total: p.ranges_total,
            keys: p.keys,
            bytes: p.bytes,
            elapsed_secs: secs,
            keys_per_sec: p.keys as f64 / secs,
            bytes_per_sec: p.bytes as f64 / secs,
            eta_secs: eta,
            warnings: e.warnings.clone(),
        })
    }
}

/// Per gainer, its warnings about a movement.
pub type Warnings = BTreeMap<String, Vec<String>>;

/// What the gainers' reports say of movement `name` to a caller that
/// requested it at layout `since` (`geokv removenode`): the first gainer
/// that failed on that layout or a later one, with why (a `failed:` left
/// from before, e.g. the unforced attempt a `--force` follows, is stale and
/// ignored; a report without a version counts), and every gainer's
/// warnings about it.
pub fn verdict(
    reports: &[(String, Report)],
    name: &str,
    since: u64,
) -> (Option<(String, String)>, Warnings) {
    let current = |r: &&(String, Report)| {
        r.1.movement == name && (r.1.layout_version == 0 || r.1.layout_version >= since)
    };
    let failed = (reports.iter().filter(current))
        .find_map(|(id, r)| Some((id.clone(), r.status.strip_prefix("failed: ")?.to_string())));
    let warnings = (reports.iter().filter(current))
        .filter(|(_, r)| !r.warnings.is_empty())
        .map(|(id, r)| (id.clone(), r.warnings.clone()))
        .collect();
    (failed, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: &str, version: u64, warnings: &[&str]) -> Report {
        Report {
            movement: "removal of x".into(),
            status: status.into(),
            layout_version: version,
            ranges_done: 0,
            ranges_total: 0,
            keys: 0,
            bytes: 0,
            elapsed_secs: 0.0,
            keys_per_sec: 0.0,
            bytes_per_sec: 0.0,
            eta_secs: None,
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// `removenode --force` at layout 7 after an unforced attempt failed
    /// at 6: the gainer's `failed:` from 6, still on its board until it
    /// sees 7, does not end the command; one at 7 does; the warnings of
    /// the forced pass are kept, those of other movements are not.
    #[test]
    fn a_failure_from_before_the_forced_layout_is_stale() {
        let name = "removal of x";
        let stale = vec![("a".to_string(), report("failed: short", 6, &[]))];
        assert_eq!(verdict(&stale, name, 7).0, None);
        let now = vec![("a".to_string(), report("failed: short", 7, &[]))];
        assert_eq!(verdict(&now, name, 7).0, Some(("a".into(), "short".into())));
        let old_peer = vec![("a".to_string(), report("failed: short", 0, &[]))];
        assert!(
            verdict(&old_peer, name, 7).0.is_some(),
            "no version: counts"
        );
        let mut other = report("done", 9, &["w2"]);
        other.movement = "removal of y".into();
        let done = vec![
            ("a".to_string(), report("done", 7, &["w1"])),
            ("b".to_string(), other),
        ];
        let (failed, warnings) = verdict(&done, name, 7);
        assert_eq!(failed, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings["a"], vec!["w1".to_string()]);
    }
}
