//! Quarantine of merge operands that do not decode: the merge operator never
//! fails (a failed merge stops RocksDB's flushes and compactions and leaves
//! the whole node read-only, unable to reopen), so it folds what decodes and
//! sets the rest aside, in the record, inside an *envelope*.
//!
//! Owns the envelope format and its arithmetic, and the meta-CF layout where
//! the read path then keeps the set-aside bytes. Must not do I/O: the engine
//! writes what [`Fold`] and [`set_aside`] return.
//!
//! ```text
//! envelope := TAG:u8 varint(flags: bit 0 = has good state) [varint(len) record]
//!             varint(n_bad) (hash:u128 LE varint(len) bytes)*  varint(n_released) (hash:u128 LE)*
//! meta key := "quarantine/" data_key hash:u128 BE    value: the set-aside bytes
//! ```
//! Folding is a join, so it is commutative and associative as RocksDB needs:
//! good = ⊔ of every decodable record; bad = ∪ of undecodable bytes (by
//! xxh3-128) minus `released`; released = ∪ of hashes the read path has
//! already saved in the meta CF (a *release* operand written in the same
//! batch as the meta entries). A full merge drops `released` (nothing older
//! is left to release) and writes a plain record when nothing is bad.
//!
//! # Dots in the set-aside bytes
//!
//! The set-aside bytes' dots are no longer in the key's clock. Had they held
//! this node's own newest write of the key, its next update of the key would
//! mint that dot again; so the batch that keeps them aside also renews the
//! clock incarnation ([`super::incarnation`]) and later dots are new. Our own
//! code can no longer write such bytes (`WriteBatch` refuses records that do
//! not decode), which leaves disk corruption RocksDB's checksums miss and
//! downgrades across record formats. `geokv_quarantined_operands_total`
//! counts operands when the read path keeps them (once per distinct bytes
//! and key); the merge operator's error log is the first report.

use std::collections::{BTreeMap, BTreeSet};

use xxhash_rust::xxh3::xxh3_128;

use crate::version::SiblingSet;

/// First byte of an envelope; never a record format version.
pub(crate) const TAG: u8 = 0xF1;
/// Meta-CF prefix of set-aside operands.
pub const META_PREFIX: &[u8] = b"quarantine/";

/// A stored data-CF value, as the read path sees it.
pub(crate) enum Stored {
    /// A plain record.
    Plain(SiblingSet),
    /// An envelope: the decodable state and what was set aside.
    Quarantined(Fold),
}

/// Parses a data-CF value; `Err` when it is neither a record nor an envelope.
pub(crate) fn parse(bytes: &[u8]) -> Result<Stored, crate::version::DecodeError> {
    if bytes.first() == Some(&TAG) {
        let mut fold = Fold::default();
        fold.add(bytes);
        return Ok(Stored::Quarantined(fold));
    }
    SiblingSet::decode(bytes).map(Stored::Plain)
}

/// The running join of a merge's parts.
#[derive(Default)]
pub(crate) struct Fold {
    /// ⊔ of the decodable records; `None` if none was.
    pub(crate) good: Option<SiblingSet>,
    /// Undecodable bytes by hash.
    pub(crate) bad: BTreeMap<u128, Vec<u8>>,
    released: BTreeSet<u128>,
}

impl Fold {
    /// Folds one part in. Returns true when `bytes` itself did not decode
    /// (newly set aside, to be reported); false for records and envelopes.
    pub(crate) fn add(&mut self, bytes: &[u8]) -> bool {
        if bytes.first() == Some(&TAG) {
            if let Some(env) = Envelope::parse(bytes) {
                if let Some(good) = env.good {
                    self.join(good);
                }
                for (hash, b) in env.bad {
                    // A newer binary may read what an older one could not.
                    match SiblingSet::decode(&b) {
                        Ok(set) => self.join(set),
                        Err(_) => {
                            self.bad.insert(hash, b);
                        }
                    }
                }
                self.released.extend(env.released);
                return false;
            }
        } else if let Ok(set) = SiblingSet::decode(bytes) {
            self.join(set);
            return false;
        }
        self.bad.insert(xxh3_128(bytes), bytes.to_vec());
        true
    }

