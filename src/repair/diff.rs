//! Leaf geometry and the tree diff. Pure: no I/O, no clock.
//!
//! A Merkle tree over a token range `(start, end]` of width `W` (2^64 for the
//! whole ring) has `L = 2^depth` leaves. The token `t` sits at offset
//! `off = t - start - 1` (wrapping) and belongs to leaf `⌊off · L / W⌋`, so
//! leaf `i` covers offsets `[⌈i·W/L⌉, ⌈(i+1)·W/L⌉)`, i.e. the tokens
//! `(start + ⌈i·W/L⌉, start + ⌈(i+1)·W/L⌉]`. Leaves of a range narrower than
//! `L` tokens may be empty. [`leaf_of`] and [`leaf_range`] are the two
//! directions of this one mapping; [`differing_ranges`] turns the leaves two
//! replicas sent into the token sub-ranges that must be streamed.
//!
//! Must not: hash data (that is `merkle.rs`) or know who sent the leaves.

use crate::ring::{Token, TokenRange};

/// Deepest tree built or served: 2^12 leaves (about 2.4 MB of hashers
/// while hashing, a 64 KiB answer). A `Merkle` request asking for more is
/// refused (`merkle::check_depth`) rather than allocating 2^depth hashers.
pub const MAX_DEPTH: u32 = 12;

/// Two trees that cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("trees of {a} and {b} leaves cannot be compared (depth {depth} needs {expected})")]
    LeafCount {
        a: usize,
        b: usize,
        depth: u32,
        expected: usize,
    },
}

fn width(range: TokenRange) -> u128 {
    range.width()
}

/// Offset of leaf `i`'s first token from `range.start + 1`: `⌈i·W/L⌉`.
fn leaf_lower(range: TokenRange, depth: u32, i: u128) -> u128 {
    (i * width(range)).div_ceil(1u128 << depth)
}

/// The leaf of a tree of `depth` over `range` that holds `token` (which must
/// be in `range`).
pub fn leaf_of(range: TokenRange, depth: u32, token: Token) -> usize {
    let depth = depth.min(MAX_DEPTH);
    let off = u128::from(token.wrapping_sub(range.start).wrapping_sub(1));
    let leaf = (off << depth) / width(range);
    (leaf as usize).min((1usize << depth) - 1)
}

/// The tokens of leaves `first..=last`; `None` when they hold no token.
pub fn leaves_range(
    range: TokenRange,
    depth: u32,
    first: usize,
    last: usize,
) -> Option<TokenRange> {
    let depth = depth.min(MAX_DEPTH);
    let lo = leaf_lower(range, depth, first as u128);
    let hi = leaf_lower(range, depth, last as u128 + 1);
    (hi > lo).then(|| {
        // `as u64` wraps 2^64 to 0: the whole-ring case ends where it starts.
        TokenRange::new(
            range.start.wrapping_add(lo as u64),
            range.start.wrapping_add(hi as u64),
        )
    })
}

/// The tokens of leaf `i`; `None` for an empty leaf.
pub fn leaf_range(range: TokenRange, depth: u32, i: usize) -> Option<TokenRange> {
    leaves_range(range, depth, i, i)
}

/// Indices of the leaves that differ.
pub fn differing_leaves(a: &[Vec<u8>], b: &[Vec<u8>]) -> Vec<usize> {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect()
}

/// What two trees disagree on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeDiff {
    /// Number of differing leaves.
    pub leaves: usize,
    /// Their tokens, adjacent leaves joined, in leaf order.
    pub ranges: Vec<TokenRange>,
}

