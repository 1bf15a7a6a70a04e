//! A write once minted is never reported as "nothing applied", whatever
//! fails after (review M2 of stop 23: a node that left and sealed its hint
//! store refused the hint of a retry fan-out, and the write, committed
//! here, reached the client as UNAVAILABLE with `geokv-applied: no`).

use super::*;
use crate::consistency::ConsistencyLevel;
use crate::coordinator::tests_pending::{
    coordinator_as, coordinator_in, leave_and_seal, put_request,
};
use crate::coordinator::Liveness;
use std::sync::Arc;

/// A later fan-out (nothing appended with the mint) of `minted` on `view`.
async fn fan_out_again(
    c: &Coordinator,
    view: &ClusterView,
    req: &WriteRequest,
    plan: &Plan<'_>,
    to: &Fanout,
    minted: &Minted,
) -> Result<(u32, u32), GeokvError> {
    let round = Round {
        view,
        req,
        plan,
        to,
        minted,
        deadline: Instant::now() + req.timeout,
    };
    c.fan_out(&round, None).await.0
}

/// Only `d` (this node) and `x` (dc2) are up.
struct OnlyDAndX;
impl Liveness for OnlyDAndX {
    fn is_up(&self, id: &str) -> bool {
        id == "d" || id == "x"
    }
}

/// `d` minted a write on the layout it was a replica in, then left and
/// handed everything over (its hint store sealed); a retry fan-out on
/// the newer layout finds dc1's replicas down and cannot store their
/// hints: the write is committed here, so the error says "maybe applied".
#[tokio::test]
async fn a_hint_refused_after_minting_is_maybe_applied() {
    let (c, left, key) = d_before_its_leave();
    let before = c.cluster().current();
    let req = put_request("ks", &key, ConsistencyLevel::Any);
    let (ks, k, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);

    // The request minted on the older view before the leave (queueing
    // nothing, so the hand-over has nothing to wait for), then the node
    // left and sealed its hint store.
    let (minted, _) = c.mint(&before, &req, &nothing_along()).await.expect("mint");
    assert!(
        c.replica.read("ks", k).expect("read").is_some(),
        "committed here"
    );
    leave_and_seal(&c, left).await;

    let after = c.cluster().current();
    let plan = (c.plan(&after, ks, k, level, None, OpKind::Write)).expect("plan");
    let to = c.fanout(&plan);
    assert!(!to.local.is_empty(), "dc1 replicas, all down: hinted");
    let res = fan_out_again(&c, &after, &req, &plan, &to, &minted).await;
    let err = res.expect_err("the hint store is sealed");
    assert!(!err.nothing_applied(), "{err}");
    // The sealed store's own refusal: ABORTED, "maybe", said once (it was
    // wrapped in MaybeApplied, the phrase twice: review-fix-types F3).
    assert!(matches!(err, GeokvError::HintsSealed), "{err:?}");
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
    assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("maybe"));
    let said = status.message().matches("may have been applied").count();
    assert_eq!(said, 1, "{}", status.message());
}

/// A fan-out that queues nothing with the write (no other local replica,
/// no remote datacenter).
fn nothing_along() -> Fanout {
    Fanout {
        local: Vec::new(),
        sizes: Default::default(),
        remote_dcs: Vec::new(),
        wait_for: Vec::new(),
    }
}

/// A request that planned on the view before the leave but reaches the
/// mint only after the node left and sealed its hint store (review of
/// stop 24): the mint is refused before anything is written, as "nothing
/// applied", so the forwarder asks another replica. Before, it committed
/// here with its intents and stream entries in a store nobody drains, and
/// at ONE the node's own acknowledgement made it an acknowledged write
/// lost with the node.
#[tokio::test]
async fn a_mint_after_the_seal_is_refused_and_writes_nothing() {
    let (c, left, key) = d_before_its_leave();
    let before = c.cluster().current();
    let req = put_request("ks", &key, ConsistencyLevel::One);
    let (ks, k, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);
    let plan = (c.plan(&before, ks, k, level, None, OpKind::Write)).expect("plan");

    leave_and_seal(&c, left).await;

    let Err(err) = c.mint(&before, &req, &c.fanout(&plan)).await else {
        panic!("a mint after the seal was accepted");
    };
    assert!(err.nothing_applied(), "{err:?}");
    assert!(
        c.replica.read("ks", k).expect("read").is_none(),
        "nothing written"
    );
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
    assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("no"));
}

/// A request that planned before the leave but reaches the mint once the
/// view marks this node Left, before its drain sealed the queues (review
/// of stop 24: `mint_pass` checked only the seal): refused before anything
/// is written, as "nothing applied". Before, it committed on a node whose
/// own copy leaves with it.
#[tokio::test]
async fn a_mint_after_the_leave_before_the_seal_is_refused_and_writes_nothing() {
    let (c, left, key) = d_before_its_leave();
    let before = c.cluster().current();
    let req = put_request("ks", &key, ConsistencyLevel::One);
    let (ks, k, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);
    let plan = (c.plan(&before, ks, k, level, None, OpKind::Write)).expect("plan");

    c.cluster().install(left).expect("installed");
    assert!(c.cluster().current().has_left());

    let Err(err) = c.mint(&before, &req, &c.fanout(&plan)).await else {
        panic!("a mint on a node that has left was accepted");
    };
    assert!(err.nothing_applied(), "{err:?}");
    assert!(
        c.replica.read("ks", k).expect("read").is_none(),
        "nothing written"
    );
    assert_eq!(c.hints.total_backlog(), 0, "nothing queued");
}

