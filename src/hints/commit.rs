//! [`Commit`]: what is committed atomically with what when a write is
//! minted. The coordinating replica's update of the key
//! ([`Replica::update`]), the record's entry in the stream of every remote
//! datacenter (the urgent lane for those the level awaits, with a
//! [`StreamWait`] each) and an intent for each other local replica
//! ([`intent`]) go into one RocksDB batch; should it not commit, their
//! counts and waits are taken back; once it has, the deliverers are woken.
//! Urgent entries appended after the write (a retry on a newer view, the
//! remote fallback) are written on their own, here too.
//!
//! Must not: choose where a write goes (the coordinator fills [`Along`]),
//! or send anything.

use super::intent;
use super::queue::{Dest, Lane};
use super::waiters::StreamWait;
use super::{new_entry, now_ms, Appended, Hints};
use crate::engine::WriteBatch;
use crate::error::GeokvError;
use crate::mutation::{awaits, Along, Awaited, Minted, Mutation};
use crate::replica::Replica;
use crate::version::SiblingSet;
use std::sync::Arc;

/// The owner of a write's atomic batch on its coordinating replica.
#[derive(Clone)]
pub struct Commit {
    replica: Arc<Replica>,
    hints: Arc<Hints>,
}

impl Commit {
    /// Writes go to `replica`, their queue entries to `hints` (one engine).
    pub fn new(replica: Arc<Replica>, hints: Arc<Hints>) -> Self {
        Commit { replica, hints }
    }

    /// Mints `m` on this replica: the update and everything `along` names,
    /// in one atomic batch (where the replica's call site says). Returns
    /// the minted write and what was appended with it (the waits of its
    /// urgent entries, the intents). The one place a write is minted.
    /// Refused before anything is written once this node has left and
    /// sealed its queues, or its engine refuses writes after a failed
    /// fsync ([`Hints::mint_pass`]).
    pub async fn mint(&self, m: &Mutation, along: Along) -> Result<(Minted, Appended), GeokvError> {
        let pass = self.hints.mint_pass().await?;
        let ts = now_ms();
        let (me, m) = (self.clone(), m.clone());
        let (minted, appended, along) = (self.replica)
            .blocking(move |r| {
                let _pass = pass;
                let mut appended = None;
                let res = r.update(&m, ts, |set, batch| {
                    appended = Some(me.append(&along, &m, set, batch)?);
                    Ok(())
                });
                match res {
                    Ok((set, dot)) => {
                        let appended = appended.unwrap_or_default();
                        Ok((Minted::new(m, set, dot), appended, along))
                    }
                    Err(e) => {
                        // The batch did not commit: its queue entries do not exist.
                        if let Some(a) = appended {
                            me.rollback(a);
                        }
                        Err(e)
                    }
                }
            })
            .await?;
        self.notify_appended(&along.remote_dcs, &along.wait_for, &appended.waits);
        Ok((minted, appended))
    }

    /// Everything added to the update's batch: the entry for every remote
    /// datacenter's stream and an intent for each other local replica, so
    /// the write reaches every replica even if this node dies right after.
    fn append(
        &self,
        along: &Along,
        m: &Mutation,
        set: &SiblingSet,
        batch: &mut WriteBatch,
    ) -> Result<Appended, GeokvError> {
        let (ks, key) = (m.keyspace.as_str(), &m.key[..]);
        let mut appended =
            self.stream_append(&along.remote_dcs, &along.wait_for, ks, key, set, batch)?;
        match intent::intend(&self.hints, &along.local, ks, key, set, batch) {
            Ok(i) => appended.intents = i,
            Err(e) => {
                self.rollback(appended);
                return Err(e);
            }
        }
        Ok(appended)
    }

