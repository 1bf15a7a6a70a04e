//! The proposer side of the layout compare-and-set: drives
//! [`crate::layout::consensus::Proposer`] over the network until the slot
//! (the next version) is decided or the deadline passes.
//!
//! [`decide`] asks every acceptor (the voters of the base layout, less a
//! node the change declares dead: `layout::acceptors`) concurrently, retries at a higher ballot when
//! preempted, and returns the chosen layout and whether it is the one
//! proposed. A change whose accept never reached a majority ends in
//! [`CasError`], which says whether the change may still be applied (some
//! acceptor holds it: a later proposer may finish it) or surely was not;
//! `ours: false` only when it surely was not (review-layout28 L4).
//! Must not: install or spread layouts (the caller does, for chosen ones
//! only), or decide what a layout contains.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

pub use super::cas_net::{Answer, LocalFirst, PeersNet};
pub use super::errors::{CallError, CasError};
use super::learn::{given_up, learn, settled};
use super::lineage::{Lineage, Lineages};
use super::Source;
use crate::layout::consensus::{Ballot, Msg, Outcome, Proposer, Reply, Step};
use crate::layout::Layout;
use crate::topology::NodeInfo;
use crate::transport::Peers;

/// One CAS call's answer: a reply (with its holder's lineage), or why
/// none came.
pub type CallResult = Result<Answer, CallError>;

/// How a proposer reaches the acceptors.
pub trait AcceptorNet: Send + Sync {
    /// Sends `msg` to acceptor `to`; its reply, or why none came.
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>>;

    /// Pushes `layout` (the proposer's base) with its `lineage` to
    /// acceptor `to`, which answered BEHIND: the Paxos learner catch-up
    /// (review-layout29 H1); the receiver's install guard decides.
    fn push(&self, to: &NodeInfo, layout: &Layout, lineage: &Lineage) -> PushFuture {
        let _ = (to, layout, lineage);
        Box::pin(async { Err(CallError::NoPush) })
    }

    /// What the proposer knows of `base`'s lineage (its proof of choice
    /// goes with the push); none unless the proposer installed it.
    fn lineage(&self, base: &Layout) -> Lineage {
        let _ = base;
        Lineage::default()
    }
}

/// A push's end: done, or why not.
pub type PushFuture = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send>>;

/// The outcome of a decided slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// The chosen layout (of version `slot`, or newer when an acceptor had
    /// already installed a newer one).
    pub layout: Layout,
    /// It is the proposed one; else the proposal was refused.
    pub ours: bool,
    /// What backs it: this CAS saw it chosen, or one acceptor's word
    /// (`learn`), or a quorum of its voters holds it.
    pub source: Source,
    /// Its predecessor and the ballot it was chosen at, when this CAS saw
    /// a quorum accept it (`super::lineage`); else what its holders'
    /// DECIDED answers carried of it (review-layout31 H1).
    pub lineage: Lineage,
}

/// How one attempt at one ballot ended.
enum End {
    Done(Outcome<Layout>),
    /// The calls all ended (or the deadline passed) without a majority,
    /// and no answer said why (`Proposer::on_exhausted`).
    NoMajority {
        answered: BTreeSet<String>,
    },
}

/// Decides the layout of version `base.version + 1`, proposing `next`
/// (of that version) as node `me`, before `deadline` (from now). Each
/// attempt takes a new ballot, also after BEHIND (consensus.rs I7).
pub async fn decide(
    net: &dyn AcceptorNet,
    me: &str,
    base: &Layout,
    next: Layout,
    deadline: Duration,
) -> Result<Decided, CasError> {
    let slot = base.version + 1;
    let quorum = crate::layout::acceptors::quorum(base, &next);
    let members: Vec<NodeInfo> = (base.nodes())
        .filter(|(_, _, n)| quorum.members.contains(&n.id))
        .map(|(dc, rack, n)| NodeInfo::from_layout(dc, rack, n))
        .collect();
    let give_up = tokio::time::Instant::now() + deadline;
    let (mut round, mut maybe_applied, mut retries) = (1, false, 0u32);
    // Ballots must be unique per proposer: two proposals made on one node
    // at once (or before and after a restart) must not share one, or both
    // would count the same acceptances. So each call has its own id.
    let proposer = format!("{me}/{:016x}", rand::random::<u64>());
    let base_digest = base.digest();
    // What the DECIDED and WRONG_BASE answers carry of their layouts'
    // lineages: a layout learned from them keeps its holders' proof.
    let mut proofs = Lineages::default();
    loop {
        let ballot = Ballot {
            round,
            node: proposer.clone(),
        };
        let mut prop = Proposer::with_quorum(slot, ballot, quorum.clone(), next.clone())
            .with_base(base_digest);
        let (own, applied) = (&next, &mut maybe_applied);
        let behind =
            match attempt(net, &members, &mut prop, own, applied, &mut proofs, give_up).await {
                End::Done(Outcome::Chosen { value, ours }) => {
                    let decided = chosen(&prop, base_digest, value, ours, &proofs);
                    return settled(slot, decided, maybe_applied);
                }
                End::NoMajority { answered } => {
                    let (refused, n) = (prop.refusing(), members.len());
                    let e = no_majority(slot, n, &quorum, answered, refused, maybe_applied);
                    return Err(e);
                }
                End::Done(Outcome::Preempted { by }) => {
                    round = round.max(by.round) + 1;
                    None
                }
                End::Done(Outcome::Behind { behind, .. }) => {
                    round += 1;
                    push_base(net, &members, &behind, base, give_up).await;
                    Some(behind)
                }
                End::Done(Outcome::Decided { held, blocking }) => {
                    let learned = learn(slot, &next, held, blocking, maybe_applied, &proofs);
                    return learned.and_then(|d| settled(slot, d, maybe_applied));
                }
                End::Done(Outcome::WrongBase { held }) => {
                    return Err(CasError::WrongBase {
                        slot,
                        held,
                        lineages: proofs,
                        maybe_applied,
                    })
                }
            };
        retries += 1;
        let pause = retry_pause(retries, rand::random::<f64>());
        if tokio::time::Instant::now() + pause >= give_up {
            let secs = deadline.as_secs();
            return Err(given_up(slot, secs, behind, maybe_applied));
        }
        tokio::time::sleep(pause).await;
    }
}

