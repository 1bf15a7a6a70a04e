//! A stored record (`SiblingSet`) from arbitrary bytes: decode answers a
//! value or a typed error; a value re-encodes to the same bytes' meaning
//! (decode ∘ encode is the identity), and the state merge of two decoded
//! records is idempotent and commutative, as read repair relies on.
#![no_main]

use geokv::version::SiblingSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Two records: split the input at its first byte's position.
    let cut = data.first().map_or(0, |&b| (b as usize).min(data.len()));
    let (a, b) = data.split_at(cut);
    let Ok(x) = SiblingSet::decode(a) else { return };
    let mut bytes = Vec::new();
    x.encode(&mut bytes);
    assert_eq!(bytes.len(), x.encoded_len());
    assert_eq!(SiblingSet::decode(&bytes).as_ref(), Ok(&x));
    let mut twice = x.clone();
    twice.merge(&x);
    assert_eq!(twice, x, "merge is idempotent");
    if let Ok(y) = SiblingSet::decode(b) {
        let (mut xy, mut yx) = (x.clone(), y.clone());
        xy.merge(&y);
        yx.merge(&x);
        assert_eq!(xy, yx, "merge is commutative");
    }
});
