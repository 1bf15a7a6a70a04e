//! Stream cursors: how far the stream of each range got, kept in the meta
//! column family and written in the same engine batch as the rows they
//! cover, so a crash resumes a range where its last committed page ended.
//!
//! Owns the meta keys `stream/<stream id>/<keyspace>\0<start><end>` and
//! their values (`0` + last key streamed, or `1` = the range is done; no
//! value: not started, so every [`Cursor`] reads back as saved), and
//! the names of the streams this node *pulls* ([`Pull`]: a join, a
//! replacement, a removal's re-replication), which a start that may have
//! lost its unsynced WAL tail forgets ([`forget_after_lost_tail`]): the pages such a
//! cursor covers may be gone with the tail, and so may a write this node
//! acknowledged as a pending replica after the stream had passed its key,
//! so the copy runs again from its start (pages are merges: idempotent).
//! A leave's push cursors (`leave-…`, kept by the leaver) are not pulls;
//! that start forgets them too ([`forget_after_lost_tail`]): a lost tail
//! may also have lost their forget.
//! `stream/<stream id>/\0incarnation`: the incarnation of the node a push
//! stream's pages went into ([`Incarnation`]), forgotten with the cursors.
//! A movement over (or cancelled) forgets its streams' cursors in one write
//! on the engine's call site ([`forget_all`]).
//! Must not fetch or apply rows.

use std::sync::Arc;

use super::stream::StreamError;
use crate::engine::{Cf, Engine, EngineError, WriteBatch};
use crate::ring::TokenRange;

/// Where the stream of one range stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Nothing committed yet.
    Start,
    /// Rows up to and including this key (in `(token, key)` order) are in.
    After(Vec<u8>),
    /// The whole range is in.
    Done,
}

const PREFIX: &str = "stream/";
/// The stream ids of a leave's pushes start so (`push::stream_id`).
pub(crate) const LEAVE: &str = "leave-";

/// A stream this node pulls into its own engine, by the movement it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pull {
    /// This node's join (`join-<me>`).
    Join,
    /// This node's replacement of a dead node (`replace-<me>[/<source>]`).
    Replace,
    /// This node's share of the removal of `<dead>`
    /// (`remove-<dead>[@v<began>][/<source>]`: per attempt, `remove::stream_id`).
    Remove,
}

impl Pull {
    const ALL: [Pull; 3] = [Pull::Join, Pull::Replace, Pull::Remove];

    fn kind(self) -> &'static str {
        match self {
            Pull::Join => "join-",
            Pull::Replace => "replace-",
            Pull::Remove => "remove-",
        }
    }

    /// The stream id of this pull for `node` (the joiner, the replacement,
    /// or the dead node being removed).
    pub fn id(self, node: &str) -> String {
        format!("{}{node}", self.kind())
    }
}

/// After a stream's prefix; a cursor key there is a keyspace, `\0` and 16
/// bytes, so this (`\0` and 11 bytes) is never one.
const INCARNATION: &[u8] = b"\0incarnation";

/// The engine incarnation of the node a push stream's pages went into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incarnation {
    /// As the node answered it.
    Known(u64),
    /// The node cannot tell (an older build).
    Unknown,
}

/// The meta-key prefix of every cursor of `stream_id`.
pub fn stream_prefix(stream_id: &str) -> Vec<u8> {
    format!("{PREFIX}{stream_id}/").into_bytes()
}

/// The meta key of `range` of `keyspace` in `stream_id`.
pub fn key(stream_id: &str, keyspace: &str, range: TokenRange) -> Vec<u8> {
    let mut k = stream_prefix(stream_id);
    k.extend_from_slice(keyspace.as_bytes());
    k.push(0);
    k.extend_from_slice(&range.start.to_be_bytes());
    k.extend_from_slice(&range.end.to_be_bytes());
    k
}

/// The stored cursor of a range.
pub fn load(
    engine: &dyn Engine,
    stream_id: &str,
    keyspace: &str,
    range: TokenRange,
) -> Result<Cursor, EngineError> {
    let raw = engine.get_raw(Cf::Meta, &key(stream_id, keyspace, range))?;
    Ok(match raw.as_deref() {
        None => Cursor::Start,
        Some([1]) => Cursor::Done,
        Some([0, last @ ..]) => Cursor::After(last.to_vec()),
        Some(other) => {
            return Err(EngineError::Corrupt {
                what: format!("stream cursor of {keyspace} {range:?}"),
                detail: format!("{} bytes starting {:?}", other.len(), other.first()),
            })
        }
    })
}

/// Adds the write of `cursor` to `batch`: `Start` deletes the key (what
/// [`load`] reads as `Start`; `[0]` would read back as `After([])`).
pub fn save(
    batch: &mut WriteBatch,
    stream_id: &str,
    keyspace: &str,
    range: TokenRange,
    cursor: &Cursor,
) {
    let key = key(stream_id, keyspace, range);
    let value = match cursor {
        Cursor::Start => return batch.delete_raw(Cf::Meta, &key),
        Cursor::After(k) => [&[0u8][..], k].concat(),
        Cursor::Done => vec![1],
    };
    batch.put_raw(Cf::Meta, &key, &value);
}

