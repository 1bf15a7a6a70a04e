//! Codec cases: exact layout, round trips and precise errors on bad input.

use bytes::Bytes;

use crate::version::{
    ActorId, CausalContext, DecodeError, Dot, SiblingSet, VersionVector, CONTEXT_FORMAT_VERSION,
    MAX_CONTEXT_COUNTER, RECORD_FORMAT_VERSION,
};

fn sample() -> SiblingSet {
    let mut s = SiblingSet::new();
    let none = CausalContext::new();
    s.update(
        ActorId(7),
        &none,
        Some(Bytes::from_static(b"hello")),
        1_700_000_000_000,
        8,
    )
    .unwrap();
    s.update(ActorId(3), &none, None, 5, 8).unwrap();
    s.update(ActorId(u64::MAX), &none, Some(Bytes::new()), 0, 8)
        .unwrap();
    s
}

#[test]
fn record_round_trips_and_starts_with_the_version() {
    let s = sample();
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(buf[0], RECORD_FORMAT_VERSION);
    assert_eq!(buf.len(), s.encoded_len());
    assert_eq!(SiblingSet::decode(&buf).unwrap(), s);
    // An empty value and a tombstone stay distinct.
    let d = SiblingSet::decode(&buf).unwrap();
    assert_eq!(d.values().filter(|x| x.value.is_none()).count(), 1);
    assert_eq!(
        d.values()
            .filter(|x| x.value.as_deref() == Some(b""))
            .count(),
        1
    );
}

#[test]
fn empty_set_is_three_bytes() {
    let mut buf = Vec::new();
    SiblingSet::new().encode(&mut buf);
    assert_eq!(buf, [RECORD_FORMAT_VERSION, 0, 0]);
    assert_eq!(SiblingSet::decode(&buf).unwrap(), SiblingSet::new());
}

#[test]
fn context_round_trips_and_empty_slice_is_empty_context() {
    let vv = sample().clock;
    let bytes = vv.encode_context();
    assert_eq!(bytes[0], 1, "a bare clock keeps format 1");
    assert_eq!(VersionVector::decode_context(&bytes).unwrap(), vv);
    assert_eq!(
        VersionVector::decode_context(&[]).unwrap(),
        VersionVector::new()
    );
    let empty = VersionVector::new().encode_context();
    assert_eq!(empty, [1, 0]);
    assert_eq!(
        VersionVector::decode_context(&empty).unwrap(),
        VersionVector::new()
    );
}

