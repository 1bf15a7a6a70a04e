//! The binary formats of a stored record ([`SiblingSet`]) and of the opaque
//! client context ([`VersionVector`]). Hot path: the RocksDB merge operator
//! decodes and re-encodes a record on every write.
//!
//! Owns the byte layout, the format version bytes and [`DecodeError`]. Must
//! not panic or over-allocate on corrupt input, ever: every length is checked
//! against the bytes that remain, and decoded state is validated so the
//! invariants `merge` relies on hold.
//!
//! ```text
//! record  := RECORD_FORMAT_VERSION:u8  clock  varint(n_siblings)  sibling*
//! clock   := varint(n_actors)  (actor:u64 LE  counter:varint)*     actors strictly increasing, counters > 0
//! sibling := varint(actor index into clock)  varint(counter)  varint(timestamp_ms)
//!            varint(value_len + 1, 0 = tombstone)  value bytes      sorted by dot, covered by clock
//! ```
//! The client context's formats are in `context_codec.rs`.
//! Actor ids are hashes, so they are stored as fixed 8 bytes (a varint would
//! take 10); siblings name their actor by its index in the clock (1 byte).

use bytes::Bytes;

use super::actor::{ActorId, Dot};
use super::clock::VersionVector;
use super::siblings::{Sibling, SiblingSet};

/// First byte of every encoded record.
pub const RECORD_FORMAT_VERSION: u8 = 1;
pub use super::context_codec::{CONTEXT_FORMAT_VERSION, MAX_CONTEXT_COUNTER};

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
    #[error("context names {count} {what}; at most {max} are allowed")]
    ContextTooLarge {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("context dot {index}: dots are not strictly sorted")]
    DotsNotSorted { index: usize },
    #[error(
        "this context was returned for another key; pass back the context a read or write \
         of this key returned"
    )]
    OtherKey,
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

pub(super) fn encode_clock(vv: &VersionVector, out: &mut Vec<u8>) {
    put_varint(out, vv.len() as u64);
    for (a, n) in vv.iter() {
        out.extend_from_slice(&a.0.to_le_bytes());
        put_varint(out, n);
    }
}

pub(super) fn clock_len(vv: &VersionVector) -> usize {
    varint_len(vv.len() as u64) + vv.iter().map(|(_, n)| 8 + varint_len(n)).sum::<usize>()
}

pub(super) fn decode_clock(r: &mut Reader<'_>) -> Result<VersionVector, DecodeError> {
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

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(s)
    }

    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
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
    pub(super) fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }

    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}
