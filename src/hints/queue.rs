//! On-disk layout of hinted queues in the engine's `hints` column family.
//!
//! A queue is a destination: a remote **datacenter** (the inter-DC stream)
//! or a single **node** (hinted handoff). A datacenter's queue has two
//! [`Lane`]s: the backlog, and the urgent lane of entries a client is waiting
//! on (a level that needs that datacenter's acknowledgements), so they never
//! queue behind a backlog. Keys sort by destination and lane, then by
//! sequence number, so a lane drains in order with one range scan:
//!
//! ```text
//! key   = [kind: b'd' (dc backlog) | b'u' (dc urgent) | b'n' (node)]
//!         [name_len: u8][name][seq: u64 BE]
//! value = [format: 1][created_ms: u64 LE][prost StreamEntry]
//! ```
//! Must not: decide when entries are sent or dropped.

use crate::proto::v1::internode::StreamEntry;
use prost::Message;

/// Key prefix (in the `hints` column family) of entries moved aside because
/// they could not be decoded: `DEAD_PREFIX` followed by the entry's key.
pub const DEAD_PREFIX: &[u8] = b"x";

/// Format version of a queued entry.
pub const ENTRY_FORMAT: u8 = 1;

/// Where a queue delivers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    /// Every replica of the key in this datacenter (inter-DC stream).
    Dc(String),
    /// This one node (hinted handoff).
    Node(String),
}

/// The two lanes of a datacenter's queue. A node queue has only the backlog
/// lane (asking for its urgent lane gives the same keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Replication nobody waits on: paced, batched large.
    Backlog,
    /// Entries a client request is waiting on: sent at once, applied first.
    Urgent,
}

impl Lane {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Lane::Backlog => "backlog",
            Lane::Urgent => "urgent",
        }
    }
}

impl Dest {
    fn kind(&self, lane: Lane) -> u8 {
        match (self, lane) {
            (Dest::Dc(_), Lane::Backlog) => b'd',
            (Dest::Dc(_), Lane::Urgent) => b'u',
            (Dest::Node(_), _) => b'n',
        }
    }

    /// The lanes this queue uses, most urgent first.
    pub fn lanes(&self) -> &'static [Lane] {
        match self {
            Dest::Dc(_) => &[Lane::Urgent, Lane::Backlog],
            Dest::Node(_) => &[Lane::Backlog],
        }
    }

    /// The datacenter or node name.
    pub fn name(&self) -> &str {
        match self {
            Dest::Dc(n) | Dest::Node(n) => n,
        }
    }

    /// Label for metrics: `dc:dc2` or `node:dc1-n2`.
    pub fn label(&self) -> String {
        match self {
            Dest::Dc(n) => format!("dc:{n}"),
            Dest::Node(n) => format!("node:{n}"),
        }
    }

    /// The queue a [`Dest::label`] names (`None` for anything else).
    pub fn from_label(label: &str) -> Option<Dest> {
        match label.split_once(':')? {
            ("dc", n) if !n.is_empty() => Some(Dest::Dc(n.to_string())),
            ("node", n) if !n.is_empty() => Some(Dest::Node(n.to_string())),
            _ => None,
        }
    }

    /// Key prefix of one lane of this queue.
    pub fn prefix(&self, lane: Lane) -> Vec<u8> {
        let name = self.name().as_bytes();
        let mut k = Vec::with_capacity(2 + name.len());
        k.push(self.kind(lane));
        k.push(name.len() as u8);
        k.extend_from_slice(name);
        k
    }

    /// First key after every key of one lane of this queue.
    pub fn prefix_end(&self, lane: Lane) -> Vec<u8> {
        let mut k = self.prefix(lane);
        k.extend_from_slice(&[0xff; 9]);
        k
    }

    /// The key of entry `seq` in `lane`.
    pub fn key(&self, lane: Lane, seq: u64) -> Vec<u8> {
        let mut k = self.prefix(lane);
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// Parses a key back into its queue, lane and sequence number.
    pub fn parse_key(key: &[u8]) -> Option<EntryKey> {
        let (&kind, rest) = key.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = len as usize;
        if rest.len() != len + 8 {
            return None;
        }
        let name = std::str::from_utf8(&rest[..len]).ok()?.to_string();
        let seq = u64::from_be_bytes(rest[len..].try_into().ok()?);
        let (dest, lane) = match kind {
            b'd' => (Dest::Dc(name), Lane::Backlog),
            b'u' => (Dest::Dc(name), Lane::Urgent),
            b'n' => (Dest::Node(name), Lane::Backlog),
            _ => return None,
        };
        Some(EntryKey { dest, lane, seq })
    }
}

/// A queued entry's key, parsed ([`Dest::parse_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryKey {
    pub dest: Dest,
    pub lane: Lane,
    pub seq: u64,
}

/// Encodes a queued entry.
pub fn encode_entry(created_ms: u64, entry: &StreamEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + entry.encoded_len());
    v.push(ENTRY_FORMAT);
    v.extend_from_slice(&created_ms.to_le_bytes());
    entry.encode(&mut v).expect("Vec grows");
    v
}

/// Decodes a queued entry: `(created_ms, entry)`.
pub fn decode_entry(v: &[u8]) -> Option<(u64, StreamEntry)> {
    if v.len() < 9 || v[0] != ENTRY_FORMAT {
        return None;
    }
    let created = u64::from_le_bytes(v[1..9].try_into().ok()?);
    let e = StreamEntry::decode(&v[9..]).ok()?;
    Some((created, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_names_its_queue_and_nothing_else_does() {
        for d in [Dest::Dc("dc2".into()), Dest::Node("dc1-n2".into())] {
            assert_eq!(Dest::from_label(&d.label()), Some(d));
        }
        for bad in ["", "dc:", "node:", "dc2", "rack:r1", ":dc2"] {
            assert_eq!(Dest::from_label(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_roundtrip_and_sort_by_queue_then_seq() {
        let a = Dest::Dc("dc2".into());
        let b = Dest::Node("dc1-n2".into());
        for d in [&a, &b] {
            for &lane in d.lanes() {
                for seq in [0, 1, 255, 256, u64::MAX - 1] {
                    let k = d.key(lane, seq);
                    let parsed = Some(EntryKey {
                        dest: d.clone(),
                        lane,
                        seq,
                    });
                    assert_eq!(Dest::parse_key(&k), parsed);
                    assert!(k >= d.prefix(lane) && k < d.prefix_end(lane));
                }
            }
        }
        let (bl, ur) = (Lane::Backlog, Lane::Urgent);
        assert!(a.key(bl, 256) > a.key(bl, 255));
        assert!(a.key(bl, u64::MAX - 1) < a.prefix_end(bl));
        // The lanes of one datacenter never overlap.
        assert!(a.prefix_end(bl) <= a.prefix(ur) || a.prefix_end(ur) <= a.prefix(bl));
    }

    #[test]
    fn entries_roundtrip_and_reject_other_formats() {
        let e = StreamEntry {
            seq: 7,
            keyspace: "default".into(),
            key: b"k".to_vec(),
            record: vec![1, 2, 3],
            target_node: String::new(),
            traceparent: String::new(),
            need_acks: 2,
            coordinator_pending: Some(1),
            created_ms: None,
        };
        let v = encode_entry(42, &e);
        assert_eq!(decode_entry(&v), Some((42, e)));
        let mut bad = v.clone();
        bad[0] = 9;
        assert_eq!(decode_entry(&bad), None);
        assert_eq!(decode_entry(&v[..5]), None);
    }
}
