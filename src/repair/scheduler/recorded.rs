//! The recorded pass: repairing the ranges other modules recorded for
//! anti-entropy (a write that may have been applied, a hint over its
//! bound), grouped by vnode range, and deleting their records once every
//! session of the range succeeded in the view the pass pinned.
//!
//! Must not: repair a recorded range unless every replica is up, or delete
//! records in a view other than the pinned one.

use super::{Repair, Running, Summary};
use crate::engine::CallSite;
use crate::repair::error::RepairError;
use crate::repair::plan::{coalesce, sweep_plan, RangePlan, RangeTable, Recorded};
use crate::repair::records;
use crate::topology::NodeIdx;
use std::collections::BTreeMap;
use std::time::Instant;

/// The records of a pass by keyspace and vnode range.
#[derive(Default)]
struct Grouped {
    /// keyspace → vnode range index → (plan, records).
    groups: BTreeMap<String, BTreeMap<usize, (RangePlan, Vec<Recorded>)>>,
    /// Each keyspace's ranges; `None` for a keyspace the ring does not know.
    tables: BTreeMap<String, Option<RangeTable>>,
    /// Records of unknown keyspaces.
    orphans: Vec<Recorded>,
}

impl Repair {
    /// Repairs the recorded ranges only.
    pub async fn recorded(&self) -> Result<Summary, RepairError> {
        let _pass = self.begin_pass().await?;
        let _running = Running::start();
        let started = Instant::now();
        let mut s = self.recorded_pass(None).await?;
        s.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(s)
    }

    /// Reads the records (of `keyspace`, or all), groups them by vnode
    /// range, repairs each range with every replica and deletes the records
    /// of the ranges that completed.
    #[tracing::instrument(name = "repair.recorded", skip(self))]
    pub(super) async fn recorded_pass(
        &self,
        keyspace: Option<&str>,
    ) -> Result<Summary, RepairError> {
        let records = self.load_records().await?;
        let total = records.len() as u64;
        metrics::gauge!("geokv_repair_pending").set(total as f64);
        let mut summary = Summary::default();
        let Grouped {
            mut groups,
            tables,
            orphans,
        } = self.group(records, keyspace);
        let mut cleared = 0u64;
        if !orphans.is_empty() && !self.io.view_changed() {
            // The keyspace left the topology: there is nothing to repair.
            tracing::warn!(
                count = orphans.len(),
                "dropping repair records of unknown keyspaces"
            );
            cleared += self.delete_records(&orphans).await? as u64;
        }
        let mut work: Vec<(String, RangePlan, Vec<Recorded>)> = Vec::new();
        for (ks, table) in &tables {
            let Some(table) = table else { continue };
            let sweep = sweep_plan(&self.io.ring(), ks, self.io.me())?;
            let mine = groups
                .remove(ks)
                .unwrap_or_default()
                .into_values()
                .collect();
            work.extend(
                coalesce(table, &sweep, mine)
                    .into_iter()
                    .map(|(plan, recs)| (ks.clone(), plan, recs)),
            );
        }
        for (ks, plan, recs) in work {
            let mut targets: Vec<NodeIdx> = recs
                .iter()
                .flat_map(|r| r.targets(&self.io.ring(), &plan.replicas))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            let (s, complete) = self.repair_range(&ks, &plan, &targets, true, None).await;
            summary.add(s);
            // Repaired in a view that is no longer the cluster's: the
            // replicas may have moved, so the records stay for the next pass.
            if complete && !self.io.view_changed() {
                summary.recorded_cleared += recs.len() as u64;
                cleared += self.delete_records(&recs).await? as u64;
            }
        }
        summary.recorded_pending = total.saturating_sub(cleared);
        metrics::gauge!("geokv_repair_pending").set(summary.recorded_pending as f64);
        Ok(summary)
    }

    /// The records (of `keyspace`, or all; at most `max_recorded_per_pass`)
    /// grouped by keyspace and vnode range of the pinned ring.
    fn group(&self, records: Vec<Recorded>, keyspace: Option<&str>) -> Grouped {
        let mut g = Grouped::default();
        for r in records.into_iter().take(self.config.max_recorded_per_pass) {
            if keyspace.is_some_and(|k| k != r.keyspace) {
                continue;
            }
            let table = (g.tables)
                .entry(r.keyspace.clone())
                .or_insert_with(|| RangeTable::new(&self.io.ring(), &r.keyspace).ok());
            match table.as_ref().and_then(|t| t.find(r.token)) {
                Some((i, plan)) => (g.groups)
                    .entry(r.keyspace.clone())
                    .or_default()
                    .entry(i)
                    .or_insert_with(|| (plan.clone(), Vec::new()))
                    .1
                    .push(r),
                None => g.orphans.push(r),
            }
        }
        g
    }

    async fn load_records(&self) -> Result<Vec<Recorded>, RepairError> {
        let engine = self.records.clone();
        CallSite::BlockingPool
            .run(move || records::load_records(&*engine))
            .await
            .map_err(|e| RepairError::Task(e.to_string()))?
    }

    /// Deletes `recs` if the pinned view is still in force, and while it
    /// is (a view installed meanwhile waits for the deletion to commit):
    /// the check and the delete are one step, so a view installed after
    /// `SessionIo::view_changed` answered cannot slip in before the
    /// delete. 0 (and the records kept) when another view is in force.
    async fn delete_records(&self, recs: &[Recorded]) -> Result<usize, RepairError> {
        let engine = self.records.clone();
        let recs = recs.to_vec();
        let Some(pinned) = self.io.pinned.read().clone() else {
            return Ok(0);
        };
        let cluster = self.io.cluster.clone();
        CallSite::BlockingPool
            .run(move || {
                let batch = records::deletes(&recs);
                let ok = || Ok::<(), RepairError>(());
                match cluster.write_exclusive(&pinned, &*engine, &batch, ok) {
                    Some(Ok(())) => Ok(recs.len()),
                    Some(Err(e)) => Err(e),
                    None => Ok(0),
                }
            })
            .await
            .map_err(|e| RepairError::Task(e.to_string()))?
    }
}
