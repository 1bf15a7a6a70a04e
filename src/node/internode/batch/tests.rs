//! The replica side of a `ReplicaBatch` against a memory engine: every
//! entry gets its own outcome (its deadline, the view it was planned on,
//! its record), the entries that pass are applied in one engine write, and
//! a failure of that shared write is every applied entry's, "maybe
//! applied", never a refused entry's.

use super::results;
use crate::engine::testing::{Hooked, Hooks};
use crate::engine::{EngineError, WriteBatch};
use crate::layout::Layout;
use crate::proto::v1::internode::{ReplicaBatchEntry, ReplicaBatchResult, ReplicaWriteRequest};
use crate::replica::Replica;
use crate::topology::Topology;
use crate::version::{ActorId, CausalContext, SiblingSet};
use crate::view::Cluster;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Code;

/// Counts the engine's writes and names the span each ran in; fails every
/// one when `fail`.
struct Writes {
    n: AtomicUsize,
    fail: bool,
    span: parking_lot::Mutex<Option<&'static str>>,
}

impl Hooks for Writes {
    fn before_write(&self, _: &WriteBatch) -> Result<(), EngineError> {
        self.n.fetch_add(1, Ordering::SeqCst);
        *self.span.lock() = tracing::Span::current().metadata().map(|m| m.name());
        match self.fail {
            true => Err(EngineError::Backend("the disk is gone".into())),
            false => Ok(()),
        }
    }
}

/// The batch's five entries, as the lane sends them: two that apply
/// (planned on the replica's own layout, v2), one whose deadline passed
/// before it arrived, one planned on v1 (which the replica's v2
/// supersedes) and aimed at this replica alone (as a client write names
/// at least its receiver), one whose record does not decode.
fn five(record: &[u8]) -> Vec<ReplicaBatchEntry> {
    let entry = |key: &str, version: u64, record: &[u8], timeout_ms: u32| ReplicaBatchEntry {
        write: Some(ReplicaWriteRequest {
            keyspace: "default".into(),
            key: key.as_bytes().to_vec().into(),
            record: record.to_vec().into(),
            layout_version: version,
            targets: vec!["dc1-n2".into()],
            ..Default::default()
        }),
        timeout_ms,
        traceparent: String::new(),
    };
    vec![
        entry("ok-1", 2, record, 1000),
        entry("late", 2, record, 1),
        entry("stale", 1, record, 1000),
        entry("bad", 2, b"not a sibling set", 1000),
        entry("ok-2", 2, record, 1000),
    ]
}

/// `dc1-n2`'s replica on v2 of the dev layout (a node joining), over a
/// hooked memory engine.
fn replica(fail: bool) -> (Cluster, Replica, Arc<Hooked<Writes>>) {
    let seed = Layout::seed(&Topology::dev());
    let joining = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
    assert_eq!(joining.version, 2);
    let cluster = Cluster::new(joining, "dc1-n2", None).expect("a view");
    let hooks = Writes {
        n: AtomicUsize::new(0),
        fail,
        span: Default::default(),
    };
    let engine = Arc::new(Hooked::new(hooks));
    (cluster, Replica::new(engine.clone(), "dc1-n2", 8), engine)
}

/// Runs the batch as the handler does, 10 ms after it arrived (past the
/// late entry's 1 ms, long before the others' second).
fn run(cluster: &Cluster, rep: &Replica) -> Vec<ReplicaBatchResult> {
    let arrived = Instant::now() - Duration::from_millis(10);
    results(rep, cluster, run_entries(), arrived)
}

/// [`five`] with a record of one value.
fn run_entries() -> Vec<ReplicaBatchEntry> {
    let mut set = SiblingSet::new();
    let ctx = CausalContext::new();
    (set.update(ActorId(1), &ctx, Some("v".into()), 1, 8)).expect("an update");
    let mut record = Vec::new();
    set.encode(&mut record);
    five(&record)
}

fn code(r: &ReplicaBatchResult) -> Code {
    Code::from_i32(r.code)
}

