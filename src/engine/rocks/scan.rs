//! Range scans of [`RocksEngine`](super::RocksEngine): raw key ranges and
//! token ranges of a keyspace, decoding each record on the way (a record
//! that does not decode ends the scan with [`EngineError::Corrupt`]). Must
//! not write.

use rocksdb::{ErrorKind, ReadOptions};

use super::error::rocks;
use super::RocksEngine;
use crate::engine::keys::{self, KeyRange};
use crate::engine::{Cf, EngineError, RawEntry};
use crate::version::SiblingSet;

/// [`Engine::scan_raw`](crate::engine::Engine::scan_raw).
pub(super) fn raw(
    e: &RocksEngine,
    cf: Cf,
    from: &[u8],
    to: &[u8],
    limit: usize,
) -> Result<Vec<RawEntry>, EngineError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let range = [KeyRange {
        lower: from.to_vec(),
        upper: to.to_vec(),
    }];
    for_each_in(e, cf, &range, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        out.len() < limit
    })
    .map_err(rocks)?;
    Ok(out)
}

/// [`Engine::scan_token_range`](crate::engine::Engine::scan_token_range).
pub(super) fn token_range(
    e: &RocksEngine,
    keyspace: &str,
    start: u64,
    end: u64,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, SiblingSet)>, EngineError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let plan = keys::token_range_plan(keyspace, start, end, after)?;
    let prefix = keys::keyspace_prefix(keyspace)?;
    let mut failed = None;
    let scanned = for_each_in(e, Cf::Data, &plan, |k, v| {
        let Some((_, user)) = keys::split_data_key(&prefix, k) else {
            failed = Some(EngineError::Corrupt {
                what: format!("data key in keyspace {keyspace}"),
                detail: format!("{} is shorter than its token", k.escape_ascii()),
            });
            return false;
        };
        match e.stored(keyspace, user, k, v) {
            Ok(Some(set)) => out.push((user.to_vec(), set)),
            Ok(None) => {}
            Err(err) => {
                failed = Some(err);
                return false;
            }
        }
        out.len() < limit
    });
    if let Some(err) = failed {
        return Err(err);
    }
    match scanned {
        Ok(()) => Ok(out),
        Err(err) if err.kind() == ErrorKind::Corruption => Err(EngineError::Corrupt {
            what: format!(
                "data record in keyspace {keyspace} after {} keys",
                out.len()
            ),
            detail: err.to_string(),
        }),
        Err(err) => Err(rocks(err)),
    }
}

/// Iterates the key ranges in order, calling `f(key, value)` until it
/// returns false.
fn for_each_in(
    e: &RocksEngine,
    cf: Cf,
    ranges: &[KeyRange],
    mut f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), rocksdb::Error> {
    for range in ranges {
        if range.lower >= range.upper {
            continue;
        }
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(range.upper.clone());
        let mut it = e.db.raw_iterator_cf_opt(e.cf(cf), ro);
        it.seek(&range.lower);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !f(k, v) {
                return Ok(());
            }
            it.next();
        }
        it.status()?;
    }
    Ok(())
}
