//! A lane's [`Wire`] to a real peer: the `ReplicaBatch` call through this
//! node's [`Peers`], behind the batch's gate (`claim.rs`), and the single
//! `ReplicaWrite` of an entry resent on its own, in its own trace.
//!
//! Must not: outlive the node's transport (it holds it weakly), or map a
//! batch's answer to its entries (`send` does).

use super::{Entry, Wire};
use crate::proto::v1::internode::{ReplicaBatchResponse, ReplicaWriteRequest};
use crate::topology::NodeInfo;
use crate::transport::gate::Gate;
use crate::transport::{encoded, Peers, TransportError};
use futures::future::BoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::Instrument;

/// The method a batch calls (the generated client's path).
const REPLICA_BATCH: &str = "/geokv.v1.internode.Internode/ReplicaBatch";

/// The network: `to` while this node's `Peers` lives.
pub(super) struct Net {
    pub(super) peers: Weak<Peers>,
    pub(super) to: NodeInfo,
}

impl Net {
    fn peers(&self) -> Result<Arc<Peers>, TransportError> {
        self.peers.upgrade().ok_or_else(|| TransportError::NotSent {
            peer: self.to.id.clone(),
            message: "this node's transport is gone".into(),
        })
    }
}

impl Wire for Net {
    fn peer(&self) -> &str {
        &self.to.id
    }

    fn batch<'a>(
        &'a self,
        entries: Arc<Vec<Entry>>,
        timeout: Duration,
        gate: Gate,
    ) -> BoxFuture<'a, Result<ReplicaBatchResponse, TransportError>> {
        Box::pin(async move {
            // `ReplicaBatchRequest { entries }`, encoded as it is sent.
            let req = encoded::Repeated::new(1, entries);
            encoded::within_limit(&self.to.id, prost::Message::encoded_len(&req))?;
            let peers = self.peers()?;
            (peers.call_gated(&self.to, req, timeout, false, gate, |ch, r| {
                encoded::unary(ch, REPLICA_BATCH, r)
            }))
            .await
        })
    }

    fn single<'a>(
        &'a self,
        req: ReplicaWriteRequest,
        timeout: Duration,
        traceparent: &'a str,
    ) -> BoxFuture<'a, Result<(), TransportError>> {
        let span = tracing::info_span!("replica_write_resent");
        crate::telemetry::adopt_traceparent(&span, traceparent);
        Box::pin(
            async move {
                let peers = self.peers()?;
                peers.replica_write(&self.to, req, timeout).await
            }
            .instrument(span),
        )
    }
}
