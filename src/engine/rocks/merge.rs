//! The data-CF merge operator: merges encoded sibling sets with
//! `SiblingSet::merge`, so a replica applies a write without reading first.
//!
//! Owns only the two merge callbacks RocksDB calls. Must not do I/O beyond
//! logging, and must never panic or fail (it runs inside RocksDB's C++
//! threads, and a failed merge in a flush or compaction puts the whole
//! database in read-only mode: every write to every key fails, and a restart
//! with the operand still in the WAL cannot open).
//!
//! # A record or operand that does not decode
//!
//! It is *quarantined*, never fatal (see [`super::super::quarantine`]): the
//! result keeps the join of everything that decodes and carries the
//! undecodable bytes aside in an envelope; an error log names the key. The
//! next read or scan of the key moves those bytes to the meta CF (counted in
//! `geokv_quarantined_operands_total`) and the record becomes plain again;
//! the key reads as its decodable writes, and other replicas' copies reach it
//! through read repair and anti-entropy as usual. Nothing is discarded: bytes
//! a newer binary wrote (a downgrade) stay in the envelope or the meta CF.

use rocksdb::MergeOperands;

use crate::engine::quarantine::{self, Fold};
use crate::version::{SiblingSet, RECORD_FORMAT_VERSION};

/// The name RocksDB records in OPTIONS; changing it refuses old databases.
pub(super) const NAME: &str = "geokv.sibling_set.v1";

/// Existing value (if any) ⊔ every operand.
pub(super) fn full_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(merge_all(key, existing, operands, true))
}

/// Operands combined into one operand.
pub(super) fn partial_merge(
    key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(merge_all(key, existing, operands, false))
}

fn merge_all(key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands, full: bool) -> Vec<u8> {
    if operands.len() + usize::from(existing.is_some()) == 1 {
        if let Some(only) = existing.or_else(|| operands.iter().next()) {
            if only.first() == Some(&RECORD_FORMAT_VERSION) && SiblingSet::decode(only).is_ok() {
                // Nothing to combine: pass a valid record through untouched.
                return only.to_vec();
            }
        }
    }
    let mut fold = Fold::default();
    let mut set_aside = 0usize;
    for bytes in existing.into_iter().chain(operands.iter()) {
        if fold.add(bytes) {
            set_aside += 1;
        }
    }
    if set_aside > 0 {
        tracing::error!(
            record = %quarantine::describe(key),
            operands = set_aside,
            merge = if full { "full" } else { "partial" },
            "undecodable sibling set quarantined: the key keeps its decodable writes; \
             the bytes are kept aside (meta CF, prefix quarantine/) when it is next read"
        );
    }
    fold.finish(full)
}
