//! The binary formats of a stored record ([`SiblingSet`]) and of the opaque
//! client context ([`VersionVector`]). Hot path: the RocksDB merge operator
//! decodes and re-encodes a record on every write.
//!
//! Owns the byte layout, the format version bytes and [`DecodeError`]. Must
//! never panic or over-allocate on corrupt input: every length is checked
//! against the bytes that remain, and decoded state is validated so the
//! invariants `merge` relies on hold.
//!
//! ```text
//! record  := RECORD_FORMAT_VERSION:u8  clock  varint(n_siblings)  sibling*
//! clock   := varint(n_actors)  (actor:u64 LE  counter:varint)*     actors strictly increasing, counters > 0
//! sibling := varint(actor index into clock)  varint(counter)  varint(timestamp_ms)
//!            varint(value_len + 1, 0 = tombstone)  value bytes      sorted by dot, covered by clock
//! context := 1:u8  clock                                   a read's context (past only)
//!          | CONTEXT_FORMAT_VERSION:u8  clock  varint(n_dots)  (actor:u64 LE  counter:varint)*
//!                                                            a write's context (past + exact dots)
//! ```
//! Decoding a context also takes the empty slice as the empty context, and
//! refuses counters above [`MAX_CONTEXT_COUNTER`]: no actor mints that many
//! writes to one key, and a larger one could overflow the next dot.
//! Actor ids are hashes, so they are stored as fixed 8 bytes (a varint would
//! take 10); siblings name their actor by its index in the clock (1 byte).

use bytes::Bytes;

use super::actor::{ActorId, Dot};
use super::clock::VersionVector;
use super::context::CausalContext;
use super::siblings::{Sibling, SiblingSet};

/// First byte of every encoded record.
pub const RECORD_FORMAT_VERSION: u8 = 1;
/// First byte of an encoded client context with exact dots (a write's).
/// A context without them is encoded as format 1 (a bare clock), which is
/// what every earlier version of geokv reads and writes.
pub const CONTEXT_FORMAT_VERSION: u8 = 2;
/// First byte of a context that is a bare clock.
const CONTEXT_PAST_ONLY: u8 = 1;
/// The largest counter a client context may name (2^48: a million writes a
/// second to one key by one actor for eight years).
pub const MAX_CONTEXT_COUNTER: u64 = 1 << 48;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record: a record starts with its format version byte")]
    Empty,
    #[error("unknown format version {0} (this node reads version {RECORD_FORMAT_VERSION})")]
    UnknownVersion(u8),
    #[error("truncated: the bytes end before the encoded data does")]
    Truncated,
    #[error("varint at byte {at} does not fit in 64 bits")]
    VarintOverflow { at: usize },
    #[error("clock entry {index}: actors are not strictly increasing")]
    ClockNotSorted { index: usize },
    #[error("clock entry {index}: counter is 0")]
    ZeroCounter { index: usize },
    #[error("sibling {sibling}: actor index {index} but the clock has {actors} actors")]
    ActorIndexOutOfRange {
        sibling: usize,
        index: u64,
        actors: usize,
    },
    #[error(
        "sibling {sibling}: dot counter {counter} is not covered by the clock (0 or above {max})"
    )]
    DotNotCovered {
        sibling: usize,
        counter: u64,
        max: u64,
    },
    #[error("sibling {sibling}: siblings are not strictly sorted by dot")]
    SiblingsNotSorted { sibling: usize },
    #[error("{count} trailing bytes after the encoded data")]
    TrailingBytes { count: usize },
    #[error(
        "context counter {counter} is above {MAX_CONTEXT_COUNTER}: no replica minted it; \
         pass back a context a read or write returned"
    )]
    CounterTooLarge { counter: u64 },
}

impl SiblingSet {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(RECORD_FORMAT_VERSION);
        encode_clock(&self.clock, out);
        put_varint(out, self.siblings.len() as u64);
        for s in &self.siblings {
            put_varint(out, self.actor_index(s.dot.actor) as u64);
            put_varint(out, s.dot.counter);
            put_varint(out, s.timestamp_ms);
            match &s.value {
                None => put_varint(out, 0),
                Some(v) => {
                    put_varint(out, v.len() as u64 + 1);
                    out.extend_from_slice(v);
                }
            }
        }
    }

    pub fn encoded_len(&self) -> usize {
        let mut n = 1 + clock_len(&self.clock) + varint_len(self.siblings.len() as u64);
        for s in &self.siblings {
            n += varint_len(self.actor_index(s.dot.actor) as u64)
                + varint_len(s.dot.counter)
                + varint_len(s.timestamp_ms);
            n += match &s.value {
                None => 1,
                Some(v) => varint_len(v.len() as u64 + 1) + v.len(),
            };
        }
        n
    }

    pub fn decode(buf: &[u8]) -> Result<SiblingSet, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        match r.byte().map_err(|_| DecodeError::Empty)? {
            RECORD_FORMAT_VERSION => {}
            v => return Err(DecodeError::UnknownVersion(v)),
        }
        let clock = decode_clock(&mut r)?;
        let actors: Vec<(ActorId, u64)> = clock.iter().collect();
        let n = r.count()?;
        let mut siblings: Vec<Sibling> = Vec::with_capacity(n);
        for i in 0..n {
            let index = r.varint()?;
            let &(actor, max) =
                actors
                    .get(index as usize)
                    .ok_or(DecodeError::ActorIndexOutOfRange {
                        sibling: i,
                        index,
                        actors: actors.len(),
                    })?;
            let counter = r.varint()?;
            if counter == 0 || counter > max {
                return Err(DecodeError::DotNotCovered {
                    sibling: i,
                    counter,
                    max,
                });
            }
            let dot = Dot::new(actor, counter);
            if siblings.last().is_some_and(|p| p.dot >= dot) {
                return Err(DecodeError::SiblingsNotSorted { sibling: i });
            }
            let timestamp_ms = r.varint()?;
            let value = match r.varint()? {
                0 => None,
                len => Some(Bytes::copy_from_slice(r.take(len - 1)?)),
            };
            siblings.push(Sibling {
                dot,
                value,
                timestamp_ms,
            });
        }
        r.finish()?;
        Ok(SiblingSet { clock, siblings })
    }

    /// Siblings' dots are covered by the clock, so the actor is always there.
    fn actor_index(&self, actor: ActorId) -> usize {
        self.clock
            .iter()
            .position(|(a, _)| a == actor)
            .unwrap_or(usize::MAX)
    }
}