/// Compares the leaves of two trees of `depth` over `range` and returns the
/// token sub-ranges to stream (consecutive differing leaves become one
/// sub-range; empty leaves are dropped).
pub fn differing_ranges(
    range: TokenRange,
    depth: u32,
    a: &[Vec<u8>],
    b: &[Vec<u8>],
) -> Result<TreeDiff, DiffError> {
    let depth = depth.min(MAX_DEPTH);
    let expected = 1usize << depth;
    if a.len() != expected || b.len() != expected {
        return Err(DiffError::LeafCount {
            a: a.len(),
            b: b.len(),
            depth,
            expected,
        });
    }
    let leaves = differing_leaves(a, b);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in &leaves {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == i => run.1 = i,
            _ => runs.push((i, i)),
        }
    }
    let ranges = runs
        .into_iter()
        .filter_map(|(first, last)| leaves_range(range, depth, first, last))
        .collect();
    Ok(TreeDiff {
        leaves: leaves.len(),
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: usize, differ: &[usize]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let a: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8]).collect();
        let mut b = a.clone();
        for &i in differ {
            b[i] = vec![0xee, i as u8];
        }
        (a, b)
    }

    /// Every token maps to exactly the leaf whose range contains it.
    fn check_partition(range: TokenRange, depth: u32, probes: &[Token]) {
        let leaves = 1usize << depth;
        for &t in probes {
            if !range.contains(t) {
                continue;
            }
            let i = leaf_of(range, depth, t);
            for j in 0..leaves {
                let holds = leaf_range(range, depth, j).is_some_and(|r| r.contains(t));
                assert_eq!(
                    holds,
                    i == j,
                    "range {range} depth {depth} token {t:#x} leaf {j}"
                );
            }
        }
    }

    fn probes(range: TokenRange) -> Vec<Token> {
        let mut v = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1];
        for d in [0u64, 1, 2, 3, 7, 1000] {
            v.push(range.start.wrapping_add(d));
            v.push(range.end.wrapping_sub(d));
        }
        let w = range.width();
        for k in 1..64u128 {
            let off = (w * k / 64) as u64;
            v.extend(
                [off, off.wrapping_sub(1), off.wrapping_add(1)]
                    .map(|o| range.start.wrapping_add(o)),
            );
        }
        v
    }

    #[test]
    fn leaves_partition_plain_wrapped_full_and_tiny_ranges() {
        for range in [
            TokenRange::new(100, 1_000_000),
            TokenRange::new(u64::MAX - 500, 700), // wraps past u64::MAX
            TokenRange::new(42, 42),              // whole ring
            TokenRange::new(0, 0),
            TokenRange::new(10, 13), // narrower than the leaf count
            TokenRange::new(u64::MAX, 2),
        ] {
            for depth in [0, 1, 3, 4] {
                check_partition(range, depth, &probes(range));
            }
        }
    }

    #[test]
    fn leaf_ranges_tile_the_range() {
        for range in [
            TokenRange::new(5, 5),
            TokenRange::new(u64::MAX - 3, 1 << 40),
            TokenRange::new(10, 13),
        ] {
            let depth = 3;
            let mut next = range.start;
            for i in 0..8 {
                if let Some(r) = leaf_range(range, depth, i) {
                    assert_eq!(
                        r.start, next,
                        "leaf {i} of {range} starts where the previous ended"
                    );
                    next = r.end;
                }
            }
            assert_eq!(next, range.end);
        }
    }

    #[test]
    fn identical_trees_have_no_diff() {
        let (a, _) = tree(16, &[]);
        let d = differing_ranges(TokenRange::new(0, 1600), 4, &a, &a).unwrap();
        assert_eq!(d, TreeDiff::default());
    }

    #[test]
    fn one_leaf_maps_to_its_slice() {
        let (a, b) = tree(16, &[3]);
        let d = differing_ranges(TokenRange::new(0, 1600), 4, &a, &b).unwrap();
        assert_eq!(d.leaves, 1);
        assert_eq!(d.ranges, vec![TokenRange::new(300, 400)]);
        assert!(
            d.ranges[0].contains(301) && d.ranges[0].contains(400) && !d.ranges[0].contains(300)
        );
    }

    #[test]
    fn adjacent_leaves_join_and_gaps_split() {
        let (a, b) = tree(16, &[0, 1, 2, 7, 15]);
        let d = differing_ranges(TokenRange::new(0, 1600), 4, &a, &b).unwrap();
        assert_eq!(d.leaves, 5);
        assert_eq!(
            d.ranges,
            vec![
                TokenRange::new(0, 300),
                TokenRange::new(700, 800),
                TokenRange::new(1500, 1600)
            ]
        );
    }

    #[test]
    fn wrapped_range_sub_ranges_wrap_too() {
        // (MAX-799, 800]: 1600 tokens, 16 leaves of 100; leaf 7 holds
        // MAX-98..=MAX and 0 (offset 799), leaf 8 starts at 1.
        let range = TokenRange::new(u64::MAX - 799, 800);
        let (a, b) = tree(16, &[7, 8]);
        let d = differing_ranges(range, 4, &a, &b).unwrap();
        assert_eq!(d.ranges, vec![TokenRange::new(u64::MAX - 99, 100)]);
        let r = d.ranges[0];
        assert!(r.contains(u64::MAX) && r.contains(0) && r.contains(100) && !r.contains(101));
        assert_eq!(leaf_of(range, 4, u64::MAX), 7);
        assert_eq!(leaf_of(range, 4, 0), 7);
        assert_eq!(leaf_of(range, 4, 1), 8);
        assert_eq!(
            leaf_range(range, 4, 7),
            Some(TokenRange::new(u64::MAX - 99, 0))
        );
    }

    #[test]
    fn every_leaf_of_the_whole_ring_is_the_whole_ring() {
        let (a, b) = tree(4, &[0, 1, 2, 3]);
        let d = differing_ranges(TokenRange::new(77, 77), 2, &a, &b).unwrap();
        assert_eq!(d.ranges, vec![TokenRange::new(77, 77)]);
        assert!(d.ranges[0].is_full());
        let (a, b) = tree(4, &[3]);
        let d = differing_ranges(TokenRange::new(0, 0), 2, &a, &b).unwrap();
        assert_eq!(d.ranges, vec![TokenRange::new(3 << 62, 0)]);
    }

    #[test]
    fn empty_leaves_of_a_tiny_range_are_dropped() {
        // 3 tokens over 16 leaves: only leaves 0, 5 and 10 hold one.
        let range = TokenRange::new(10, 13);
        let (a, b) = tree(16, &(0..16).collect::<Vec<_>>());
        let d = differing_ranges(range, 4, &a, &b).unwrap();
        assert_eq!(d.leaves, 16);
        assert_eq!(d.ranges, vec![range]);
        let (a, b) = tree(16, &[1, 2]);
        let d = differing_ranges(range, 4, &a, &b).unwrap();
        assert!(d.ranges.is_empty(), "{:?}", d.ranges);
    }

    #[test]
    fn mismatched_leaf_counts_are_an_error() {
        let (a, _) = tree(16, &[]);
        let (b, _) = tree(8, &[]);
        assert!(matches!(
            differing_ranges(TokenRange::new(0, 100), 4, &a, &b),
            Err(DiffError::LeafCount { a: 16, b: 8, .. })
        ));
    }
}
