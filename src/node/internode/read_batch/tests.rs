//! The replica side of a `ReplicaReadBatch` against a memory engine: every
//! entry gets its own outcome, in order (found, not found, its deadline
//! passed, no read in it), none shared with another.

use super::{results, ANSWER_BUDGET};
use crate::engine::memory::MemoryEngine;
use crate::engine::Limits;
use crate::layout::Layout;
use crate::proto::v1::internode::{ReplicaReadBatchEntry, ReplicaReadRequest};
use crate::replica::Replica;
use crate::topology::Topology;
use crate::version::{ActorId, CausalContext, SiblingSet};
use crate::view::Cluster;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Code;

fn entry(key: &str, timeout_ms: u32) -> ReplicaReadBatchEntry {
    ReplicaReadBatchEntry {
        read: Some(ReplicaReadRequest {
            keyspace: "default".into(),
            key: key.as_bytes().to_vec(),
            ..Default::default()
        }),
        timeout_ms,
        traceparent: String::new(),
    }
}

#[test]
fn each_read_gets_its_own_outcome_in_order() {
    let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n2", None).expect("a view");
    let rep = Replica::new(Arc::new(MemoryEngine::new(Limits::default())), "dc1-n2", 8);
    let mut set = SiblingSet::new();
    (set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)).expect("an update");
    rep.apply("default", b"here", &set).expect("a write");
    let mut record = Vec::new();
    set.encode(&mut record);
    let mut entries = vec![entry("here", 1000), entry("absent", 1000), entry("here", 1)];
    entries.push(ReplicaReadBatchEntry::default());
    entries.push(entry("here", 0));
    // Handled 10 ms after it arrived: past the third entry's 1 ms.
    let arrived = Instant::now() - Duration::from_millis(10);
    let got = results(&rep, &cluster.current(), entries, arrived);
    assert_eq!(got.len(), 5, "one result per entry, in order");
    let read = |i: usize| got[i].read.clone().unwrap_or_default();
    let code = |i: usize| Code::from_i32(got[i].status.clone().unwrap_or_default().code);
    assert_eq!((code(0), read(0).found), (Code::Ok, true), "{:?}", got[0]);
    assert_eq!(read(0).record, record);
    assert_eq!((code(1), read(1).found), (Code::Ok, false), "{:?}", got[1]);
    assert_eq!(code(2), Code::DeadlineExceeded, "{:?}", got[2]);
    assert!(got[2].read.is_none(), "late: nothing read");
    assert_eq!(code(3), Code::InvalidArgument, "{:?}", got[3]);
    assert_eq!((code(4), read(4).record), (Code::Ok, record), "no deadline");
}

/// Review of stop 25 (M1): a batch's answer had no size bound, so enough
/// reads of a large record in one batch went over the message limit and
/// failed together. Now the answers stop at [`ANSWER_BUDGET`]: the rest
/// are refused RESOURCE_EXHAUSTED, nothing read, for the caller to read
/// alone; the first entry is always answered.
#[test]
fn a_batch_answer_stays_within_its_byte_budget() {
    let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n2", None).expect("a view");
    let rep = Replica::new(Arc::new(MemoryEngine::new(Limits::default())), "dc1-n2", 8);
    let mut set = SiblingSet::new();
    let value = vec![7u8; 900 << 10];
    (set.update(ActorId(1), &CausalContext::new(), Some(value.into()), 1, 8)).expect("an update");
    rep.apply("default", b"big", &set).expect("a write");
    let n = 2 * ANSWER_BUDGET / (900 << 10);
    let entries = (0..n).map(|_| entry("big", 1000)).collect();
    let got = results(&rep, &cluster.current(), entries, Instant::now());
    assert_eq!(got.len(), n, "one result per entry, in order");
    let answered: usize = (got.iter())
        .filter_map(|r| r.read.as_ref())
        .map(|r| r.record.len())
        .sum();
    assert!(answered <= ANSWER_BUDGET, "{answered} bytes answered");
    assert!(
        got[0].read.as_ref().is_some_and(|r| r.found),
        "the first is read"
    );
    let refused = (got.iter())
        .filter(|r| r.status.as_ref().map(|s| s.code) == Some(Code::ResourceExhausted as i32))
        .count();
    assert!(refused >= n / 2, "{refused} of {n} refused");
    assert!(got.iter().all(|r| r.read.is_some() != r.status.is_some()));
}

/// Issue 10: the batch's refusals were built as bare statuses beside the
/// single mapping, so they carried no `geokv-applied`. Each refusal (over
/// the answer budget, its deadline passed, no read in it) now goes through
/// `GeokvError` and says "no", with its code as before.
#[test]
fn every_refused_read_goes_through_the_single_mapping() {
    let cluster = Cluster::new(Layout::seed(&Topology::dev()), "dc1-n2", None).expect("a view");
    let rep = Replica::new(Arc::new(MemoryEngine::new(Limits::default())), "dc1-n2", 8);
    let mut set = SiblingSet::new();
    // Under the value limit, and enough of them to go over the budget.
    let value = vec![7u8; 900 << 10];
    (set.update(ActorId(1), &CausalContext::new(), Some(value.into()), 1, 8)).expect("an update");
    rep.apply("default", b"big", &set).expect("a write");
    let arrived = Instant::now() - Duration::from_millis(10);
    let n = 2 * ANSWER_BUDGET / (900 << 10);
    let many = vec![entry("big", 1000); n];
    let mut got = results(&rep, &cluster.current(), many, arrived);
    let late_and_empty = vec![entry("big", 1), ReplicaReadBatchEntry::default()];
    got.extend(results(&rep, &cluster.current(), late_and_empty, arrived));
    let status = |i: usize| got[i].status.clone().unwrap_or_default();
    assert!(got[0].read.is_some(), "the first is read: {:?}", status(0));
    let expected = [
        (n - 1, Code::ResourceExhausted),
        (n, Code::DeadlineExceeded),
        (n + 1, Code::InvalidArgument),
    ];
    for (i, code) in expected {
        let s = status(i);
        assert_eq!(Code::from_i32(s.code), code, "{s:?}");
        assert_eq!(s.applied, "no", "entry {i}: {s:?}");
    }
}
