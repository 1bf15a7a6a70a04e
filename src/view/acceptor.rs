//! This node as an acceptor of the layout compare-and-set
//! ([`crate::layout::consensus`]): its promises and accepted layouts per
//! slot, kept durably under the `layout-paxos` key of the `meta` column
//! family (written and the WAL fsynced before a reply leaves), and the
//! wire form of the CAS messages (`LayoutPrepare`, `LayoutAccept`).
//!
//! A slot at or below the installed layout's version is decided: the
//! answer is that layout (only chosen layouts are installed), and the
//! state of such slots is dropped at the next write. A proposal for the
//! next slot must build on the installed layout (its base digest), else
//! it is refused with that layout (review-layout26 M2); a proposal for a
//! later slot is refused as BEHIND: this node cannot check its base
//! (review-layout27 M2).
//!
//! Only the instance built on the installed layout is answered (its live
//! slots; the other instances' are kept by `super::instances`).
//!
//! The state is loaded at the first CAS message. One that does not decode
//! is a typed error ([`AcceptorError::Corrupt`]), logged, at every message:
//! never replaced, since answering without it could break a promise.
//! Must not: propose, install layouts, or talk to peers.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::{CallSite, Cf, Engine, EngineError, WriteBatch};
use crate::error::GeokvError;
use crate::layout::consensus::{respond_on, Ballot, Known, Msg, Reply};
use crate::layout::Layout;
use crate::proto::v1::internode::{
    layout_paxos_reply::Kind, LayoutAcceptRequest, LayoutBallot, LayoutPaxosReply,
    LayoutPrepareRequest,
};

use super::cas::Answer;
use super::instances::{Others, Slots, Swap};
use super::lineage::Lineage;
use super::sync::{from_message, to_message};

/// The `meta` key of the acceptor state.
pub const PAXOS_KEY: &[u8] = b"layout-paxos";

/// A CAS message could not be answered or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AcceptorError {
    #[error("layout CAS state in meta: {0}")]
    Engine(#[from] EngineError),
    #[error("layout CAS message does not decode: {0}")]
    Decode(String),
    /// The persisted state does not decode: this node refuses every CAS
    /// message (answering would forget its promises) until an operator
    /// repairs or removes the key; logged at each refusal.
    #[error("layout CAS acceptor state (meta keys `layout-paxos`, `layout-paxos-others`) does not decode, every CAS message is refused until it is repaired: {0}")]
    Corrupt(String),
    #[error("layout CAS: an accept for slot {slot} carries layout v{version}")]
    WrongVersion { slot: u64, version: u64 },
}

/// This acceptor's state: the live slots (the Paxos instance built on
/// the installed layout) and the other instances' (`super::instances`).
#[derive(Clone)]
struct State {
    live: Slots,
    others: Others,
}

/// An acceptor state put in a write batch, to be set once that batch is
/// written ([`Acceptor::swap_into`]).
pub struct Swapped(State);

/// The acceptor of one node: its slots, loaded once, persisted on change.
pub struct Acceptor {
    engine: Option<Arc<dyn Engine>>,
    state: Mutex<Option<State>>,
}

impl Acceptor {
    /// State persisted in `engine` (in memory only without one: tests).
    pub fn new(engine: Option<Arc<dyn Engine>>) -> Acceptor {
        Acceptor {
            engine,
            state: Mutex::new(None),
        }
    }

    /// Answers `msg`, `installed` being the layout in force here. The new
    /// state is durable before this returns. Blocking (an fsync).
    pub fn handle(
        &self,
        installed: &Layout,
        msg: &Msg<Layout>,
    ) -> Result<Reply<Layout>, AcceptorError> {
        let slot = match msg {
            Msg::Prepare { slot, .. } => *slot,
            Msg::Accept { slot, value, .. } if value.version != *slot => {
                return Err(AcceptorError::WrongVersion {
                    slot: *slot,
                    version: value.version,
                })
            }
            Msg::Accept { slot, .. } => *slot,
        };
        let known = if installed.version >= slot {
            Known::Decided(installed)
        } else if installed.version + 1 == slot {
            let digest = installed.digest();
            Known::Base {
                value: installed,
                digest,
            }
        } else {
            Known::Behind
        };
        let mut guard = self.state.lock();
        let loaded = self.loaded(&mut guard)?;
        let mut state = loaded.live.get(&slot).cloned().unwrap_or_default();
        let (reply, changed) = respond_on(&mut state, known, msg);
        if changed {
            let mut next = loaded.clone();
            next.live.retain(|s, _| *s > installed.version);
            next.live.insert(slot, state);
            let trimmed = next.others.retain_above(installed.version);
            self.save(&next.live, trimmed.then_some(&next.others))?;
            *loaded = next;
        }
        Ok(reply)
    }

    /// What this acceptor accepted in `slot` (its ballot and layout), if
    /// anything, in the instance built on the installed layout. The
    /// caller holds the install lock (written) so that no accept
    /// ([`super::Cluster::accept`] holds it read) comes in between this
    /// answer and what it does with it (`super::guard`).
    pub fn accepted(&self, slot: u64) -> Result<Option<(Ballot, Layout)>, AcceptorError> {
        let mut guard = self.state.lock();
        let loaded = self.loaded(&mut guard)?;
        Ok(loaded.live.get(&slot).and_then(|s| s.accepted.clone()))
    }

