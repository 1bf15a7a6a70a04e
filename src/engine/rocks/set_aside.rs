//! The read path's half of [quarantine](crate::engine::quarantine): a
//! record read as an envelope has its set-aside operands kept in the meta CF
//! and released from the record, in one batch, before the decodable state is
//! returned.
//!
//! Owns only that move and the listing of what was kept. Must not decide
//! what is undecodable (the quarantine module does) or drop any bytes.

use std::collections::BTreeMap;

use super::RocksEngine;
use crate::engine::quarantine::{self, Stored};
use crate::engine::{record_name, Cf, Engine, EngineError, WriteBatch};
use crate::version::SiblingSet;

impl RocksEngine {
    /// The set-aside (quarantined) operands kept in the meta CF, as
    /// `(record name, bytes)`; see [`quarantine`].
    pub fn quarantined(&self, limit: usize) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        let rows = self.scan_raw(Cf::Meta, quarantine::META_PREFIX, b"quarantine0", limit)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| {
                let dk = &k[quarantine::META_PREFIX.len()..k.len().saturating_sub(16)];
                (quarantine::describe(dk), v)
            })
            .collect())
    }

    /// A data-CF value read at `dk`: a plain record, or a quarantine
    /// envelope whose set-aside operands are first moved to the meta CF.
    pub(super) fn stored(
        &self,
        keyspace: &str,
        key: &[u8],
        dk: &[u8],
        bytes: &[u8],
    ) -> Result<Option<SiblingSet>, EngineError> {
        match quarantine::parse(bytes) {
            Ok(Stored::Plain(set)) => Ok(Some(set)),
            Ok(Stored::Quarantined(fold)) => {
                if !fold.bad.is_empty() {
                    self.set_aside(dk, &fold.bad);
                }
                Ok(fold.good)
            }
            Err(e) => Err(EngineError::Corrupt {
                what: record_name(keyspace, key),
                detail: e.to_string(),
            }),
        }
    }

    /// Keeps quarantined operands in the meta CF and, in the same batch,
    /// releases them from the record and renews the incarnation if it has
    /// minted (the bytes may hold this node's newest dot of the key, see
    /// [`incarnation`](crate::engine::incarnation)). A failure is logged; the
    /// next read tries again (the envelope keeps them meanwhile).
    ///
    /// Never waits for an fsync of its own, even under `Durability::Sync`
    /// (review L1: reads run on async workers). Nothing is lost by that: the
    /// batch is atomic, and until it is durable the envelope still holds the
    /// operands (a lost batch is redone at the next read); a dot minted with
    /// the renewed incarnation is a synced write later in the same WAL, and
    /// syncing it makes this batch durable first; a clean shutdown syncs the
    /// WAL, and a start after a crash takes a new incarnation anyway.
    fn set_aside(&self, dk: &[u8], bad: &BTreeMap<u128, Vec<u8>>) {
        let mut batch = WriteBatch::new();
        let mut new = 0u64;
        for (&hash, bytes) in bad {
            let mk = quarantine::meta_key(dk, hash);
            if matches!(self.get_raw(Cf::Meta, &mk), Ok(None)) {
                new += 1;
            }
            batch.put_raw(Cf::Meta, &mk, bytes);
        }
        batch.release_quarantined(dk, bad.keys().copied());
        let record = quarantine::describe(dk);
        match self
            .incarnation()
            .renew_into(batch, |b| self.write_with(b, &self.aside_writes))
        {
            Ok(renewed) => {
                metrics::counter!("geokv_quarantined_operands_total").increment(new);
                tracing::warn!(%record, operands = bad.len(),
                    new_incarnation = ?renewed.map(|i| format!("{i:016x}")),
                    "undecodable operands kept aside in the meta CF (quarantine/); \
                     the key reads as its decodable writes");
            }
            Err(e) => tracing::error!(%record, error = %e,
                "could not keep quarantined operands aside; retried at the next read"),
        }
    }
}
