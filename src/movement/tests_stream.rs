//! The streaming driver against real RocksDB engines and a loopback source:
//! full sibling sets and tombstones arrive and merge with what the receiver
//! already holds; an interrupted stream (source gone, receiver restarted)
//! resumes from its cursor; a failed source is replaced by the next; the
//! page size adapts to how long pages take (under `tokio::time::pause`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cursor::Cursor;
use super::plan::Gain;
use super::rate::RateConfig;
use super::stream::{StreamConfig, StreamError, Streamer};
use super::tests_loopback::{write, Loopback};
use crate::engine::{Engine, EngineOptions, MemoryEngine, RocksEngine, WriteBatch};
use crate::ring::{token_of, TokenRange};
use crate::version::{CausalContext, SiblingSet};

/// `n` keys in `ks`: every 7th a tombstone over an earlier value, every
/// 5th two concurrent siblings.
fn fill(engine: &dyn Engine, ks: &str, n: usize) -> BTreeMap<Vec<u8>, SiblingSet> {
    let mut all = BTreeMap::new();
    let mut batch = WriteBatch::new();
    for i in 0..n {
        let key = format!("key-{i}").into_bytes();
        let mut set = SiblingSet::new();
        write(1, &CausalContext::new(), Some(&format!("v{i}")), &mut set);
        if i % 7 == 0 {
            let ctx = set.context();
            write(1, &ctx, None, &mut set);
        }
        if i % 5 == 0 {
            write(2, &CausalContext::new(), Some("concurrent"), &mut set);
        }
        batch.merge_versions(ks, &key, &set);
        all.insert(key, set);
    }
    engine.write(batch).unwrap();
    all
}

pub(super) fn rocks(dir: &std::path::Path) -> Arc<dyn Engine> {
    let opts = EngineOptions {
        block_cache_bytes: 8 << 20,
        ..EngineOptions::default()
    };
    Arc::new(RocksEngine::open(dir, opts).unwrap())
}

/// Half the ring, split in two gains, from `sources`.
fn half_ring(sources: &[&str]) -> Vec<Gain> {
    let q = u64::MAX / 4;
    [(0, q), (q, 2 * q)]
        .into_iter()
        .map(|(s, e)| Gain {
            keyspace: "ks".into(),
            range: TokenRange::new(s, e),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            losing: vec![],
        })
        .collect()
}

fn in_gains(gains: &[Gain], key: &[u8]) -> bool {
    gains.iter().any(|g| g.range.contains(token_of(key)))
}

