//! The data-CF key codec and token-range planning. Pure: no I/O.
//!
//! A data key is `[keyspace_len u8][keyspace bytes][token u64 BE][user key]`,
//! so inside one keyspace the byte order of keys is the `(token, user key)`
//! order and a token range is one or two contiguous key ranges. This file
//! must not touch storage; both engines iterate the ranges it plans.

use super::EngineError;
use crate::token::token_of;

/// Bytes of the token inside a data key.
pub const TOKEN_BYTES: usize = 8;

/// The `[len][keyspace]` prefix shared by every key of a keyspace.
pub fn keyspace_prefix(keyspace: &str) -> Result<Vec<u8>, EngineError> {
    let len = u8::try_from(keyspace.len()).map_err(|_| EngineError::InvalidKeyspace {
        keyspace: keyspace.chars().take(64).collect(),
        reason: "longer than 255 bytes",
    })?;
    let mut out = Vec::with_capacity(1 + keyspace.len() + TOKEN_BYTES);
    out.push(len);
    out.extend_from_slice(keyspace.as_bytes());
    Ok(out)
}

/// The data-CF key of `key` in `keyspace`.
pub fn data_key(keyspace: &str, key: &[u8]) -> Result<Vec<u8>, EngineError> {
    let mut out = keyspace_prefix(keyspace)?;
    out.reserve(TOKEN_BYTES + key.len());
    out.extend_from_slice(&token_of(key).to_be_bytes());
    out.extend_from_slice(key);
    Ok(out)
}

/// Splits a data key of the keyspace with `prefix` into `(token, user key)`;
/// `None` when it does not belong to that keyspace or is too short.
pub fn split_data_key<'a>(prefix: &[u8], raw: &'a [u8]) -> Option<(u64, &'a [u8])> {
    let rest = raw.strip_prefix(prefix)?;
    if rest.len() < TOKEN_BYTES {
        return None;
    }
    let (token, user) = rest.split_at(TOKEN_BYTES);
    Some((u64::from_be_bytes(token.try_into().ok()?), user))
}

/// A contiguous key range `[lower, upper)` of the data CF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Vec<u8>,
    pub upper: Vec<u8>,
}

/// The key ranges, in ascending key order, holding the keys of `keyspace`
/// with a token in `(start, end]` (wrapping when `start >= end`) that sort
/// after `after` (exclusive).
pub fn token_range_plan(
    keyspace: &str,
    start: u64,
    end: u64,
    after: Option<&[u8]>,
) -> Result<Vec<KeyRange>, EngineError> {
    let prefix = keyspace_prefix(keyspace)?;
    // Inclusive token intervals, ascending.
    let mut intervals = Vec::with_capacity(2);
    if start < end {
        intervals.push((start + 1, end));
    } else {
        intervals.push((0, end));
        if start < u64::MAX {
            intervals.push((start + 1, u64::MAX));
        }
    }
    // The smallest key strictly greater than `after`'s data key.
    let resume = match after {
        Some(k) => {
            let mut dk = data_key(keyspace, k)?;
            dk.push(0);
            Some(dk)
        }
        None => None,
    };
    let mut plan = Vec::with_capacity(intervals.len());
    for (lo, hi) in intervals {
        let mut lower = prefix.clone();
        lower.extend_from_slice(&lo.to_be_bytes());
        let upper = match hi.checked_add(1) {
            Some(next) => {
                let mut u = prefix.clone();
                u.extend_from_slice(&next.to_be_bytes());
                u
            }
            None => prefix_successor(&prefix),
        };
        if let Some(r) = &resume {
            if *r >= upper {
                continue;
            }
            if *r > lower {
                lower = r.clone();
            }
        }
        plan.push(KeyRange { lower, upper });
    }
    Ok(plan)
}

/// The smallest byte string greater than every string starting with `prefix`.
/// A keyspace prefix always has one: its last byte is a length or UTF-8 byte,
/// never 0xFF.
fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != u8::MAX {
            out.push(last + 1);
            return out;
        }
    }
    // Unreachable for keyspace prefixes; an all-0xFF prefix has no successor,
    // and the empty string's "successor" is never used as a bound.
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_len_keyspace_token_key() {
        let k = data_key("ks", b"abc").unwrap();
        assert_eq!(k[0], 2);
        assert_eq!(&k[1..3], b"ks");
        assert_eq!(&k[3..11], &token_of(b"abc").to_be_bytes());
        assert_eq!(&k[11..], b"abc");
        assert_eq!(
            split_data_key(&keyspace_prefix("ks").unwrap(), &k),
            Some((token_of(b"abc"), &b"abc"[..]))
        );
        assert_eq!(split_data_key(&keyspace_prefix("kt").unwrap(), &k), None);
    }

    #[test]
    fn long_keyspace_is_rejected() {
        let ks = "x".repeat(256);
        assert!(matches!(
            data_key(&ks, b"k"),
            Err(EngineError::InvalidKeyspace { .. })
        ));
        assert!(data_key(&"x".repeat(255), b"k").is_ok());
    }

    #[test]
    fn plain_and_wrapped_ranges() {
        let p = keyspace_prefix("a").unwrap();
        let plain = token_range_plan("a", 10, 20, None).unwrap();
        assert_eq!(plain.len(), 1);
        assert_eq!(
            plain[0].lower,
            [p.clone(), 11u64.to_be_bytes().to_vec()].concat()
        );
        assert_eq!(
            plain[0].upper,
            [p.clone(), 21u64.to_be_bytes().to_vec()].concat()
        );

        let wrapped = token_range_plan("a", 20, 10, None).unwrap();
        assert_eq!(wrapped.len(), 2);
        assert_eq!(
            wrapped[0].lower,
            [p.clone(), 0u64.to_be_bytes().to_vec()].concat()
        );
        assert_eq!(wrapped[1].upper, vec![1, b'b']);

        let whole = token_range_plan("a", 5, 5, None).unwrap();
        assert_eq!(whole.len(), 2);
        let max = token_range_plan("a", u64::MAX, u64::MAX, None).unwrap();
        assert_eq!(max.len(), 1, "(MAX, MAX] wraps to [0, MAX]");
    }

    #[test]
    fn resume_skips_earlier_ranges() {
        let t = token_of(b"k");
        let plan = token_range_plan("a", t, t.wrapping_sub(1), Some(b"k")).unwrap();
        // `k` (token t) lies in the gap of (t, t-1]; every planned range starts after it.
        for r in &plan {
            assert!(r.lower > data_key("a", b"k").unwrap());
        }
    }
}
