//! One write in a peer's batching lane, sent as a `ReplicaBatchEntry`:
//! the write itself is **shared** (`Arc`) with the other replica calls of
//! its fan-out, so a write to three replicas builds one request, not one
//! per peer with its own keyspace, key, plan digest, targets and
//! coordinator (issue 14). The bytes on the wire are the generated
//! `ReplicaBatchEntry`'s (a test compares them); the entry's [`Claim`]
//! (whether its caller gave up, `claim.rs`) is not on the wire.
//!
//! Must not: decode (an [`Entry`] is only sent) or change a shared write.

use super::claim::Claim;
use crate::proto::v1::internode::ReplicaWriteRequest;
use bytes::{Buf, BufMut};
use prost::encoding::{message, skip_field, string, uint32, DecodeContext, WireType};
use std::sync::Arc;

/// A lane's entry: the shared write, what is left of its deadline when
/// sent (0: none), its request's trace context (empty: none) and its
/// caller's claim on it.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub write: Arc<ReplicaWriteRequest>,
    pub timeout_ms: u32,
    pub traceparent: String,
    pub claim: Claim,
}

impl prost::Message for Entry {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        message::encode(1, &*self.write, buf);
        if self.timeout_ms != 0 {
            uint32::encode(2, &self.timeout_ms, buf);
        }
        if !self.traceparent.is_empty() {
            string::encode(3, &self.traceparent, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        let timeout = match self.timeout_ms {
            0 => 0,
            t => uint32::encoded_len(2, &t),
        };
        let trace = match self.traceparent.is_empty() {
            true => 0,
            false => string::encoded_len(3, &self.traceparent),
        };
        message::encoded_len(1, &*self.write) + timeout + trace
    }

    fn clear(&mut self) {
        *self = Entry::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::internode::ReplicaBatchEntry;
    use prost::Message;

    #[test]
    fn an_entry_encodes_as_the_generated_batch_entry() {
        let write = ReplicaWriteRequest {
            keyspace: "ks".into(),
            key: bytes::Bytes::from_static(b"k"),
            record: bytes::Bytes::from_static(b"a record"),
            coordinator: "dc1-n1".into(),
            layout_version: 7,
            targets: vec!["dc1-n1".into(), "dc1-n2".into()],
            layout_digest: bytes::Bytes::from_static(&[1, 2, 3]),
            repair: false,
        };
        for (timeout_ms, traceparent) in [(0, ""), (9, ""), (0, "tp"), (300_000, "tp-x")] {
            let ours = Entry {
                write: Arc::new(write.clone()),
                timeout_ms,
                traceparent: traceparent.into(),
                claim: Claim::default(),
            };
            let generated = ReplicaBatchEntry {
                write: Some(write.clone()),
                timeout_ms,
                traceparent: traceparent.into(),
            };
            assert_eq!(ours.encode_to_vec(), generated.encode_to_vec());
            assert_eq!(ours.encoded_len(), generated.encoded_len());
        }
    }
}
