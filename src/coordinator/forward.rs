//! Forwarding a write from a coordinator that does not replicate the key
//! (Riak's put FSM does the same): the whole client request goes to the
//! nearest live replica (`CoordinateWrite`), which coordinates it as its own,
//! so the dot, the remote datacenters' stream entries and the write are one
//! atomic batch on that replica, whoever the client talked to.
//!
//! The next replica is tried **only** when the failure proves nothing was
//! applied: the call never connected (or the link is cut), or the replica
//! refused before writing (its status says `geokv-applied: no`). Any other
//! failure (a reset after sending, a timeout) may hide a committed write: a
//! second attempt would mint a second dot the client never sees, so the
//! client is told the write may have been applied, and the key is recorded
//! for anti-entropy towards that replica. Owns nothing else.
//!
//! Must not: coordinate the write itself, or try another replica after one that may have applied it.

use super::{Coordinator, WriteOutcome, WriteRequest};
use crate::error::GeokvError;
use crate::hints::queue::Dest;
use crate::proto::v1::internode::{CoordinateWriteRequest, CoordinateWriteResponse};
use crate::ring::ReplicaSet;
use crate::topology::NodeIdx;
use crate::transport::{PeerVerdict, TransportError};
use crate::version::CausalContext;
use crate::view::ClusterView;
use std::time::Duration;
use tokio::time::Instant;

/// What to do after one forwarding attempt failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// Nothing was applied and another replica may take it.
    TryNext,
    /// The replica refused before writing (a bad request, the sibling cap):
    /// another one would refuse too. Its code is passed through.
    Refused,
    /// The replica answered with its own verdict after it may have applied
    /// the write (its replicas got hints or stream entries): passed through.
    Answered,
    /// No verdict: the write may sit on that replica alone.
    Unknown,
}

/// Sans-I/O: the decision for one failed forwarding call.
pub(super) fn after_failure(e: &TransportError) -> AfterFailure {
    match e {
        // (A forwarded write is planned by the replica, never refused as stale.)
        TransportError::Cut { .. }
        | TransportError::NotSent { .. }
        | TransportError::StaleView { .. } => AfterFailure::TryNext,
        TransportError::Rpc {
            code,
            verdict: PeerVerdict::NothingApplied,
            ..
        } => {
            if code.is_unavailable() {
                // Its own view of the live replicas, or a link cut: another
                // replica may see more.
                AfterFailure::TryNext
            } else {
                AfterFailure::Refused
            }
        }
        TransportError::Rpc {
            verdict: PeerVerdict::MaybeApplied,
            ..
        } => AfterFailure::Answered,
        TransportError::Rpc {
            verdict: PeerVerdict::Unknown,
            ..
        }
        | TransportError::Timeout { .. } => AfterFailure::Unknown,
    }
}

/// What the replica is sent: the whole request, with `left` of its deadline.
fn message(req: &WriteRequest, left: Duration) -> CoordinateWriteRequest {
    let m = &req.mutation;
    CoordinateWriteRequest {
        keyspace: m.keyspace.clone(),
        key: m.key.to_vec(),
        value: m.value.as_ref().map(|v| v.to_vec()),
        context: m.context.encode_context(),
        level: req.level.name().to_string(),
        explicit_count: req.explicit.unwrap_or(0),
        timeout_ms: remote_budget(left).as_millis().min(u32::MAX as u128) as u32,
    }
}

/// The replica `id`'s answer, as this coordinator's outcome.
fn outcome(id: &str, r: CoordinateWriteResponse) -> Result<WriteOutcome, GeokvError> {
    let context = CausalContext::decode_context(&r.context)
        .map_err(|e| GeokvError::MaybeApplied(format!("{id} answered with a bad context ({e})")))?;
    Ok(WriteOutcome {
        context,
        acks: r.acks,
        hints: r.hints,
    })
}

/// The deadline handed to the replica: what is left, less a tenth (at most
/// 200 ms) so its own verdict arrives before we give up on it.
fn remote_budget(left: Duration) -> Duration {
    let margin = (left / 10).min(Duration::from_millis(200));
    left.saturating_sub(margin).max(Duration::from_millis(1))
}

