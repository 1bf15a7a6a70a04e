//! ⑥ The storage engine: the [`Engine`] trait every other module stores
//! through, its typed [`EngineError`], the write [`Limits`], the
//! [`Durability`] setting and the caller-built [`WriteBatch`].
//!
//! This module owns the on-disk key layout and the storage contract. It must
//! not know about replication, consistency levels or the network, and it must
//! not import `rocksdb`: only [`rocks`] (and its submodules) does, so the rest
//! of the crate compiles against the trait alone.
//!
//! # Layout
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the trait, errors, limits, durability |
//! | [`batch`] | [`WriteBatch`] and its checks (limits, records that decode; run before anything is written) |
//! | [`boot`] | whether the OS restarted since the last start (unsynced writes may be gone) |
//! | `call_site` | `CallSite`: where engine work runs, inline or on the blocking pool (feature `server`) |
//! | [`incarnation`] | the clock actor's incarnation and the clean-shutdown marker (kv679) |
//! | [`quarantine`] | merge operands that do not decode: set aside, never fatal |
//! | [`keys`] | the data-CF key codec and token-range → key-range planning (pure) |
//! | [`rocks`] | [`RocksEngine`], the product engine: CFs, merge operator, durability |
//! | [`stats`] | [`EngineStats`], the typed snapshot the admin port publishes |
//! | [`memory`] | [`MemoryEngine`], a `BTreeMap` twin for pure and model tests |
//!
//! # Column families
//!
//! * `data`: key `[keyspace_len u8][keyspace][token u64 BE][user key]`, value a
//!   format-versioned encoded [`SiblingSet`]. Token-range scans (repair,
//!   streaming) are therefore sequential reads.
//! * `hints`, `meta`: opaque bytes owned by the hints and node modules, except
//!   the meta keys `incarnation`, `clean_shutdown` ([`incarnation`]) and
//!   `quarantine/…` ([`quarantine`]).
//!
//! # Durability
//!
//! | [`Durability`] | `write` returns after | survives a process crash (SIGKILL) | survives power loss |
//! |---|---|---|---|
//! | `Sync` | WAL written **and fsynced** (group commit: concurrent writers share one fsync) | yes | yes |
//! | `Periodic { interval_ms }` | WAL written to the OS; a background thread fsyncs it every `interval_ms` | yes | all but the last ≤ `interval_ms` (see below) |
//! | `None` | memtable only, no WAL (benchmarks only) | no: everything since the last flush is lost | no |
//!
//! What a power loss under `Periodic` costs: this node forgets the writes of
//! the last interval. A write acknowledged by other replicas too (any level
//! above ONE, or ONE once fan-out, hints or streams reached them) is still
//! there and comes back by read repair and anti-entropy; a write acknowledged
//! by this node alone (ONE/ANY before its fan-out landed) is lost. Use `Sync`
//! where that matters. The node itself never makes it worse: a start without
//! the clean-shutdown marker takes a new [`incarnation`], so it never mints
//! again a dot it minted in the lost interval (Riak's kv679).

pub mod batch;
pub mod boot;
// Where engine work runs (inline or on tokio's blocking pool, in the
// caller's span): a node's concern, so only with `server` (telemetry).
#[cfg(feature = "server")]
pub mod call_site;
pub mod incarnation;
pub mod keys;
pub mod memory;
pub mod quarantine;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;

pub use batch::WriteBatch;
#[cfg(feature = "server")]
pub use call_site::CallSite;
pub use memory::MemoryEngine;
#[cfg(feature = "rocksdb")]
pub use rocks::{EngineOptions, RocksEngine};
pub use stats::EngineStats;

use crate::version::SiblingSet;

/// A column family. Names on disk: `"data"`, `"hints"`, `"meta"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Versioned user data; keys use the layout in [`keys`].
    Data,
    /// Hinted-handoff streams (owned by `hints`).
    Hints,
    /// Node metadata (owned by `node` and friends).
    Meta,
}

impl Cf {
    /// Every column family, in a fixed order.
    pub const ALL: [Cf; 3] = [Cf::Data, Cf::Hints, Cf::Meta];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Data => "data",
            Cf::Hints => "hints",
            Cf::Meta => "meta",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A raw `(key, value)` pair, as [`Engine::scan_raw`] returns them.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// Size limits, checked for every entry of a batch before anything is written.
///
/// Data writes: the user key against `max_key_bytes`, every sibling value
/// against `max_value_bytes`. Raw writes (`hints`, `meta`, or `data` written
/// raw): the key against `max_raw_key_bytes` and the value against
/// `max_raw_value_bytes`, which leave room for the framing those modules add
/// around a user key and an encoded sibling set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest user key, in bytes.
    pub max_key_bytes: usize,
    /// Largest user value (one sibling), in bytes.
    pub max_value_bytes: usize,
    /// Largest raw key, in bytes.
    pub max_raw_key_bytes: usize,
    /// Largest raw value, in bytes.
    pub max_raw_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_raw_key_bytes: 4096,
            max_raw_value_bytes: 64 << 20,
        }
    }
}

