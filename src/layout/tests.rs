//! Layout tests: the seed, serde, the convergence rule and the transitions.

use proptest::prelude::*;

use super::*;
use crate::ring::Ring;

pub(crate) fn new_node(id: &str, ip: u8) -> NewNode {
    let addr = |port: u16| format!("10.99.0.{ip}:{port}").parse().unwrap();
    NewNode {
        id: id.into(),
        client_address: addr(7070),
        peer_address: addr(7071),
        admin_address: addr(7072),
    }
}

fn dev() -> Layout {
    Layout::seed(&Topology::dev())
}

/// The dev layout with a fourth node in each DC (so one may leave).
pub(super) fn grown() -> Layout {
    let mut l = dev();
    for (i, dc) in ["dc1", "dc2"].into_iter().enumerate() {
        let id = format!("{dc}-n4");
        let tokens = [i as u64 * 10 + 1, i as u64 * 10 + 2];
        l = l
            .begin_join(new_node(&id, i as u8 + 1), dc, "r1", &tokens)
            .unwrap();
        l = l.finish_join(&id).unwrap();
    }
    l
}

#[test]
fn seed_has_todays_tokens_and_round_trips_through_json() {
    let topo = Topology::dev();
    let l = Layout::seed(&topo);
    assert_eq!(l.version, 1);
    assert!(l.movements.is_empty());
    for n in topo.nodes() {
        let (dc, rack, ln) = l.node(&n.id).unwrap();
        assert_eq!((dc, rack), (n.dc.as_str(), n.rack.as_str()));
        assert_eq!(ln.state, NodeState::Normal);
        let mut want: Vec<_> = (0..n.vnodes).map(|i| vnode_token(&n.id, i)).collect();
        want.sort_unstable();
        assert_eq!(ln.tokens, want);
        assert_eq!(ln.admin_address, n.admin_address);
    }
    let json = serde_json::to_string(&l).unwrap();
    let back: Layout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l);
    assert_eq!(back.digest(), l.digest());
    assert_eq!(l.member_topology().nodes(), topo.nodes());
}

#[test]
fn merge_takes_the_higher_version_and_reports_same_version_conflicts() {
    let v1 = grown();
    let v2 = v1.begin_leave("dc1-n1").unwrap();
    for (a, b) in [(v1.clone(), v2.clone()), (v2.clone(), v1.clone())] {
        let m = a.merge(b);
        assert_eq!((m.layout.clone(), m.conflict), (v2.clone(), None));
    }
    assert_eq!(v2.clone().merge(v2.clone()).conflict, None);
    // Two nodes each made a different version 2.
    let other = v1.begin_leave("dc2-n1").unwrap();
    assert_eq!(other.version, v2.version);
    let ab = v2.clone().merge(other.clone());
    let ba = other.clone().merge(v2.clone());
    assert_eq!(ab.layout, ba.layout, "every node picks the same winner");
    let c = ab.conflict.expect("a conflict is reported");
    assert_eq!(c.version, v2.version);
    assert_eq!(c.kept, ab.layout.digest());
    assert_ne!(c.kept, c.dropped);
}

#[test]
fn join_then_finish() {
    let v1 = dev();
    let v2 = v1
        .begin_join(new_node("dc1-n4", 1), "dc1", "r9", &[5, 3, 1])
        .unwrap();
    assert_eq!(v2.version, 2);
    let (dc, rack, n) = v2.node("dc1-n4").unwrap();
    assert_eq!((dc, rack, n.state), ("dc1", "r9", NodeState::Joining));
    assert_eq!(n.tokens, vec![1, 3, 5]);
    assert_eq!(
        v2.movements.get("dc1"),
        Some(&Movement::Join {
            node: "dc1-n4".into()
        })
    );
    // A joining node is a member of the ring but owns nothing yet.
    let ring = Ring::from_layout(&v2);
    let idx = ring.node_by_id("dc1-n4").unwrap().idx;
    assert_eq!(
        ring.range_count(),
        Ring::new(&Topology::dev()).range_count()
    );
    assert!(ring.ranges_of("default", idx).unwrap().is_empty());
    let v3 = v2.finish_join("dc1-n4").unwrap();
    assert_eq!(v3.version, 3);
    assert!(v3.movements.is_empty());
    assert_eq!(v3.node("dc1-n4").unwrap().2.state, NodeState::Normal);
    assert_eq!(v2.settled().datacenters, v3.datacenters);
    assert_eq!(v1.settled(), v1);
}

