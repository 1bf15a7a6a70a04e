//! Merkle leaves over a token range of this replica's engine: what the
//! `Merkle` RPC answers and what a repair session compares
//! (`repair::diff`).
//!
//! A tree over `(start, end]` has `2^depth` leaves, each the xxh3-128 of
//! every `(key, record)` whose token falls in that equal slice of the range
//! ([`leaf_of`]; its inverse and the tree diff are in `repair::diff`). Replicas that agree on a leaf hold
//! identical data for its slice. The leaves are the wire format of the
//! `Merkle` RPC, so the hash input must not change.
//!
//! Must not: talk to peers or decide what to compare.

use crate::engine::{Engine, EngineError};
use crate::token::{token_of, Token, TokenRange};
use xxhash_rust::xxh3::Xxh3;

/// Deepest tree built or served: 2^12 leaves (about 2.4 MB of hashers
/// while hashing, a 64 KiB answer). A `Merkle` request asking for more is
/// refused ([`check_depth`]) rather than allocating 2^depth hashers.
pub const MAX_DEPTH: u32 = 12;

/// The leaf of a tree of `depth` over `range` that holds `token` (which must
/// be in `range`).
pub fn leaf_of(range: TokenRange, depth: u32, token: Token) -> usize {
    let depth = depth.min(MAX_DEPTH);
    let off = u128::from(token.wrapping_sub(range.start).wrapping_sub(1));
    let leaf = (off << depth) / range.width();
    (leaf as usize).min((1usize << depth) - 1)
}

/// A `Merkle` request deeper than [`MAX_DEPTH`]: refused before any
/// hasher is allocated (`INVALID_ARGUMENT` on the peer port).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Merkle depth {depth} is deeper than the {max} this node serves (2^{max} leaves)")]
pub struct TooDeep {
    pub depth: u32,
    pub max: u32,
}

/// `depth` if a tree that deep may be built for a peer.
pub fn check_depth(depth: u32) -> Result<u32, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep {
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(depth)
}

/// Rows read per engine page while hashing.
const PAGE: usize = 4096;

/// The leaves of the Merkle tree of `keyspace` over `(start, end]`.
pub fn merkle_leaves(
    engine: &dyn Engine,
    keyspace: &str,
    start: u64,
    end: u64,
    depth: u32,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let depth = depth.min(MAX_DEPTH);
    let range = TokenRange::new(start, end);
    let mut hashers: Vec<Xxh3> = (0..1usize << depth).map(|_| Xxh3::new()).collect();
    let mut after: Option<Vec<u8>> = None;
    let mut record = Vec::new();
    loop {
        let page = engine.scan_token_range(keyspace, start, end, after.as_deref(), PAGE)?;
        let Some((last, _)) = page.last() else { break };
        let last = last.clone();
        for (key, set) in &page {
            record.clear();
            set.encode(&mut record);
            let h = &mut hashers[leaf_of(range, depth, token_of(key))];
            h.update(&(key.len() as u32).to_le_bytes());
            h.update(key);
            h.update(&record);
        }
        if page.len() < PAGE {
            break;
        }
        after = Some(last);
    }
    Ok(hashers
        .into_iter()
        .map(|h| h.digest128().to_le_bytes().to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Limits, MemoryEngine, WriteBatch};
    use crate::version::{ActorId, CausalContext, SiblingSet};

    fn set(value: &str, actor: &str) -> SiblingSet {
        let mut s = SiblingSet::new();
        s.update(
            ActorId::from_node_id(actor),
            &CausalContext::new(),
            Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
            1,
            16,
        )
        .unwrap();
        s
    }

    fn engine(keys: impl IntoIterator<Item = (String, SiblingSet)>) -> MemoryEngine {
        let e = MemoryEngine::new(Limits::default());
        let mut b = WriteBatch::new();
        for (k, s) in keys {
            b.merge_versions("default", k.as_bytes(), &s);
        }
        e.write(b).unwrap();
        e
    }

    fn keys(n: usize) -> Vec<(String, SiblingSet)> {
        (0..n)
            .map(|i| (format!("key-{i}"), set(&format!("v{i}"), "n1")))
            .collect()
    }

    const RANGES: [(u64, u64); 3] = [(0, 0), (1 << 62, 3 << 62), (3 << 62, 1 << 62)];

    #[test]
    fn identical_engines_give_identical_leaves() {
        let (a, b) = (engine(keys(500)), engine(keys(500).into_iter().rev()));
        for (s, e) in RANGES {
            let la = merkle_leaves(&a, "default", s, e, 6).unwrap();
            assert_eq!(la.len(), 64);
            assert_eq!(la, merkle_leaves(&b, "default", s, e, 6).unwrap());
        }
        // Another keyspace or no data at all: all leaves equal the empty hash.
        let empty = MemoryEngine::new(Limits::default());
        assert_eq!(
            merkle_leaves(&a, "other", 0, 0, 3).unwrap(),
            merkle_leaves(&empty, "default", 0, 0, 3).unwrap()
        );
    }

    #[test]
    fn one_differing_key_is_exactly_one_leaf_holding_its_token() {
        let a = engine(keys(5000)); // more than one engine page
        for (changed, how) in [
            ("key-1234", "value"),
            ("key-77", "missing"),
            ("extra", "extra"),
        ] {
            let b = engine(keys(5000).into_iter().filter_map(|(k, s)| match how {
                "value" if k == changed => Some((k, set("other", "n2"))),
                "missing" if k == changed => None,
                _ => Some((k, s)),
            }));
            if how == "extra" {
                let mut batch = WriteBatch::new();
                batch.merge_versions("default", changed.as_bytes(), &set("x", "n1"));
                b.write(batch).unwrap();
            }
            let t = token_of(changed.as_bytes());
            for (s, e) in RANGES {
                let range = TokenRange::new(s, e);
                let la = merkle_leaves(&a, "default", s, e, 10).unwrap();
                let lb = merkle_leaves(&b, "default", s, e, 10).unwrap();
                // Which leaves differ (`repair::diff` turns them into
                // ranges; tested there, repair being above the replica).
                let diff: Vec<usize> = (0..la.len()).filter(|&i| la[i] != lb[i]).collect();
                if range.contains(t) {
                    assert_eq!(diff, vec![leaf_of(range, 10, t)], "{changed} in {range}");
                } else {
                    assert!(diff.is_empty(), "{changed} is outside {range}");
                }
            }
        }
    }

    #[test]
    fn a_request_deeper_than_served_is_refused_typed() {
        assert_eq!(check_depth(MAX_DEPTH), Ok(MAX_DEPTH));
        assert_eq!(check_depth(0), Ok(0));
        for depth in [MAX_DEPTH + 1, 16, 63, u32::MAX] {
            assert_eq!(
                check_depth(depth),
                Err(TooDeep {
                    depth,
                    max: MAX_DEPTH
                })
            );
        }
    }

    #[test]
    fn depth_is_capped() {
        let a = engine(keys(3));
        assert_eq!(
            merkle_leaves(&a, "default", 0, 0, 40).unwrap().len(),
            1 << MAX_DEPTH
        );
        assert_eq!(merkle_leaves(&a, "default", 5, 9, 0).unwrap().len(), 1);
    }
}
