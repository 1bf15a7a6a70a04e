//! Removal of a dead node over in-memory engines: a live node is refused;
//! every gainer copies what it gains from survivors (never the dead node),
//! and after `finish_remove` every member holds exactly the keys it
//! replicates; the finisher is the first gainer.

use std::sync::Arc;

use super::ops::LayoutHandle;
use super::plan::gains;
use super::remove::{begin, finisher, gainers, removing, RemoveError};
use super::rereplicate::{rereplicate, Target};
use super::stream::{Progress, StreamConfig};
use super::tests_replace::{seeded, source};
use crate::engine::MemoryEngine;
use crate::layout::NodeState;
use crate::ring::Ring;

#[tokio::test]
async fn a_removed_dead_nodes_ranges_are_copied_from_survivors_by_their_new_owners() {
    let (layout, mut engines, data) = seeded();
    let l = layout.current();
    let err = begin(&l, "b", &|_| true).unwrap_err();
    assert!(matches!(err, RemoveError::Alive(_)), "{err}");
    assert!(err.to_string().contains("alive"), "{err}");
    let moving = begin(&l, "b", &|id| id != "b").unwrap();
    assert_eq!(removing(&moving).as_deref(), Some("b"));
    layout.propose(moving.clone()).await.unwrap();

    // dc1 has a, c, d left with rf 3: each of them gains what it lacked.
    let who = gainers(&moving, "b");
    assert_eq!(who, vec!["a", "c", "d"]);
    assert_eq!(finisher(&moving, "b").as_deref(), Some("a"));
    assert!(gains(&moving, "x").unwrap().is_empty(), "dc2 is untouched");
    let src = Arc::new(source(&engines, None));
    for g in &who {
        let target = Target {
            layout: &moving,
            gainer: g,
            dead: "b",
            stream_id: "remove-b",
        };
        let progress = Arc::new(Progress::default());
        let engine = engines[g].clone();
        rereplicate(
            target,
            engine,
            src.clone(),
            &StreamConfig::default(),
            progress.clone(),
        )
        .await
        .unwrap();
        let p = progress.snapshot();
        assert_eq!(p.ranges_done, p.ranges_total);
        assert!(p.keys > 0, "{g} copied nothing");
    }
    let done = moving.finish_remove("b").unwrap();
    assert_eq!(done.node("b").unwrap().2.state, NodeState::Removed);
    layout.propose(done.clone()).await.unwrap();
    let ring = Ring::from_layout(&done);
    engines.insert("b".into(), Arc::new(MemoryEngine::default()));
    for (key, set) in &data {
        for n in ring.replicas("ks", key).unwrap().all() {
            let id = &ring.node(n).id;
            let got = engines[id].get_versions("ks", key).unwrap();
            assert_eq!(
                got.as_ref(),
                Some(set),
                "{id} lacks {}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
