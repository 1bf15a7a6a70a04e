//! One fan-out of a minted write on one view (`write.rs` step 4 and 5):
//! our datacenter's targets directly (each replica write carrying the
//! view's layout version, digest and targets, for `stale_view`), the remote
//! datacenters through their streams, gathered to the level, with the
//! remote fallback of count levels. Reports the first replica that refused
//! the write as planned on an older view, for `write.rs` to retry on the
//! newer one. The replica calls are polled by the coordinator's own task
//! while it gathers ([`InFlight`]), not spawned one task each; what is still
//! in flight once the gather is done finishes in one background task. Must
//! not mint a write (`update_here` does, once).

use super::replica_call::ReplicaCall;
use super::{Fanout, Round, Shared, StaleSlot};
use crate::coordinator::consistency::{AckCounts, OpKind, Requirement};
use crate::coordinator::gather::{Answer, Gather, Step, Wait};
use crate::coordinator::Coordinator;
use crate::error::GeokvError;
use crate::hints::intent::Intent;
use crate::hints::waiters::{StreamFailure, StreamWait};
use crate::hints::{Appended, Awaited};
use crate::mutation::Minted;
use crate::topology::NodeInfo;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The answers of one fan-out's replicas and streams, as they come.
type Answers = mpsc::Sender<Answer<()>>;

/// The replica calls of one fan-out (issue 14: no task per remote call).
/// [`InFlight::drive`] polls them in the caller's task while it waits for
/// something else (the gather); whatever is still in flight when this is
/// dropped (the gather done, or the request given up) finishes in one
/// spawned task, so every call still settles its intent or stores its hint.
#[derive(Default)]
struct InFlight(FuturesUnordered<BoxFuture<'static, ()>>);

impl InFlight {
    /// Awaits `f`, polling the calls in flight meanwhile.
    async fn drive<T>(&mut self, f: impl Future<Output = T>) -> T {
        crate::coordinator::gather::drive(&mut self.0, f).await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let rest = std::mem::take(&mut self.0);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(rest.for_each(|()| async {}));
        }
    }
}

/// The remote datacenters a write falls back to: their replicas per
/// datacenter, and the acknowledgements still needed from them.
struct Remote<'a> {
    sizes: &'a BTreeMap<String, u32>,
    dcs: &'a [String],
    need: u32,
}

impl Coordinator {
    /// One fan-out of a minted write on `round.view`: our datacenter's
    /// targets directly, the remote datacenters through their streams (the
    /// entries committed with the write on the first fan-out, `appended`;
    /// urgent ones appended now on a later one), gathered to `round.plan`'s
    /// level.
    /// Returns `(acks, hints)` or the failure (never "nothing applied": the
    /// write is minted, see `after_minting`), and the first replica that
    /// refused the write as planned on an older view, with its version.
    pub(super) async fn fan_out(
        &self,
        round: &Round<'_>,
        appended: Option<Appended>,
    ) -> (Result<(u32, u32), GeokvError>, Option<(NodeInfo, u64)>) {
        let Round {
            req,
            to,
            minted,
            deadline,
            ..
        } = *round;
        let stale = StaleSlot::default();
        let mut calls = InFlight::default();
        let res = async {
            let (waits, intents) = self.stream_waits(to, minted, appended).await?;
            let (tx, rx) = mpsc::channel::<Answer<()>>(
                (to.sizes.values().sum::<u32>() as usize).max(1) + to.remote_dcs.len(),
            );
            let sent = self.send_local(round, intents, &stale, &mut calls, &tx);
            let (mut pending, acks) = sent.await?;
            for wait in waits {
                let settles = to.sizes.get(&wait.dc).copied().unwrap_or(0);
                *pending.entry(wait.dc.clone()).or_default() += settles;
                spawn_stream_wait(wait, settles, deadline, tx.clone());
            }
            let timeout_ms = req.timeout.as_millis() as u64;
            let requirement = round.plan.requirement.clone();
            let gather = Gather::new(
                Wait {
                    level: req.level,
                    req: requirement,
                    op: OpKind::Write,
                    deadline,
                    timeout_ms,
                },
                rx,
                pending,
                acks,
            );
            self.gather_write(round, gather, &tx, &mut calls).await
        }
        .await;
        let refused = stale.lock().take();
        (
            res.map_err(|e| super::after_minting(&self.me.id, e)),
            refused,
        )
    }

    /// The stream waits of the datacenters the level awaits, and the hints
    /// committed with the update (see `hints::intent`): those of the first
    /// fan-out (`appended`), or urgent entries appended now on a later one.
    async fn stream_waits(
        &self,
        to: &Fanout,
        minted: &Minted,
        appended: Option<Appended>,
    ) -> Result<(Vec<StreamWait>, Vec<Intent>), GeokvError> {
        let wait_for = &to.wait_for;
        Ok(match appended {
            Some(a) => (a.waits, a.intents),
            None if wait_for.is_empty() => (Vec::new(), Vec::new()),
            None => {
                // An error turns "maybe" in `fan_out` (`after_minting`).
                let waits = (self.commit).append_urgent(minted, wait_for).await?;
                (waits, Vec::new())
            }
        })
    }