/// When a successful [`Engine::write`] is durable; see the module doc table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL before `write` returns; concurrent writers share fsyncs.
    Sync,
    /// Write the WAL on every write; fsync it in the background every `interval_ms`.
    Periodic {
        /// Milliseconds between background WAL fsyncs.
        interval_ms: u64,
    },
    /// No WAL at all. For benchmarks only.
    None,
}

/// A storage failure faked on a node run with `--fault-injection` (`POST
/// /faults/engine`) and in tests: the engine answers it where the real
/// one would come from, so it takes the real one's path (for RocksDB: the
/// latch, the failed-sync marker, `Cluster::serving`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFailure {
    /// Every later WAL fsync fails (a flush's, the periodic syncer's) as
    /// an I/O error: under `periodic` the node latches at its next sync.
    Syncs,
    /// Every later write fails as a failed WAL write (under `sync`, its
    /// group-commit fsync) does.
    Writes,
    /// Later syncs and writes succeed again; a latch already set stays.
    Healed,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Periodic { interval_ms: 1000 }
    }
}

/// Errors from the storage engine, by what a caller can do about them.
///
/// The backend's own error type never leaves [`rocks`]: it is classified
/// there by kind (`rocks/error.rs`), not by its message.
/// [`EngineError::is_retriable`] separates transient failures (a stall, a
/// timeout, an I/O error) from those a retry cannot fix (limits, corruption,
/// invalid input, a closed engine).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A key is over its limit; nothing in the batch was written.
    #[error("key of {size} bytes exceeds the limit of {limit} bytes")]
    KeyTooLarge { size: usize, limit: usize },
    /// A value is over its limit; nothing in the batch was written.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    ValueTooLarge { size: usize, limit: usize },
    /// A keyspace name that cannot be encoded (longer than 255 bytes).
    #[error("invalid keyspace {keyspace:?}: {reason}")]
    InvalidKeyspace {
        keyspace: String,
        reason: &'static str,
    },
    /// A stored record (or a file of the database) that does not decode. It
    /// is left untouched on disk; data-CF operands are quarantined on read.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A record that would not decode was refused before anything was
    /// written (a bug in the caller: it broke the sibling-set invariants).
    #[error("refused to write {what}: it would not decode ({detail})")]
    InvalidRecord { what: String, detail: String },
    /// The backend is busy: a write stall, a lock or operation timeout, a
    /// "try again"; the same call may succeed later. Only a write refused
    /// at a stall before it began ([`Engine::write_unless_stalled`]'s
    /// path) provably did nothing; a timed-out write may have been applied
    /// (callers treat it as "maybe applied", `error::nothing_applied`).
    #[error("storage busy: {0}")]
    Busy(String),
    /// The backend is shutting down or a column family is gone: no retry
    /// on this engine will succeed.
    #[error("storage closed: {0}")]
    Closed(String),
    /// The backend refused an argument or an operation it does not support
    /// (a bug in the caller or in the engine's options).
    #[error("storage refused the call: {0}")]
    InvalidArgument(String),
    /// A failure of the storage backend that fits none of the variants
    /// above, with the backend's own message: RocksDB's `Unknown`,
    /// `NotFound` (an internal file), `Aborted`, `MergeInProgress`,
    /// `CompactionTooLarge`; a panicked engine thread; a failure a test
    /// injects. Not retriable, and a write that fails with it may have been
    /// applied.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A write or sync to disk failed (a WAL write or fsync: the periodic
    /// syncer's, an explicit flush's, or a write's own; a flush with no
    /// WAL; an I/O or corruption error RocksDB keeps for every later
    /// write); the engine refuses further writes until the node restarts.
    #[error("WAL sync failed, engine refuses writes: {0}")]
    SyncFailed(String),
    /// I/O error: the filesystem outside RocksDB (creating the directory,
    /// ...) or RocksDB's own `IOError`.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    /// True when the same request may succeed if retried later.
    pub fn is_retriable(&self) -> bool {
        match self {
            EngineError::Busy(_) | EngineError::Io(_) => true,
            EngineError::KeyTooLarge { .. }
            | EngineError::ValueTooLarge { .. }
            | EngineError::InvalidKeyspace { .. }
            | EngineError::Corrupt { .. }
            | EngineError::InvalidRecord { .. }
            | EngineError::Closed(_)
            | EngineError::InvalidArgument(_)
            | EngineError::Backend(_)
            | EngineError::SyncFailed(_) => false,
        }
    }
}

