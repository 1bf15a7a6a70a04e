//! The verified-token cache: argon2 runs once per token and state in force,
//! not once per request. Keys are the SHA-256 of the token (the token
//! itself is not kept); entries belong to one state in force (its
//! generation on this node, + 1 on every swap, so "version" below) and are
//! all dropped when the state changes (a new secret, a dropped role).
//! Bounded: when full it starts over.
//!
//! Must not: verify secrets or decide permissions.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// What a token was found to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The token's secret matches its role.
    Role(String),
    /// It does not (or the role has no secret, or does not exist).
    Rejected,
}

/// Verified tokens of one auth-state version.
#[derive(Debug)]
pub struct TokenCache {
    version: u64,
    entries: HashMap<[u8; 32], Verified>,
    capacity: usize,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            version: 0,
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn roll(&mut self, version: u64) {
        if version > self.version {
            self.entries.clear();
            self.version = version;
        }
    }

    /// The verdict on `token` under auth-state `version`, if cached.
    pub fn get(&mut self, version: u64, token: &str) -> Option<Verified> {
        self.roll(version);
        if version != self.version {
            return None;
        }
        self.entries.get(&key(token)).cloned()
    }

    /// Remembers the verdict on `token` reached under `version` (ignored if
    /// the cache has moved on to a newer version since).
    pub fn put(&mut self, version: u64, token: &str, verdict: Verified) {
        self.roll(version);
        if version != self.version {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(key(token), verdict);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_within_a_version_and_forgets_on_a_new_one() {
        let mut c = TokenCache::new(8);
        assert_eq!(c.get(3, "app:s"), None);
        c.put(3, "app:s", Verified::Role("app".into()));
        c.put(3, "app:bad", Verified::Rejected);
        assert_eq!(c.get(3, "app:s"), Some(Verified::Role("app".into())));
        assert_eq!(c.get(3, "app:bad"), Some(Verified::Rejected));
        assert_eq!(c.get(3, "app:other"), None);
        // The state changed (e.g. the role was dropped): everything is re-verified.
        assert_eq!(c.get(4, "app:s"), None);
        assert!(c.is_empty());
        // A verdict reached under the old version is not kept.
        c.put(3, "app:s", Verified::Role("app".into()));
        assert_eq!(c.get(4, "app:s"), None);
    }

    #[test]
    fn stays_bounded() {
        let mut c = TokenCache::new(4);
        for i in 0..100 {
            c.put(1, &format!("r:{i}"), Verified::Rejected);
            assert!(c.len() <= 4);
        }
        assert_eq!(c.get(1, "r:99"), Some(Verified::Rejected));
    }
}
