//! The join operation end to end over in-memory nodes: a joiner ends Normal
//! holding exactly the keys it replicates (about its share), a second
//! movement in its datacenter is refused naming the first, and a join
//! interrupted mid-stream resumes where it stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::ops::{join, JoinError, JoinRequest, Joined, LayoutHandle, ProposeError};
use super::rate::RateConfig;
use super::stream::{Progress, StreamConfig};
use super::tests_loopback::{write, Loopback};
use crate::engine::{Engine, MemoryEngine, WriteBatch};
use crate::layout::{Layout, LayoutError, Movement, NewNode, NodeState};
use crate::ring::Ring;
use crate::topology::Topology;
use crate::version::{CausalContext, SiblingSet};

fn topo() -> String {
    crate::topology::testing::yaml(
        &[("dc1", &["a", "b", "c"]), ("dc2", &["x", "y"])],
        &[("dc1", 2), ("dc2", 1)],
    )
}

/// A layout installed by proposals of exactly the next version.
pub(super) struct Fake(pub(super) Mutex<Arc<Layout>>);

impl LayoutHandle for Fake {
    fn current(&self) -> Arc<Layout> {
        self.0.lock().clone()
    }

    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        let mut cur = self.0.lock();
        if next.version != cur.version + 1 {
            return Err(ProposeError(format!(
                "version {} after {}",
                next.version, cur.version
            )));
        }
        *cur = Arc::new(next);
        Ok(())
    }

    /// One shared layout: every "member" is on it at once.
    /// Every member runs this build.
    fn upgraded(&self, _except: &str) -> Result<(), super::upgrade::NotUpgraded> {
        Ok(())
    }

    async fn announced(&self, _version: u64) -> Result<(), ProposeError> {
        Ok(())
    }
}

pub(super) struct World {
    pub(super) layout: Fake,
    pub(super) engines: BTreeMap<String, Arc<dyn Engine>>,
    pub(super) data: BTreeMap<Vec<u8>, SiblingSet>,
}

/// Every node's engine of `topo`'s seed layout holding its replicas of
/// `keys` keys (`k0`.. with values `v0`..), and those records: the fixture
/// of the movement tests (join, replace, removenode).
#[allow(clippy::type_complexity)]
pub(super) fn replicated(
    topo: &str,
    keys: usize,
) -> (
    Layout,
    BTreeMap<String, Arc<dyn Engine>>,
    BTreeMap<Vec<u8>, SiblingSet>,
) {
    let seed = Layout::seed(&Topology::parse("t.yaml", topo).unwrap());
    let ring = Ring::from_layout(&seed);
    let engines: BTreeMap<String, Arc<dyn Engine>> = ring
        .nodes()
        .iter()
        .map(|n| {
            (
                n.id.clone(),
                Arc::new(MemoryEngine::default()) as Arc<dyn Engine>,
            )
        })
        .collect();
    let mut data = BTreeMap::new();
    for i in 0..keys {
        let key = format!("k{i}").into_bytes();
        let mut set = SiblingSet::new();
        write(1, &CausalContext::new(), Some(&format!("v{i}")), &mut set);
        for n in ring.replicas("ks", &key).unwrap().all() {
            let mut b = WriteBatch::new();
            b.merge_versions("ks", &key, &set);
            engines[&ring.node(n).id].write(b).unwrap();
        }
        data.insert(key, set);
    }
    (seed, engines, data)
}

/// The seed layout and every node's engine holding its replicas of 2000 keys.
pub(super) fn world() -> World {
    let (seed, engines, data) = replicated(&topo(), 2000);
    World {
        layout: Fake(Mutex::new(Arc::new(seed))),
        engines,
        data,
    }
}

pub(super) fn request(id: &str, k: u8) -> JoinRequest {
    let a = |p: u16| format!("127.0.0.{k}:{p}").parse().unwrap();
    JoinRequest {
        node: NewNode {
            id: id.into(),
            client_address: a(1),
            peer_address: a(2),
            admin_address: a(3),
        },
        dc: "dc1".into(),
        rack: "r1".into(),
        tokens: 16,
    }
}

pub(super) fn source(w: &World, fail_after: Option<usize>) -> Loopback {
    Loopback {
        engines: w.engines.clone(),
        fail_after,
        ..Loopback::default()
    }
}

pub(super) fn small_pages() -> StreamConfig {
    StreamConfig {
        rate: RateConfig {
            initial_rows: 32,
            min_rows: 32,
            max_rows: 32,
            ..RateConfig::default()
        },
        max_rounds: 2,
        round_backoff: Duration::from_millis(1),
        ..StreamConfig::default()
    }
}