impl VersionVector {
    /// This clock as a client context (format 1: `[1, 0]` when empty).
    pub fn encode_context(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + clock_len(self));
        out.push(CONTEXT_PAST_ONLY);
        encode_clock(self, &mut out);
        out
    }

    /// Decodes a context's causal past, refusing one with exact dots.
    pub fn decode_context(b: &[u8]) -> Result<VersionVector, DecodeError> {
        let ctx = CausalContext::decode_context(b)?;
        match ctx.dots().len() {
            0 => Ok(ctx.past().clone()),
            _ => Err(DecodeError::UnknownVersion(CONTEXT_FORMAT_VERSION)),
        }
    }
}

impl CausalContext {
    /// The opaque bytes handed to clients: format 1 when there are no exact
    /// dots (byte-identical to the clock's own encoding), else format 2.
    pub fn encode_context(&self) -> Vec<u8> {
        if self.dots().is_empty() {
            return self.past().encode_context();
        }
        let n = self.dots().len();
        let mut out = Vec::with_capacity(2 + clock_len(self.past()) + n * 12);
        out.push(CONTEXT_FORMAT_VERSION);
        encode_clock(self.past(), &mut out);
        put_varint(&mut out, n as u64);
        for d in self.dots() {
            out.extend_from_slice(&d.actor.0.to_le_bytes());
            put_varint(&mut out, d.counter);
        }
        out
    }

    /// Inverse of [`encode_context`](Self::encode_context); the empty slice
    /// is the empty context (a blind write). Every counter is checked
    /// against [`MAX_CONTEXT_COUNTER`].
    pub fn decode_context(b: &[u8]) -> Result<CausalContext, DecodeError> {
        let mut r = Reader { buf: b, pos: 0 };
        let version = match r.byte() {
            Err(_) => return Ok(CausalContext::new()),
            Ok(v @ (CONTEXT_PAST_ONLY | CONTEXT_FORMAT_VERSION)) => v,
            Ok(v) => return Err(DecodeError::UnknownVersion(v)),
        };
        let past = decode_clock(&mut r)?;
        let mut dots = Vec::new();
        if version == CONTEXT_FORMAT_VERSION {
            let n = r.count()?;
            dots.reserve(n);
            for index in 0..n {
                let raw: [u8; 8] = r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?;
                let counter = r.varint()?;
                if counter == 0 {
                    return Err(DecodeError::ZeroCounter { index });
                }
                dots.push(Dot::new(ActorId(u64::from_le_bytes(raw)), counter));
            }
        }
        r.finish()?;
        let ctx = CausalContext::from_parts(past, dots);
        match ctx.max_any_counter() {
            c if c > MAX_CONTEXT_COUNTER => Err(DecodeError::CounterTooLarge { counter: c }),
            _ => Ok(ctx),
        }
    }
}

fn encode_clock(vv: &VersionVector, out: &mut Vec<u8>) {
    put_varint(out, vv.len() as u64);
    for (a, n) in vv.iter() {
        out.extend_from_slice(&a.0.to_le_bytes());
        put_varint(out, n);
    }
}

fn clock_len(vv: &VersionVector) -> usize {
    varint_len(vv.len() as u64) + vv.iter().map(|(_, n)| 8 + varint_len(n)).sum::<usize>()
}

fn decode_clock(r: &mut Reader<'_>) -> Result<VersionVector, DecodeError> {
    let n = r.count()?;
    let mut entries: Vec<(ActorId, u64)> = Vec::with_capacity(n);
    for index in 0..n {
        let raw: [u8; 8] = r.take(8)?.try_into().map_err(|_| DecodeError::Truncated)?;
        let actor = ActorId(u64::from_le_bytes(raw));
        let counter = r.varint()?;
        if counter == 0 {
            return Err(DecodeError::ZeroCounter { index });
        }
        if entries.last().is_some_and(|p| p.0 >= actor) {
            return Err(DecodeError::ClockNotSorted { index });
        }
        entries.push((actor, counter));
    }
    Ok(VersionVector::from_sorted_unchecked(entries))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::VarintOverflow { at });
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::VarintOverflow { at })
    }

    /// An element count, bounded by the bytes left (every element takes at
    /// least one byte) so a corrupt count cannot make us over-allocate.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}
