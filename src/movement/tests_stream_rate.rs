//! The streaming driver's own rate between two RocksDB engines, no
//! network: a measurement, ignored by default.

use super::plan::Gain;
use super::stream::{StreamConfig, Streamer};
use super::tests_loopback::{write, Loopback};
use super::tests_stream::rocks;
use crate::engine::WriteBatch;
use crate::ring::TokenRange;
use crate::version::{CausalContext, SiblingSet};

/// The driver's own rate between two RocksDB engines (no network):
/// `cargo test --lib stream_rate -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn stream_rate() {
    let dir = tempfile::tempdir().unwrap();
    let src = rocks(&dir.path().join("src"));
    let value = "x".repeat(1024);
    for chunk in 0..50 {
        let mut b = WriteBatch::new();
        for i in 0..1000 {
            let mut set = SiblingSet::new();
            write(1, &CausalContext::new(), Some(&value), &mut set);
            b.merge_versions("ks", format!("key-{chunk}-{i}").as_bytes(), &set);
        }
        src.write(b).unwrap();
    }
    let dst = rocks(&dir.path().join("dst"));
    let all = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, 0),
        sources: vec!["a".into()],
        losing: vec![],
    }];
    let source = Loopback {
        engines: [("a".to_string(), src)].into(),
        ..Loopback::default()
    };
    let streamer = Streamer::new(dst, source, "s", StreamConfig::default());
    let began = std::time::Instant::now();
    streamer.run(&all).await.unwrap();
    let secs = began.elapsed().as_secs_f64();
    let p = streamer.progress().snapshot();
    eprintln!(
        "{} keys, {:.1} MB in {secs:.2} s: {:.0} keys/s, {:.1} MB/s",
        p.keys,
        p.bytes as f64 / 1e6,
        p.keys as f64 / secs,
        p.bytes as f64 / secs / 1e6
    );
    assert_eq!(p.keys, 50_000);
}
