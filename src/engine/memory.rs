//! [`MemoryEngine`]: the [`Engine`] contract over `BTreeMap`s, for pure tests,
//! deterministic simulation and the model test. Never used instead of
//! RocksDB in the product.
//!
//! Owns an in-process copy of the three column families with the same key
//! layout and record encoding as [`super::RocksEngine`]. Must not persist
//! anything. One difference, by design: a merge into a record that does not
//! decode fails the write here (nothing written), where RocksDB's merge
//! operator quarantines the old bytes (see [`super::quarantine`]).

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::batch::Op;
use super::keys::{self, KeyRange};
use super::{decode_record, Cf, Engine, EngineError, Limits, RawEntry, WriteBatch};
use crate::version::SiblingSet;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory engine. Writes are atomic under one lock.
#[derive(Default)]
pub struct MemoryEngine {
    /// One map per [`Cf`], indexed by [`Cf::index`].
    cfs: RwLock<[Map; 3]>,
    limits: Limits,
    /// Never renewed: nothing is set aside in memory.
    incarnation: super::incarnation::Current,
}

impl MemoryEngine {
    /// An empty engine with the given limits.
    pub fn new(limits: Limits) -> Self {
        MemoryEngine {
            cfs: RwLock::default(),
            limits,
            incarnation: Default::default(),
        }
    }
}

impl Engine for MemoryEngine {
    fn write(&self, batch: WriteBatch) -> Result<(), EngineError> {
        batch.validate(&self.limits)?;
        let mut cfs = self.cfs.write();
        // Undo log: (cf, key, previous value), replayed backwards on failure.
        let mut undo: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let apply = |cfs: &mut [Map; 3]| -> Result<(), EngineError> {
            for op in batch.ops {
                match op {
                    Op::Put { cf, key, value } => {
                        let old = cfs[cf.index()].insert(key.clone(), value);
                        undo.push((cf, key, old));
                    }
                    Op::Merge { key, value } => {
                        let map = &mut cfs[Cf::Data.index()];
                        let merged = match map.get(&key) {
                            None => value,
                            Some(old) => merge_encoded(&key, old, &value)?,
                        };
                        let old = map.insert(key.clone(), merged);
                        undo.push((Cf::Data, key, old));
                    }
                    Op::Delete { cf, key } => {
                        let old = cfs[cf.index()].remove(&key);
                        undo.push((cf, key, old));
                    }
                    Op::DeleteRange { cf, from, to } => {
                        if from >= to {
                            continue;
                        }
                        let map = &mut cfs[cf.index()];
                        let doomed: Vec<Vec<u8>> = map
                            .range::<[u8], _>((
                                Bound::Included(&from[..]),
                                Bound::Excluded(&to[..]),
                            ))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for key in doomed {
                            let old = map.remove(&key);
                            undo.push((cf, key, old));
                        }
                    }
                }
            }
            Ok(())
        };
        let result = apply(&mut cfs);
        if result.is_err() {
            for (cf, key, old) in undo.into_iter().rev() {
                let map = &mut cfs[cf.index()];
                match old {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
        }
        result
    }

    fn get_versions(&self, keyspace: &str, key: &[u8]) -> Result<Option<SiblingSet>, EngineError> {
        let dk = keys::data_key(keyspace, key)?;
        let cfs = self.cfs.read();
        match cfs[Cf::Data.index()].get(&dk) {
            Some(bytes) => decode_record(keyspace, key, bytes),
            None => Ok(None),
        }
    }

    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.cfs.read()[cf.index()].get(key).cloned())
    }

    fn scan_raw(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<RawEntry>, EngineError> {
        let cfs = self.cfs.read();
        let range = KeyRange {
            lower: from.to_vec(),
            upper: to.to_vec(),
        };
        Ok(iter_ranges(&cfs[cf.index()], std::slice::from_ref(&range))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_token_range(
        &self,
        keyspace: &str,
        start: u64,
        end: u64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError> {
        let plan = keys::token_range_plan(keyspace, start, end, after)?;
        let prefix = keys::keyspace_prefix(keyspace)?;
        let cfs = self.cfs.read();
        iter_ranges(&cfs[Cf::Data.index()], &plan)
            .map(|(k, v)| {
                let (_, user) =
                    keys::split_data_key(&prefix, k).ok_or_else(|| EngineError::Corrupt {
                        what: format!("data key in keyspace {keyspace}"),
                        detail: format!("{} is shorter than its token", k.escape_ascii()),
                    })?;
                Ok(decode_record(keyspace, user, v)?.map(|set| (user.to_vec(), set)))
            })
            .filter_map(Result::transpose)
            .take(limit)
            .collect()
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn flush(&self) -> Result<(), EngineError> {
        Ok(())
    }

    fn incarnation(&self) -> &super::incarnation::Current {
        &self.incarnation
    }
}

/// The entries of `map` in each range, ranges in order.
fn iter_ranges<'a>(
    map: &'a Map,
    ranges: &'a [KeyRange],
) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a {
    ranges
        .iter()
        .filter(|r| r.lower < r.upper)
        .flat_map(move |r| {
            map.range::<[u8], _>((Bound::Included(&r.lower[..]), Bound::Excluded(&r.upper[..])))
        })
}

/// `old ⊔ new`, both encoded; the same arithmetic as the RocksDB merge operator.
fn merge_encoded(data_key: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, EngineError> {
    let corrupt = |e: crate::version::DecodeError| EngineError::Corrupt {
        what: format!("data record {}", data_key.escape_ascii()),
        detail: e.to_string(),
    };
    let mut acc = SiblingSet::decode(old).map_err(corrupt)?;
    acc.merge(&SiblingSet::decode(new).map_err(corrupt)?);
    let mut out = Vec::with_capacity(acc.encoded_len());
    acc.encode(&mut out);
    Ok(out)
}
