//! What this node reports about the movement it is streaming: a board per
//! node id (process-wide, so the admin port finds the one its node's
//! movement driver writes to without new wiring), read by `GET /movement`
//! and `geokv ring`.
//!
//! Owns [`Board`], [`board`] and [`Report`] (ranges done/total, keys and
//! bytes streamed, rate, ETA). Must not stream or change the layout.

use std::collections::HashMap;
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
    /// `streaming`, `waiting: …` (why it retries) or `done`.
    pub status: String,
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

    /// `movement` starts (or resumes) streaming into `progress`.
    pub fn start(&self, movement: &str, progress: Arc<Progress>) {
        *self.current.lock() = Some(Entry {
            movement: movement.to_string(),
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