#[test]
fn a_second_movement_in_a_dc_is_refused_naming_the_first() {
    let v2 = grown().begin_leave("dc1-n1").unwrap();
    let err = v2
        .begin_join(new_node("x", 9), "dc1", "r1", &[7])
        .unwrap_err();
    assert_eq!(
        err,
        LayoutError::MovementInProgress {
            dc: "dc1".into(),
            in_progress: Movement::Leave {
                node: "dc1-n1".into()
            },
        }
    );
    assert!(err.to_string().contains("decommission of dc1-n1"), "{err}");
    // Another datacenter may move at the same time.
    let v3 = v2.begin_remove("dc2-n1").unwrap();
    assert_eq!(v3.node("dc2-n1").unwrap().2.state, NodeState::Leaving);
    let v4 = v3.finish_remove("dc2-n1").unwrap();
    let n = v4.node("dc2-n1").unwrap().2;
    assert_eq!((n.state, n.tokens.len()), (NodeState::Removed, 0));
    let v5 = v4.finish_leave("dc1-n1").unwrap();
    assert_eq!(v5.node("dc1-n1").unwrap().2.state, NodeState::Left);
    assert!(v5.movements.is_empty());
}

#[test]
fn refusals_are_typed() {
    let l = dev();
    let taken = l.node("dc1-n2").unwrap().2.tokens[3];
    let join = |id: &str, ip: u8, dc: &str, tokens: &[u64]| {
        l.begin_join(new_node(id, ip), dc, "r1", tokens)
            .unwrap_err()
    };
    assert_eq!(
        join("dc1-n1", 1, "dc1", &[1]),
        LayoutError::DuplicateNode("dc1-n1".into())
    );
    assert_eq!(
        join("n", 1, "dc9", &[1]),
        LayoutError::UnknownDatacenter("dc9".into())
    );
    assert_eq!(join("n", 1, "dc1", &[]), LayoutError::TokenCount(0));
    assert_eq!(
        join("n", 1, "dc1", &[1, taken]),
        LayoutError::TokenTaken {
            token: taken,
            owner: "dc1-n2".into()
        }
    );
    let mut clash = new_node("n", 1);
    clash.peer_address = l.node("dc2-n3").unwrap().2.client_address;
    assert!(matches!(
        l.begin_join(clash, "dc1", "r1", &[1]),
        Err(LayoutError::AddressInUse { by, .. }) if by == "dc2-n3"
    ));
    assert!(matches!(
        l.finish_join("dc1-n1"),
        Err(LayoutError::NoSuchMovement { .. })
    ));
    assert!(matches!(
        l.begin_leave("nope"),
        Err(LayoutError::UnknownNode(_))
    ));
    // The dev keyspaces replicate 3 in each 3-node DC: nobody may leave.
    assert!(matches!(
        l.begin_leave("dc1-n1"),
        Err(LayoutError::TooFewNodes { rf: 3, left: 2, .. })
    ));
    let v2 = l.begin_join(new_node("n", 1), "dc1", "r1", &[1]).unwrap();
    assert!(matches!(
        v2.begin_replace("n", new_node("m", 2)),
        Err(LayoutError::WrongState {
            state: NodeState::Joining,
            ..
        })
    ));
}

