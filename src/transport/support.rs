//! Whether a peer serves the batch calls of its lanes (`ReplicaBatch`,
//! `ReplicaReadBatch`, issue 14): a peer that answered one UNIMPLEMENTED (a
//! node from before the call) is sent single calls for [`SINGLE_ONLY_FOR`],
//! then batches are tried again, so a peer upgraded in a rolling upgrade
//! gets them. Also the span a batch call runs in ([`batch_span`]).
//! Must not: send anything, or decide what a refusal means for
//! the entries of the refused batch (the lane's `send` does).

use super::{PeerVerdict, TransportError};
use std::time::Duration;
use tokio::time::Instant;

/// How long a peer that answered UNIMPLEMENTED is sent single calls
/// before a batch is tried again.
pub const SINGLE_ONLY_FOR: Duration = Duration::from_secs(60);

/// Whether a peer is being sent single calls only, and until when.
#[derive(Default)]
pub struct Support(parking_lot::Mutex<Option<Instant>>);

impl Support {
    /// Single calls only, now (the mark expires by itself).
    pub fn single_only(&self, now: Instant) -> bool {
        let mut until = self.0.lock();
        match *until {
            Some(t) if now < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// The peer refused a batch sent at `now`: single calls until
    /// [`SINGLE_ONLY_FOR`] from then.
    pub(super) fn refused_batches(&self, now: Instant) {
        *self.0.lock() = Some(now + SINGLE_ONLY_FOR);
    }
}

/// The peer does not serve the batch call: tonic answered before any
/// handler ran, so nothing was applied (or read).
pub(super) fn unimplemented(e: &TransportError) -> bool {
    matches!(e, TransportError::Rpc { code, verdict, .. }
        if code.grpc() == tonic::Code::Unimplemented && *verdict != PeerVerdict::MaybeApplied)
}

/// The span a batch call runs in: a child of its first entry's trace
/// context, linked to the others' (empty ones are skipped), so the peer's
/// batch span joins a request's trace instead of being a root of its own.
pub(super) fn batch_span<'a>(
    call: &'static str,
    traceparents: impl Iterator<Item = &'a str>,
) -> tracing::Span {
    let span = tracing::info_span!("internode_batch", call);
    let mut first = true;
    for tp in traceparents.filter(|t| !t.is_empty()) {
        if first {
            crate::telemetry::adopt_traceparent(&span, tp);
            first = false;
        } else {
            crate::telemetry::link_traceparent(&span, tp);
        }
    }
    span
}
