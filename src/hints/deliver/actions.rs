//! The I/O of one pump's actions: reading a page and deleting what was
//! acknowledged (through the store, on blocking threads), sending a batch
//! over the link (opening the stream to the target the scheduler picks,
//! and first copying node hints whose range is moving, see `moving`; a
//! hint whose copy fails is left out of the batch and acknowledged to the
//! scheduler as placed elsewhere, so it is parked alone, `schedule::park`).
//! An adopter's acknowledgement of an urgent entry tells its waiting
//! client that the entry was handed over, not a count of zero replicas.
//!
//! Must not: decide what to load, send or delete, or when (the
//! scheduler's actions say).

use super::Pump;
use crate::hints::adopt::hand_over;
use crate::hints::link::{Link, Wire};
use crate::hints::now_ms;
use crate::hints::queue::{Dest, Lane};
use crate::hints::schedule::{Action, Event, Load, Stall};
use crate::hints::store::Loaded;
use crate::hints::waiters::{StreamFailure, StreamOutcome};
use crate::proto::v1::internode::{EntryAck, StreamAck, StreamBatch, StreamEntry};
use tokio::time::Instant;

impl<L: Link> Pump<L> {
    /// An action doing I/O (engine or stream): the scheduler's next
    /// actions, or the stall it ran into.
    pub(super) async fn perform_io(&mut self, action: Action) -> Result<Vec<Action>, Stall> {
        match action {
            Action::Load(load) => Ok(self.load(load).await),
            Action::Expire(old) => {
                let d = self.dest.clone();
                let expired = (self.hints.store)
                    .blocking(move |s| s.remove(&d, Lane::Backlog, &[], &old))
                    .await;
                match expired {
                    Ok(Ok(())) => Ok(Vec::new()),
                    // Back off, as for a failed Remove: the same expired
                    // rows would otherwise be reloaded in a tight loop.
                    _ => Err(Stall::Failed("could not expire old hints".into())),
                }
            }
            Action::Send {
                batch_id,
                lane,
                entries,
            } => match self.send(batch_id, lane, entries).await? {
                None => Ok(Vec::new()),
                // Nothing sent: every entry parked (see `patch`).
                Some(ack) => Ok(self.sched.on(Event::Acked {
                    ack,
                    now: Instant::now(),
                })),
            },
            Action::Remove {
                lane,
                done,
                refused,
            } => self.remove(lane, done, refused).await.map(|()| Vec::new()),
            other => Ok(self.perform_local(other)),
        }
    }

    /// Reads a page on a blocking thread (nothing, should that fail) and
    /// hands it to the scheduler.
    pub(super) async fn load(&mut self, load: Load) -> Vec<Action> {
        let (dest, l) = (self.dest.clone(), load.clone());
        let page = (self.hints.store)
            .blocking(move |s| s.load_page(&dest, l.lane, l.from, l.skip, l.limit))
            .await;
        let mut page = match page {
            Ok(Ok(page)) => page,
            _ => Default::default(),
        };
        if matches!(self.dest, Dest::Node(_)) && !page.entries.is_empty() {
            // Hints for keys the node no longer replicates go elsewhere.
            page =
                super::super::orphans::sift(&self.hints, &self.me.id, &self.dest, load.lane, page)
                    .await;
        }
        self.sched.on(Event::Loaded {
            load,
            page,
            now: Instant::now(),
            now_ms: now_ms(),
        })
    }

