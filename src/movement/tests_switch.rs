//! The driven end of a movement (`switch.rs`): each step is proposed only
//! after every live member is on the version before it, and a finish cut
//! short (an announce that timed out, a crash) resumes at the step the
//! layout is at.

use std::sync::Arc;

use parking_lot::Mutex;

use super::ops::{LayoutHandle, ProposeError};
use super::switch::{finish_movement, FinishError};
use super::upgrade::NotUpgraded;
use crate::layout::{Layout, NodeState};
use crate::ring::tests_pending::apply;
use crate::ring::tests_prop::build_topology;

/// A layout taking proposals of the next version, logging proposals and
/// announces; the announce of `unannounced` fails (a member behind).
pub(super) struct Logged {
    pub(super) layout: Mutex<Arc<Layout>>,
    pub(super) log: Mutex<Vec<String>>,
    pub(super) unannounced: Mutex<Option<u64>>,
    /// The members `upgraded` names as on an older build (none: all new).
    pub(super) old: Mutex<Vec<String>>,
}

impl LayoutHandle for Logged {
    fn current(&self) -> Arc<Layout> {
        self.layout.lock().clone()
    }

    async fn propose(&self, next: Layout) -> Result<(), ProposeError> {
        let mut cur = self.layout.lock();
        assert_eq!(next.version, cur.version + 1, "one version at a time");
        self.log.lock().push(format!("propose v{}", next.version));
        *cur = Arc::new(next);
        Ok(())
    }

    /// Every member runs this build but `old`.
    fn upgraded(&self, _except: &str) -> Result<(), NotUpgraded> {
        let members = self.old.lock().clone();
        if members.is_empty() {
            Ok(())
        } else {
            Err(NotUpgraded { members })
        }
    }

    async fn announced(&self, version: u64) -> Result<(), ProposeError> {
        self.log.lock().push(format!("announce v{version}"));
        if *self.unannounced.lock() == Some(version) {
            return Err(ProposeError(format!("a member is behind v{version}")));
        }
        Ok(())
    }
}

/// review-cancel2-31 L6: `try_finish` proposes only for the movement of
/// the snapshot whose copies it checked, not the one in force. Past the
/// switch no gainer is asked (no HTTP); a `--force` given since changed
/// the movement, so nothing is proposed until a pass on the new snapshot.
#[tokio::test]
async fn try_finish_proposes_only_for_the_movement_of_its_snapshot() {
    let ids = ["l6a", "l6b", "l6c", "l6d", "l6e"];
    let topo = crate::topology::testing::yaml(&[("dc1", &ids)], &[("dc1", 3)]);
    let (seed, _, _) = super::tests_ops::replicated(&topo, 10);
    let removing = seed.begin_remove("l6a").unwrap();
    let switched = removing.next_finish_step("l6a").unwrap().layout().clone();
    assert!(switched.reads_new("dc1"), "past the switch");
    let forced = switched.force_remove("l6a").unwrap();
    let h = Logged {
        layout: Mutex::new(Arc::new(forced.clone())),
        log: Mutex::default(),
        unannounced: Mutex::default(),
        old: Mutex::default(),
    };
    let me = super::remove::finisher(&switched, "l6a").unwrap();
    let tls = crate::transport::tls::Tls::insecure();
    super::remove_finish::try_finish(&h, &tls, &switched, "l6a", &me).await;
    assert!(h.log.lock().is_empty(), "changed: {:?}", h.log.lock());
    assert_eq!(h.current().version, forced.version);
    super::remove_finish::try_finish(&h, &tls, &forced, "l6a", &me).await;
    let state = h.current().node("l6a").unwrap().2.state;
    assert_eq!(state, NodeState::Removed, "{:?}", h.log.lock());
}

/// Three nodes of rf 3 in one DC; `new0` is joining (v2).
pub(super) fn joining() -> Logged {
    let topo = build_topology(&[vec![vec![4], vec![4], vec![4]]], &[("ks", vec![3])]);
    let join = (0u8, 0, 0, 0, vec![1 << 62, 3 << 62]);
    let l = apply(Layout::seed(&topo), &[join]);
    assert_eq!(l.node("new0").map(|n| n.2.state), Some(NodeState::Joining));
    Logged {
        layout: Mutex::new(Arc::new(l)),
        log: Mutex::default(),
        unannounced: Mutex::default(),
        old: Mutex::default(),
    }
}

