//! Tokens: where keys and virtual nodes sit on the ring, and token ranges.
//!
//! Owns the key hash and the vnode token derivation; both are part of the
//! on-disk and wire contract (the engine orders keys by token), so they must
//! never change for an existing cluster. Must not know about placement.

use xxhash_rust::xxh3::xxh3_64;

/// A position on the ring: the full `u64` space, wrapping at `u64::MAX`.
pub type Token = u64;

/// The token of a key: `xxh3_64(key)`.
///
/// xxh3 is fast on short keys, passes SMHasher with excellent distribution,
/// and its output is specified and stable across platforms, endianness and
/// crate versions, which a token must be (it is stored on disk and compared
/// between nodes). Cassandra's Murmur3 would serve equally; we chose one
/// and keep it.
pub fn token_of(key: &[u8]) -> Token {
    xxh3_64(key)
}

/// The token of virtual node `i` of node `node_id`: `xxh3_64("{node_id}#{i}")`.
/// Deterministic, so every node derives the same ring from the same file,
/// and adding a node moves only the ranges its own tokens claim.
pub fn vnode_token(node_id: &str, i: u32) -> Token {
    xxh3_64(format!("{node_id}#{i}").as_bytes())
}

/// The tokens `(start, end]`, wrapping past `u64::MAX` when `start > end`,
/// like Cassandra. `start == end` means the whole ring.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenRange {
    pub start: Token,
    pub end: Token,
}

impl TokenRange {
    pub fn new(start: Token, end: Token) -> Self {
        TokenRange { start, end }
    }

    pub fn contains(&self, t: Token) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => self.start < t && t <= self.end,
            std::cmp::Ordering::Greater => t > self.start || t <= self.end,
        }
    }

    /// The number of tokens in the range (2^64 for the whole ring).
    pub fn width(&self) -> u128 {
        if self.start == self.end {
            1u128 << 64
        } else {
            u128::from(self.end.wrapping_sub(self.start))
        }
    }

    /// True when the range is the whole ring.
    pub fn is_full(&self) -> bool {
        self.start == self.end
    }
}

impl std::fmt::Display for TokenRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:#018x}, {:#018x}]", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_of_is_stable() {
        // Pinned: changing the hash would silently re-home every stored key.
        assert_eq!(token_of(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(token_of(b"abc"), xxh3_64(b"abc"));
        assert_eq!(vnode_token("dc1-n1", 7), xxh3_64(b"dc1-n1#7"));
    }

    #[test]
    fn range_contains_and_width() {
        let r = TokenRange::new(10, 20);
        assert!(!r.contains(10) && r.contains(11) && r.contains(20) && !r.contains(21));
        assert_eq!(r.width(), 10);
        let w = TokenRange::new(u64::MAX - 1, 1);
        assert!(w.contains(u64::MAX) && w.contains(0) && w.contains(1));
        assert!(!w.contains(u64::MAX - 1) && !w.contains(2));
        assert_eq!(w.width(), 3);
        let full = TokenRange::new(5, 5);
        assert!(full.is_full() && full.contains(5) && full.contains(0));
        assert_eq!(full.width(), 1 << 64);
    }
}
