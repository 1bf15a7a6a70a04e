//! The drain scenario's metric scrape: every dc1 node's backlog towards
//! dc2, read from its admin port's Prometheus exposition, and the wait
//! until it is empty. Must not drive the scenario (`drain.rs` does).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::cluster::{admin_request, LocalCluster};
use super::super::BenchError;
use super::METRIC;

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
        let v = gauge(&text, METRIC, &[("dest", "dc:dc2"), ("lane", "backlog")]).unwrap_or(0.0);
        out.insert(n.id.clone(), v.max(0.0) as u64);
    }
    Ok(out)
}

/// The value of the series `name{…}` whose labels include every pair of
/// `labels`, in Prometheus text exposition.
pub fn gauge(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{'))
        .filter_map(|rest| rest.split_once('}'))
        .find(|(have, _)| {
            let have: Vec<&str> = have[1..].split(',').map(str::trim).collect();
            wanted.iter().all(|w| have.contains(&w.as_str()))
        })
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_finds_the_labelled_series() {
        let text = "# TYPE geokv_hint_backlog_entries gauge\n\
                    geokv_hint_backlog_entries{dest=\"node:dc1-n2\"} 4\n\
                    geokv_hint_backlog_entries{dest=\"dc:dc2\"} 1234\n\
                    geokv_hint_backlog_entries_total{dest=\"dc:dc2\"} 9\n\
                    geokv_hint_backlog_bytes{dest=\"dc:dc2\"} 99\n";
        assert_eq!(gauge(text, METRIC, &[("dest", "dc:dc2")]), Some(1234.0));
        assert_eq!(gauge(text, METRIC, &[("dest", "node:dc1-n2")]), Some(4.0));
        assert_eq!(gauge(text, METRIC, &[("dest", "dc:dc3")]), None);
        let multi = "geokv_hint_backlog_entries{dest=\"dc:dc2\",lane=\"urgent\"} 1\n\
                     geokv_hint_backlog_entries{dest=\"dc:dc2\",lane=\"backlog\"} 7\n";
        let backlog = [("dest", "dc:dc2"), ("lane", "backlog")];
        assert_eq!(gauge(multi, METRIC, &backlog), Some(7.0));
        assert_eq!(gauge(multi, METRIC, &[("lane", "urgent")]), Some(1.0));
    }
}