/// Urgent entries of a write minted before the leave, appended on their
/// own after the seal (a fan-out on a newer view, the remote fallback):
/// refused as "maybe applied", nothing queued (review of stop 24:
/// `Commit::append_urgent` wrote to the hint store without the seal's
/// guard, into a store nobody drains).
#[tokio::test]
async fn urgent_entries_appended_after_the_seal_are_refused_and_queue_nothing() {
    let (c, left, key) = d_before_its_leave();
    let before = c.cluster().current();
    let req = put_request("ks", &key, ConsistencyLevel::One);
    let (minted, _) = c.mint(&before, &req, &nothing_along()).await.expect("mint");
    leave_and_seal(&c, left).await;

    let dc2 = Awaited {
        dc: "dc2".into(),
        need: 1,
        pending: None,
    };
    let refused = c.commit.append_urgent(&minted, &[dc2]).await;
    let Err(err) = refused.map(|waits| waits.len()) else {
        panic!("urgent entries appended to a sealed hint store");
    };
    assert!(matches!(err, GeokvError::HintsSealed), "{err:?}");
    assert!(!err.nothing_applied(), "{err}");
    let dest = crate::hints::queue::Dest::Dc("dc2".into());
    assert_eq!(c.hints.backlog_entries(&dest), 0, "nothing queued");
}

/// A retry fan-out whose urgent entries the sealed store refuses reports
/// one clean error: ABORTED, "maybe", saying once that the write may have
/// been applied (review-fix-types F3: it was INTERNAL, the phrase twice).
#[tokio::test]
async fn a_refused_urgent_append_is_one_clean_maybe_applied_error() {
    let (c, left, key) = d_before_its_leave();
    let before = c.cluster().current();
    let req = put_request("ks", &key, ConsistencyLevel::Any);
    let (ks, k, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);
    let (minted, _) = c.mint(&before, &req, &nothing_along()).await.expect("mint");
    leave_and_seal(&c, left).await;

    let after = c.cluster().current();
    let plan = (c.plan(&after, ks, k, level, None, OpKind::Write)).expect("plan");
    let to = Fanout {
        wait_for: vec![Awaited {
            dc: "dc2".into(),
            need: 1,
            pending: None,
        }],
        ..nothing_along()
    };
    let res = fan_out_again(&c, &after, &req, &plan, &to, &minted).await;
    let status = tonic::Status::from(res.expect_err("the hint store is sealed"));
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
    assert_eq!(applied.and_then(|v| v.to_str().ok()), Some("maybe"));
    let said = status.message().matches("may have been applied").count();
    assert_eq!(said, 1, "{}", status.message());
}

/// `d`'s coordinator on the seed layout (only `d` and `x` up), the layout
/// in which `d` has left, and a key of `ks` that `d` replicates before.
fn d_before_its_leave() -> (Coordinator, crate::layout::Layout, [u8; 4]) {
    let (seed, left) = crate::hints::testing::layouts();
    let c = coordinator_as(seed, "d", Arc::new(OnlyDAndX));
    let before = c.cluster().current();
    let key = (0..1000u32).map(u32::to_be_bytes).find(|k| {
        let set = before.ring.replicas("ks", k);
        set.is_ok_and(|s| s.contains(before.me_idx()))
    });
    (c, left, key.expect("d replicates some key of 'ks'"))
}

/// review-me33 M2: a write reaching the mint of a node whose engine
/// latched a failed fsync (a client's, or one forwarded to it) is refused
/// before anything is written: UNAVAILABLE, "no", naming the restart, so
/// a forwarder tries another replica. Fails before: the engine refused
/// the batch, INTERNAL with `geokv-applied: maybe`.
#[tokio::test]
async fn a_mint_on_an_engine_refusing_writes_is_not_ready_and_applied_nothing() {
    use crate::engine::{Engine, EngineOptions, RocksEngine};
    let dir = tempfile::tempdir().unwrap();
    let rocks = Arc::new(RocksEngine::open(dir.path(), EngineOptions::default()).unwrap());
    let engine: Arc<dyn Engine> = rocks.clone();
    let (seed, _) = crate::hints::testing::layouts();
    let cluster = crate::view::Cluster::new(seed, "d", Some(engine.clone())).expect("view");
    let c = coordinator_in(cluster, engine, Arc::new(OnlyDAndX));
    let view = c.cluster().current();
    let mine = |k: &[u8; 4]| (view.ring.replicas("ks", k)).is_ok_and(|s| s.contains(view.me_idx()));
    let key = (0..1000u32)
        .map(u32::to_be_bytes)
        .find(mine)
        .expect("d replicates a key");
    let req = put_request("ks", &key, ConsistencyLevel::One);
    let (ks, k, level) = (&req.mutation.keyspace, &req.mutation.key, req.level);
    let plan = (c.plan(&view, ks, k, level, None, OpKind::Write)).expect("plan");
    rocks.fail_flushes();
    assert!(rocks.flush().is_err(), "the injected fsync failure");
    let Err(err) = c.mint(&view, &req, &c.fanout(&plan)).await else {
        panic!("a mint on an engine refusing writes was accepted");
    };
    assert!(err.nothing_applied(), "{err:?}");
    assert!(err.to_string().contains("restart the node"), "{err}");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
}
