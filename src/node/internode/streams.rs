//! The hinted streams' internode calls (`Stream`, `Adopt`): batches of one
//! incoming stream handed to the hint receiver concurrently and
//! acknowledged as each completes. Must not: decide what is applied or
//! adopted (`hints::receive`, `hints::adopt`).

use super::InternodeService;
use crate::error::GeokvError;
use crate::proto::v1::internode::*;
use crate::transport::FROM_HEADER;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Batches of one incoming stream applied at once (senders keep fewer in
/// flight; this only bounds a misbehaving one).
const STREAM_WINDOW: usize = 32;

/// The acknowledgements of a stream of batches, as they complete.
pub(super) type Acks =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StreamAck, Status>> + Send + 'static>>;

impl InternodeService {
    /// Serves a stream of batches (`Stream`: applied; `Adopt`: adopted).
    /// Batches are handled concurrently (up to STREAM_WINDOW per stream,
    /// which is more than a sender keeps in flight) and acknowledged by
    /// batch id as each completes, so an urgent batch is never stuck behind
    /// a large backlog batch.
    pub(super) fn batches(
        &self,
        req: Request<tonic::Streaming<StreamBatch>>,
        name: &'static str,
        adopt: bool,
    ) -> Result<Response<Acks>, Status> {
        let span = self.admit(&req, name)?;
        let peer = req
            .metadata()
            .get(FROM_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|id| self.cluster.current().node(id).cloned());
        let mut inbound = req.into_inner();
        let receiver = self.receiver.clone();
        let faults = self.faults.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_WINDOW);
        let window = Arc::new(tokio::sync::Semaphore::new(STREAM_WINDOW));
        tokio::spawn(
            async move {
                while let Ok(Some(batch)) = inbound.message().await {
                    if peer.as_ref().is_some_and(|p| faults.incoming_cut(p)) {
                        // Mid-stream: earlier batches of this stream may
                        // have been applied (review Low of the typed
                        // mapping), so not "nothing applied".
                        let cut = GeokvError::MaybeApplied(
                            "link cut (fault injection) mid-stream; earlier batches may have been applied".into(),
                        );
                        let _ = tx.send(Err(cut.into())).await;
                        break;
                    }
                    let Ok(permit) = window.clone().acquire_owned().await else {
                        break;
                    };
                    let (receiver, tx) = (receiver.clone(), tx.clone());
                    // Test-only (`--fault-injection`): a drain that cannot hand over.
                    let refuse = adopt && faults.refuses_adoption();
                    tokio::spawn(
                        async move {
                            let ack = if refuse {
                                crate::hints::adopt::refuse(batch)
                            } else if adopt {
                                receiver.adopt(batch).await
                            } else {
                                receiver.apply(batch).await
                            };
                            let _ = tx.send(Ok(ack)).await;
                            drop(permit);
                        }
                        .in_current_span(),
                    );
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