#[tokio::test]
async fn each_step_is_proposed_once_every_member_is_on_the_one_before() {
    let h = joining();
    let done = finish_movement(&h, "new0").await.expect("finished");
    assert_eq!(done, 4, "v3 switches reads, v4 finishes");
    let want = ["announce v2", "propose v3", "announce v3", "propose v4"];
    assert_eq!(*h.log.lock(), want);
    let end = h.current();
    assert!(end.movements.is_empty() && end.reading_new.is_empty());
    assert_eq!(end.node("new0").map(|n| n.2.state), Some(NodeState::Normal));
}

/// review-elastic28 L4: the gate is asked before the switch of reads
/// (and nothing is announced or proposed while a member up is on an older
/// build), not before the finish: a finish past the switch goes on.
#[tokio::test]
async fn the_switch_waits_for_the_upgrade_gate_and_the_finish_does_not() {
    let h = joining();
    *h.old.lock() = vec!["n1 (an older build)".into()];
    let r = finish_movement(&h, "new0").await;
    assert!(
        matches!(&r, Err(FinishError::NotUpgraded(e)) if e.members.len() == 1),
        "{r:?}"
    );
    assert!(h.log.lock().is_empty(), "nothing announced nor proposed");
    assert_eq!(h.current().version, 2);
    // Past the switch (proposed before the member came back old): the
    // finish is not gated.
    let step = h.current().next_finish_step("new0").expect("step");
    *h.layout.lock() = Arc::new(step.layout().clone());
    assert_eq!(finish_movement(&h, "new0").await.expect("finished"), 4);
}

#[tokio::test]
async fn a_finish_stopped_between_steps_resumes_at_the_step_the_layout_is_at() {
    let h = joining();
    *h.unannounced.lock() = Some(3);
    let r = finish_movement(&h, "new0").await;
    assert!(matches!(r, Err(FinishError::Propose(_))), "{r:?}");
    let mid = h.current();
    assert_eq!(mid.version, 3, "stopped after the switch");
    assert!(mid.reads_new("dc0") && mid.movements.contains_key("dc0"));
    // Run again (after a restart): the finish, once v3 is announced.
    *h.unannounced.lock() = None;
    assert_eq!(finish_movement(&h, "new0").await.expect("finished"), 4);
    let want = [
        "announce v2",
        "propose v3",
        "announce v3",
        "announce v3",
        "propose v4",
    ];
    assert_eq!(*h.log.lock(), want);
}

/// review-cancel31 M1: the finisher checked the gainers' reports for v1
/// (`Remove{a}`), then `removenode b` joined the removal (v2, `Remove{a,
/// also b}`): b's ranges are copied by nobody yet, so nothing is proposed;
/// the movement checked on the layout in force goes on.
#[tokio::test]
async fn a_finish_of_copies_checked_for_an_older_removal_proposes_nothing() {
    let (world, _, _) = super::tests_remove::five_with_two_dead();
    let up = |id: &str| id != "a" && id != "b";
    let v1 = super::remove::begin(&world.current(), "a", &up).unwrap();
    let v2 = super::remove::begin(&v1, "b", &up).unwrap();
    let checked = v1.movements["dc1"].clone();
    let h = Logged {
        layout: Mutex::new(Arc::new(v2.clone())),
        log: Mutex::default(),
        unannounced: Mutex::default(),
        old: Mutex::default(),
    };
    let r = super::switch::finish_movement_expecting(&h, "a", Some(&checked)).await;
    assert!(matches!(r, Err(FinishError::Changed { .. })), "{r:?}");
    assert!(h.log.lock().is_empty(), "nothing announced nor proposed");
    assert_eq!(h.current().version, v2.version);
    let in_force = v2.movements["dc1"].clone();
    let r = super::switch::finish_movement_expecting(&h, "a", Some(&in_force)).await;
    assert_eq!(r.expect("finished"), v2.version + 2);
    assert_eq!(h.current().node("b").unwrap().2.state, NodeState::Removed);
}