fn small_pages() -> StreamConfig {
    StreamConfig {
        rate: RateConfig {
            initial_rows: 16,
            min_rows: 16,
            max_rows: 16,
            ..RateConfig::default()
        },
        max_rounds: 2,
        round_backoff: Duration::from_millis(1),
        ..StreamConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_full_sibling_sets_and_tombstones_merging_with_local_writes() {
    let dir = tempfile::tempdir().unwrap();
    let src = rocks(&dir.path().join("src"));
    let dst = rocks(&dir.path().join("dst"));
    let data = fill(&*src, "ks", 500);
    let gains = half_ring(&["a"]);
    // A write that reached the receiver as a pending replica meanwhile:
    // a newer value over key-1's, which the stream must not undo.
    let k1 = b"key-1".to_vec();
    let mut newer = data[&k1].clone();
    write(3, &newer.context(), Some("newer"), &mut newer);
    let mut b = WriteBatch::new();
    b.merge_versions("ks", &k1, &newer);
    dst.write(b).unwrap();

    let source = Loopback {
        engines: [("a".to_string(), src.clone())].into(),
        ..Loopback::default()
    };
    let streamer = Streamer::new(dst.clone(), source, "join-x@2", small_pages());
    streamer.run(&gains).await.unwrap();

    let mut moved = 0;
    for (key, set) in &data {
        let got = dst.get_versions("ks", key).unwrap();
        if key == &k1 {
            let mut want = set.clone();
            want.merge(&newer);
            assert_eq!(got.as_ref(), Some(&want), "merged, not overwritten");
            assert_eq!(
                got.unwrap().values().count(),
                1,
                "the newer value supersedes"
            );
        } else if in_gains(&gains, key) {
            moved += 1;
            assert_eq!(got.as_ref(), Some(set), "{}", String::from_utf8_lossy(key));
        } else {
            assert_eq!(got, None, "outside the ranges");
        }
    }
    let tombstones = data
        .iter()
        .filter(|(k, s)| in_gains(&gains, k) && s.is_tombstone_only())
        .count();
    assert!(
        moved > 150 && tombstones > 5,
        "moved {moved}, tombstones {tombstones}"
    );
    let p = streamer.progress().snapshot();
    assert_eq!((p.ranges_done, p.ranges_total), (2, 2));
    assert_eq!(p.keys as usize, moved + usize::from(in_gains(&gains, &k1)));
    assert!(p.bytes > p.keys * 10);
    for g in &gains {
        assert_eq!(streamer.cursor(g).await.unwrap(), Cursor::Done);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_stream_resumes_from_its_cursor_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let src = rocks(&dir.path().join("src"));
    let data = fill(&*src, "ks", 600);
    let gains = half_ring(&["a"]);
    let wanted = data.keys().filter(|k| in_gains(&gains, k)).count();
    let engines: BTreeMap<String, Arc<dyn Engine>> = [("a".to_string(), src.clone())].into();

    // The sender dies after 5 pages of 16 rows: the run fails mid-range.
    let first = {
        let dst = rocks(&dir.path().join("dst"));
        let source = Loopback {
            engines: engines.clone(),
            fail_after: Some(5),
            ..Loopback::default()
        };
        let streamer = Streamer::new(dst.clone(), source, "join-x@2", small_pages());
        let err = streamer.run(&gains).await.unwrap_err();
        assert!(
            matches!(err, StreamError::NoSource { rounds: 2, .. }),
            "{err}"
        );
        assert!(matches!(
            streamer.cursor(&gains[0]).await.unwrap(),
            Cursor::After(_)
        ));
        streamer.progress().snapshot().keys as usize
        // The receiver "restarts": its engine is dropped and reopened.
    };
    assert_eq!(first, 5 * 16);

    let dst = rocks(&dir.path().join("dst"));
    let source = Loopback {
        engines,
        ..Loopback::default()
    };
    let streamer = Streamer::new(dst.clone(), source, "join-x@2", small_pages());
    streamer.run(&gains).await.unwrap();
    let second = streamer.progress().snapshot().keys as usize;
    assert_eq!(
        first + second,
        wanted,
        "resumed after the last committed key, nothing twice"
    );
    for (key, set) in data.iter().filter(|(k, _)| in_gains(&gains, k)) {
        assert_eq!(dst.get_versions("ks", key).unwrap().as_ref(), Some(set));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_or_failing_source_is_replaced_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let b = rocks(&dir.path().join("b"));
    let data = fill(&*b, "ks", 200);
    let dst: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    // "a" is believed down, "gone" is up but unknown (every scan fails).
    let source = Loopback {
        engines: [("b".to_string(), b.clone())].into(),
        down: ["a".to_string()].into(),
        ..Loopback::default()
    };
    let gains = half_ring(&["a", "gone", "b"]);
    let streamer = Streamer::new(dst.clone(), source, "s", small_pages());
    streamer.run(&gains).await.unwrap();
    for (key, set) in data.iter().filter(|(k, _)| in_gains(&gains, k)) {
        assert_eq!(dst.get_versions("ks", key).unwrap().as_ref(), Some(set));
    }
}

#[tokio::test(start_paused = true)]
async fn page_size_adapts_to_how_long_pages_take() {
    let src: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    fill(&*src, "ks", 4000);
    let all = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, 0),
        sources: vec!["a".into()],
        losing: vec![],
    }];
    // 1 ms per row, a page allowed 50 ms more than the fastest (64 ms,
    // the first): pages settle between 64 and 128 rows.
    let source = Loopback {
        engines: [("a".to_string(), src)].into(),
        per_row: Duration::from_millis(1),
        ..Loopback::default()
    };
    let cfg = StreamConfig::default();
    let streamer = Streamer::new(Arc::new(MemoryEngine::default()), source, "s", cfg);
    let began = tokio::time::Instant::now();
    streamer.run(&all).await.unwrap();
    let limits = streamer.source().limits.lock().clone();
    assert_eq!(limits[0], 64, "starts at initial_rows");
    assert_eq!(limits[1], 128, "a 64 ms page, the fastest yet, grows it");
    assert_eq!(
        limits[2], 64,
        "a 128 ms page, 64 ms over the fastest, halves it"
    );
    let settled = &limits[limits.len() / 2..];
    assert!(
        settled.iter().all(|&l| (32..=128).contains(&l)),
        "{settled:?}"
    );
    let mean = settled.iter().sum::<u32>() as f64 / settled.len() as f64;
    assert!((60.0..=110.0).contains(&mean), "mean page {mean}");
    // About 4000 rows at 1 ms each, plus no pauses (the smallest page is fast).
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Two streamers sharing the node's cap move their bytes no faster than it
/// together, whatever their pages: the cap, not the (instant) source, sets
/// the pace (paused time).
#[tokio::test(start_paused = true)]
async fn streamers_sharing_the_node_cap_move_no_faster_than_it() {
    let src: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    fill(&*src, "ks", 3000);
    let source = Loopback {
        engines: [("a".to_string(), src)].into(),
        ..Loopback::default()
    };
    let source = Arc::new(source);
    let cap = Arc::new(super::Throughput::new(0.01)); // 10 486 bytes/s
    let cfg = StreamConfig::capped(cap.clone());
    let gains = half_ring(&["a"]);
    let (one, two) = (&gains[..1], &gains[1..]);
    let a = Streamer::new(
        Arc::new(MemoryEngine::default()),
        source.clone(),
        "a",
        cfg.clone(),
    );
    let b = Streamer::new(Arc::new(MemoryEngine::default()), source.clone(), "b", cfg);
    let began = tokio::time::Instant::now();
    let (ra, rb) = tokio::join!(a.run(one), b.run(two));
    ra.unwrap();
    rb.unwrap();
    let bytes = a.progress().snapshot().bytes + b.progress().snapshot().bytes;
    let rate = 0.01 * 1024.0 * 1024.0;
    // One second's burst passes at once; the rest at the cap.
    let least = Duration::from_secs_f64((bytes as f64 - rate).max(0.0) / rate);
    let took = began.elapsed();
    assert!(
        bytes as f64 > 2.0 * rate,
        "too little data to see the cap: {bytes}"
    );
    assert!(
        took >= least,
        "{bytes} bytes in {took:?}, the cap needs {least:?}"
    );
    assert!(
        took < least + Duration::from_secs(2),
        "{took:?} against {least:?}"
    );
}

/// Strict sources (Cassandra's consistent range movement): a range an owner
/// loses is streamed from that owner only. Another owner may lack a write a
/// quorum acknowledged without it, and after the movement the write would
/// then have one replica fewer than its quorum. So a down loser stalls the
/// range (the join retries) instead of streaming from the next owner, and a
/// loser that is up is the only one asked.
#[tokio::test(start_paused = true)]
async fn a_range_an_owner_loses_is_streamed_from_that_owner_only() {
    let loser: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let other: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let from_loser = fill(&*loser, "ks", 50);
    let mut b = WriteBatch::new();
    let mut only_other = SiblingSet::new();
    write(9, &CausalContext::new(), Some("other"), &mut only_other);
    b.merge_versions("ks", b"only-on-the-other-owner", &only_other);
    other.write(b).unwrap();
    let gains = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, 0),
        sources: vec!["loser".into(), "other".into()],
        losing: vec!["loser".into()],
    }];
    let engines: BTreeMap<String, Arc<dyn Engine>> = [
        ("loser".to_string(), loser.clone()),
        ("other".to_string(), other.clone()),
    ]
    .into();
    let down = Loopback {
        engines: engines.clone(),
        down: ["loser".to_string()].into(),
        ..Loopback::default()
    };
    let dst: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let err = Streamer::new(dst.clone(), down, "s", small_pages())
        .run(&gains)
        .await
        .expect_err("no stream from a non-losing owner");
    assert!(matches!(err, StreamError::NoSource { .. }), "{err}");
    assert_eq!(
        dst.get_versions("ks", b"only-on-the-other-owner").unwrap(),
        None
    );
    let up = Loopback {
        engines,
        ..Loopback::default()
    };
    Streamer::new(dst.clone(), up, "s", small_pages())
        .run(&gains)
        .await
        .unwrap();
    for (key, set) in &from_loser {
        assert_eq!(dst.get_versions("ks", key).unwrap().as_ref(), Some(set));
    }
    assert_eq!(
        dst.get_versions("ks", b"only-on-the-other-owner").unwrap(),
        None
    );
}