    #[tracing::instrument(name = "hints.send_batch", skip_all,
        fields(dest = %self.label, lane = lane.label(), entries = entries.len()))]
    pub(super) async fn send(
        &mut self,
        batch_id: u64,
        lane: Lane,
        entries: Vec<StreamEntry>,
    ) -> Result<Option<StreamAck>, Stall> {
        let mut entries = entries;
        if let Dest::Node(target) = &self.dest {
            let target = target.clone();
            let unforked = self.fork(&target, &entries).await;
            if !unforked.is_empty() {
                // Left out of this batch, parked like an entry placed
                // elsewhere (its acknowledgement says so, see `patch`):
                // the rest of the queue goes on.
                entries.retain(|e| !unforked.contains(&e.seq));
                self.unforked.insert(batch_id, unforked);
                if entries.is_empty() {
                    let mut ack = StreamAck {
                        batch_id,
                        entries: Vec::new(),
                    };
                    self.patch(&mut ack);
                    return Ok(Some(ack));
                }
            }
        }
        if self.stream.is_none() {
            let live = self.link.live(&self.dest);
            let adopters = self.link.adopters(&self.dest);
            let stalls = self.sched.stalls_in_a_row();
            let hand = hand_over(!adopters.is_empty(), !live.is_empty(), stalls);
            let (target, adopting) = match self.sched.pick_target(&live) {
                Some(t) if !hand => (t, false),
                // A node that has left hands the queue to one of its
                // datacenter rather than wait for the destination.
                // Each reopen asks the next one: one that keeps failing
                // (refusing, stalled, too old to adopt) holds nothing up.
                _ => {
                    let n = self.adopters_tried;
                    let next = adopters.get(n % adopters.len().max(1));
                    self.adopters_tried = n.wrapping_add(1);
                    (next.cloned().ok_or(Stall::NoTarget)?, true)
                }
            };
            self.stream = Some(self.link.open(&target, adopting).await?);
            self.adopting = adopting;
        }
        // Urgent entries nobody waits on any more (their clients timed out,
        // e.g. during an outage) are applied at the receiver's replay pace.
        let waiters = self.hints.waiters();
        let urgent = lane == Lane::Urgent && entries.iter().any(|e| waiters.contains(e.seq));
        let batch = StreamBatch {
            source_node: self.me.id.clone(),
            source_dc: self.me.dc.clone(),
            entries,
            batch_id,
            urgent,
            adopt_for: if self.adopting {
                self.label.clone()
            } else {
                String::new()
            },
        };
        let stream = self.stream.as_mut().expect("opened above");
        stream.send(batch).await?;
        Ok(None)
    }

    /// Adds to `ack` the entries of its batch that were left out because
    /// copying them to a pending replica failed: acknowledged as placed
    /// elsewhere in this node's own view, so the scheduler parks them for
    /// a while (`schedule::park`) instead of stalling the queue.
    pub(super) fn patch(&mut self, ack: &mut StreamAck) {
        let Some(seqs) = self.unforked.remove(&ack.batch_id) else {
            return;
        };
        let view = self.link.view_version();
        ack.entries.extend(seqs.into_iter().map(|seq| EntryAck {
            seq,
            elsewhere_layout: Some(view),
            ..Default::default()
        }));
    }

    /// The outcome a waiting client gets for an urgent entry: an adopter's
    /// acknowledgement (this node has left, see `adopt`) means the entry
    /// is queued there, applied by nobody yet, so the client learns that
    /// rather than a count of zero replicas.
    pub(super) fn handed_over(&self, outcome: StreamOutcome) -> StreamOutcome {
        match outcome {
            Ok(_) if self.adopting => {
                let to = self.stream.as_ref().map_or("an adopter", |s| s.to());
                Err(StreamFailure::HandedOver {
                    to: to.to_string(),
                    dest: self.dest.name().to_string(),
                })
            }
            o => o,
        }
    }

    /// Copies each hint for `target` whose key's range is moving to the
    /// range's pending replicas (a durable hint each, or a merge here when
    /// this node is one) before it is sent, so the hint cannot leave the
    /// queue without them (see `moving`).
    ///
    /// The sequence numbers of the entries a copy failed for (a pending
    /// replica's queue could not be written, or this node, a pending
    /// replica itself, refused the merge): each logged at warn, to be
    /// left out of the batch and tried again later.
    async fn fork(&mut self, target: &str, entries: &[StreamEntry]) -> Vec<u64> {
        let mut failed = Vec::new();
        'entries: for e in entries {
            if self.forked.contains(&e.seq) {
                continue;
            }
            let also = self.link.also_to(target, &e.keyspace, &e.key);
            if also.is_empty() {
                continue;
            }
            let Ok(set) = crate::version::SiblingSet::decode(&e.record) else {
                continue;
            };
            let decided = crate::hints::moving::Decided {
                version: self.link.view_version(),
                digest: Vec::new(),
                targets: also.iter().cloned().chain([target.to_string()]).collect(),
                // A client write's copy for a pending replica.
                repair: false,
            };
            for n in also {
                let copied =
                    crate::hints::moving::copy(&self.hints, &self.me.id, &n, e, &set, &decided);
                if let Err(why) = copied.await {
                    if self.fork_warned.warn_now() {
                        tracing::warn!(dest = %self.label, seq = e.seq, pending = %n, error = %why,
                            "could not copy a hint to a pending replica; parking it (repeats at debug for 30 s)");
                    } else {
                        tracing::debug!(dest = %self.label, seq = e.seq, pending = %n, error = %why,
                            "could not copy a hint to a pending replica; parking it");
                    }
                    failed.push(e.seq);
                    continue 'entries;
                }
                metrics::counter!("geokv_hints_copied_to_pending_total").increment(1);
            }
            if self.forked.len() >= 100_000 {
                self.forked.clear();
            }
            self.forked.insert(e.seq);
        }
        failed
    }

    /// Deletes what is durable at the destination and records (then
    /// deletes) what it refused, on a blocking thread.
    pub(super) async fn remove(
        &mut self,
        lane: Lane,
        done: Vec<Loaded>,
        refused: Vec<Loaded>,
    ) -> Result<(), Stall> {
        let label = self.label.clone();
        if !refused.is_empty() {
            metrics::counter!("geokv_stream_refused_total", "dest" => label.clone())
                .increment(refused.len() as u64);
        }
        metrics::counter!("geokv_hint_sent_total", "dest" => label, "lane" => lane.label())
            .increment(done.len() as u64);
        let dest = self.dest.clone();
        let removed = (self.hints.store)
            .blocking(move |s| s.remove(&dest, lane, &done, &refused))
            .await;
        match removed {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stall::Failed(
                "could not delete acknowledged entries".into(),
            )),
        }
    }
}
