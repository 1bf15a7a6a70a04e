//! Fault injection on internode links: per-datacenter delay and cut links,
//! checked on every outgoing call and every incoming one. Enabled only when a
//! node runs with `--fault-injection` (tests and `geokv dev`); driven over the
//! admin HTTP port (`POST /faults/...`). Runs unprivileged, unlike netem.
//!
//! A *target* is a node id or a datacenter name. Cutting `dc2` on every node
//! of dc1 (and the reverse) partitions the two datacenters.
//!
//! One node fault: *crash after write* makes this node SIGKILL itself right
//! after the next write it coordinates for a peer has committed, before it
//! replies (the ambiguous failure a caller must not retry elsewhere).
//! Another, *refuse adoption*, makes this node refuse every `Adopt` batch
//! a node that has left offers it (every entry acknowledged not applied,
//! so the leaver keeps it): a drain that cannot hand anything over.

use crate::topology::NodeInfo;
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The link to this peer is cut.
#[derive(Debug, Clone, Copy)]
pub struct LinkCut;

/// Delay and cut rules of one node.
#[derive(Default, Debug)]
pub struct Faults {
    enabled: bool,
    rules: RwLock<Rules>,
    /// Armed by [`Faults::arm_crash_after_write`], taken by
    /// [`Faults::crash_if_armed`].
    crash_after_write: AtomicBool,
    /// Set by [`Faults::hold_layouts`]: layouts offered by gossip or pushed
    /// by peers are ignored (a coordinator left on an older view).
    hold_layouts: AtomicBool,
    /// Set by [`Faults::refuse_adoption`]: `Adopt` batches are refused.
    refuse_adoption: AtomicBool,
    /// Armed by [`Faults::arm_stall_next_write`], taken by
    /// [`Faults::stall_if_armed`].
    stall_next_write: AtomicBool,
}

#[derive(Default, Debug, Clone, serde::Serialize)]
struct Rules {
    /// Node ids or datacenter names we neither call nor answer.
    cut: BTreeSet<String>,
    /// Extra one-way delay to peers of a datacenter (ms).
    delay_ms: BTreeMap<String, u64>,
}

impl Faults {
    /// A fault table; with `enabled == false` every rule change is refused.
    pub fn new(enabled: bool) -> Self {
        Faults {
            enabled,
            rules: RwLock::new(Rules::default()),
            crash_after_write: AtomicBool::new(false),
            hold_layouts: AtomicBool::new(false),
            refuse_adoption: AtomicBool::new(false),
            stall_next_write: AtomicBool::new(false),
        }
    }

    /// Whether rules may be set.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn matches(rules: &Rules, peer: &NodeInfo) -> bool {
        rules.cut.contains(&peer.id) || rules.cut.contains(&peer.dc)
    }

    /// Checks a call from `me` to `peer`: `Err` when cut, else the one-way delay.
    pub fn outgoing(&self, me: &NodeInfo, peer: &NodeInfo) -> Result<Option<Duration>, LinkCut> {
        if !self.enabled {
            return Ok(None);
        }
        let r = self.rules.read();
        if Self::matches(&r, peer) {
            return Err(LinkCut);
        }
        if peer.dc == me.dc {
            return Ok(None);
        }
        Ok(r.delay_ms
            .get(&peer.dc)
            .map(|ms| Duration::from_millis(*ms)))
    }

    /// Whether an incoming call from `peer` must be refused.
    pub fn incoming_cut(&self, peer: &NodeInfo) -> bool {
        self.enabled && Self::matches(&self.rules.read(), peer)
    }

    /// Cuts the link to a node or datacenter.
    pub fn cut(&self, target: &str) -> bool {
        if self.enabled {
            self.rules.write().cut.insert(target.to_string());
        }
        self.enabled
    }

    /// Heals a cut (`"*"` heals every cut).
    pub fn heal(&self, target: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let mut r = self.rules.write();
        if target == "*" {
            r.cut.clear();
        } else {
            r.cut.remove(target);
        }
        true
    }

    /// Sets the one-way delay towards a datacenter (0 removes it).
    pub fn set_delay(&self, dc: &str, ms: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let mut r = self.rules.write();
        if ms == 0 {
            r.delay_ms.remove(dc);
        } else {
            r.delay_ms.insert(dc.to_string(), ms);
        }
        true
    }

    /// Makes the node ignore (`on`) or take again the layouts gossip and
    /// peers' pushes offer it, so it stays on its view and plans requests
    /// on it. Layouts it fetches itself (a coordinator that a replica
    /// refused as stale, `coordinator::newer_view`) are still installed.
    pub fn hold_layouts(&self, on: bool) -> bool {
        if self.enabled {
            self.hold_layouts.store(on, Ordering::SeqCst);
        }
        self.enabled
    }

    /// Whether offered layouts are ignored ([`Faults::hold_layouts`]).
    pub fn holds_layouts(&self) -> bool {
        self.enabled && self.hold_layouts.load(Ordering::SeqCst)
    }

    /// Makes the node refuse (`on`) or take again the batches a node that
    /// has left offers it for adoption (`hints::adopt`): refused, each
    /// entry is acknowledged not applied and stays with the leaver.
    pub fn refuse_adoption(&self, on: bool) -> bool {
        if self.enabled {
            self.refuse_adoption.store(on, Ordering::SeqCst);
        }
        self.enabled
    }

    /// Whether `Adopt` batches are refused ([`Faults::refuse_adoption`]).
    pub fn refuses_adoption(&self) -> bool {
        self.enabled && self.refuse_adoption.load(Ordering::SeqCst)
    }

    /// Makes the node kill itself after the next write it commits for a peer.
    pub fn arm_crash_after_write(&self) -> bool {
        if self.enabled {
            self.crash_after_write.store(true, Ordering::SeqCst);
        }
        self.enabled
    }

    /// Called once such a write has committed, before replying: SIGKILLs
    /// this process when armed (no flush, no reply, like a power cut of the
    /// process; the committed WAL survives in the page cache).
    pub fn crash_if_armed(&self) {
        if self.enabled && self.crash_after_write.swap(false, Ordering::SeqCst) {
            tracing::warn!("fault injection: crashing after a committed write");
            // SAFETY: plain libc calls on our own pid.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }

    /// Makes the next batch of replica writes from a peer stall for good
    /// (a hung disk, for the node's bounded close).
    pub fn arm_stall_next_write(&self) -> bool {
        if self.enabled {
            self.stall_next_write.store(true, Ordering::SeqCst);
        }
        self.enabled
    }

    /// Called where a batch of replica writes runs (`node::internode`):
    /// when armed, holds what `enter` returns (the replica's write pass)
    /// and never returns, as a write stuck in a stalled engine would; the
    /// node's close then finds it still running (exit 1, no clean-shutdown
    /// marker).
    pub fn stall_if_armed<P>(&self, enter: impl FnOnce() -> P) {
        if self.enabled && self.stall_next_write.swap(false, Ordering::SeqCst) {
            let _held = enter();
            tracing::warn!("fault injection: a replica write stalls for good");
            loop {
                std::thread::park();
            }
        }
    }

    /// The rules as JSON, for `GET /faults`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&*self.rules.read()).unwrap_or_default()
    }
}
