//! Tests of what a layout change that sent its own Accept says when the
//! slot ends elsewhere (review-layout28 L4, review-final28 L2): a layout
//! newer than the slot, learned or answered by a quorum, may be built on
//! this change, so the answer is "may have been applied" (503, `maybe`),
//! never 409 "another change won"; an `Undecided` slot after our Accept
//! likewise. Three acceptors answer from a script (no state), under
//! paused time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::cas::{self, AcceptorNet, CallError, CallResult, CasError};
use super::cas_testing::{three_nodes, with_keyspace};
use super::*;
use crate::layout::consensus::{Msg, Reply};
use crate::topology::NodeInfo;
use crate::transport::TransportError;

/// What acceptor `id` answers to `msg`; `None`: no answer.
type Script = dyn Fn(&str, &Msg<Layout>) -> Option<Reply<Layout>> + Send + Sync;

struct Scripted(Box<Script>);

impl AcceptorNet for Scripted {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        let reply = (self.0)(&to.id, &msg).map(cas::Answer::from);
        let silent = || {
            CallError::Transport(TransportError::Timeout {
                peer: to.id.clone(),
                ms: 0,
            })
        };
        let reply = reply.ok_or_else(silent);
        Box::pin(async move { reply })
    }
}

/// Promises (nothing accepted) from `promising`; in the accept phase
/// `accepts` answer `Accepted`, `decided` answer `Decided(value)`; every
/// other call goes unanswered.
fn script(
    promising: &'static [&'static str],
    accepts: &'static [&'static str],
    decided: Vec<(&'static str, Layout)>,
) -> Scripted {
    Scripted(Box::new(move |id: &str, msg: &Msg<Layout>| match msg {
        Msg::Prepare { ballot, .. } => promising.contains(&id).then(|| Reply::Promise {
            ballot: ballot.clone(),
            accepted: None,
        }),
        Msg::Accept { ballot, .. } if accepts.contains(&id) => Some(Reply::Accepted {
            ballot: ballot.clone(),
        }),
        Msg::Accept { .. } => {
            (decided.iter())
                .find(|(d, _)| *d == id)
                .map(|(_, value)| Reply::Decided {
                    value: value.clone(),
                })
        }
    }))
}

/// The status and `geokv-applied` verdict an admin answer to `err` carries.
fn answer(err: CasError) -> (u16, &'static str) {
    let e = ProposeError::Cas(err);
    (e.status(), e.applied())
}

/// Our Accept reached dc1-n1; dc1-n2 answers that v4 (built on our v3:
/// the slot may hold our change) is installed, dc1-n3 is silent: `learn`
/// takes the newer layout. Before: `Decided { ours: false }`, so
/// `Cluster::propose` answered 409 "another change won; retry", and a
/// retry could apply the change twice.
#[tokio::test(start_paused = true)]
async fn a_newer_layout_learned_after_our_accept_may_hold_our_change() {
    let v2 = with_keyspace(&three_nodes(), "a");
    let own = with_keyspace(&v2, "own");
    let v4 = with_keyspace(&own, "later");
    let net = script(&["dc1-n1", "dc1-n2"], &["dc1-n1"], vec![("dc1-n2", v4)]);
    let got = cas::decide(&net, "dc1-n1", &v2, own, Duration::from_secs(10)).await;
    let err = got.expect_err("the slot's value is not known");
    assert!(
        matches!(&err, CasError::Superseded { slot: 3, layout, .. } if layout.version == 4),
        "{err}"
    );
    assert!(err.maybe_applied(), "{err}");
    assert!(err.to_string().contains("may still be applied"), "{err}");
    assert_eq!(answer(err), (503, "maybe"));
}

/// The same with a quorum (dc1-n2, dc1-n3) answering v4 after our Accept:
/// the proposer ends `Chosen { v4, ours: false }` (I8). Before: 409.
#[tokio::test(start_paused = true)]
async fn a_quorum_answering_a_newer_layout_after_our_accept_may_hold_our_change() {
    let v2 = with_keyspace(&three_nodes(), "a");
    let own = with_keyspace(&v2, "own");
    let v4 = with_keyspace(&own, "later");
    let decided = vec![("dc1-n2", v4.clone()), ("dc1-n3", v4)];
    let all = &["dc1-n1", "dc1-n2", "dc1-n3"];
    let net = script(all, &["dc1-n1"], decided);
    let got = cas::decide(&net, "dc1-n1", &v2, own, Duration::from_secs(10)).await;
    let err = got.expect_err("the slot's value is not known");
    assert!(matches!(err, CasError::Superseded { slot: 3, .. }), "{err}");
    assert_eq!(answer(err), (503, "maybe"));
}

/// review-final28 L2: dc1-n1 and dc1-n2 promise; our Accept reaches
/// dc1-n1, dc1-n2 has installed another v3 by then (`Decided`), dc1-n3 is
/// silent (it may have accepted ours): `Undecided` with our change maybe
/// applied is 503 "may still be applied", not 409. Before: 409.
#[tokio::test(start_paused = true)]
async fn an_undecided_slot_after_our_accept_is_unknown_not_a_conflict() {
    let v2 = with_keyspace(&three_nodes(), "a");
    let (own, other) = (with_keyspace(&v2, "own"), with_keyspace(&v2, "other"));
    let net = script(&["dc1-n1", "dc1-n2"], &["dc1-n1"], vec![("dc1-n2", other)]);
    let got = cas::decide(&net, "dc1-n1", &v2, own, Duration::from_secs(10)).await;
    let err = got.expect_err("undecided");
    assert!(matches!(err, CasError::Undecided { slot: 3, .. }), "{err}");
    assert!(err.maybe_applied(), "{err}");
    assert_eq!(answer(err), (503, "maybe"));
}

/// The converse: a slot decided as another v3 before any Accept of ours
/// (a quorum answers it) is certainly not ours: 409 "another change won",
/// `geokv-applied: no`.
#[tokio::test(start_paused = true)]
async fn a_slot_decided_before_our_accept_is_a_conflict_not_applied() {
    let v2 = with_keyspace(&three_nodes(), "a");
    let (own, other) = (with_keyspace(&v2, "own"), with_keyspace(&v2, "other"));
    let net = Scripted(Box::new(move |id: &str, _: &Msg<Layout>| {
        (id != "dc1-n1").then(|| Reply::Decided {
            value: other.clone(),
        })
    }));
    let got = cas::decide(&net, "dc1-n1", &v2, own, Duration::from_secs(10)).await;
    let decided = got.expect("chosen elsewhere");
    assert!(!decided.ours);
    let refused = ProposeError::Concurrent {
        version: 3,
        now: cas::describe(&decided.layout),
    };
    assert_eq!((refused.status(), refused.applied()), (409, "no"));
}
