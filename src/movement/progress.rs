//! What this node reports about the movement it is streaming: a board per
//! node id (process-wide, so the admin port finds the one its node's
//! movement driver writes to without new wiring), read by `GET /movement`
//! and `geokv ring`.
//!
//! Owns [`Board`], [`board`] and [`Report`] (ranges done/total, keys and
//! bytes streamed, rate, ETA, steps held); what callers make of the
//! reports ([`movements`], [`phase`], [`verdict`]) is `progress_sum`'s,
//! re-exported here. Must not stream or change the layout.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

pub use super::progress_sum::{movements, phase, verdict, Held, MovementProgress, Warnings};
use super::stream::Progress;

/// The movement a node streams for, with its [`Progress`].
#[derive(Default)]
pub struct Board {
    current: Mutex<Option<Entry>>,
    liveness: Mutex<Option<IsUp>>,
    features: Mutex<Option<FeaturesOf>>,
    /// Movement name → why this node holds its step back (`held`).
    held: Mutex<BTreeMap<String, String>>,
}

/// This node's failure detector's verdict on a node id.
pub type IsUp = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The feature bits a node id advertises in this node's gossip table
/// (`None`: not heard).
pub type FeaturesOf = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

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

    /// The node's gossip table's feature bits, for the steps that wait for
    /// every member's build (`movement::upgrade`); set once the node runs.
    pub fn set_features(&self, features: FeaturesOf) {
        *self.features.lock() = Some(features);
    }

    /// The node's gossip table's feature bits, if gossip runs.
    pub fn features(&self) -> Option<FeaturesOf> {
        self.features.lock().clone()
    }

    /// Why this node, driving a step of `movement` (a removal's
    /// finisher), holds it back (the upgrade gate: `movement::upgrade`);
    /// `None` once it is no longer held. `GET /movement` shows it as
    /// `held` (review-elastic28 M2).
    pub fn hold(&self, movement: &str, why: Option<String>) {
        let mut held = self.held.lock();
        match why {
            Some(why) => held.insert(movement.to_string(), why),
            None => held.remove(movement),
        };
    }

    /// Movement name → why this node holds its step back.
    pub fn held(&self) -> BTreeMap<String, String> {
        self.held.lock().clone()
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

    /// Drops the report when `stale` says its movement is over (a
    /// withdrawn removal's: `remove::withdrawn`).
    pub fn clear_if(&self, stale: impl Fn(&str) -> bool) {
        let mut g = self.current.lock();
        if g.as_ref().is_some_and(|e| stale(&e.movement)) {
            *g = None;
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
