//! A batch of peer writes applied as **one** engine write (issue 14: group
//! commit): a `ReplicaBatch` of 64 entries costs one WAL append and, under
//! `Durability::Sync`, one fsync instead of 64. Each write is still checked
//! on its own first (the engine's size limits, its keyspace name, a record
//! that decodes), so a write refused is never in the batch, and never
//! half-written; the rest commit together, atomically.
//!
//! Must not: check deadlines or views (the internode handler does, per
//! entry, under one view with this call), or merge writes of one key.

use super::Replica;
use crate::engine::WriteBatch;
use crate::error::GeokvError;
use crate::version::SiblingSet;

/// One write of a batch: keyspace, key and the record to merge.
pub type BatchWrite<'a> = (&'a str, &'a [u8], &'a SiblingSet);

impl Replica {
    /// Merges every write that passes its own checks in one atomic engine
    /// write. Returns each write's check (`Ok`: it was in the engine write)
    /// and the engine write's result, which is every checked write's.
    pub fn apply_all(
        &self,
        writes: &[BatchWrite<'_>],
    ) -> (Vec<Result<(), GeokvError>>, Result<(), GeokvError>) {
        // Held across the engine write: the shutdown's close waits for it.
        let Ok(_pass) = self.open() else {
            let refused = writes.iter().map(|_| Err(GeokvError::ShuttingDown));
            return (refused.collect(), Ok(()));
        };
        let limits = self.engine.limits();
        let mut all = WriteBatch::new();
        let checks = (writes.iter())
            .map(|&(keyspace, key, set)| {
                let mut one = WriteBatch::new();
                one.merge_versions(keyspace, key, set);
                one.validate(limits)?;
                all.append(one);
                Ok(())
            })
            .collect();
        if all.is_empty() {
            return (checks, Ok(()));
        }
        (checks, self.engine.write(all).map_err(GeokvError::from))
    }
}

#[cfg(test)]
mod tests;