impl Coordinator {
    /// Hands `req` to the nearest live replica in `set` (only those of our
    /// datacenter for LOCAL_* levels) and returns its outcome.
    pub(super) async fn forward_write(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        set: &ReplicaSet,
        deadline: Instant,
    ) -> Result<WriteOutcome, GeokvError> {
        let candidates = self.forward_candidates(view, req, set);
        let mut not_applied: Vec<String> = Vec::new();
        for n in candidates {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            metrics::counter!("geokv_writes_forwarded_total").increment(1);
            let to = view.ring.node(n);
            let sent = self.peers.coordinate_write(to, message(req, left), left);
            let e = match sent.await {
                Ok(r) => return outcome(&to.id, r),
                Err(e) => e,
            };
            match after_failure(&e) {
                AfterFailure::TryNext => not_applied.push(e.to_string()),
                AfterFailure::Refused | AfterFailure::Answered => {
                    let (code, message) = match &e {
                        TransportError::Rpc { code, message, .. } => (*code, message.clone()),
                        _ => unreachable!("only a peer's status carries a verdict"),
                    };
                    return Err(GeokvError::Peer {
                        code,
                        message,
                        nothing_applied: after_failure(&e) == AfterFailure::Refused,
                    });
                }
                AfterFailure::Unknown => {
                    let id = view.ring.node(n).id.clone();
                    return Err(self.outcome_unknown(req, id, &e).await);
                }
            }
        }
        // Nothing was applied anywhere: safe to retry.
        Err(GeokvError::Unavailable {
            level: req.level.name().to_string(),
            required: 1,
            alive: 0,
            scope: format!(
                " to take the write (this node does not replicate the key; {})",
                if not_applied.is_empty() {
                    "no replica is believed alive".to_string()
                } else {
                    format!("none took it: {}", not_applied.join("; "))
                }
            ),
        })
    }

    /// Where a forward tries, in order: the live replicas nearest first
    /// (only our datacenter's for LOCAL_* levels), those that gossiped they
    /// refuse writes last (review-tidy34 L4: each would cost a round trip
    /// before its "not applied"; last, not out, since the bit may be a
    /// round behind a restart).
    pub(super) fn forward_candidates(
        &self,
        view: &ClusterView,
        req: &WriteRequest,
        set: &ReplicaSet,
    ) -> Vec<NodeIdx> {
        let mut candidates: Vec<NodeIdx> = self
            .by_proximity(view, set)
            .into_iter()
            .filter(|n| self.is_up(view, *n))
            .filter(|n| !req.level.is_local() || view.ring.node(*n).dc == self.me.dc)
            .collect();
        candidates.sort_by_key(|n| !self.takes_writes(view, *n));
        candidates
    }