/// What `prop` saw chosen: `layout`, with its lineage when a quorum
/// accepted it at `prop`'s ballot (built on `base`, the proof of choice);
/// chosen from a quorum of DECIDED answers, with what those holders
/// carried of it (`proofs`; unknown from older acceptors).
fn chosen(
    prop: &Proposer<Layout>,
    base: u128,
    layout: Layout,
    ours: bool,
    proofs: &Lineages,
) -> Decided {
    let lineage = match prop.chosen_at() {
        Some(at) => Lineage {
            prev: Some(base),
            chosen_at: Some(at.clone()),
        },
        None => proofs.of(&layout),
    };
    Decided {
        layout,
        ours,
        source: Source::Chosen,
        lineage,
    }
}

/// No majority answered the attempt at `slot` among `members` acceptors:
/// who answered (`answered`), refused (`refused`), or stayed silent.
fn no_majority(
    slot: u64,
    members: usize,
    quorum: &crate::layout::acceptors::Quorum,
    answered: BTreeSet<String>,
    refused: BTreeSet<String>,
    maybe_applied: bool,
) -> CasError {
    CasError::NoMajority {
        slot,
        members,
        needed: quorum.needed,
        required: quorum.required.clone(),
        answered: answered.difference(&refused).count(),
        refused: answered.intersection(&refused).cloned().collect(),
        unanswered: (quorum.members.iter())
            .filter(|id| !answered.contains(*id))
            .cloned()
            .collect(),
        maybe_applied,
    }
}

/// Pushes `base` to the acceptors that answered BEHIND (the Paxos learner
/// catch-up, review-layout29 H1) before the retry: one that missed the
/// push of the base would otherwise wait for gossip, whose staging holds
/// a layout back while a fork of its version is in sight, and refuse
/// every change (`removenode` too) for good. Always pushed, with what the
/// proposer knows of its lineage (its proof of choice): the receiver's
/// install guard decides (`super::guard`; a "most answers hold it" gate
/// here wedged the cluster, review-layout30 H1). Best-effort, within
/// `give_up`.
async fn push_base(
    net: &dyn AcceptorNet,
    members: &[NodeInfo],
    behind: &[String],
    base: &Layout,
    give_up: tokio::time::Instant,
) {
    let (version, lineage) = (base.version, net.lineage(base));
    let pushes: FuturesUnordered<_> = (members.iter())
        .filter(|n| behind.contains(&n.id))
        .map(|n| {
            let (push, id) = (net.push(n, base, &lineage), n.id.clone());
            async move { (id, push.await) }
        })
        .collect();
    let all = pushes.for_each(move |(id, done)| async move {
        match done {
            Ok(()) => tracing::info!(acceptor = %id, version, "layout CAS: pushed the base to an acceptor behind it"),
            Err(e) => tracing::debug!(acceptor = %id, version, error = %e, "layout CAS: base push failed"),
        }
    });
    let _ = tokio::time::timeout_at(give_up, all).await;
}

/// Pauses between attempts at higher ballots: from 20 ms, doubling up to
/// 2 s (past one inter-DC two-phase round), jittered so two proposers
/// preempting each other do not retry in step.
const RETRY: geokv_client::Backoff =
    geokv_client::Backoff::new(Duration::from_millis(20), Duration::from_secs(2));

/// The pause before retry number `retry`, for a uniform sample `unit`.
pub(crate) fn retry_pause(retry: u32, unit: f64) -> Duration {
    RETRY.jittered(retry, unit)
}

