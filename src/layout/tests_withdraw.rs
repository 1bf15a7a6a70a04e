//! Tests of `withdraw.rs`: a removal withdrawn before its switch (the way
//! out of a datacenter of rf+1 nodes with two dead, review-cancel31 H1),
//! each attempt's identity, and a forced replacement (audit11 D3).

use super::tests::{grown, new_node};
use super::*;
use crate::ring::Ring;

/// The layout once `node`'s movement has taken its steps (switch, finish).
fn finished(l: &Layout, node: &str) -> Layout {
    let FinishStep::SwitchReads(on) = l.next_finish_step(node).unwrap() else {
        panic!("the switch first")
    };
    let FinishStep::Finish(done) = on.next_finish_step(node).unwrap() else {
        panic!("then the finish")
    };
    done
}

/// dc1 of 4 nodes at rf 3, A (n2) and B (n3) dead together: the removal
/// of A waits on B, B cannot join it; withdraw, replace B forced, remove A.
#[test]
fn a_dead_gainer_in_a_dc_of_rf_plus_one_nodes_has_a_way_out() {
    let (a, b) = ("dc1-n2", "dc1-n3");
    let v = grown();
    let removing = v.begin_remove(a).unwrap();
    assert!(matches!(
        removing.join_removal(b),
        Err(LayoutError::TooFewNodes { left: 2, .. })
    ));
    let back = removing.withdraw_remove("dc1").unwrap();
    assert_eq!(back.version, removing.version + 1, "one version");
    assert_eq!(back.datacenters, v.datacenters, "A Normal, tokens kept");
    assert!(back.movements.is_empty() && back.reading_new.is_empty());
    let replacing = back.begin_replace(b, new_node("dc1-n9", 9)).unwrap();
    let forced = replacing.force_replace(b).unwrap();
    assert_eq!(forced.version, replacing.version + 1);
    assert!(matches!(
        &forced.movements["dc1"],
        Movement::Replace { force: true, .. }
    ));
    assert_eq!(forced.force_replace(b).unwrap(), forced, "forced already");
    let replaced = finished(&forced, "dc1-n9");
    assert_eq!(replaced.node(b).unwrap().2.state, NodeState::Removed);
    assert_eq!(replaced.node("dc1-n9").unwrap().2.state, NodeState::Normal);
    let end = finished(&replaced.begin_remove(a).unwrap(), a);
    assert_eq!(end.node(a).unwrap().2.state, NodeState::Removed);
    assert!(end.movements.is_empty());
    // The ring is valid: every range has its 3 dc1 replicas, all live.
    let ring = Ring::from_layout(&end);
    let live: Vec<_> = ["dc1-n1", "dc1-n4", "dc1-n9"]
        .map(|id| ring.node_by_id(id).unwrap().idx)
        .to_vec();
    for t in [0, 1 << 40, 1 << 62, u64::MAX / 3, u64::MAX] {
        let set = ring.replicas_for_token("default", t).unwrap();
        let dc1 = set.per_dc.iter().find(|d| d.dc == "dc1").unwrap();
        let mut got = dc1.nodes.clone();
        got.sort();
        let mut want = live.clone();
        want.sort();
        assert_eq!(got, want, "token {t:#x}");
    }
}

/// A removal begun again after a withdraw is another attempt: another
/// movement by value and by name (the board's), so nothing of the first
/// (its gainers' `done`, its cursors) counts for it.
#[test]
fn a_removal_begun_again_after_a_withdraw_is_a_new_attempt() {
    let l = grown();
    let first = l.begin_remove("dc1-n2").unwrap();
    let back = first.withdraw_removal_of("dc1-n2").unwrap();
    // The withdraw is remembered until the node's story ends, through a
    // new attempt (review-final34 M1: a begin without an id is refused
    // meanwhile; review-elastic35 M2: an older build cannot read the new
    // attempt under the withdrawn one's name), and gone at its finish.
    let recorded: BTreeMap<String, u64> = [("dc1-n2".to_string(), back.version)].into();
    assert_eq!(back.withdrawn, recorded);
    let again = back.begin_remove("dc1-n2").unwrap();
    assert_eq!(again.withdrawn, recorded, "kept through the new attempt");
    let done = finished(&again, "dc1-n2");
    assert!(done.withdrawn.is_empty(), "{:?}", done.withdrawn);
    let (m1, m2) = (&first.movements["dc1"], &again.movements["dc1"]);
    assert_ne!(m1, m2);
    assert_ne!(m1.to_string(), m2.to_string());
    let began = |m: &Movement| match m {
        Movement::Remove { began, .. } => *began,
        _ => panic!("{m:?}"),
    };
    assert_eq!((began(m1), began(m2)), (first.version, again.version));
    // Forcing keeps the attempt's identity.
    let forced = again.force_remove("dc1-n2").unwrap();
    assert_eq!(began(&forced.movements["dc1"]), again.version);
    // An older build's removal (no `began`) decodes as attempt 0.
    let old: Movement = serde_json::from_str(r#"{"remove":{"node":"b"}}"#).unwrap();
    assert_eq!((began(&old), old.to_string()), (0, "removal of b".into()));
    let json = serde_json::to_string(m2).unwrap();
    assert!(
        json.contains(&format!("\"began\":{}", again.version)),
        "{json}"
    );
}

/// Past the switch the copies are done: no withdraw. With no removal (or
/// not of that node) it is refused, typed.
#[test]
fn a_withdraw_is_refused_after_the_switch_or_without_a_removal() {
    let l = grown();
    let removing = l.begin_remove("dc1-n2").unwrap();
    let FinishStep::SwitchReads(switched) = removing.next_finish_step("dc1-n2").unwrap() else {
        panic!("the switch first")
    };
    let err = switched.withdraw_remove("dc1").unwrap_err();
    assert!(
        matches!(&err, LayoutError::WithdrawAfterSwitch { dc, .. } if dc == "dc1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot be withdrawn"), "{err}");
    let none = [
        l.withdraw_remove("dc1"),
        l.withdraw_removal_of("dc1-n2"),
        removing.withdraw_removal_of("dc1-n3"),
        l.begin_leave("dc1-n1").unwrap().withdraw_remove("dc1"),
    ];
    for r in none {
        assert!(
            matches!(r, Err(LayoutError::NoSuchMovement { .. })),
            "{r:?}"
        );
    }
    assert!(matches!(
        l.force_replace("dc1-n2"),
        Err(LayoutError::NoSuchMovement { .. })
    ));
}