/// The storage contract. Object-safe: callers hold an `Arc<dyn Engine>`.
pub trait Engine: Send + Sync + 'static {
    /// Applies the batch atomically (all or nothing), durable per the
    /// configured [`Durability`]. Limits are checked first: a batch with one
    /// oversized entry writes nothing.
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError>;

    /// Writes `batch` only if that needs no wait for a write stall:
    /// `Ok(false)`, and nothing written, when RocksDB would stop or slow
    /// the write down until flushes or compactions catch up. For writes made under a lock
    /// others wait on (cleanup's deletes: `Cluster::write_exclusive`),
    /// which wait out a stall with [`Engine::wait_while_stalled`] after
    /// letting the lock go. Engines that never stall write at once.
    fn write_unless_stalled(&self, batch: &WriteBatch) -> Result<bool, EngineError> {
        self.write(batch.clone()).map(|()| true)
    }

    /// Blocks until writes are no longer stopped by a stall (at once when
    /// they are not).
    fn wait_while_stalled(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// The sibling set stored for `key` in `keyspace`, if any.
    fn get_versions(&self, keyspace: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError>;

    /// The raw value under `key` in `cf`.
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Raw pairs with `from <= key < to`, ascending, at most `limit`.
    fn scan_raw(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<RawEntry>, EngineError>;

    /// Keys of `keyspace` whose token is in `(start, end]`, at most `limit`.
    ///
    /// `start >= end` wraps around the ring: tokens `> start` or `<= end`;
    /// `start == end` is the whole ring. Results ascend by `(token, key)`
    /// (so on a wrapped range the `[0, end]` part comes first). `after`
    /// (exclusive) is the last user key of the previous page.
    fn scan_token_range(
        &self,
        keyspace: &str,
        start: u64,
        end: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError>;

    /// The limits this engine enforces.
    fn limits(&self) -> &Limits;

    /// Makes every acknowledged write durable now (WAL fsync).
    fn flush(&self) -> Result<(), EngineError>;

    /// The clock incarnation in use ([`incarnation`]), which the read path
    /// renews when it sets operands aside.
    fn incarnation(&self) -> &incarnation::Current;

    /// True when [`Engine::write`] waits for an fsync ([`Durability::Sync`]).
    /// Callers then keep writes on blocking threads, where concurrent writers
    /// share one fsync; otherwise a write (memtable + WAL append to the OS)
    /// takes microseconds and may run on an async worker.
    fn write_waits_for_sync(&self) -> bool {
        false
    }

    /// Sizes, compaction debt and cache figures for monitoring; `None` for
    /// engines that keep none (the memory engine).
    fn stats(&self) -> Option<EngineStats> {
        None
    }

    /// Why every write is refused until the node restarts, once a WAL fsync
    /// failed ([`EngineError::SyncFailed`]'s latch); `None` while writes
    /// are taken. Cheap: `Cluster::serving` asks it on every client call.
    fn writes_refused(&self) -> Option<String> {
        None
    }

    /// Whether the data directory holds the mark of a failed sync, this
    /// run's or an earlier run's: the kernel may have dropped the pages it
    /// did not write (fsyncgate), so a start recovers as after a lost WAL
    /// tail, in the same boot too ([`boot`]). `false` for engines with no
    /// directory.
    fn sync_failure_marked(&self) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// Removes that mark, once the start's recovery is durable; keeps it
    /// while this run's own failed sync is latched.
    fn clear_sync_failure_mark(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Puts `failure` in force; `false` for engines that fake none (the
    /// memory engine). Only a node run with `--fault-injection` calls it.
    fn inject_failure(&self, _failure: InjectedFailure) -> bool {
        false
    }
}

/// Decodes a data-CF value, naming the record on failure. A quarantine
/// envelope reads as its decodable state (`None` if nothing decoded).
pub(crate) fn decode_record(
    keyspace: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<Option<SiblingSet>, EngineError> {
    match quarantine::parse(bytes) {
        Ok(quarantine::Stored::Plain(set)) => Ok(Some(set)),
        Ok(quarantine::Stored::Quarantined(fold)) => Ok(fold.good),
        Err(e) => Err(EngineError::Corrupt {
            what: record_name(keyspace, key),
            detail: e.to_string(),
        }),
    }
}

/// `data record <keyspace>/<key>` with the key escaped and truncated.
pub(crate) fn record_name(keyspace: &str, key: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown = &key[..key.len().min(SHOWN)];
    let more = if key.len() > SHOWN { "…" } else { "" };
    format!("data record {keyspace}/{}{more}", shown.escape_ascii())
}
