//! Applies reads and writes to this node's engine, for the local coordinator
//! and for peers (through the internode service, `node::internode`).
//!
//! Two write shapes, following Riak's coordinating-vnode model:
//! - [`Replica::update`]: the *coordinating replica* advances the key's dotted
//!   version vector with this node's actor id. It reads the local state under
//!   a per-key lock (the only read-before-write in the system: the new dot
//!   must follow this actor's last one), and stores the result as a RocksDB
//!   **merge** operand, so a concurrent [`Replica::apply`] is never overwritten.
//! - [`Replica::apply`]: every other replica merges the full record it is
//!   sent; no read, idempotent, order-free.
//!
//! Where the engine work runs is [`CallSite`]'s decision: inline on the
//! async worker unless writes wait for an fsync (`engine/call_site.rs`). Reads of
//! a range (pages, Merkle leaves: `merkle.rs`) are for the internode
//! server and repair. [`handle::Handle`] is one replica wherever it lives
//! (this one, or a peer's over `transport`): what every caller that is not
//! sure the replica is this node's goes through.
//!
//! Must not: choose replicas or count acknowledgements; talk to peers
//! outside `handle.rs`; hand out the engine.

mod batch;
pub mod gate;
pub mod gated;
pub mod handle;
pub mod merkle;
use crate::engine::CallSite;
pub use batch::BatchWrite;
pub use gate::Pass;

use crate::engine::{Engine, EngineError, WriteBatch};
use crate::error::GeokvError;
use crate::mutation::Mutation;
use crate::token::TokenRange;
use crate::version::{ActorId, Dot, SiblingSet};
use parking_lot::Mutex;
use std::sync::Arc;

/// The clock actor of `node` in `incarnation`.
fn actor_name(node: &str, incarnation: u64) -> String {
    format!("{node}#{incarnation:016x}")
}

/// A key and its record, as a page of a range holds them.
pub type Row = (Vec<u8>, SiblingSet);

/// Lock stripes for read-modify-write; a power of two.
const STRIPES: usize = 1024;

/// This node's replica role.
pub struct Replica {
    engine: Arc<dyn Engine>,
    /// The node id; the clock actor is it and the engine's incarnation.
    node: String,
    max_siblings: usize,
    /// Serialises `update` per key (striped by key hash): two updates of one
    /// key at this actor must see each other, or they would reuse a dot.
    locks: Vec<Mutex<()>>,
    /// Every write passes it (and every write of [`Replica::gated`]);
    /// [`Replica::close`] shuts it.
    gate: Arc<gate::Gate>,
    /// Where [`Replica::blocking`] runs.
    writes: CallSite,
}

impl Replica {
    /// A replica of node `node`, writing as the actor named by the node id
    /// and the engine's incarnation in use
    /// ([`incarnation`](crate::engine::incarnation)).
    pub fn new(engine: Arc<dyn Engine>, node: &str, max_siblings: usize) -> Self {
        Replica {
            node: node.to_string(),
            max_siblings,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            gate: Arc::default(),
            writes: CallSite::for_writes(&*engine),
            engine,
        }
    }

    /// The clock actor updates mint with now: `node#incarnation`. Read after
    /// the key (whose read may renew the incarnation).
    pub fn actor_name(&self) -> String {
        actor_name(&self.node, self.engine.incarnation().get())
    }

    /// The per-key sibling cap this replica enforces on updates.
    pub fn max_siblings(&self) -> usize {
        self.max_siblings
    }

    /// The leaves of this replica's Merkle tree of `depth` over `keyspace`'s
    /// `(start, end]` ([`merkle::merkle_leaves`]): a scan of the whole
    /// range, for a blocking thread.
    pub fn merkle_leaves(
        &self,
        keyspace: &str,
        range: TokenRange,
        depth: u32,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        merkle::merkle_leaves(&*self.engine, keyspace, range.start, range.end, depth)
    }

