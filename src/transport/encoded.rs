//! A request encoded before its call (issue 14): a batch is encoded from
//! its lane's **borrowed** entries into one buffer, so the lane keeps the
//! entries themselves for a resend as single calls instead of a copy of
//! each (every string of every entry was allocated twice per batch). The
//! bytes are what tonic's generated client would have sent for the same
//! message (a test decodes them back).
//!
//! Owns: the pre-encoded message and its unary call. Must not: decode (an
//! [`Encoded`] is only sent) or know what the entries mean.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use tonic::transport::Channel;

/// A message's encoding, sent as it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Encoded(pub Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A message whose only field, `tag`, is the repeated message `items`
/// (`ReplicaBatchRequest.entries`), encoded into one buffer.
pub fn repeated<M: prost::Message>(tag: u32, items: &[M]) -> Encoded {
    use prost::encoding::message;
    let len = items.iter().map(|m| message::encoded_len(tag, m)).sum();
    let mut buf = Vec::with_capacity(len);
    for m in items {
        message::encode(tag, m, &mut buf);
    }
    Encoded(buf.into())
}

/// One unary call of `path` (`/package.Service/Method`) with a pre-encoded
/// request, as the generated client makes it (the same message limits as
/// `Peers`' clients).
pub async fn unary<R: prost::Message + Default + Send + 'static>(
    channel: Channel,
    path: &'static str,
    req: tonic::Request<Encoded>,
) -> Result<tonic::Response<R>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    (grpc.ready().await)
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    let codec = tonic_prost::ProstCodec::<Encoded, R>::default();
    grpc.unary(req, path, codec).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::internode::{
        ReplicaBatchEntry, ReplicaBatchRequest, ReplicaWriteRequest,
    };
    use prost::Message;

    #[test]
    fn a_batch_encoded_from_borrowed_entries_decodes_as_the_request() {
        let entry = |k: &str, t: u32| ReplicaBatchEntry {
            write: Some(ReplicaWriteRequest {
                keyspace: "ks".into(),
                key: Bytes::copy_from_slice(k.as_bytes()),
                record: Bytes::from_static(b"a record"),
                coordinator: "dc1-n1".into(),
                layout_version: 7,
                targets: vec!["dc1-n1".into(), "dc1-n2".into()],
                layout_digest: Bytes::from_static(&[1, 2, 3]),
                ..Default::default()
            }),
            timeout_ms: t,
            traceparent: format!("tp-{k}"),
        };
        let entries = vec![entry("a", 5), entry("b", 9), ReplicaBatchEntry::default()];
        let sent = repeated(1, &entries);
        let want = ReplicaBatchRequest {
            entries: entries.clone(),
        };
        assert_eq!(sent.0, want.encode_to_vec(), "the generated client's bytes");
        assert_eq!(ReplicaBatchRequest::decode(sent.0.clone()).unwrap(), want);
        assert_eq!(repeated::<ReplicaBatchEntry>(1, &[]).0.len(), 0);
    }
}
