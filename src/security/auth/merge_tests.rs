//! Concurrent changes on several nodes (issue 12): a change answered OK is
//! never lost or undone by a node that had not seen it, whatever order the
//! states meet in. Each node is an [`Auth`] handle; "sync" is what
//! `SyncAuth` does (each side installs the other's state).

use super::*;

fn node() -> Auth {
    Auth::new(true, AuthState::default(), None)
}

/// One anti-entropy exchange between `a` and `b`, both ways.
fn sync(a: &Auth, b: &Auth) {
    b.install((*a.state()).clone()).unwrap();
    a.install((*b.state()).clone()).unwrap();
}

/// Two nodes that both know roles `x` (read on `ks`) and `y` (nothing).
fn two_nodes_with_x_and_y() -> (Auth, Auth) {
    let (a, b) = (node(), node());
    a.change(|s| s.with_role("x", None, &[("ks", Perm::Read)]))
        .unwrap();
    a.change(|s| s.with_role("y", None, &[])).unwrap();
    sync(&a, &b);
    (a, b)
}

fn assert_same(a: &Auth, b: &Auth) {
    assert_eq!(a.state().public(), b.state().public());
}

#[test]
fn a_revoke_answered_ok_holds_against_a_concurrent_grant_elsewhere() {
    let (a, b) = two_nodes_with_x_and_y();
    // a revokes x (answered OK); b, which has not seen it, grants y.
    a.change(|s| s.with_revoke("x", "ks", Perm::Read)).unwrap();
    b.change(|s| s.with_grant("y", "ks", Perm::Write)).unwrap();
    sync(&a, &b);
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("x", "ks", Perm::Read), Decision::Deny, "x");
        assert_eq!(s.decide("y", "ks", Perm::Write), Decision::Allow, "y");
    }
    assert_same(&a, &b);
}

#[test]
fn a_revoke_holds_against_a_partitioned_node_that_made_two_changes() {
    let (a, b) = two_nodes_with_x_and_y();
    a.change(|s| s.with_revoke("x", "ks", Perm::Read)).unwrap();
    // b, cut off, makes two unrelated changes: its state is "newer".
    b.change(|s| s.with_grant("y", "ks", Perm::Write)).unwrap();
    b.change(|s| s.with_role("z", None, &[])).unwrap();
    // The partition heals; the states meet in either order.
    sync(&b, &a);
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("x", "ks", Perm::Read), Decision::Deny, "x");
        assert_eq!(s.decide("y", "ks", Perm::Write), Decision::Allow, "y");
        assert_eq!(s.decide("z", "ks", Perm::Read), Decision::Deny, "z");
    }
    assert_same(&a, &b);
}

#[test]
fn roles_created_concurrently_on_two_nodes_both_survive() {
    let (a, b) = (node(), node());
    a.change(|s| s.with_role("p", None, &[("ks", Perm::Read)]))
        .unwrap();
    b.change(|s| s.with_role("q", None, &[("ks", Perm::Write)]))
        .unwrap();
    sync(&a, &b);
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("p", "ks", Perm::Read), Decision::Allow);
        assert_eq!(s.decide("q", "ks", Perm::Write), Decision::Allow);
    }
    assert_same(&a, &b);
}

#[test]
fn a_drop_answered_ok_holds_against_grants_on_a_node_that_missed_it() {
    let (a, b) = two_nodes_with_x_and_y();
    a.change(|s| s.without_role("x")).unwrap();
    // b has not seen the drop: it grants x more (twice).
    b.change(|s| s.with_grant("x", "ks", Perm::Write)).unwrap();
    b.change(|s| s.with_grant("x", "other", Perm::Read))
        .unwrap();
    sync(&b, &a);
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("x", "ks", Perm::Write), Decision::UnknownRole);
        assert_eq!(s.decide("y", "ks", Perm::Read), Decision::Deny);
    }
    assert_same(&a, &b);
}