    /// One page of this replica's rows of `keyspace` in `range`, in key
    /// order after `after`: at most `limit` rows, and whether more follow.
    pub fn scan_page(
        &self,
        keyspace: &str,
        range: TokenRange,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), EngineError> {
        let mut rows =
            (self.engine).scan_token_range(keyspace, range.start, range.end, after, limit + 1)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    fn stripe(&self, keyspace: &str, key: &[u8]) -> &Mutex<()> {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(key, keyspace.len() as u64);
        &self.locks[(h as usize) & (STRIPES - 1)]
    }

    /// Advances the key of `m` with this node's actor. `also` adds entries
    /// to the same atomic batch (what `hints::commit` commits with a
    /// write). Returns the full new record to fan out to the other
    /// replicas, and the write's dot.
    pub fn update(
        &self,
        m: &Mutation,
        timestamp_ms: u64,
        also: impl FnOnce(&SiblingSet, &mut WriteBatch) -> Result<(), GeokvError>,
    ) -> Result<(SiblingSet, Dot), GeokvError> {
        let (keyspace, key) = (m.keyspace.as_str(), &m.key[..]);
        let _pass = self.open()?;
        // Waits off the worker: the holder may be in a stalled write.
        let _guard = crate::blocking::lock(self.stripe(keyspace, key));
        let mut set = self.engine.get_versions(keyspace, key)?.unwrap_or_default();
        let incarnation = self.engine.incarnation().for_minting();
        let actor = ActorId::from_node_id(&actor_name(&self.node, incarnation));
        let value = m.value.clone();
        let dot = match set.update(actor, &m.context, value, timestamp_ms, self.max_siblings) {
            Ok(dot) => dot,
            Err(e) => {
                // Refused before anything is written (the sibling cap: the
                // client is told to resolve first; or a forged context): no
                // acknowledged write is dropped.
                if matches!(e, crate::version::SiblingError::TooMany { .. }) {
                    metrics::counter!("geokv_sibling_cap_rejections_total").increment(1);
                }
                return Err(e.into());
            }
        };
        let mut batch = WriteBatch::new();
        batch.merge_versions(keyspace, key, &set);
        also(&set, &mut batch)?;
        self.engine.write(batch)?;
        Ok((set, dot))
    }

    /// Refuses every later write (updates, merges, pages: "shutting down,
    /// nothing applied", [`GeokvError::ShuttingDown`]) and returns once the
    /// writes in flight have committed. The final WAL sync and the
    /// clean-shutdown marker come after this, so they cover every write
    /// this replica ever acknowledged (a peer's batch on a connection still
    /// open is refused and kept by its sender), and no dot of this
    /// incarnation can commit after the marker: a power loss right after a
    /// clean stop cannot lose a dot the next start would then mint again
    /// (kv679). Waits at most `within` for the writes in flight
    /// ([`gate::CLOSE_WITHIN`] at shutdown): [`gate::Stuck`] when some are
    /// still running then, and the marker must not be written. Blocks;
    /// waits off the async worker.
    pub fn close(&self, within: std::time::Duration) -> Result<(), gate::Stuck> {
        crate::blocking::off_worker(|| self.gate.close(within))
    }

    /// Whether [`Replica::close`] has begun.
    pub fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// This node's engine for writers outside the replica (movement):
    /// every write passes this replica's gate, so [`Replica::close`] waits
    /// for those in flight and refuses later ones ([`gated::Gated`]).
    pub fn gated(&self) -> Arc<dyn Engine> {
        Arc::new(gated::Gated::new(self.engine.clone(), self.gate.clone()))
    }

    /// A pass for a write to this node's storage on the replica's behalf
    /// (a receiver's local hint for a peer): `close` waits until it is
    /// dropped; refused once the replica is closing.
    pub fn open(&self) -> Result<Pass<'_>, GeokvError> {
        self.gate.enter().map_err(|_| GeokvError::ShuttingDown)
    }

    /// Merges a record sent by a coordinator, a stream or read repair.
    pub fn apply(&self, keyspace: &str, key: &[u8], set: &SiblingSet) -> Result<(), GeokvError> {
        let _pass = self.open()?;
        let mut batch = WriteBatch::new();
        batch.merge_versions(keyspace, key, set);
        self.engine.write(batch)?;
        Ok(())
    }

    /// Merges a page of records (anti-entropy) in one atomic batch.
    pub fn apply_page(
        &self,
        keyspace: &str,
        rows: &[(Vec<u8>, SiblingSet)],
    ) -> Result<(), GeokvError> {
        let _pass = self.open()?;
        let mut batch = WriteBatch::new();
        for (key, set) in rows {
            batch.merge_versions(keyspace, key, set);
        }
        self.engine.write(batch)?;
        Ok(())
    }

    /// This node's copy of a key.
    pub fn read(&self, keyspace: &str, key: &[u8]) -> Result<Option<SiblingSet>, GeokvError> {
        Ok(self.engine.get_versions(keyspace, key)?)
    }

    /// Runs engine work that may write where [`CallSite::for_writes`] puts
    /// it (the blocking pool only under `Durability::Sync`), in the caller's
    /// span (so what it writes carries the request's trace context).
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, GeokvError>
    where
        T: Send + 'static,
        F: FnOnce(&Replica) -> Result<T, GeokvError> + Send + 'static,
    {
        let me = self.clone();
        self.writes
            .run(move || f(&me))
            .await
            .map_err(|e| GeokvError::Internal(format!("replica task: {e}")))?
    }

    /// Runs page-sized engine work (a repair page: many keys in one batch)
    /// on the blocking pool whatever the durability, in the caller's span.
    pub async fn on_pool<T, F>(self: &Arc<Self>, f: F) -> Result<T, GeokvError>
    where
        T: Send + 'static,
        F: FnOnce(&Replica) -> Result<T, GeokvError> + Send + 'static,
    {
        let me = self.clone();
        CallSite::BlockingPool
            .run(move || f(&me))
            .await
            .map_err(|e| GeokvError::Internal(format!("replica task: {e}")))?
    }

    /// This node's copy of a key, read on the calling worker: a point read
    /// from the memtable or block cache takes microseconds.
    pub async fn reading(
        &self,
        keyspace: &str,
        key: &[u8],
    ) -> Result<Option<SiblingSet>, GeokvError> {
        self.read(keyspace, key)
    }
}

#[cfg(test)]
#[path = "close_tests.rs"]
mod close_tests;
#[cfg(test)]
mod incarnation_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    /// Issue 13: a write's remote-DC stream entry is appended inside
    /// `blocking`, and stores the trace context current there; it was empty
    /// (no span is current on a blocking thread), so the remote apply fell
    /// out of the write's trace whenever the coordinator was a replica.
    #[tokio::test]
    async fn blocking_work_runs_in_the_callers_trace() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _default = tracing::subscriber::set_default(subscriber);
        let replica = Arc::new(Replica::new(
            Arc::new(MemoryEngine::new(Limits::default())),
            "n1",
            8,
        ));
        let span = tracing::info_span!("coordinator.write");
        let (outside, inside) = {
            let _in = span.enter();
            (
                crate::telemetry::current_traceparent(),
                replica
                    .blocking(|_| Ok(crate::telemetry::current_traceparent()))
                    .await
                    .unwrap(),
            )
        };
        assert!(!outside.is_empty(), "the span has a trace context");
        assert_eq!(inside, outside, "the blocking task sees the caller's span");
    }
}