/// The refusals every batch gets whatever the engine does: each entry's
/// own, each saying nothing was applied (the bad record too: it is
/// refused before anything is written, through the one mapping).
fn assert_refusals(got: &[ReplicaBatchResult]) {
    assert_eq!(code(&got[1]), Code::DeadlineExceeded, "{:?}", got[1]);
    assert_eq!(got[1].applied, "no", "late: nothing applied");
    assert_eq!(code(&got[2]), Code::FailedPrecondition, "{:?}", got[2]);
    assert_eq!(got[2].applied, "no", "stale: nothing applied");
    assert_eq!(got[2].layout_version, 2, "the replica's layout");
    assert_eq!(code(&got[3]), Code::InvalidArgument, "{:?}", got[3]);
    assert!(got[3].message.contains("bad record"), "{:?}", got[3]);
    assert_eq!(got[3].applied, "no", "bad record: nothing applied");
}

#[test]
fn each_entry_gets_its_own_outcome_and_the_applied_ones_share_one_engine_write() {
    let (cluster, rep, engine) = replica(false);
    let got = run(&cluster, &rep);
    assert_eq!(got.len(), 5, "one result per entry, in order");
    assert_eq!(code(&got[0]), Code::Ok, "{:?}", got[0]);
    assert_eq!(code(&got[4]), Code::Ok, "{:?}", got[4]);
    assert_refusals(&got);
    assert_eq!(engine.n.load(Ordering::SeqCst), 1, "one engine write");
    for (key, written) in [
        ("ok-1", true),
        ("late", false),
        ("stale", false),
        ("bad", false),
        ("ok-2", true),
    ] {
        let stored = rep.read("default", key.as_bytes()).expect("a read");
        assert_eq!(stored.is_some(), written, "{key}");
    }
    assert_eq!(cluster.newest_planned(), 2, "noted before the apply");
}

#[test]
fn a_failed_engine_write_is_every_applied_entrys_and_maybe_applied() {
    let (cluster, rep, engine) = replica(true);
    let got = run(&cluster, &rep);
    assert_eq!(engine.n.load(Ordering::SeqCst), 1, "one engine write tried");
    for applied in [&got[0], &got[4]] {
        assert_ne!(code(applied), Code::Ok, "{applied:?}");
        assert_eq!(applied.applied, "maybe", "{applied:?}");
        assert!(applied.message.contains("the disk is gone"), "{applied:?}");
    }
    assert_refusals(&got);
}

/// Issue 11: an entry planned on v1 that names nobody and has no repair
/// mark is a client write (the mark, not the empty list, makes a repair's
/// merge): refused, nothing applied, like any client write whose targets
/// miss this datacenter's owners on the replica's newer view.
#[test]
fn an_entry_naming_nobody_without_the_repair_mark_is_a_refused_client_write() {
    let (cluster, rep, _) = replica(false);
    let mut entries = run_entries();
    let w = entries[2].write.as_mut().expect("a write");
    w.targets.clear();
    let got = results(&rep, &cluster, entries, Instant::now());
    assert_eq!(code(&got[2]), Code::FailedPrecondition, "{:?}", got[2]);
    assert_eq!(got[2].applied, "no", "nothing applied");
    assert!(rep.read("default", b"stale").expect("a read").is_none());
}

/// The span links made: (span, the span it follows from), by name.
#[derive(Clone, Default)]
struct Links(Arc<parking_lot::Mutex<Vec<(&'static str, &'static str)>>>);

impl<S> tracing_subscriber::Layer<S> for Links
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = |id| ctx.span(id).map(|s| s.name());
        if let (Some(a), Some(b)) = (name(span), name(follows)) {
            self.0.lock().push((a, b));
        }
    }
}

/// Each entry's span covers its own checks; the engine write they share
/// runs in a span of its own, which every entry's span follows from, so
/// each request's trace leads to the write that applied it.
#[test]
fn the_shared_engine_write_has_a_span_of_its_own_that_each_entry_links_to() {
    use tracing_subscriber::layer::SubscriberExt;
    let links = Links::default();
    let subscriber = tracing_subscriber::registry().with(links.clone());
    let (cluster, rep, engine) = replica(false);
    tracing::subscriber::with_default(subscriber, || run(&cluster, &rep));
    assert_eq!(*engine.span.lock(), Some("replica_batch_apply"));
    let links = links.0.lock().clone();
    assert_eq!(links, vec![("internode", "replica_batch_apply"); 5]);
}
