//! [`WriteBatch`]: the ops a caller wants applied atomically, and the limit
//! checks run over all of them before an engine writes any.
//!
//! Owns encoding ops into column-family keys and values. Must not apply
//! anything: the engines turn ops into their own writes.

use super::{keys, quarantine, record_name, Cf, EngineError, Limits};
use crate::version::SiblingSet;

/// One write, already in its on-disk form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Overwrite `key` in `cf` with `value`.
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Merge an encoded sibling set into a data-CF record.
    Merge { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` from `cf`.
    Delete { cf: Cf, key: Vec<u8> },
    /// Remove `[from, to)` from `cf`.
    DeleteRange { cf: Cf, from: Vec<u8>, to: Vec<u8> },
}

/// What one op must be checked for against [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A versioned write: user key and largest sibling value.
    Data { key: usize, value: usize },
    /// A raw write: key and value as stored.
    Raw { key: usize, value: usize },
    /// Deletes write no payload.
    None,
}

/// A caller-built batch, applied atomically by [`super::Engine::write`].
///
/// Building never fails; problems found while building (a keyspace name that
/// cannot be encoded) and limit violations are reported by `write`, which
/// then writes nothing.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    checks: Vec<Check>,
    invalid: Option<(String, &'static str)>,
    /// The first record that would not decode: `(record name, reason)`.
    bad_record: Option<(String, String)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overwrites the record of `key` with `set` (the coordinator's write
    /// after its read-modify-write, under its per-key lock).
    pub fn put_versions(&mut self, keyspace: &str, key: &[u8], set: &SiblingSet) {
        if let Some(dk) = self.data_key(keyspace, key) {
            let value = self.encode_checked(keyspace, key, set);
            self.push(
                Op::Put {
                    cf: Cf::Data,
                    key: dk,
                    value,
                },
                Check::Data {
                    key: key.len(),
                    value: largest_value(set),
                },
            );
        }
    }

    /// Merges `set` into the record of `key` (a replica write: no read
    /// before write; concurrent merges of the same key are safe).
    pub fn merge_versions(&mut self, keyspace: &str, key: &[u8], set: &SiblingSet) {
        if let Some(dk) = self.data_key(keyspace, key) {
            let value = self.encode_checked(keyspace, key, set);
            self.push(
                Op::Merge { key: dk, value },
                Check::Data {
                    key: key.len(),
                    value: largest_value(set),
                },
            );
        }
    }

    /// A merge operand that drops the quarantined operands `hashes` of the
    /// record `data_key` (written with their copies in the meta CF).
    pub(crate) fn release_quarantined(
        &mut self,
        data_key: &[u8],
        hashes: impl IntoIterator<Item = u128>,
    ) {
        self.push(
            Op::Merge {
                key: data_key.to_vec(),
                value: quarantine::release_operand(hashes),
            },
            Check::None,
        );
    }

    /// Merges raw bytes into a data-CF record, unchecked: tests use it to
    /// inject an operand that does not decode.
    #[cfg(test)]
    pub(crate) fn merge_raw_unchecked(&mut self, data_key: &[u8], value: &[u8]) {
        self.push(
            Op::Merge {
                key: data_key.to_vec(),
                value: value.to_vec(),
            },
            Check::None,
        );
    }

    /// Writes `value` under `key` in `cf` as is.
    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        self.push(
            Op::Put {
                cf,
                key: key.to_vec(),
                value: value.to_vec(),
            },
            Check::Raw {
                key: key.len(),
                value: value.len(),
            },
        );
    }

    /// Removes `key` from `cf`.
    pub fn delete_raw(&mut self, cf: Cf, key: &[u8]) {
        self.push(
            Op::Delete {
                cf,
                key: key.to_vec(),
            },
            Check::None,
        );
    }

    /// Removes every key in `[from, to)` from `cf`.
    pub fn delete_range_raw(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        self.push(
            Op::DeleteRange {
                cf,
                from: from.to_vec(),
                to: to.to_vec(),
            },
            Check::None,
        );
    }

    /// Appends `other`'s ops (and anything found wrong with them) to this
    /// batch: one atomic write of both (a replica's batch of peer writes,
    /// each checked on its own first).
    pub fn append(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
        self.checks.extend(other.checks);
        if self.invalid.is_none() {
            self.invalid = other.invalid;
        }
        if self.bad_record.is_none() {
            self.bad_record = other.bad_record;
        }
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks every op against `limits` and every record for decoding; the
    /// first violation is returned.
    pub(crate) fn validate(&self, limits: &Limits) -> Result<(), EngineError> {
        if let Some((what, detail)) = &self.bad_record {
            return Err(EngineError::InvalidRecord {
                what: what.clone(),
                detail: detail.clone(),
            });
        }
        if let Some((keyspace, reason)) = &self.invalid {
            return Err(EngineError::InvalidKeyspace {
                keyspace: keyspace.clone(),
                reason,
            });
        }
        for check in &self.checks {
            let (key, key_limit, value, value_limit) = match *check {
                Check::Data { key, value } => {
                    (key, limits.max_key_bytes, value, limits.max_value_bytes)
                }
                Check::Raw { key, value } => (
                    key,
                    limits.max_raw_key_bytes,
                    value,
                    limits.max_raw_value_bytes,
                ),
                Check::None => continue,
            };
            if key > key_limit {
                return Err(EngineError::KeyTooLarge {
                    size: key,
                    limit: key_limit,
                });
            }
            if value > value_limit {
                return Err(EngineError::ValueTooLarge {
                    size: value,
                    limit: value_limit,
                });
            }
        }
        Ok(())
    }

    fn data_key(&mut self, keyspace: &str, key: &[u8]) -> Option<Vec<u8>> {
        match keys::data_key(keyspace, key) {
            Ok(dk) => Some(dk),
            Err(EngineError::InvalidKeyspace { keyspace, reason }) => {
                self.invalid.get_or_insert((keyspace, reason));
                None
            }
            Err(_) => None,
        }
    }

    /// `set` encoded, after checking the bytes decode: a record that breaks
    /// the sibling-set invariants (a wrapped counter, an uncovered dot) must
    /// never reach the WAL, where the merge operator would meet it on every
    /// flush, compaction and reopen.
    fn encode_checked(&mut self, keyspace: &str, key: &[u8], set: &SiblingSet) -> Vec<u8> {
        let value = encode(set);
        if let Err(e) = SiblingSet::decode(&value) {
            self.bad_record
                .get_or_insert_with(|| (record_name(keyspace, key), e.to_string()));
        }
        value
    }

    fn push(&mut self, op: Op, check: Check) {
        self.ops.push(op);
        self.checks.push(check);
    }
}

fn encode(set: &SiblingSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.encoded_len());
    set.encode(&mut out);
    out
}

/// The largest user value among the siblings of `set`.
fn largest_value(set: &SiblingSet) -> usize {
    set.siblings
        .iter()
        .filter_map(|s| s.value.as_ref().map(|v| v.len()))
        .max()
        .unwrap_or(0)
}