    /// Sends the record to our datacenter's targets (a hint for each one
    /// down) and counts this node's own acknowledgement. Returns the
    /// answers still expected per datacenter, and the acks so far.
    async fn send_local(
        &self,
        round: &Round<'_>,
        mut intents: Vec<Intent>,
        stale: &StaleSlot,
        calls: &mut InFlight,
        tx: &Answers,
    ) -> Result<(BTreeMap<String, u32>, AckCounts), GeokvError> {
        let Round {
            view,
            to,
            minted,
            deadline,
            ..
        } = *round;
        let mut acks = AckCounts::default();
        if to.local.contains(&view.me_idx()) {
            *acks.per_dc.entry(self.me.dc.clone()).or_default() += 1;
        }
        // One copy of the record and plan for every replica call of this
        // fan-out, made at the first call (issue 14).
        let mut shared: Option<Arc<Shared>> = None;
        let mut pending: BTreeMap<String, u32> = BTreeMap::new();
        for &n in &to.local {
            if n == view.me_idx() {
                continue;
            }
            let peer = view.ring.node(n);
            // A hint committed with the update (see `hints::intent`).
            let intent = intents
                .iter()
                .position(|i| i.target == n)
                .map(|i| intents.swap_remove(i));
            if !self.takes_writes(view, n) {
                // Down or not ready: stored, or recorded for anti-entropy
                // when over the bound: either way the write reaches it
                // later; not an ack.
                match intent {
                    Some(i) => i.failed(),
                    None => {
                        (self.hints)
                            .hint_node(&peer.id, minted.keyspace(), minted.key(), &minted.record)
                            .await?
                    }
                }
                acks.hints += 1;
                continue;
            }
            *pending.entry(self.me.dc.clone()).or_default() += 1;
            let shared = shared.get_or_insert_with(|| Shared::new(view, to, minted, &self.me));
            let call = ReplicaCall {
                n,
                peer,
                intent,
                shared: shared.clone(),
                stale: stale.clone(),
            };
            calls.0.push(self.replica_write(call, deadline, tx.clone()));
        }
        Ok((pending, acks))
    }

    /// Gathers to the level; step 5: a count level met locally so far may
    /// still need the remote datacenters (not yet asked).
    async fn gather_write(
        &self,
        round: &Round<'_>,
        mut gather: Gather<()>,
        tx: &Answers,
        calls: &mut InFlight,
    ) -> Result<(u32, u32), GeokvError> {
        let Round {
            req,
            plan,
            to,
            minted,
            deadline,
            ..
        } = *round;
        let requirement = &plan.requirement;
        let fallback = matches!(requirement, Requirement::Total { .. })
            && to.wait_for.is_empty()
            && !to.remote_dcs.is_empty();
        let until = if fallback {
            Instant::now() + req.timeout / 2
        } else {
            deadline
        };
        let mut step = calls.drive(gather.run(until)).await?;
        if step == Step::Short && fallback {
            // Only what is still missing: one slow remote replica must not
            // hold the write up (issue 9, defect 13 on this path).
            let need = match requirement {
                Requirement::Total { count } => count.saturating_sub(gather.received()).max(1),
                _ => 0,
            };
            let remote = Remote {
                sizes: &to.sizes,
                dcs: &to.remote_dcs,
                need,
            };
            self.fall_back_remote(remote, minted, deadline, tx, &mut gather)
                .await?;
            step = calls.drive(gather.run(deadline)).await?;
        }
        if step == Step::Short {
            return Err(gather.failed());
        }
        let got = gather.into_gathered();
        Ok((got.acks.per_dc.values().sum(), got.acks.hints))
    }

    /// Step 5: the record goes to the urgent lane of every remote
    /// datacenter (the backlog entry committed with the write stays: a
    /// second delivery merges to the same state) and the gather waits for
    /// their acknowledgements too.
    async fn fall_back_remote(
        &self,
        remote: Remote<'_>,
        minted: &Minted,
        deadline: Instant,
        tx: &mpsc::Sender<Answer<()>>,
        gather: &mut Gather<()>,
    ) -> Result<(), GeokvError> {
        metrics::counter!("geokv_remote_fallbacks_total", "op" => "write").increment(1);
        let Remote { sizes, dcs, need } = remote;
        let all: Vec<Awaited> = dcs
            .iter()
            .map(|dc| Awaited {
                dc: dc.clone(),
                // The receiver caps it at its datacenter's replicas.
                need,
                pending: None,
            })
            .collect();
        // An error turns "maybe" in `fan_out` (`after_minting`).
        let waits = (self.commit).append_urgent(minted, &all).await?;
        for wait in waits {
            let settles = sizes.get(&wait.dc).copied().unwrap_or(0);
            gather.expect(&wait.dc, settles);
            spawn_stream_wait(wait, settles, deadline, tx.clone());
        }
        Ok(())
    }
}

/// Waits on one datacenter's acknowledgement of an urgent stream entry and
/// hands it to the gather. Past the deadline nobody gathers: the wait is
/// dropped (the entry stays queued and is delivered anyway), a second later,
/// so the gather reports its own timeout first.
fn spawn_stream_wait(
    wait: StreamWait,
    settles: u32,
    deadline: Instant,
    tx: mpsc::Sender<Answer<()>>,
) {
    tokio::spawn(async move {
        let dc = wait.dc.clone();
        let drop_at = deadline + std::time::Duration::from_secs(1);
        let result = tokio::time::timeout_at(drop_at, wait.outcome())
            .await
            .unwrap_or(Err(StreamFailure::NoAckByDeadline));
        let _ = tx
            .send(Answer::Stream {
                dc,
                settles,
                result,
            })
            .await;
    });
}