    /// The write was sent to `n`, which failed without a verdict: record the
    /// key for anti-entropy towards `n` (which may hold it alone) and say
    /// that the write may have been applied.
    async fn outcome_unknown(
        &self,
        req: &WriteRequest,
        id: String,
        e: &TransportError,
    ) -> GeokvError {
        metrics::counter!("geokv_writes_outcome_unknown_total").increment(1);
        let (m, dest) = (&req.mutation, Dest::Node(id.clone()));
        let recorded = (self.hints).record_for_repair(&m.keyspace, &m.key, &dest);
        let note = match recorded.await {
            Ok(()) => "the key is recorded for anti-entropy".to_string(),
            Err(e) => {
                tracing::error!(node = %id, "could not record a key for anti-entropy: {e}");
                format!("the key could not be recorded for anti-entropy ({e}); only a full anti-entropy sweep repairs it")
            }
        };
        let what = format!(
            "{}: the write was forwarded to {id}, a replica of the key, which failed before answering ({e}); {note}",
            req.level.name()
        );
        match e {
            TransportError::Timeout { ms, .. } => GeokvError::Timeout {
                level: req.level.name().to_string(),
                received: 0,
                required: 1,
                timeout_ms: *ms,
                detail: format!(" ({what})"),
                write: true,
            },
            _ => GeokvError::MaybeApplied(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    /// A write forwarded to a replica that failed before answering is
    /// "maybe applied", and the message says whether the key was recorded
    /// for anti-entropy: not by a node that left and sealed its hint store
    /// (review Low of stop 23: it said "recorded" either way).
    #[tokio::test]
    async fn an_unknown_outcome_says_whether_the_key_was_recorded() {
        use crate::coordinator::tests_pending::{coordinator_as, leave_and_seal, put_request};
        let (seed, left) = crate::hints::testing::layouts();
        let up = || std::sync::Arc::new(crate::membership::AlwaysUp);
        let req = put_request("ks", b"k", crate::consistency::ConsistencyLevel::One);
        let cut = TransportError::Cut { peer: "a".into() };
        let member = coordinator_as(seed.clone(), "d", up());
        let said = member.outcome_unknown(&req, "a".into(), &cut).await;
        assert!(!said.nothing_applied(), "{said}");
        let said = said.to_string();
        assert!(
            said.contains("the key is recorded for anti-entropy"),
            "{said}"
        );
        let sealed = coordinator_as(seed, "d", up());
        leave_and_seal(&sealed, left).await;
        let said = sealed.outcome_unknown(&req, "a".into(), &cut).await;
        assert!(!said.nothing_applied(), "{said}");
        let said = said.to_string();
        assert!(!said.contains("is recorded"), "{said}");
        assert!(
            said.contains("could not be recorded for anti-entropy"),
            "{said}"
        );
    }

    fn rpc(code: Code, verdict: PeerVerdict) -> TransportError {
        TransportError::Rpc {
            peer: "dc1-n2".into(),
            code: code.into(),
            message: "m".into(),
            verdict,
        }
    }

    #[test]
    fn only_failures_that_prove_nothing_was_applied_move_on() {
        let peer = || "dc1-n2".to_string();
        let cases = [
            (TransportError::Cut { peer: peer() }, AfterFailure::TryNext),
            (
                TransportError::NotSent {
                    peer: peer(),
                    message: "refused".into(),
                },
                AfterFailure::TryNext,
            ),
            (
                rpc(Code::Unavailable, PeerVerdict::NothingApplied),
                AfterFailure::TryNext,
            ),
            (
                rpc(Code::FailedPrecondition, PeerVerdict::NothingApplied),
                AfterFailure::Refused,
            ),
            (
                rpc(Code::Aborted, PeerVerdict::MaybeApplied),
                AfterFailure::Answered,
            ),
            (
                rpc(Code::DeadlineExceeded, PeerVerdict::MaybeApplied),
                AfterFailure::Answered,
            ),
            // A reset after sending: tonic says UNKNOWN or UNAVAILABLE
            // without the peer's verdict.
            (
                rpc(Code::Unknown, PeerVerdict::Unknown),
                AfterFailure::Unknown,
            ),
            (
                rpc(Code::Unavailable, PeerVerdict::Unknown),
                AfterFailure::Unknown,
            ),
            (
                rpc(Code::Internal, PeerVerdict::Unknown),
                AfterFailure::Unknown,
            ),
            (
                TransportError::Timeout {
                    peer: peer(),
                    ms: 5,
                },
                AfterFailure::Unknown,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(after_failure(&e), want, "{e}");
        }
    }

    /// review-conn28 M1: forwards to a replica whose host drops SYNs, one
    /// every 100 ms: the calls queued behind the first connect are given up
    /// before any connection read them, so each is "not sent" and the
    /// forward moves on to the next replica (or answers "safe to retry"),
    /// never "may have been applied".
    #[tokio::test]
    async fn forwards_queued_behind_a_failed_connect_all_try_the_next_replica() {
        use crate::transport::testing::{dropping_syns, node, peers};
        let (addr, _listener, _filled) = dropping_syns().await;
        let (peers, replica) = (peers(), node("n1", addr));
        tokio::time::pause();
        let forwards = (0..6u64).map(|i| {
            let (peers, replica) = (&peers, &replica);
            async move {
                tokio::time::sleep(Duration::from_millis(100 * i)).await;
                let left = Duration::from_secs(2);
                let req = CoordinateWriteRequest::default();
                let sent = peers.coordinate_write(replica, req, left).await;
                sent.expect_err("nobody answers")
            }
        });
        for e in futures::future::join_all(forwards).await {
            assert_eq!(after_failure(&e), AfterFailure::TryNext, "{e}");
        }
    }

    #[test]
    fn the_replica_answers_before_the_caller_gives_up() {
        for ms in [1u64, 50, 500, 2000, 60_000] {
            let left = Duration::from_millis(ms);
            let b = remote_budget(left);
            assert!(b <= left && b > Duration::ZERO, "{ms}: {b:?}");
            if ms >= 50 {
                assert!(b < left, "{ms}: {b:?}");
            }
        }
    }
}
