//! The data-CF merge operator: merges encoded sibling sets with
//! `SiblingSet::merge`, so a replica applies a write without reading first.
//!
//! Owns only the two merge callbacks RocksDB calls. Must not do I/O beyond
//! logging, and must never panic (it runs inside RocksDB's C++ threads).
//!
//! # A record or operand that does not decode
//!
//! Both callbacks then return `None` and log an error naming the key.
//! * Partial merge (`None` = "cannot combine"): RocksDB keeps the operands
//!   apart and tries again later; nothing is lost.
//! * Full merge (`None` = failure): the read that needed it fails with a
//!   `Corruption` status, which the engine reports as
//!   [`EngineError::Corrupt`](crate::engine::EngineError::Corrupt) naming the
//!   record; a flush or compaction that needs it fails and RocksDB stops
//!   background work (the node then refuses writes until an operator repairs
//!   the record, e.g. by `put_versions` over it or by deleting it). We chose
//!   this over "keep one side" because guessing would silently drop either
//!   acknowledged writes or the corrupt bytes needed for forensics; a format
//!   the running binary cannot read (a downgrade) must stop, not be eaten.

use rocksdb::MergeOperands;

use crate::version::SiblingSet;

/// The name RocksDB records in OPTIONS; changing it refuses old databases.
pub(super) const NAME: &str = "geokv.sibling_set.v1";

/// Existing value (if any) ⊔ every operand.
pub(super) fn full_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    merge_all(key, existing, operands, "full")
}

/// Operands combined into one operand.
pub(super) fn partial_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    merge_all(key, existing, operands, "partial")
}

fn merge_all(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
    kind: &str,
) -> Option<Vec<u8>> {
    let mut parts = existing.into_iter().chain(operands.iter());
    let first = parts.next()?;
    if operands.len() + usize::from(existing.is_some()) == 1 {
        // Nothing to combine: pass the bytes through untouched.
        return Some(first.to_vec());
    }
    let mut acc = decode(key, first, kind)?;
    for bytes in parts {
        acc.merge(&decode(key, bytes, kind)?);
    }
    let mut out = Vec::with_capacity(acc.encoded_len());
    acc.encode(&mut out);
    Some(out)
}

fn decode(key: &[u8], bytes: &[u8], kind: &str) -> Option<SiblingSet> {
    match SiblingSet::decode(bytes) {
        Ok(set) => Some(set),
        Err(e) => {
            tracing::error!(
                key = %key.escape_ascii(),
                error = %e,
                "{kind} merge: undecodable sibling set; the read or compaction needing it fails"
            );
            None
        }
    }
}