    /// Puts into `batch` this acceptor's state after `swap`: this node
    /// replaces its layout of `swap.version` by another (`on_wrong_base`),
    /// so its live slots above were another Paxos instance than the one
    /// built on the new layout (review-layout32a M3). They are kept under
    /// their base and what was kept for the new base comes back, so a
    /// swap back forgets nothing (`super::instances`, review-layout32b
    /// M2). The caller writes `batch` with the swap (one write, then
    /// synced: neither or both, review-layout32b M1) and only then hands
    /// the result to [`Self::set_written`]. The caller holds the install
    /// lock (written), so no answer changes the state in between.
    pub fn swap_into(&self, batch: &mut WriteBatch, swap: Swap) -> Result<Swapped, AcceptorError> {
        let mut guard = self.state.lock();
        let loaded = self.loaded(&mut guard)?;
        let mut others = loaded.others.clone();
        let live = others.swap(&loaded.live, swap);
        others.retain_above(swap.version);
        put(batch, &live);
        others.put(batch);
        Ok(Swapped(State { live, others }))
    }

    /// The state [`Self::swap_into`] put in a batch, once written.
    pub fn set_written(&self, swapped: Swapped) {
        *self.state.lock() = Some(swapped.0);
    }

    /// The state, loaded at the first call.
    fn loaded<'a>(&self, guard: &'a mut Option<State>) -> Result<&'a mut State, AcceptorError> {
        if guard.is_none() {
            *guard = Some(self.load()?);
        }
        Ok(guard.as_mut().expect("loaded above"))
    }

    fn load(&self) -> Result<State, AcceptorError> {
        let mut state = State {
            live: Slots::new(),
            others: Others::default(),
        };
        let Some(engine) = &self.engine else {
            return Ok(state);
        };
        let corrupt = |e: String| {
            let e = AcceptorError::Corrupt(e);
            tracing::error!(error = %e, "the layout CAS acceptor state is corrupt");
            e
        };
        if let Some(bytes) = engine.get_raw(Cf::Meta, PAXOS_KEY)? {
            state.live = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        }
        state.others = Others::load(&**engine)?.map_err(corrupt)?;
        Ok(state)
    }

    /// Writes the live slots (and the other instances' when given), then
    /// syncs.
    fn save(&self, live: &Slots, others: Option<&Others>) -> Result<(), AcceptorError> {
        let Some(engine) = &self.engine else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        put(&mut batch, live);
        if let Some(others) = others {
            others.put(&mut batch);
        }
        engine.write(batch)?;
        engine.flush()?;
        Ok(())
    }
}

/// The write of `slots` as the live acceptor state.
fn put(batch: &mut WriteBatch, slots: &Slots) {
    let bytes = serde_json::to_vec(slots).expect("acceptor state serialises");
    batch.put_raw(Cf::Meta, PAXOS_KEY, &bytes);
}

/// What `LayoutPrepare` and `LayoutAccept` answer: `cluster`'s acceptor
/// on `msg`, on the blocking pool (the state is fsynced first).
pub async fn serve(
    cluster: super::Cluster,
    msg: Msg<Layout>,
) -> Result<LayoutPaxosReply, GeokvError> {
    let answer = CallSite::BlockingPool.run(move || cluster.answer(&msg));
    let answer = (answer.await)
        .map_err(|e| GeokvError::Internal(e.to_string()))?
        .map_err(|e| GeokvError::Internal(e.to_string()))?;
    Ok(answer_to(&answer))
}

fn ballot_to(b: &Ballot) -> LayoutBallot {
    LayoutBallot {
        round: b.round,
        node: b.node.clone(),
    }
}

fn ballot_from(b: Option<&LayoutBallot>) -> Result<Ballot, AcceptorError> {
    let b = b.ok_or_else(|| AcceptorError::Decode("a ballot is missing".into()))?;
    Ok(Ballot {
        round: b.round,
        node: b.node.clone(),
    })
}

fn layout_from(
    from: &str,
    m: Option<&crate::proto::v1::internode::LayoutMessage>,
) -> Result<Layout, AcceptorError> {
    let m = m.ok_or_else(|| AcceptorError::Decode("a layout is missing".into()))?;
    from_message(from, m).map_err(|e| AcceptorError::Decode(e.to_string()))
}

fn base_from(bytes: &[u8]) -> Result<u128, AcceptorError> {
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| {
        AcceptorError::Decode(
            "the proposal's base digest is missing (a node older than the base check? upgrade every node first)"
                .into(),
        )
    })?;
    Ok(u128::from_be_bytes(bytes))
}

/// `LayoutPrepare`'s request.
pub fn prepare_request(slot: u64, ballot: &Ballot, base: u128) -> LayoutPrepareRequest {
    LayoutPrepareRequest {
        slot,
        ballot: Some(ballot_to(ballot)),
        base_digest: base.to_be_bytes().to_vec(),
    }
}

