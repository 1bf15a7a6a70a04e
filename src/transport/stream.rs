//! The sending end of a hinted stream (the bidirectional `Stream` RPC) to one
//! peer: batches go out in order, several may be in flight, and each comes
//! back acknowledged by its `batch_id` (possibly out of order: an urgent batch
//! overtakes backlog batches at the receiver).
//!
//! Fault injection applies per message, not per round trip: a batch leaves
//! after the link's one-way delay and an acknowledgement is handed over after
//! it, through order-preserving relays, so an injected WAN delay adds latency
//! without limiting how many batches are in flight.
//!
//! Must not: decide what is sent, retry, or touch storage.

use super::faults::Faults;
use super::{Peers, TransportError, FROM_HEADER};
use crate::proto::v1::internode::{StreamAck, StreamBatch};
use crate::topology::{NodeIdx, NodeInfo};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Batches (and acknowledgements) buffered per direction of one stream.
const BUFFER: usize = 64;

/// An open hinted stream to one peer.
pub struct OutboundStream {
    /// The peer at the other end.
    pub to: NodeIdx,
    me: NodeInfo,
    peer: NodeInfo,
    faults: Arc<Faults>,
    /// Batches with the instant they may leave (after the injected delay).
    out: mpsc::Sender<(Instant, StreamBatch)>,
    /// Acknowledgements with the instant they may be handed over.
    acks: mpsc::Receiver<Result<(Instant, StreamAck), TransportError>>,
    /// An acknowledgement received but still inside its injected delay; kept
    /// here so [`OutboundStream::next_ack`] is cancel-safe.
    held: Option<(Instant, StreamAck)>,
}

impl OutboundStream {
    /// The id of the node at the other end.
    pub fn peer_id(&self) -> &str {
        &self.peer.id
    }
}

impl Peers {
    /// Opens a hinted stream to `peer`, node `to` of the caller's view (see
    /// [`OutboundStream`]): the `Stream` call, or the `Adopt` call when
    /// `adopt` (a node that has left hands a queue over; see `hints::adopt`).
    pub async fn open_stream(
        &self,
        to: NodeIdx,
        peer: &NodeInfo,
        timeout: Duration,
        adopt: bool,
    ) -> Result<OutboundStream, TransportError> {
        let peer = peer.clone();
        self.faults
            .outgoing(&self.me, &peer)
            .map_err(|_| TransportError::Cut {
                peer: peer.id.clone(),
            })?;
        let (tx, rx) = mpsc::channel::<StreamBatch>(BUFFER);
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        if let Ok(v) = self.me.id.parse() {
            req.metadata_mut().insert(FROM_HEADER, v);
        }
        // A refused handshake is told as such, from this call's connection.
        let (channel, failure, _) = self.client_noted(&peer);
        let mut client = super::internode_client(channel);
        let mark = failure.mark();
        let call = async {
            if adopt {
                client.adopt(req).await
            } else {
                client.stream(req).await
            }
        };
        let ms = timeout.as_millis() as u64;
        let resp = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| TransportError::Timeout {
                peer: peer.id.clone(),
                ms,
            })?
            .map_err(|s| {
                let told = failure.explain_since(mark, super::tls::peer_word(&peer.id));
                super::error::with_tls_failure(super::status_error(&peer.id, s, ms), told)
            })?;
        let mut inbound = resp.into_inner();

        let out = out_relay(tx);
        // Incoming relay: stamps each acknowledgement with its hand-over
        // instant; ends with the response stream or when we stop listening.
        let (ack_tx, acks) = mpsc::channel(BUFFER);
        let (faults, me, p) = (self.faults.clone(), self.me.clone(), peer.clone());
        tokio::spawn(async move {
            loop {
                let item = match inbound.message().await {
                    // An acknowledgement does not cross a link cut meanwhile.
                    Ok(Some(ack)) => match faults.outgoing(&me, &p) {
                        Ok(delay) => Ok((Instant::now() + delay.unwrap_or_default(), ack)),
                        Err(_) => Err(TransportError::Cut { peer: p.id.clone() }),
                    },
                    Ok(None) => Err(closed(&p, "ended")),
                    Err(s) => Err(rpc_error(&p, s)),
                };
                let last = item.is_err();
                if ack_tx.send(item).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(OutboundStream {
            to,
            me: self.me.clone(),
            peer,
            faults: self.faults.clone(),
            out,
            acks,
            held: None,
        })
    }
}

/// The outgoing relay: holds each batch until its departure instant. One
/// task, so order is kept; it ends when the stream is dropped.
fn out_relay(tx: mpsc::Sender<StreamBatch>) -> mpsc::Sender<(Instant, StreamBatch)> {
    let (out, mut out_rx) = mpsc::channel::<(Instant, StreamBatch)>(BUFFER);
    tokio::spawn(async move {
        while let Some((at, batch)) = out_rx.recv().await {
            tokio::time::sleep_until(at).await;
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    out
}

impl OutboundStream {
    /// Queues `batch` for sending. Fails when the link is cut or the stream
    /// is closed; either way the caller drops the stream and reopens.
    pub async fn send(&mut self, batch: StreamBatch) -> Result<(), TransportError> {
        let delay =
            self.faults
                .outgoing(&self.me, &self.peer)
                .map_err(|_| TransportError::Cut {
                    peer: self.peer.id.clone(),
                })?;
        let at = Instant::now() + delay.unwrap_or_default();
        self.out
            .send((at, batch))
            .await
            .map_err(|_| closed(&self.peer, "closed"))
    }

    /// The next acknowledgement. Cancel-safe: an acknowledgement received
    /// while the caller stopped waiting is returned by the next call.
    pub async fn next_ack(&mut self) -> Result<StreamAck, TransportError> {
        if self.held.is_none() {
            match self.acks.recv().await {
                Some(Ok(stamped)) => self.held = Some(stamped),
                Some(Err(e)) => return Err(e),
                None => return Err(closed(&self.peer, "ended")),
            }
        }
        let at = self.held.as_ref().map(|h| h.0).expect("set above");
        tokio::time::sleep_until(at).await;
        Ok(self.held.take().expect("set above").1)
    }
}

fn closed(peer: &NodeInfo, what: &str) -> TransportError {
    TransportError::Rpc {
        peer: peer.id.clone(),
        code: tonic::Code::Unavailable.into(),
        message: format!("stream {what}"),
        verdict: super::PeerVerdict::Unknown,
    }
}

fn rpc_error(peer: &NodeInfo, s: tonic::Status) -> TransportError {
    TransportError::Rpc {
        peer: peer.id.clone(),
        code: s.code().into(),
        message: s.message().to_string(),
        verdict: super::PeerVerdict::Unknown,
    }
}
