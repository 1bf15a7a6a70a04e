//! The stream's pacing against a far source (a WAN round trip per page),
//! under `tokio::time::pause`: empty ranges cost their round trips and no
//! pauses, a steadily far source keeps its page size, and a source whose
//! pages grow slower than its fastest is still slowed down.

use std::sync::Arc;
use std::time::Duration;

use super::plan::Gain;
use super::stream::{StreamConfig, Streamer};
use super::tests_loopback::{write, Loopback};
use crate::engine::{Engine, MemoryEngine, WriteBatch};
use crate::ring::TokenRange;
use crate::version::{CausalContext, SiblingSet};

const RTT: Duration = Duration::from_millis(100);

/// The ring cut into `n` ranges of keyspace `ks`, each from `far`.
fn ranges(n: u64) -> Vec<Gain> {
    let width = u64::MAX / n;
    (0..n)
        .map(|i| Gain {
            keyspace: "ks".into(),
            range: TokenRange::new(i * width, (i + 1) * width),
            sources: vec!["far".into()],
            losing: vec![],
        })
        .collect()
}

/// `n` keys in `ks`.
fn filled(n: usize) -> Arc<dyn Engine> {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let mut batch = WriteBatch::new();
    for i in 0..n {
        let mut set = SiblingSet::new();
        write(1, &CausalContext::new(), Some("v"), &mut set);
        batch.merge_versions("ks", format!("key-{i}").as_bytes(), &set);
    }
    engine.write(batch).unwrap();
    engine
}

fn far(engine: Arc<dyn Engine>, slower_after: Option<(usize, Duration)>) -> Loopback {
    Loopback {
        engines: [("far".to_string(), engine)].into(),
        round_trip: RTT,
        per_row: Duration::from_micros(10),
        slower_after,
        ..Loopback::default()
    }
}

#[tokio::test(start_paused = true)]
async fn empty_ranges_from_a_far_source_cost_their_round_trips_and_no_pauses() {
    let n = 200;
    let source = far(Arc::new(MemoryEngine::default()), None);
    let streamer = Streamer::new(
        Arc::new(MemoryEngine::default()),
        source,
        "s",
        StreamConfig::default(),
    );
    let began = tokio::time::Instant::now();
    streamer.run(&ranges(n)).await.unwrap();
    let took = began.elapsed();
    assert_eq!(
        streamer
            .source()
            .pages
            .load(std::sync::atomic::Ordering::SeqCst),
        n as usize
    );
    // One round trip per range; anything beyond it is pauses.
    let paused = took - RTT * n as u32;
    assert!(
        paused < Duration::from_millis(10),
        "{n} empty ranges paused {paused:?} in all"
    );
}

#[tokio::test(start_paused = true)]
async fn a_steadily_far_source_keeps_its_page_size_and_gets_no_pauses() {
    let rows = 20_000;
    let source = far(filled(rows), None);
    let all = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, 0),
        sources: vec!["far".into()],
        losing: vec![],
    }];
    let dst = Arc::new(MemoryEngine::default());
    let streamer = Streamer::new(dst, source, "s", StreamConfig::default());
    let began = tokio::time::Instant::now();
    streamer.run(&all).await.unwrap();
    let took = began.elapsed();
    let limits = streamer.source().limits.lock().clone();
    let initial = StreamConfig::default().rate.initial_rows;
    assert!(limits.iter().all(|&l| l >= initial), "{limits:?}");
    assert!(limits.last().unwrap() > &initial, "it grows: {limits:?}");
    let work = RTT * limits.len() as u32 + Duration::from_micros(10) * rows as u32;
    // Each sleep rounds up to the timer's millisecond: no more than that.
    let rounding = Duration::from_millis(limits.len() as u64);
    assert!(took - work <= rounding, "paused {:?}", took - work);
}

#[tokio::test(start_paused = true)]
async fn a_far_source_whose_pages_grow_slower_is_still_slowed_down() {
    let rows = 10_000;
    // Ten pages at 100 ms, then every page 400 ms (the source is loaded).
    let slower = Duration::from_millis(400);
    let source = far(filled(rows), Some((10, slower)));
    let all = vec![Gain {
        keyspace: "ks".into(),
        range: TokenRange::new(0, 0),
        sources: vec!["far".into()],
        losing: vec![],
    }];
    let dst = Arc::new(MemoryEngine::default());
    let streamer = Streamer::new(dst, source, "s", StreamConfig::default());
    let began = tokio::time::Instant::now();
    streamer.run(&all).await.unwrap();
    let took = began.elapsed();
    let limits = streamer.source().limits.lock().clone();
    let min = StreamConfig::default().rate.min_rows;
    assert!(limits[..10].iter().all(|&l| l > min), "{limits:?}");
    assert_eq!(
        limits.last(),
        Some(&min),
        "shrunk to the smallest page: {limits:?}"
    );
    let work =
        RTT * 10 + slower * (limits.len() as u32 - 10) + Duration::from_micros(10) * rows as u32;
    assert!(
        took > work + Duration::from_secs(1),
        "paused only {:?}",
        took - work
    );
}
