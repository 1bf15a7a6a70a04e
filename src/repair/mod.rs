//! Anti-entropy: Merkle trees over token ranges, compared between replicas
//! so only ranges that differ are streamed (the seeds' Merkle-tree repair).
//!
//! A tree over a token range `(start, end]` has `2^depth` leaves, each the
//! hash of every (key, record) whose token falls in that equal slice of the
//! range. Replicas that agree on a leaf hold identical data for its slice.
//! Must not: decide *when* to repair (that is the caller's schedule).

use crate::engine::{Engine, EngineError};
use xxhash_rust::xxh3::Xxh3;

/// Deepest tree served (2^16 leaves).
pub const MAX_DEPTH: u32 = 16;

/// The leaves of the Merkle tree of `keyspace` over `(start, end]`.
pub fn merkle_leaves(
    engine: &dyn Engine,
    keyspace: &str,
    start: u64,
    end: u64,
    depth: u32,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let depth = depth.min(MAX_DEPTH);
    let leaves = 1usize << depth;
    let width = end.wrapping_sub(start);
    let mut hashers: Vec<Xxh3> = (0..leaves).map(|_| Xxh3::new()).collect();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = engine.scan_token_range(keyspace, start, end, after.as_deref(), 4096)?;
        let Some((last, _)) = page.last() else { break };
        let last = last.clone();
        for (key, set) in &page {
            let t = crate::ring::token_of(key);
            let off = t.wrapping_sub(start).wrapping_sub(1);
            let slice = if width == 0 {
                (off >> (64 - depth.max(1))) as usize & (leaves - 1)
            } else {
                ((off as u128 * leaves as u128) / width as u128) as usize
            };
            let mut record = Vec::with_capacity(set.encoded_len());
            set.encode(&mut record);
            let h = &mut hashers[slice.min(leaves - 1)];
            h.update(&(key.len() as u32).to_le_bytes());
            h.update(key);
            h.update(&record);
        }
        after = Some(last);
    }
    Ok(hashers
        .into_iter()
        .map(|h| h.digest128().to_le_bytes().to_vec())
        .collect())
}
