//! A client's causal context from arbitrary bytes (the `context` field of a
//! put or delete, sent by any client): every decoder answers a value or a
//! typed error, and a decoded context re-encodes to one that decodes equal.
#![no_main]

use geokv::version::{CausalContext, VersionVector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(vv) = VersionVector::decode_context(data) {
        assert_eq!(VersionVector::decode_context(&vv.encode_context()), Ok(vv));
    }
    if let Ok(ctx) = CausalContext::decode_context(data) {
        let again = CausalContext::decode_context(&ctx.encode_context()).expect("round trip");
        assert_eq!(again.encode_context(), ctx.encode_context());
    }
    let _ = CausalContext::decode_for(data, "ks", b"key");
});