    /// Appends `set` to the stream of every datacenter in `dcs`, inside
    /// `batch`. For the datacenters also in `wait_for` the entry goes to the
    /// urgent lane and a [`StreamWait`] is returned for it (none when the
    /// queue overflowed: the key was recorded for anti-entropy instead).
    /// Should `batch` not commit, hand the result to [`Commit::rollback`].
    pub fn stream_append(
        &self,
        dcs: &[String],
        wait_for: &[Awaited],
        keyspace: &str,
        key: &[u8],
        set: &SiblingSet,
        batch: &mut WriteBatch,
    ) -> Result<Appended, GeokvError> {
        let mut appended = Appended::default();
        if dcs.is_empty() {
            return Ok(appended);
        }
        let mut record = Vec::with_capacity(set.encoded_len());
        set.encode(&mut record);
        for dc in dcs {
            let dest = Dest::Dc(dc.clone());
            let awaited = wait_for.iter().find(|w| w.dc == *dc);
            let need = awaited.map(|w| w.need);
            let lane = if need.is_some() {
                Lane::Urgent
            } else {
                Lane::Backlog
            };
            // An urgent entry asks for at least one replica; 0 means all.
            let need_acks = need.map_or(0, |n| n.max(1));
            let mut entry = new_entry(keyspace, key, record.clone(), String::new(), need_acks);
            entry.coordinator_pending = awaited.and_then(|w| w.pending);
            if let Some((seq, bytes)) = self.hints.store.enqueue(&dest, lane, entry, batch) {
                appended.counted.push((dest, lane, bytes));
                if need.is_some() {
                    appended.waits.push(self.hints.waiters().register(dc, seq));
                }
            }
        }
        Ok(appended)
    }

    /// Takes back the backlog counts (and intents) of appends whose batch
    /// did not commit.
    pub fn rollback(&self, appended: Appended) {
        for (dest, lane, bytes) in appended.counted {
            self.hints.store.counts.sub(&dest, lane, 1, bytes);
        }
        intent::rollback(appended.intents);
    }

    /// The urgent entries of a write already minted, for the datacenters
    /// of `wait_for`, written at once on a blocking thread (a fan-out on a
    /// newer view, or the remote fallback of a count level). Refused once
    /// this node's queues are sealed ([`Hints::queue_pass`]: the entries
    /// would stay in a store nobody drains); the pass is held by the
    /// blocking write, so the seal waits for it and counts the entries.
    pub async fn append_urgent(
        &self,
        minted: &Minted,
        wait_for: &[Awaited],
    ) -> Result<Vec<StreamWait>, GeokvError> {
        let pass = self.hints.queue_pass().await?;
        let dcs: Vec<String> = wait_for.iter().map(|w| w.dc.clone()).collect();
        let (ks, key, set) = (minted.keyspace(), minted.key(), &minted.record);
        let mut batch = WriteBatch::new();
        let appended = self.stream_append(&dcs, wait_for, ks, key, set, &mut batch)?;
        if !batch.is_empty() {
            let written = (self.hints.store).blocking(move |s| {
                let _pass = pass;
                s.write(batch)
            });
            let written = written.await;
            if let Err(e) = written.and_then(|r| r.map_err(GeokvError::from)) {
                self.rollback(appended);
                return Err(e);
            }
            self.notify_appended(&dcs, wait_for, &appended.waits);
        }
        Ok(appended.waits)
    }