#[test]
fn replace_hands_over_the_same_tokens() {
    let v1 = dev();
    let v2 = v1.begin_replace("dc1-n2", new_node("dc1-n2b", 4)).unwrap();
    let (dc, rack, new) = v2.node("dc1-n2b").unwrap();
    let (odc, orack, old) = v1.node("dc1-n2").unwrap();
    assert_eq!((dc, rack), (odc, orack));
    assert_eq!((new.state, &new.tokens), (NodeState::Joining, &old.tokens));
    let v3 = v2.finish_replace("dc1-n2b").unwrap();
    assert_eq!(v3.node("dc1-n2").unwrap().2.state, NodeState::Removed);
    assert_eq!(v3.node("dc1-n2b").unwrap().2.state, NodeState::Normal);
    // Same ring shape, the new id in place of the old.
    let (a, b) = (Ring::from_layout(&v1), Ring::from_layout(&v3));
    let ids = |r: &Ring| -> Vec<Vec<String>> {
        r.ranges_with_replicas("default")
            .unwrap()
            .map(|(_, s)| {
                s.all()
                    .map(|i| r.node(i).id.replace("dc1-n2b", "dc1-n2"))
                    .collect()
            })
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
}

/// audit11 D1: a gainer of dc1's decommission died; the leave waits for
/// it for good and holds dc1's movement slot, so the dead gainer cannot be
/// removed. Cancelled (in one version before the switch of reads, in two
/// after it), the leaver is Normal again and the removal can begin; a
/// leave that is over cannot be cancelled.
/// `grown` with dc1-n5 and dc1-n6 (dc1 may lose two nodes at rf 3).
fn wide() -> Layout {
    let mut wide = grown();
    for (i, id) in ["dc1-n5", "dc1-n6"].into_iter().enumerate() {
        let t = [100 + i as u64];
        wide = (wide.begin_join(new_node(id, 20 + i as u8), "dc1", "r1", &t)).unwrap();
        wide = wide.finish_join(id).unwrap();
    }
    wide
}

#[test]
fn a_dead_gainer_of_a_leave_is_removable_after_cancel() {
    let v1 = wide();
    let leaving = v1.begin_leave("dc1-n1").unwrap();
    assert!(matches!(
        leaving.begin_remove("dc1-n2"),
        Err(LayoutError::MovementInProgress { .. })
    ));
    let cancelled = leaving.cancel_leave("dc1-n1").unwrap();
    assert_eq!(cancelled.version, leaving.version + 1);
    assert_eq!(cancelled.node("dc1-n1").unwrap().2.state, NodeState::Normal);
    assert_eq!(cancelled.datacenters, v1.datacenters, "tokens kept");
    assert!(cancelled.movements.is_empty());
    let removing = cancelled.begin_remove("dc1-n2").unwrap();
    assert_eq!(removing.node("dc1-n2").unwrap().2.state, NodeState::Leaving);
    // After the switch of reads: reads go back to the old owners first,
    // and the leave cannot finish; the second step clears it.
    let FinishStep::SwitchReads(switched) = leaving.next_finish_step("dc1-n1").unwrap() else {
        panic!("the first step is the switch")
    };
    let back = switched.cancel_leave("dc1-n1").unwrap();
    assert!(!back.reads_new("dc1") && back.aborting.contains("dc1"));
    assert_eq!(back.node("dc1-n1").unwrap().2.state, NodeState::Leaving);
    assert_eq!(back.cancelling("dc1"), Some("dc1-n1"));
    assert_eq!(
        back.abandoning("dc1"),
        Some("dc1-n1"),
        "the abort driver steps it"
    );
    assert!(matches!(
        back.next_finish_step("dc1-n1"),
        Err(LayoutError::Abandoned { .. })
    ));
    let over = back.cancel_leave("dc1-n1").unwrap();
    assert_eq!(over.version, back.version + 1);
    assert_eq!(over.node("dc1-n1").unwrap().2.state, NodeState::Normal);
    assert!(over.movements.is_empty() && over.aborting.is_empty());
    assert!(over.begin_remove("dc1-n2").is_ok());
    // Nothing to cancel: not leaving, or left already.
    assert!(matches!(
        v1.cancel_leave("dc1-n1"),
        Err(LayoutError::NoSuchMovement { .. })
    ));
    let left = leaving.finish_leave("dc1-n1").unwrap();
    let err = left.cancel_leave("dc1-n1").unwrap_err();
    assert_eq!(err, LayoutError::AlreadyLeft("dc1-n1".into()));
    assert!(
        err.to_string().contains("left the cluster already"),
        "{err}"
    );
}

/// audit11 D1: a removal may remove a second dead node (`also`). What an
/// older build wrote (no `also`) decodes, and a removal of one node keeps
/// its form (so its digest), while one of two nodes round-trips.
#[test]
fn a_removal_written_by_an_older_build_decodes_and_keeps_its_form() {
    for old in [
        r#"{"remove":{"node":"b"}}"#,
        r#"{"remove":{"node":"b","force":true}}"#,
    ] {
        let m: Movement = serde_json::from_str(old).unwrap();
        let Movement::Remove { node, also, .. } = &m else {
            panic!("{m:?}")
        };
        assert_eq!((node.as_str(), also.len()), ("b", 0));
        assert_eq!(serde_json::to_string(&m).unwrap(), old);
    }
    let one = grown().begin_remove("dc1-n2").unwrap();
    let json = serde_json::to_string(&one).unwrap();
    assert!(!json.contains("also"), "{json}");
    let two = one.join_removal("dc1-n3");
    assert!(
        matches!(two, Err(LayoutError::TooFewNodes { left: 2, .. })),
        "{two:?}"
    );
    let wide = wide();
    let two = wide
        .begin_remove("dc1-n2")
        .unwrap()
        .join_removal("dc1-n3")
        .unwrap();
    let back: Layout = serde_json::from_str(&serde_json::to_string(&two).unwrap()).unwrap();
    assert_eq!(back, two);
    let m = &two.movements["dc1"];
    assert_eq!(m.declared_dead(), vec!["dc1-n2", "dc1-n3"]);
    let began = wide.version + 1;
    assert_eq!(
        m.to_string(),
        format!("removal of dc1-n2, dc1-n3 (attempt v{began})"),
        "the attempt's identity is kept by the join"
    );
    assert_eq!(two.node("dc1-n3").unwrap().2.state, NodeState::Leaving);
    let done = two.finish_remove("dc1-n2").unwrap();
    for id in ["dc1-n2", "dc1-n3"] {
        assert_eq!(done.node(id).unwrap().2.state, NodeState::Removed);
    }
    assert!(done.movements.is_empty());
    assert_eq!(two.settled().datacenters, done.datacenters);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Merge is a deterministic join: commutative, idempotent, version-maximal.
    #[test]
    fn merge_is_commutative_and_picks_the_max(ops in proptest::collection::vec(0u8..4, 1..6)) {
        let base = dev();
        let layouts: Vec<Layout> = ops
            .iter()
            .filter_map(|op| match op {
                0 => base.begin_join(new_node("j", 1), "dc1", "r1", &[42]).ok(),
                1 => base.begin_replace("dc2-n1", new_node("k", 2)).ok(),
                2 => base.begin_join(new_node("j", 1), "dc2", "r1", &[42]).ok()
                    .and_then(|l| l.finish_join("j").ok()),
                _ => Some(base.clone()),
            })
            .collect();
        for a in &layouts {
            for b in &layouts {
                let ab = a.clone().merge(b.clone());
                let ba = b.clone().merge(a.clone());
                prop_assert_eq!(&ab.layout, &ba.layout);
                prop_assert_eq!(ab.layout.version, a.version.max(b.version));
                prop_assert_eq!(ab.conflict.is_some(), a.version == b.version && a != b);
                prop_assert_eq!(a.clone().merge(a.clone()).layout, a.clone());
            }
        }
    }
}

/// review-cancel31 M2: a leave cancelled past its switch (step 1, the DC
/// `aborting`), its leaver then removed by a build that knows no cancel
/// (its `abort` keeps `aborting`): no driver drops a Remove, so its finish
/// must not be refused as abandoned; the stale mark heals at the finish.
#[test]
fn a_stale_aborting_mark_on_a_removal_does_not_hold_its_finish() {
    let leaving = wide().begin_leave("dc1-n1").unwrap();
    let FinishStep::SwitchReads(switched) = leaving.next_finish_step("dc1-n1").unwrap() else {
        panic!("the first step is the switch")
    };
    let mut stale = switched.cancel_leave("dc1-n1").unwrap();
    stale.version += 1;
    let remove = Movement::Remove {
        node: "dc1-n1".into(),
        also: Vec::new(),
        force: false,
        began: 0,
    };
    stale.movements.insert("dc1".into(), remove);
    assert!(stale.aborting.contains("dc1") && stale.abandoning("dc1").is_none());
    let Ok(FinishStep::SwitchReads(on)) = stale.next_finish_step("dc1-n1") else {
        panic!("the removal's switch is proposed")
    };
    let Ok(FinishStep::Finish(done)) = on.next_finish_step("dc1-n1") else {
        panic!("then its finish")
    };
    assert!(done.aborting.is_empty() && done.movements.is_empty());
    assert_eq!(done.node("dc1-n1").unwrap().2.state, NodeState::Removed);
}
