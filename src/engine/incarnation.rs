//! The data directory's incarnation (meta CF key `incarnation`), mixed into
//! the node's clock actor, and the clean-shutdown marker (`clean_shutdown`)
//! that decides when it changes: Riak's fix for kv679.
//!
//! Owns that decision. Must not know what an actor or a dot is beyond this:
//! it stores and returns a random `u64`.
//!
//! # Why
//!
//! A node mints dots `(actor, n)` from the counters it has stored. If it
//! restarts on an older copy of its data (under `Durability::Periodic` an OS
//! crash or power loss drops up to an interval of acknowledged WAL; or a
//! restored copy), its counters are behind the dots other replicas already
//! hold, and it would mint them again for different values: on merge one of
//! two acknowledged writes disappears, or a new write is dropped as already
//! overwritten. So only a start that follows a clean shutdown (every write
//! synced, then the marker written, synced) keeps the incarnation; any other
//! start (SIGKILL, power loss, a copy taken while the node ran) gets a new
//! one, persisted and synced before the node serves, so its dots are new.
//!
//! # Cost
//!
//! Each new incarnation is a new actor in the clocks of the keys the node
//! coordinates afterwards (8 bytes + a counter per key it writes). Planned
//! restarts add nothing; the growth is bounded by the number of unclean
//! starts of the key's coordinating replicas, as in Riak (whose vnode ids
//! change the same way), plus one per minting run that met a quarantined
//! record (below; rare: disk corruption or a format downgrade). A copy taken *after* a clean shutdown carries the
//! marker: restore it only once, or delete `clean_shutdown` first.
//!
//! # Renewed by a quarantine
//!
//! Operands the read path sets aside ([`super::quarantine`]) may hold this
//! node's newest write of their key, whose dot is then missing from the
//! key's clock: the same hazard as a lost WAL tail, for one key. The set-aside
//! batch therefore also writes a new incarnation ([`Current::renew_into`]),
//! and updates mint with the incarnation in use ([`Current::get`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Cf, Engine, EngineError, WriteBatch};

const INCARNATION: &[u8] = b"incarnation";
const CLEAN_SHUTDOWN: &[u8] = b"clean_shutdown";

/// What [`on_start`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The incarnation to write as until the next start.
    pub incarnation: u64,
    /// True when the previous shutdown was clean and its incarnation is kept.
    pub kept: bool,
    /// True on the first start of this data directory (nothing to lose).
    pub first: bool,
}

/// Decides the incarnation for this start and consumes the marker; both are
/// durable (synced) when this returns, before the node may mint a dot.
pub fn on_start(engine: &dyn Engine) -> Result<Start, EngineError> {
    let stored = engine
        .get_raw(Cf::Meta, INCARNATION)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_le_bytes);
    let marker = engine.get_raw(Cf::Meta, CLEAN_SHUTDOWN)?;
    let mut batch = WriteBatch::new();
    batch.delete_raw(Cf::Meta, CLEAN_SHUTDOWN);
    let start = match stored {
        // The marker names the incarnation it closed: one copied from
        // elsewhere does not vouch for this one.
        Some(inc) if marker.as_deref() == Some(&inc.to_le_bytes()[..]) => Start {
            incarnation: inc,
            kept: true,
            first: false,
        },
        _ => {
            let inc = loop {
                let candidate: u64 = rand::random();
                if Some(candidate) != stored {
                    break candidate;
                }
            };
            batch.put_raw(Cf::Meta, INCARNATION, &inc.to_le_bytes());
            Start {
                incarnation: inc,
                kept: false,
                first: stored.is_none(),
            }
        }
    };
    engine.write(batch)?;
    engine.flush()?;
    // A kept incarnation minted dots before this start.
    engine.incarnation().set(start.incarnation, start.kept);
    Ok(start)
}

/// The incarnation in use, held by the engine: set by [`on_start`], renewed
/// when the read path sets operands aside, read by every update that mints.
#[derive(Debug, Default)]
pub struct Current {
    value: AtomicU64,
    /// Whether `value` may have minted a dot. Only then can set-aside bytes
    /// hold one of its dots, and only then does a set-aside renew it (a
    /// sweep over many bad records renews once, not once per record).
    minted: AtomicBool,
    renewing: Mutex<()>,
}

impl Current {
    /// The incarnation in use.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::SeqCst)
    }

    /// The incarnation an update mints with now, marked as having minted.
    /// Marked before it is returned, and re-read after the mark, so a
    /// renewal never clears the mark of the value an update then uses.
    pub fn for_minting(&self) -> u64 {
        loop {
            let v = self.get();
            self.minted.store(true, Ordering::SeqCst);
            if self.get() == v {
                return v;
            }
        }
    }

    fn set(&self, incarnation: u64, minted: bool) {
        self.minted.store(minted, Ordering::SeqCst);
        self.value.store(incarnation, Ordering::SeqCst);
    }

    /// Writes `batch`, with a new incarnation in it if the one in use may
    /// have minted a dot. The new value is in use before the batch is
    /// visible, so an update that reads what the batch changed already
    /// mints with it. If the write fails the value stays in use,
    /// unpersisted: the next start's marker check then fails and picks
    /// another, which is safe.
    pub(crate) fn renew_into(
        &self,
        mut batch: WriteBatch,
        write: impl FnOnce(WriteBatch) -> Result<(), EngineError>,
    ) -> Result<Option<u64>, EngineError> {
        let _one_at_a_time = self.renewing.lock();
        if !self.minted.load(Ordering::SeqCst) {
            write(batch)?;
            return Ok(None);
        }
        let old = self.get();
        let new = loop {
            let candidate: u64 = rand::random();
            if candidate != old {
                break candidate;
            }
        };
        batch.put_raw(Cf::Meta, INCARNATION, &new.to_le_bytes());
        self.set(new, false);
        write(batch)?;
        Ok(Some(new))
    }
}

/// Records a clean shutdown of the incarnation in use: syncs every write
/// made so far, then writes the marker and syncs it. Call it last, after the
/// servers that mint dots have stopped.
pub fn on_clean_shutdown(engine: &dyn Engine) -> Result<(), EngineError> {
    engine.flush()?;
    // No renewal between reading the incarnation and syncing the marker (one
    // after it makes the next start unclean, which is safe).
    let current = engine.incarnation();
    let _no_renewal = current.renewing.lock();
    let incarnation = current.get();
    let mut batch = WriteBatch::new();
    batch.put_raw(Cf::Meta, CLEAN_SHUTDOWN, &incarnation.to_le_bytes());
    engine.write(batch)?;
    engine.flush()
}