/// One ballot: broadcast each phase, feed replies in until the proposer
/// is done or every call ended without it.
async fn attempt(
    net: &dyn AcceptorNet,
    members: &[NodeInfo],
    prop: &mut Proposer<Layout>,
    own: &Layout,
    maybe_applied: &mut bool,
    proofs: &mut Lineages,
    give_up: tokio::time::Instant,
) -> End {
    let mut step = prop.start();
    loop {
        let msg = match step {
            Step::Broadcast(msg) => msg,
            Step::Done(outcome) => return End::Done(outcome),
            Step::Wait => unreachable!("a proposer step after a full phase is never Wait"),
        };
        if matches!(&msg, Msg::Accept { value, .. } if value == own) {
            *maybe_applied = true;
        }
        let mut calls: FuturesUnordered<_> = (members.iter())
            .map(|n| {
                let call = net.call(n, msg.clone());
                let id = n.id.clone();
                async move { (id, call.await) }
            })
            .collect();
        let mut answered = BTreeSet::new();
        step = loop {
            let (id, result) = match tokio::time::timeout_at(give_up, calls.next()).await {
                Ok(Some(done)) => done,
                // What the answers seen say (review-layout28 M2).
                Ok(None) | Err(_) => {
                    return (prop.on_exhausted()).map_or(End::NoMajority { answered }, End::Done)
                }
            };
            match result {
                Ok(answer) => {
                    answered.insert(id.clone());
                    match prop.on_reply(&id, heard(proofs, answer)) {
                        Step::Wait => {}
                        s => break s,
                    }
                }
                Err(e) => tracing::debug!(acceptor = %id, error = %e, "layout CAS: no answer"),
            }
        };
        if matches!(step, Step::Done(Outcome::WrongBase { .. })) {
            // The other answers say which layout the members hold.
            while let Ok(Some((id, result))) = tokio::time::timeout_at(give_up, calls.next()).await
            {
                if let Ok(answer) = result {
                    prop.on_reply(&id, heard(proofs, answer));
                }
            }
            let held = prop.held_elsewhere();
            step = Step::Done(Outcome::WrongBase { held });
        }
    }
}

/// `answer`'s reply, its holder's lineage of the layout a DECIDED or
/// WRONG_BASE reply names added to `proofs`.
fn heard(proofs: &mut Lineages, answer: Answer) -> Reply<Layout> {
    if let Reply::Decided { value: l } | Reply::WrongBase { installed: l, .. } = &answer.reply {
        proofs.add(l, answer.lineage);
    }
    answer.reply
}

/// Proposes `next` (version `base.version + 1`) as node `me`, which is
/// not a member of `base` (a joining or replacing node before it starts):
/// the acceptors are reached through `peers`. The chosen layout when it
/// is `next`, with its lineage (its proof of choice when this CAS saw it
/// chosen: the caller persists and pushes it, review-layout31 H1); else
/// the refusal naming the winner.
pub async fn propose_outside(
    peers: &Arc<Peers>,
    me: &str,
    base: &Layout,
    next: Layout,
    mine: &(dyn Fn(&Layout) -> bool + Sync),
) -> Result<(Layout, Lineage), super::ProposeError> {
    propose_adopting(&PeersNet(peers.clone()), me, base, next, mine).await
}

/// [`propose_outside`] through `net`: a chosen layout other than `next`
/// for which `mine` holds (this node's own earlier change of the same
/// kind, accepted by some acceptors before a timeout or a crash, and
/// finished by this proposal) is adopted, not refused.
pub async fn propose_adopting(
    net: &dyn AcceptorNet,
    me: &str,
    base: &Layout,
    next: Layout,
    mine: &(dyn Fn(&Layout) -> bool + Sync),
) -> Result<(Layout, Lineage), super::ProposeError> {
    let deadline = super::cluster::PROPOSE_DEADLINE;
    let decided = match decide(net, me, base, next, deadline).await {
        // Superseded by a layout holding this node's change: adopted,
        // with what its holders' answers carried of its lineage.
        Err(CasError::Superseded {
            layout, lineage, ..
        }) if mine(&layout) => return Ok((*layout, lineage)),
        decided => decided?,
    };
    if !decided.ours && !mine(&decided.layout) {
        return Err(super::ProposeError::Concurrent {
            version: decided.layout.version,
            now: describe(&decided.layout),
        });
    }
    Ok((decided.layout, decided.lineage))
}

/// A short account of `layout` for a refusal: its movements in progress
/// and its keyspaces.
pub fn describe(layout: &Layout) -> String {
    let moving: Vec<String> = (layout.movements.iter())
        .map(|(dc, m)| format!("{m} in {dc}"))
        .collect();
    let keyspaces: Vec<&str> = layout.keyspaces.keys().map(String::as_str).collect();
    let moving = if moving.is_empty() {
        "no movement".to_string()
    } else {
        moving.join(", ")
    };
    format!("{moving}; keyspaces {}", keyspaces.join(", "))
}
