//! Engine tests: the model test ([`model`]) and RocksDB behaviour
//! ([`rocks`]: limits, corruption, token ranges, merge operator, durability);
//! here, the helpers they share (sets, `put`, opening an engine).

mod latch;
mod model;
mod quarantine;
mod read_tier;
mod rocks;
mod stall;

use bytes::Bytes;

use crate::engine::{Engine, EngineOptions, RocksEngine, WriteBatch};
use crate::version::{ActorId, CausalContext, SiblingSet};

/// `set` with a new write by `actor` that supersedes what `set` holds.
pub(super) fn overwrite(set: &SiblingSet, actor: u64, value: Option<&[u8]>, ts: u64) -> SiblingSet {
    let mut next = set.clone();
    let ctx = set.context().clone();
    next.update(
        ActorId::from(actor),
        &ctx,
        value.map(Bytes::copy_from_slice),
        ts,
        64,
    )
    .expect("a superseding write stays under the sibling cap");
    next
}

/// A one-sibling set written by `actor` with no causal context.
pub(super) fn fresh(actor: u64, value: &[u8]) -> SiblingSet {
    let mut set = SiblingSet::default();
    set.update(
        ActorId::from(actor),
        &CausalContext::new(),
        Some(Bytes::copy_from_slice(value)),
        1,
        64,
    )
    .expect("first write");
    set
}

/// Writes a one-sibling `value` under `key` in `ks` (actor 1).
pub(super) fn put(engine: &dyn Engine, ks: &str, key: &[u8], value: &[u8]) {
    let mut b = WriteBatch::new();
    b.put_versions(ks, key, &fresh(1, value));
    engine.write(b).expect("put");
}

/// The canonical bytes of a set, for equality checks.
pub(super) fn enc(set: &SiblingSet) -> Vec<u8> {
    let mut out = Vec::new();
    set.encode(&mut out);
    out
}

pub(super) fn enc_opt(set: &Option<SiblingSet>) -> Option<Vec<u8>> {
    set.as_ref().map(enc)
}

/// A RocksEngine in `dir` with a small cache and the given options tweak.
pub(super) fn open(dir: &std::path::Path, tweak: impl FnOnce(&mut EngineOptions)) -> RocksEngine {
    let mut opts = EngineOptions {
        block_cache_bytes: 8 << 20,
        ..EngineOptions::default()
    };
    tweak(&mut opts);
    RocksEngine::open(dir, opts).expect("open RocksEngine")
}
