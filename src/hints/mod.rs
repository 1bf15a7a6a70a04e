//! Durable hinted queues: the ordered **inter-DC streams** (one per remote
//! datacenter) and **hinted handoff** (one queue per peer of our datacenter).
//!
//! A mutation bound for a remote datacenter is appended to that datacenter's
//! queue in the same RocksDB batch as the local write ([`commit`]), before the client is acknowledged; [`deliver`]
//! drains each queue in sequence order over a bidirectional `Stream` RPC
//! (several batches in flight, one acknowledgement per batch), and [`receive`]
//! applies a batch to the receiving datacenter's replicas (hinting locally
//! for any that are down) before acknowledging. Redelivery is harmless:
//! sibling-set merge is idempotent.
//!
//! A level that needs a remote datacenter's acknowledgements appends to that
//! datacenter's **urgent lane** ([`queue::Lane`]) and waits on the entry's
//! acknowledgement ([`waiters`]), which reports how many replicas there
//! applied it: the wait goes through the stream, never around it, and never
//! behind a backlog.
//!
//! Nothing is dropped silently: a queue over its byte bound, or a node hint
//! older than the hint window, records the key's token range as needing
//! anti-entropy (meta column family, `geokv_repair_pending` gauge).
//!
//! # Layout (Cassandra's lines)
//! - [`commit`]: [`Commit`], what a write commits with its update (stream
//!   entries, intents) and the urgent entries appended after it;
//! - [`service`]: [`Hints`], what writers call: hint a node, wake the
//!   deliverers, the coordinators' waits;
//! - `store` (with `page`, `counts`): every engine read and write of the
//!   queues, on blocking threads; [`queue`]: the key and value format;
//! - [`deliver`] (the dispatcher): one task per destination, doing the I/O
//!   that [`schedule`] (pure: events in, actions out) decides;
//! - [`receive`]: the receiving service; [`intent`], [`waiters`], `fate`;
//!   [`moving`]: a hint whose key's range is moving also goes to the
//!   range's pending replicas; [`orphans`]: hints for a node that has
//!   left go to the key's current replicas instead.
//!
//! Must not: choose replicas for a client request or count its acks.

pub mod adopt;
pub mod commit;
mod counts;
pub mod deliver;
pub mod failure;
mod fate;
pub mod intent;
pub(crate) mod link;
pub mod moving;
pub mod orphans;
mod page;
pub mod queue;
pub mod receive;
pub(crate) mod schedule;
pub mod service;
mod store;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod throttle;
pub mod waiters;

pub use commit::Commit;
pub use service::Hints;

use crate::proto::v1::internode::StreamEntry;
use intent::Intent;
use queue::{Dest, Lane};
use std::time::Duration;
use waiters::StreamWait;

/// Hint and stream settings.
#[derive(Clone, Debug)]
pub struct HintsConfig {
    /// How long hints for a dead node are kept (Cassandra: 3 h). Older hints
    /// are recorded for anti-entropy instead of being replayed.
    pub hint_window: Duration,
    /// Per-destination backlog bound in bytes.
    pub max_backlog_bytes: u64,
    /// Upper bound of one batch (entries); batches grow towards it while the
    /// destination keeps up and shrink when it does not.
    pub max_batch_entries: usize,
    /// Upper bound of one batch in bytes.
    pub max_batch_bytes: usize,
}

impl Default for HintsConfig {
    fn default() -> Self {
        HintsConfig {
            hint_window: Duration::from_secs(24 * 3600),
            max_backlog_bytes: 4 << 30,
            max_batch_entries: 4096,
            max_batch_bytes: 4 << 20,
        }
    }
}

pub use crate::mutation::{awaits, Awaited};

/// What [`Commit::stream_append`] (or [`Commit::mint`]) added to a write
/// batch: the waits of its urgent entries, the intents for the other local
/// replicas, and the counts to take back should the batch not commit.
#[derive(Default)]
pub struct Appended {
    /// One per awaited datacenter whose queue took the entry.
    pub waits: Vec<StreamWait>,
    /// One per other local replica (see [`intent`]).
    pub intents: Vec<Intent>,
    pub(crate) counted: Vec<(Dest, Lane, u64)>,
}

pub(crate) use crate::clock::now_ms;

/// A queue entry before the store numbers it.
pub(crate) fn new_entry(
    keyspace: &str,
    key: &[u8],
    record: Vec<u8>,
    target_node: String,
    need_acks: u32,
) -> StreamEntry {
    StreamEntry {
        seq: 0,
        keyspace: keyspace.to_string(),
        key: key.to_vec(),
        record,
        target_node,
        traceparent: String::new(),
        need_acks,
        coordinator_pending: None,
        created_ms: None,
    }
}
