//! The node's Prometheus recorder and its histogram buckets: seconds for
//! latencies (every histogram by default), counts where a histogram
//! measures a size (`geokv_internode_batch_entries` and
//! `geokv_internode_read_batch_entries`: entries per batch).
//! Must not: install the recorder (`install_metrics` does, once).

use crate::transport::batch::Limits;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// Latency buckets, in seconds: 200 µs to 5 s.
const SECONDS: [f64; 14] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Entries per `ReplicaBatch` or `ReplicaReadBatch` call: powers of two
/// from 1 to a batch's most ([`Limits::max_entries`]), which is the last.
fn batch_entries() -> Vec<f64> {
    let most = Limits::default().max_entries.max(1);
    let powers = std::iter::successors(Some(1usize), |n| n.checked_mul(2));
    (powers.take_while(|n| *n < most))
        .chain([most])
        .map(|n| n as f64)
        .collect()
}

/// The recorder every node installs.
pub(super) fn recorder() -> PrometheusRecorder {
    let batch = Matcher::Suffix("_batch_entries".into());
    PrometheusBuilder::new()
        .set_buckets(&SECONDS)
        .and_then(|b| b.set_buckets_for_metric(batch, &batch_entries()))
        .expect("static buckets are valid")
        .build_recorder()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buckets end at a batch's most, whatever it is.
    #[test]
    fn the_batch_buckets_end_at_a_batchs_most() {
        let b = batch_entries();
        assert_eq!(b.first(), Some(&1.0));
        assert_eq!(b.last(), Some(&(Limits::default().max_entries as f64)));
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
    }

    /// The count of `family`'s bucket `le` in `text`.
    fn bucket(text: &str, family: &str, le: &str) -> Option<u64> {
        let head = format!("{family}_bucket{{le=\"{le}\"}} ");
        let line = text.lines().find_map(|l| l.strip_prefix(head.as_str()))?;
        line.trim().parse().ok()
    }

    /// Batches of 1, 3 and 64 entries land in the buckets 1, 4 and 64 of
    /// 1, 2, 4, …, 64 (with seconds buckets every batch of two or more
    /// was in +Inf only), a read batch of 5 in 8; latencies keep the
    /// seconds buckets.
    #[test]
    fn batch_sizes_are_counted_in_entry_buckets_and_latencies_in_seconds() {
        let rec = recorder();
        metrics::with_local_recorder(&rec, || {
            for n in [1.0, 3.0, 64.0] {
                metrics::histogram!("geokv_internode_batch_entries").record(n);
            }
            metrics::histogram!("geokv_internode_read_batch_entries").record(5.0);
            metrics::histogram!("geokv_internode_call_seconds").record(0.003);
        });
        let text = rec.handle().render();
        let batch = |le| bucket(&text, "geokv_internode_batch_entries", le);
        let les = ["1", "2", "4", "8", "16", "32", "64", "+Inf"];
        let counts: Vec<Option<u64>> = les.iter().map(|le| batch(le)).collect();
        let want = [1, 1, 2, 2, 2, 2, 3, 3].map(Some);
        assert_eq!(counts, want, "{text}");
        assert_eq!(batch("0.0002"), None, "{text}");
        let read = |le| bucket(&text, "geokv_internode_read_batch_entries", le);
        assert_eq!((read("4"), read("8")), (Some(0), Some(1)), "{text}");
        let call = |le| bucket(&text, "geokv_internode_call_seconds", le);
        assert_eq!((call("0.002"), call("0.005")), (Some(0), Some(1)), "{text}");
    }
}