    /// Wakes the delivery of what [`Commit::stream_append`] appended with
    /// the same `dcs` and `wait_for`: the urgent lane of the awaited
    /// datacenters (sent at once), the backlog lane of the others (sent
    /// after a linger).
    ///
    /// Call it once the append is committed: it also tells each urgent
    /// lane the lowest sequence number just appended, so an entry committed
    /// after a later one is loaded at once rather than at the next rescan.
    pub fn notify_appended(&self, dcs: &[String], wait_for: &[Awaited], waits: &[StreamWait]) {
        for w in waits {
            self.hints.rewind_to(&w.dc, w.seq);
        }
        for dc in dcs {
            let lane = if awaits(wait_for, dc) {
                Lane::Urgent
            } else {
                Lane::Backlog
            };
            self.hints.notify_queue(&Dest::Dc(dc.clone()), lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Limits};
    use crate::hints::HintsConfig;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext};
    use crate::view::Cluster;

    fn commit(engine: Arc<dyn Engine>) -> Commit {
        let cluster = Cluster::fixed(&Topology::dev(), "dc1-n1");
        let me = cluster.current().me().expect("dev topology").clone();
        let hints = Hints::open(engine.clone(), cluster, me, HintsConfig::default());
        let replica = Replica::new(engine, "dc1-n1", 8);
        Commit::new(Arc::new(replica), Arc::new(hints.expect("open")))
    }

    fn record() -> SiblingSet {
        let mut set = SiblingSet::new();
        set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
            .expect("one sibling");
        set
    }

    #[test]
    fn counts_follow_what_commits_and_survive_reopen() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let c = commit(engine.clone());
        let (dc2, dcs) = (Dest::Dc("dc2".into()), vec!["dc2".to_string()]);
        // Committed: one backlog entry and one urgent entry, with a wait.
        let mut batch = WriteBatch::new();
        let a = c.stream_append(&dcs, &[], "default", b"k1", &record(), &mut batch);
        assert!(a.expect("append").waits.is_empty());
        let awaited = vec![Awaited {
            dc: "dc2".to_string(),
            need: 2,
            pending: None,
        }];
        let b = c.stream_append(&dcs, &awaited, "default", b"k2", &record(), &mut batch);
        let b = b.expect("append");
        assert_eq!(b.waits.len(), 1, "an awaited datacenter gets a wait");
        engine.write(batch).expect("commit");
        assert_eq!(c.hints.backlog_entries(&dc2), 2);
        // Not committed: rolled back, the counts do not move.
        let mut lost = WriteBatch::new();
        let d = c.stream_append(&dcs, &awaited, "default", b"k3", &record(), &mut lost);
        c.rollback(d.expect("append"));
        assert_eq!(c.hints.backlog_entries(&dc2), 2);
        assert_eq!(c.hints.waiters().len(), 1, "the rolled-back wait is gone");
        // Reopening rebuilds the same counts from disk, lanes included.
        drop(b);
        let again = commit(engine);
        assert_eq!(again.hints.backlog_entries(&dc2), 2);
    }

    /// A minted write's batch holds the update, the stream entry of every
    /// remote datacenter and an intent per other local replica; a write
    /// refused by the replica leaves no count behind.
    #[tokio::test]
    async fn a_write_commits_with_its_stream_entries_and_intents() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
        let c = commit(engine);
        let view = c.hints.cluster.current();
        let peer = view.node("dc1-n2").expect("dev topology").idx;
        let along = Along {
            local: vec![(peer, "dc1-n2".to_string())],
            remote_dcs: vec!["dc2".to_string()],
            wait_for: vec![Awaited {
                dc: "dc2".into(),
                need: 1,
                pending: None,
            }],
        };
        let m = Mutation {
            keyspace: "default".into(),
            key: "k".into(),
            value: Some("v".into()),
            context: CausalContext::new(),
        };
        let (minted, appended) = c.mint(&m, along.clone()).await.expect("mint");
        assert_eq!(minted.record.values().count(), 1);
        assert_eq!((appended.waits.len(), appended.intents.len()), (1, 1));
        let stored = c.replica.read("default", b"k").expect("read");
        assert_eq!(stored.as_ref(), Some(&minted.record));
        assert_eq!(c.hints.backlog_entries(&Dest::Dc("dc2".into())), 1);
        assert_eq!(c.hints.backlog_entries(&Dest::Node("dc1-n2".into())), 1);
        drop(appended);
        c.replica
            .close(crate::replica::gate::CLOSE_WITHIN)
            .expect("closed");
        assert!(c.mint(&m, along).await.is_err(), "a closed replica refuses");
        assert_eq!(c.hints.backlog_entries(&Dest::Dc("dc2".into())), 1);
        assert_eq!(c.hints.backlog_entries(&Dest::Node("dc1-n2".into())), 1);
    }
}
