//! The drain scenario's metric scrape: every dc1 node's backlog towards
//! dc2, read from its admin port's Prometheus exposition, and the wait
//! until it is empty (parsed by [`geokv::admin::exposition`]). Must not
//! drive the scenario (`drain.rs` does).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use geokv::admin::exposition;

use super::super::BenchError;
use super::METRIC;
use geokv::local_cluster::{admin_request, LocalCluster};

/// Polls every 100 ms until every dc1 node's backlog to dc2 is 0; `sample`
/// sees (time since the call, total backlog) at each poll.
pub(super) async fn wait_empty(
    cluster: &LocalCluster,
    limit: Duration,
    mut sample: impl FnMut(Duration, u64),
) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        let total: u64 = backlogs(cluster).await?.values().sum();
        sample(started.elapsed(), total);
        if total == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(BenchError::DrainTimeout {
                remaining: total,
                waited: limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each dc1 node's backlog towards dc2 (0 when the gauge is not published).
pub(super) async fn backlogs(cluster: &LocalCluster) -> Result<BTreeMap<String, u64>, BenchError> {
    let mut out = BTreeMap::new();
    for n in cluster.nodes.iter().filter(|n| n.dc == "dc1") {
        let text = admin_request(n.admin_address, "GET", "/metrics").await?;
        let backlog = [("dest", "dc:dc2"), ("lane", "backlog")];
        let v = exposition::sum(&text, METRIC, &backlog).unwrap_or(0.0);
        out.insert(n.id.clone(), v.max(0.0) as u64);
    }
    Ok(out)
}