/// `LayoutAccept`'s request.
pub fn accept_request(
    slot: u64,
    ballot: &Ballot,
    base: u128,
    layout: &Layout,
) -> LayoutAcceptRequest {
    LayoutAcceptRequest {
        slot,
        ballot: Some(ballot_to(ballot)),
        layout: Some(to_message(layout)),
        base_digest: base.to_be_bytes().to_vec(),
    }
}

/// The message a `LayoutPrepare` from `from` carries.
pub fn prepare_msg(r: &LayoutPrepareRequest) -> Result<Msg<Layout>, AcceptorError> {
    Ok(Msg::Prepare {
        slot: r.slot,
        ballot: ballot_from(r.ballot.as_ref())?,
        base: base_from(&r.base_digest)?,
    })
}

/// The message a `LayoutAccept` from `from` carries.
pub fn accept_msg(from: &str, r: &LayoutAcceptRequest) -> Result<Msg<Layout>, AcceptorError> {
    Ok(Msg::Accept {
        slot: r.slot,
        ballot: ballot_from(r.ballot.as_ref())?,
        base: base_from(&r.base_digest)?,
        value: layout_from(from, r.layout.as_ref())?,
    })
}

/// The wire form of `reply`.
pub fn reply_to(reply: &Reply<Layout>) -> LayoutPaxosReply {
    let mut out = LayoutPaxosReply::default();
    match reply {
        Reply::Promise { ballot, accepted } => {
            out.set_kind(Kind::Promise);
            out.ballot = Some(ballot_to(ballot));
            if let Some((b, l)) = accepted {
                out.accepted = Some(ballot_to(b));
                out.layout = Some(to_message(l));
            }
        }
        Reply::Accepted { ballot } => {
            out.set_kind(Kind::Accepted);
            out.ballot = Some(ballot_to(ballot));
        }
        Reply::Rejected { ballot, promised } => {
            out.set_kind(Kind::Rejected);
            out.ballot = Some(ballot_to(ballot));
            out.promised = Some(ballot_to(promised));
        }
        Reply::Decided { value } => {
            out.set_kind(Kind::Decided);
            out.layout = Some(to_message(value));
        }
        Reply::WrongBase { ballot, installed } => {
            out.set_kind(Kind::WrongBase);
            out.ballot = Some(ballot_to(ballot));
            out.layout = Some(to_message(installed));
        }
        Reply::Behind { ballot } => {
            out.set_kind(Kind::Behind);
            out.ballot = Some(ballot_to(ballot));
        }
    }
    out
}

/// The wire form of `answer`: its reply, the lineage of the layout a
/// DECIDED or WRONG_BASE reply names in that layout's `LayoutMessage`
/// (fields 3 and 4, which an older proposer ignores: no new field here).
pub fn answer_to(answer: &Answer) -> LayoutPaxosReply {
    let mut out = reply_to(&answer.reply);
    if let (Reply::Decided { .. } | Reply::WrongBase { .. }, Some(layout)) =
        (&answer.reply, out.layout.as_mut())
    {
        answer.lineage.to_message(layout);
    }
    out
}

/// The answer acceptor `from` sent: its reply and, for DECIDED and
/// WRONG_BASE, the lineage of the layout it names (unknown from an older
/// acceptor).
pub fn answer_from(from: &str, r: &LayoutPaxosReply) -> Result<Answer, AcceptorError> {
    let reply = reply_from(from, r)?;
    let lineage = match (&reply, &r.layout) {
        (Reply::Decided { .. } | Reply::WrongBase { .. }, Some(msg)) => Lineage::from_message(msg),
        _ => Lineage::default(),
    };
    Ok(Answer { reply, lineage })
}

/// The reply acceptor `from` sent.
pub fn reply_from(from: &str, r: &LayoutPaxosReply) -> Result<Reply<Layout>, AcceptorError> {
    Ok(match r.kind() {
        Kind::Promise => Reply::Promise {
            ballot: ballot_from(r.ballot.as_ref())?,
            accepted: match &r.accepted {
                None => None,
                Some(b) => Some((ballot_from(Some(b))?, layout_from(from, r.layout.as_ref())?)),
            },
        },
        Kind::Accepted => Reply::Accepted {
            ballot: ballot_from(r.ballot.as_ref())?,
        },
        Kind::Rejected => Reply::Rejected {
            ballot: ballot_from(r.ballot.as_ref())?,
            promised: ballot_from(r.promised.as_ref())?,
        },
        Kind::Decided => Reply::Decided {
            value: layout_from(from, r.layout.as_ref())?,
        },
        Kind::WrongBase => Reply::WrongBase {
            ballot: ballot_from(r.ballot.as_ref())?,
            installed: layout_from(from, r.layout.as_ref())?,
        },
        Kind::Behind => Reply::Behind {
            ballot: ballot_from(r.ballot.as_ref())?,
        },
        Kind::Unspecified => return Err(AcceptorError::Decode("a reply of no kind".into())),
    })
}