    /// Marks `hashes` as saved elsewhere: they are dropped from the result.
    pub(crate) fn release(&mut self, hashes: impl IntoIterator<Item = u128>) {
        self.released.extend(hashes);
    }

    fn join(&mut self, set: SiblingSet) {
        match &mut self.good {
            Some(acc) => acc.merge(&set),
            None => self.good = Some(set),
        }
    }

    /// Encodes the result: a plain record when nothing is bad (and, for a
    /// partial merge, nothing released), an envelope otherwise.
    pub(crate) fn finish(mut self, full: bool) -> Vec<u8> {
        let released = &self.released;
        self.bad.retain(|h, _| !released.contains(h));
        if full {
            // Nothing older is left for a release to apply to.
            self.released.clear();
        }
        if self.bad.is_empty() && self.released.is_empty() {
            if let Some(good) = &self.good {
                let mut out = Vec::with_capacity(good.encoded_len());
                good.encode(&mut out);
                return out;
            }
        }
        let mut out = vec![TAG];
        put_varint(&mut out, u64::from(self.good.is_some()));
        if let Some(good) = &self.good {
            put_varint(&mut out, good.encoded_len() as u64);
            good.encode(&mut out);
        }
        put_varint(&mut out, self.bad.len() as u64);
        for (hash, b) in &self.bad {
            out.extend_from_slice(&hash.to_le_bytes());
            put_varint(&mut out, b.len() as u64);
            out.extend_from_slice(b);
        }
        put_varint(&mut out, self.released.len() as u64);
        for hash in &self.released {
            out.extend_from_slice(&hash.to_le_bytes());
        }
        out
    }
}

/// A release operand: drops `hashes` (already kept in the meta CF).
pub(crate) fn release_operand(hashes: impl IntoIterator<Item = u128>) -> Vec<u8> {
    let mut fold = Fold::default();
    fold.release(hashes);
    fold.finish(false)
}

/// The meta-CF key keeping the bytes with `hash` of the record `data_key`.
pub(crate) fn meta_key(data_key: &[u8], hash: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(META_PREFIX.len() + data_key.len() + 16);
    k.extend_from_slice(META_PREFIX);
    k.extend_from_slice(data_key);
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

/// `keyspace/key` of a data-CF key, for logs (the raw bytes if malformed).
pub(crate) fn describe(data_key: &[u8]) -> String {
    let parsed = data_key.split_first().and_then(|(&len, rest)| {
        let len = usize::from(len);
        let keyspace = std::str::from_utf8(rest.get(..len)?).ok()?;
        Some((keyspace, rest.get(len + 8..)?))
    });
    match parsed {
        Some((keyspace, key)) => super::record_name(keyspace, key),
        None => format!("data key {}", data_key.escape_ascii()),
    }
}

/// A parsed envelope.
struct Envelope {
    good: Option<SiblingSet>,
    bad: Vec<(u128, Vec<u8>)>,
    released: Vec<u128>,
}

impl Envelope {
    /// `None` if `bytes` is not a well-formed envelope (it is then set aside whole).
    fn parse(bytes: &[u8]) -> Option<Envelope> {
        let mut r = Reader(bytes.get(1..)?);
        let good = match r.varint()? {
            0 => None,
            1 => {
                let len = r.varint()?;
                Some(SiblingSet::decode(r.take(len)?).ok()?)
            }
            _ => return None,
        };
        let mut bad = Vec::new();
        for _ in 0..r.varint()? {
            let hash = r.hash()?;
            let len = r.varint()?;
            bad.push((hash, r.take(len)?.to_vec()));
        }
        let mut released = Vec::new();
        for _ in 0..r.varint()? {
            released.push(r.hash()?);
        }
        r.0.is_empty().then_some(Envelope {
            good,
            bad,
            released,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok().filter(|&l| l <= self.0.len())?;
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    fn hash(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