/// The joiner `id` holds exactly the keys it replicates now, equal to the
/// originals; returns how many.
fn check_holds_its_share(w: &World, id: &str, engine: &dyn Engine) -> usize {
    let l = w.layout.current();
    assert_eq!(l.node(id).unwrap().2.state, NodeState::Normal);
    assert!(l.movements.is_empty());
    let ring = Ring::from_layout(&l);
    let me = ring.node_by_id(id).unwrap().idx;
    let mut held = 0;
    for (key, set) in &w.data {
        let got = engine.get_versions("ks", key).unwrap();
        if ring.replicas("ks", key).unwrap().contains(me) {
            assert_eq!(got.as_ref(), Some(set));
            held += 1;
        } else {
            assert_eq!(got, None);
        }
    }
    held
}

#[tokio::test]
async fn a_joiner_streams_its_ranges_and_becomes_normal_with_its_share() {
    let w = world();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let progress = Arc::new(Progress::default());
    let out = join(
        &w.layout,
        engine.clone(),
        source(&w, None),
        &request("d", 9),
        StreamConfig::default(),
        progress.clone(),
    )
    .await
    .unwrap();
    assert_eq!(out, Joined::Joined);
    assert_eq!(
        w.layout.current().version,
        4,
        "begin_join, the switch of reads, finish_join"
    );
    let held = check_holds_its_share(&w, "d", &*engine);
    // 4 nodes, 2 replicas in dc1: each about half the keys.
    assert!((800..=1200).contains(&held), "d holds {held} of 2000");
    let p = progress.snapshot();
    assert_eq!(
        p.keys as usize, held,
        "each key streamed once, from one source"
    );
    assert_eq!(p.ranges_done, p.ranges_total);
    // Running it again is a member's restart: nothing to do.
    let again = join(
        &w.layout,
        engine,
        source(&w, None),
        &request("d", 9),
        StreamConfig::default(),
        progress,
    )
    .await
    .unwrap();
    assert_eq!(again, Joined::AlreadyMember);
}

#[tokio::test]
async fn a_second_movement_in_the_datacenter_is_refused_naming_the_first() {
    let w = world();
    let req = request("d", 9);
    let begun = w
        .layout
        .current()
        .begin_join(req.node.clone(), "dc1", "r1", &[42])
        .unwrap();
    w.layout.propose(begun).await.unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let err = join(
        &w.layout,
        engine,
        source(&w, None),
        &request("e", 10),
        StreamConfig::default(),
        Arc::default(),
    )
    .await
    .unwrap_err();
    match &err {
        JoinError::Layout(LayoutError::MovementInProgress { dc, in_progress }) => {
            assert_eq!(dc, "dc1");
            assert_eq!(in_progress, &Movement::Join { node: "d".into() });
        }
        other => panic!("want MovementInProgress, got {other:?}"),
    }
    assert!(err.to_string().contains("join of d"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_interrupted_mid_stream_resumes_where_it_stopped() {
    let w = world();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let req = request("d", 9);
    let first = Arc::new(Progress::default());
    let err = join(
        &w.layout,
        engine.clone(),
        source(&w, Some(6)),
        &req,
        small_pages(),
        first.clone(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, JoinError::Stream(_)), "{err}");
    assert_eq!(
        w.layout.current().node("d").unwrap().2.state,
        NodeState::Joining
    );
    let streamed = first.snapshot().keys;
    assert!(
        streamed > 32 && streamed <= 6 * 32,
        "six pages of at most 32 rows: {streamed}"
    );

    let src = source(&w, None);
    let second = Arc::new(Progress::default());
    let out = join(
        &w.layout,
        engine.clone(),
        src,
        &req,
        small_pages(),
        second.clone(),
    )
    .await
    .unwrap();
    assert_eq!(out, Joined::Joined);
    let held = check_holds_its_share(&w, "d", &*engine);
    assert_eq!(
        first.snapshot().keys + second.snapshot().keys,
        held as u64,
        "nothing streamed twice"
    );
}

/// A joiner declared dead and removed (`geokv removenode`, its join
/// abandoned) that comes back: its join cannot go on, and it says so
/// naming the removal instead of "cannot join" (which `run_join` retried
/// every 2 s for ever); the error ends the node.
#[tokio::test]
async fn a_joiner_removed_while_it_was_away_learns_it_and_stops() {
    let w = world();
    let req = request("d", 9);
    let begun = (w.layout.current())
        .begin_join(req.node.clone(), "dc1", "r1", &[42])
        .unwrap();
    let removed = super::remove::begin(&begun, "d", &|_| false).unwrap();
    assert_eq!(removed.node("d").unwrap().2.state, NodeState::Removed);
    w.layout.propose(begun).await.unwrap();
    w.layout.propose(removed.clone()).await.unwrap();
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
    let cfg = StreamConfig::default();
    let err = join(
        &w.layout,
        engine,
        source(&w, None),
        &req,
        cfg,
        Arc::default(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("removenode d"), "{text}");
    assert!(text.contains("abandoned"), "{text}");
    assert_eq!(*w.layout.current(), removed, "nothing proposed");
}
