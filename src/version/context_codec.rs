//! The byte formats of the opaque causal context ([`CausalContext`]).
//!
//! Owns the context format versions, their bounds and the key binding.
//! Must not panic, over-allocate or spend more than linear time on any
//! input, ever: contexts come from clients.
//!
//! ```text
//! context := 1:u8  clock                                  a bare clock (unbound; earlier releases)
//!          | 2:u8  clock  dots                            past + exact dots (unbound; internode)
//!          | CONTEXT_FORMAT_VERSION:u8  key:u64 LE  clock  dots
//!                                                         what clients get: bound to its key
//! dots    := varint(n)  (actor:u64 LE  counter:varint)*   strictly increasing
//! ```
//! The empty slice is the empty context (a blind write). Decoding refuses
//! counters above [`MAX_CONTEXT_COUNTER`] (no actor mints that many writes
//! to one key, and a larger one could overflow the next dot), more than
//! [`MAX_CONTEXT_ACTORS`] clock entries or [`MAX_CONTEXT_DOTS`] exact dots,
//! and, for a key-bound context, one returned for another key: a context
//! covers versions of its own key only, and applied to another key it would
//! overwrite versions its client never saw there.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::actor::{ActorId, Dot};
use super::clock::VersionVector;
use super::codec::{clock_len, decode_clock, encode_clock, put_varint, DecodeError, Reader};
use super::context::CausalContext;

/// First byte of the key-bound context handed to clients.
pub const CONTEXT_FORMAT_VERSION: u8 = 3;
/// A bare clock.
const PAST_ONLY: u8 = 1;
/// Past and exact dots, not bound to a key.
const UNBOUND: u8 = 2;
/// The largest counter a context may name (2^48: a million writes a second
/// to one key by one actor for eight years).
pub const MAX_CONTEXT_COUNTER: u64 = 1 << 48;
/// At most this many actors in a context's clock (one per node incarnation
/// that ever coordinated a write of the key).
pub const MAX_CONTEXT_ACTORS: usize = 1024;
/// At most this many exact dots (a write's context has one per actor).
pub const MAX_CONTEXT_DOTS: usize = 256;

/// The fingerprint a client context carries of its key.
pub fn key_fingerprint(keyspace: &str, key: &[u8]) -> u64 {
    xxh3_64_with_seed(
        key,
        xxh3_64_with_seed(keyspace.as_bytes(), 0x0067_656f_6b76),
    )
}

impl VersionVector {
    /// This clock as an unbound context (format 1: `[1, 0]` when empty).
    pub fn encode_context(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + clock_len(self));
        out.push(PAST_ONLY);
        encode_clock(self, &mut out);
        out
    }

    /// Decodes a context's causal past, refusing one with exact dots.
    pub fn decode_context(b: &[u8]) -> Result<VersionVector, DecodeError> {
        let ctx = CausalContext::decode_context(b)?;
        match ctx.dots().len() {
            0 => Ok(ctx.past().clone()),
            _ => Err(DecodeError::UnknownVersion(UNBOUND)),
        }
    }
}

impl CausalContext {
    /// Unbound bytes (between nodes, after the edge has checked the key):
    /// format 1 without exact dots (byte-identical to the clock's own
    /// encoding), else format 2.
    pub fn encode_context(&self) -> Vec<u8> {
        if self.dots().is_empty() {
            return self.past().encode_context();
        }
        let mut out = Vec::with_capacity(2 + clock_len(self.past()) + self.dots().len() * 12);
        out.push(UNBOUND);
        self.encode_body(&mut out);
        out
    }

    /// The opaque bytes handed to a client for `key` of `keyspace`.
    pub fn encode_for(&self, keyspace: &str, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + clock_len(self.past()) + self.dots().len() * 12);
        out.push(CONTEXT_FORMAT_VERSION);
        out.extend_from_slice(&key_fingerprint(keyspace, key).to_le_bytes());
        self.encode_body(&mut out);
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        encode_clock(self.past(), out);
        put_varint(out, self.dots().len() as u64);
        for d in self.dots() {
            out.extend_from_slice(&d.actor.0.to_le_bytes());
            put_varint(out, d.counter);
        }
    }

    /// Decodes a context a client sent with a write of `key`: a key-bound
    /// one must have been returned for this key; unbound ones (from earlier
    /// releases) are taken as they are.
    pub fn decode_for(b: &[u8], keyspace: &str, key: &[u8]) -> Result<CausalContext, DecodeError> {
        decode(b, Some(key_fingerprint(keyspace, key)))
    }

    /// Decodes any context format without checking its key.
    pub fn decode_context(b: &[u8]) -> Result<CausalContext, DecodeError> {
        decode(b, None)
    }
}

fn decode(b: &[u8], key: Option<u64>) -> Result<CausalContext, DecodeError> {
    let mut r = Reader::new(b);
    let version = match r.byte() {
        Err(_) => return Ok(CausalContext::new()),
        Ok(v @ (PAST_ONLY | UNBOUND | CONTEXT_FORMAT_VERSION)) => v,
        Ok(v) => return Err(DecodeError::UnknownVersion(v)),
    };
    if version == CONTEXT_FORMAT_VERSION {
        let raw: [u8; 8] = r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?;
        if key.is_some_and(|k| k != u64::from_le_bytes(raw)) {
            return Err(DecodeError::OtherKey);
        }
    }
    let past = decode_clock(&mut r)?;
    bound("clock entries", past.len(), MAX_CONTEXT_ACTORS)?;
    let dots = match version {
        PAST_ONLY => Vec::new(),
        _ => decode_dots(&mut r)?,
    };
    r.finish()?;
    let ctx = CausalContext::from_parts(past, dots);
    match ctx.max_any_counter() {
        c if c > MAX_CONTEXT_COUNTER => Err(DecodeError::CounterTooLarge { counter: c }),
        _ => Ok(ctx),
    }
}

fn decode_dots(r: &mut Reader<'_>) -> Result<Vec<Dot>, DecodeError> {
    let n = r.count()?;
    bound("exact dots", n, MAX_CONTEXT_DOTS)?;
    let mut dots: Vec<Dot> = Vec::with_capacity(n);
    for index in 0..n {
        let raw: [u8; 8] = r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?;
        let counter = r.varint()?;
        if counter == 0 {
            return Err(DecodeError::ZeroCounter { index });
        }
        let dot = Dot::new(ActorId(u64::from_le_bytes(raw)), counter);
        if dots.last().is_some_and(|p| *p >= dot) {
            return Err(DecodeError::DotsNotSorted { index });
        }
        dots.push(dot);
    }
    Ok(dots)
}

fn bound(what: &'static str, count: usize, max: usize) -> Result<(), DecodeError> {
    match count > max {
        true => Err(DecodeError::ContextTooLarge { what, count, max }),
        false => Ok(()),
    }
}