#[test]
fn precise_errors() {
    let mut buf = Vec::new();
    sample().encode(&mut buf);
    assert_eq!(SiblingSet::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(
        SiblingSet::decode(&[9, 0, 0]),
        Err(DecodeError::UnknownVersion(9))
    );
    assert_eq!(
        SiblingSet::decode(&buf[..buf.len() - 1]),
        Err(DecodeError::Truncated)
    );
    let mut long = buf.clone();
    long.push(0);
    assert_eq!(
        SiblingSet::decode(&long),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    // One sibling naming actor index 5 of an empty clock.
    assert!(matches!(
        SiblingSet::decode(&[1, 0, 1, 5, 1, 0, 0]),
        Err(DecodeError::ActorIndexOutOfRange {
            sibling: 0,
            index: 5,
            actors: 0
        })
    ));
    // Clock {1: 1}, sibling (1, 2) which the clock does not cover.
    let not_covered = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 0, 0];
    assert!(matches!(
        SiblingSet::decode(&not_covered),
        Err(DecodeError::DotNotCovered {
            sibling: 0,
            counter: 2,
            max: 1
        })
    ));
    // Clock entries out of order, and a zero counter.
    let unsorted = [
        1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    ];
    assert_eq!(
        SiblingSet::decode(&unsorted),
        Err(DecodeError::ClockNotSorted { index: 1 })
    );
    let zero = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        SiblingSet::decode(&zero),
        Err(DecodeError::ZeroCounter { index: 0 })
    );
    // An 11-byte varint.
    let overflow = [
        1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    assert!(matches!(
        SiblingSet::decode(&overflow),
        Err(DecodeError::VarintOverflow { at: 1 })
    ));
    // A huge sibling count cannot make decode allocate: it is checked first.
    let huge = [1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(SiblingSet::decode(&huge), Err(DecodeError::Truncated));
    assert_eq!(
        VersionVector::decode_context(&[4]),
        Err(DecodeError::UnknownVersion(4))
    );
    assert_eq!(
        CausalContext::decode_context(&[2, 0]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn write_context_with_exact_dots_round_trips_as_format_2() {
    let (a, b) = (ActorId(5), ActorId(9));
    let past = VersionVector::from_entries([(a, 3), (b, 1)]);
    let ctx = CausalContext::from_parts(past.clone(), [Dot::new(a, 7), Dot::new(b, 4)]);
    let bytes = ctx.encode_context();
    assert_eq!(bytes[0], 2, "unbound, with dots");
    assert_eq!(CausalContext::decode_context(&bytes).unwrap(), ctx);
    // A bare clock is byte-identical to format 1 and decodes either way.
    let read = CausalContext::from_past(past.clone());
    assert_eq!(read.encode_context(), past.encode_context());
    assert_eq!(
        CausalContext::decode_context(&past.encode_context()).unwrap(),
        read
    );
}

#[test]
fn contexts_with_impossible_counters_are_refused() {
    // Defect 5 of issue 9: a counter near u64::MAX would overflow the next dot.
    for counter in [MAX_CONTEXT_COUNTER + 1, u64::MAX] {
        let past = VersionVector::from_entries([(ActorId(1), counter)]);
        let err = CausalContext::decode_context(&past.encode_context()).unwrap_err();
        assert_eq!(err, DecodeError::CounterTooLarge { counter });
        let dots = CausalContext::from_parts(VersionVector::new(), [Dot::new(ActorId(1), counter)]);
        let err = CausalContext::decode_context(&dots.encode_context()).unwrap_err();
        assert_eq!(err, DecodeError::CounterTooLarge { counter });
    }
    let ok = VersionVector::from_entries([(ActorId(1), MAX_CONTEXT_COUNTER)]);
    assert!(CausalContext::decode_context(&ok.encode_context()).is_ok());
}

/// Review of issue 9's fixes: a context returned for one key, written back
/// with another key, would overwrite versions of that key its client never
/// saw. Client contexts are bound to their key.
#[test]
fn a_client_context_is_bound_to_its_key() {
    let past = VersionVector::from_entries([(ActorId(5), 3)]);
    let ctx = CausalContext::from_parts(past, [Dot::new(ActorId(9), 4)]);
    let bytes = ctx.encode_for("ks", b"k1");
    assert_eq!(bytes[0], CONTEXT_FORMAT_VERSION);
    assert_eq!(CausalContext::decode_for(&bytes, "ks", b"k1").unwrap(), ctx);
    assert_eq!(
        CausalContext::decode_for(&bytes, "ks", b"k2"),
        Err(DecodeError::OtherKey)
    );
    assert_eq!(
        CausalContext::decode_for(&bytes, "other", b"k1"),
        Err(DecodeError::OtherKey)
    );
    // Unbound contexts of earlier releases are still taken.
    let legacy = ctx.past().encode_context();
    assert!(CausalContext::decode_for(&legacy, "ks", b"k2").is_ok());
    assert_eq!(
        CausalContext::decode_for(&[], "ks", b"k2").unwrap(),
        CausalContext::new()
    );
}

/// Review: decoding a client context is linear and bounded (unsorted or
/// numerous exact dots used to cost quadratic time on an async worker).
#[test]
fn context_dots_must_be_sorted_and_few() {
    let mut unsorted = vec![2u8, 0, 2];
    for counter in [9u8, 3] {
        unsorted.extend_from_slice(&7u64.to_le_bytes());
        unsorted.push(counter);
    }
    assert_eq!(
        CausalContext::decode_context(&unsorted),
        Err(DecodeError::DotsNotSorted { index: 1 })
    );
    let many = CausalContext::from_parts(
        VersionVector::new(),
        (0..300u64).map(|a| Dot::new(ActorId(a), 2)),
    );
    assert!(matches!(
        CausalContext::decode_context(&many.encode_context()),
        Err(DecodeError::ContextTooLarge { count: 300, .. })
    ));
}