/// A stream into this node's engine as the node wires it (the replica's
/// gated engine, `Replica::gated`) once the node closed its storage: the
/// page and its cursor are refused, nothing written (issue 10: the page's
/// engine write bypassed the gate the close shuts).
#[tokio::test]
async fn a_stream_page_after_the_node_closed_writes_nothing() {
    let src: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    fill(&*src, "ks", 100);
    let dst: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let replica = crate::replica::Replica::new(dst.clone(), "x", 8);
    replica
        .close(Duration::from_secs(1))
        .expect("nothing inside");
    let source = Loopback {
        engines: [("a".to_string(), src)].into(),
        ..Loopback::default()
    };
    let gains = half_ring(&["a"]);
    let streamer = Streamer::new(replica.gated(), source, "join-x@2", small_pages());
    let err = streamer.run(&gains).await.expect_err("closed");
    assert!(
        matches!(
            err,
            StreamError::Engine(crate::engine::EngineError::Closed(_))
        ),
        "{err}"
    );
    let rows = dst.scan_token_range("ks", 0, 0, None, 1000).expect("scan");
    assert!(rows.is_empty(), "nothing written");
    assert!(matches!(
        super::cursor::load(&*dst, "join-x@2", "ks", gains[0].range).expect("cursor"),
        Cursor::Start
    ));
}
