//! A batch request encoded from entries the lane keeps (issue 14): the
//! lane's entries are **shared** with the call ([`Repeated`]) and encoded
//! straight into tonic's buffer, so the lane keeps them for a resend as
//! single calls without a copy of each (every string of every entry was
//! allocated twice per batch), and without a buffer of their own (a first
//! encoding into a `Vec` copied every byte once more: a 1 MiB value cost
//! twice the encoding time, review-perf27 L3). The bytes are what tonic's
//! generated client would have sent for the same message (a test decodes
//! them back). A request over the message limit is refused here, not sent
//! (review-perf27 L4).
//!
//! Owns: the shared-entries message, the message limit and the unary call.
//! Must not: decode (a [`Repeated`] is only sent) or know what the entries
//! mean.

use super::TransportError;
use bytes::{Buf, BufMut};
use prost::encoding::{message, DecodeContext, WireType};
use std::sync::Arc;

/// The largest message the peer port's clients send or take (the
/// generated client's limits and [`unary`]'s; the server's are
/// `node::limits`).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A message whose only field, `tag`, is the repeated message `items`
/// (`ReplicaBatchRequest.entries`), encoded from the shared items as it is
/// sent; its length is computed once.
#[derive(Debug)]
pub struct Repeated<M> {
    tag: u32,
    items: Arc<Vec<M>>,
    len: usize,
}

impl<M: prost::Message> Repeated<M> {
    pub fn new(tag: u32, items: Arc<Vec<M>>) -> Self {
        let len = items.iter().map(|m| message::encoded_len(tag, m)).sum();
        Repeated { tag, items, len }
    }
}

impl<M> Default for Repeated<M> {
    fn default() -> Self {
        Repeated {
            tag: 1,
            items: Arc::default(),
            len: 0,
        }
    }
}

impl<M: prost::Message> prost::Message for Repeated<M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for m in self.items.iter() {
            message::encode(self.tag, m, buf);
        }
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
        self.len
    }

    fn clear(&mut self) {
        *self = Repeated::default();
    }
}

/// Refuses, as **not sent**, a request of `len` bytes to `peer` over
/// [`MAX_MESSAGE_BYTES`] (review-perf27 L4): tonic would fail it while
/// encoding, once the call's headers were out, and the caller could only
/// say "maybe applied".
pub fn within_limit(peer: &str, len: usize) -> Result<(), TransportError> {
    if len <= MAX_MESSAGE_BYTES {
        return Ok(());
    }
    Err(TransportError::NotSent {
        peer: peer.to_string(),
        message: format!(
            "a {len}-byte request is over the {MAX_MESSAGE_BYTES}-byte message limit: not sent"
        ),
    })
}

/// One unary call of `path` (`/package.Service/Method`) with a request
/// encoded as it is sent, as the generated client makes it (the same
/// message limits as `Peers`' clients), on a gated channel (`gate.rs`).
pub async fn unary<Q, R>(
    channel: super::PeerChannel,
    path: &'static str,
    req: tonic::Request<Q>,
) -> Result<tonic::Response<R>, tonic::Status>
where
    Q: prost::Message + Send + 'static,
    R: prost::Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    (grpc.ready().await)
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    let codec = tonic_prost::ProstCodec::<Q, R>::default();
    grpc.unary(req, path, codec).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::internode::{
        ReplicaBatchEntry, ReplicaBatchRequest, ReplicaWriteRequest,
    };
    use bytes::Bytes;
    use prost::Message;

    #[test]
    fn a_batch_encoded_from_shared_entries_decodes_as_the_request() {
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
        let sent = Repeated::new(1, Arc::new(entries.clone()));
        let want = ReplicaBatchRequest { entries };
        let bytes = sent.encode_to_vec();
        assert_eq!(bytes, want.encode_to_vec(), "the generated client's bytes");
        assert_eq!(sent.encoded_len(), bytes.len());
        assert_eq!(ReplicaBatchRequest::decode(&bytes[..]).unwrap(), want);
        let none = Repeated::<ReplicaBatchEntry>::new(1, Arc::default());
        assert!(none.encode_to_vec().is_empty());
    }

    #[test]
    fn a_request_over_the_limit_is_refused_as_not_sent() {
        assert!(within_limit("p", MAX_MESSAGE_BYTES).is_ok());
        let over = within_limit("p", MAX_MESSAGE_BYTES + 1);
        let not_sent = matches!(&over, Err(TransportError::NotSent { message, .. }) if message.contains("limit"));
        assert!(not_sent, "{over:?}");
    }
}