/// Adds the deletion of every cursor of `stream_id` to `batch`.
pub fn forget_in(batch: &mut WriteBatch, stream_id: &str) {
    delete_prefix(batch, &stream_prefix(stream_id));
}

/// Deletes every cursor (and recorded incarnation) of each of
/// `stream_ids`, in one write run on the engine's call site: fsynced
/// under `Durability::Sync`, it stays off the async workers
/// (review-final32 L1). A task that failed (a panic) is
/// [`StreamError::Task`], not the engine's error (review-cancel33 L3).
pub async fn forget_all(
    engine: &Arc<dyn Engine>,
    stream_ids: impl IntoIterator<Item = String>,
) -> Result<(), StreamError> {
    let mut batch = WriteBatch::new();
    for id in stream_ids {
        forget_in(&mut batch, &id);
    }
    let e = engine.clone();
    crate::engine::CallSite::for_writes(&**engine)
        .run(move || e.write(batch))
        .await
        .map_err(|j| StreamError::Task(format!("forgetting stream cursors: {j}")))?
        .map_err(StreamError::from)
}

/// Deletes the cursor (and recorded incarnation) of every stream this node
/// pulls ([`Pull`]) and of every leave it pushes (`leave-…`), and syncs:
/// after a start that may have lost its unsynced WAL tail, each such
/// stream copies again from its start. A pull's pages may be gone with
/// the tail; a push's cursors may be ones a lost *forget* had deleted (a
/// cancelled leave's `Done` cursors back after a decommission begun again
/// forgot them, while a gainer dropped its copies: resuming on them would
/// skip those ranges, review-cancel33 M1). Forgetting costs only a
/// re-copy (pages are merges). Whether there was any.
pub fn forget_after_lost_tail(engine: &dyn Engine) -> Result<bool, EngineError> {
    let mut batch = WriteBatch::new();
    let mut any = false;
    let kinds = Pull::ALL.map(Pull::kind);
    for kind in kinds.iter().chain(&[LEAVE]) {
        let from = format!("{PREFIX}{kind}").into_bytes();
        any |= !engine
            .scan_raw(Cf::Meta, &from, &end_of(&from), 1)?
            .is_empty();
        delete_prefix(&mut batch, &from);
    }
    engine.write(batch)?;
    engine.flush()?;
    Ok(any)
}

/// The first key after every key starting with `prefix` (not empty, and
/// not ending in `0xff`: a stream prefix ends in `/` or `-`).
fn end_of(prefix: &[u8]) -> Vec<u8> {
    let mut to = prefix.to_vec();
    *to.last_mut().expect("non-empty") += 1;
    to
}

fn delete_prefix(batch: &mut WriteBatch, prefix: &[u8]) {
    batch.delete_range_raw(Cf::Meta, prefix, &end_of(prefix));
}

/// The meta key of the incarnation recorded with `stream_id`'s cursors.
pub fn incarnation_key(stream_id: &str) -> Vec<u8> {
    [&stream_prefix(stream_id)[..], INCARNATION].concat()
}

/// The incarnation recorded with `stream_id`'s cursors, if any.
pub fn load_incarnation(
    engine: &dyn Engine,
    stream_id: &str,
) -> Result<Option<Incarnation>, EngineError> {
    let raw = engine.get_raw(Cf::Meta, &incarnation_key(stream_id))?;
    Ok(match raw.as_deref() {
        None => None,
        Some([0]) => Some(Incarnation::Unknown),
        Some([1, v @ ..]) if v.len() == 8 => {
            let v: [u8; 8] = v.try_into().expect("8 bytes");
            Some(Incarnation::Known(u64::from_le_bytes(v)))
        }
        Some(other) => {
            return Err(EngineError::Corrupt {
                what: format!("incarnation recorded with stream {stream_id}"),
                detail: format!("{} bytes starting {:?}", other.len(), other.first()),
            })
        }
    })
}

/// Adds the write of `stream_id`'s recorded incarnation to `batch`.
pub fn save_incarnation(batch: &mut WriteBatch, stream_id: &str, inc: Incarnation) {
    let value = match inc {
        Incarnation::Unknown => vec![0],
        Incarnation::Known(v) => [&[1u8][..], &v.to_le_bytes()].concat(),
    };
    batch.put_raw(Cf::Meta, &incarnation_key(stream_id), &value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Limits, MemoryEngine};

    const RANGE: TokenRange = TokenRange { start: 1, end: 2 };

    fn saved(engine: &MemoryEngine, c: &Cursor) -> Cursor {
        let mut b = WriteBatch::new();
        save(&mut b, "s1", "ks", RANGE, c);
        engine.write(b).expect("a memory write");
        load(engine, "s1", "ks", RANGE).expect("a saved cursor loads")
    }

    /// Every cursor reads back as saved, `Start` too, fresh or over a
    /// cursor that went further: `Start` is not `After([])`, which would
    /// resume after the empty key's token and skip the rows before it
    /// (the decoder property found it; nothing saves `Start` today).
    #[test]
    fn every_cursor_reads_back_as_saved() {
        let engine = MemoryEngine::new(Limits::default());
        for c in [
            Cursor::Start,
            Cursor::After(vec![]),
            Cursor::After(b"k".to_vec()),
            Cursor::Start,
            Cursor::Done,
            Cursor::Start,
        ] {
            assert_eq!(saved(&engine, &c), c);
        }
    }
}
