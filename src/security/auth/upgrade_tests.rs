//! How states enter the CRDT (review-auth29 H1, H2): the admin role a node
//! bootstraps on an empty start, and states upgraded from the old versioned
//! format, must not undo a change the cluster made.

use super::*;

fn node() -> Auth {
    Auth::new(true, AuthState::default(), None)
}

/// One anti-entropy exchange between `a` and `b`, both ways.
fn sync(a: &Auth, b: &Auth) {
    b.install((*a.state()).clone()).unwrap();
    a.install((*b.state()).clone()).unwrap();
}

fn token() -> Token {
    Token::parse("admin:boot").unwrap()
}

/// Node `a` bootstrapped with [`token`], then made `root2` (admin on `*`)
/// and `change`d `admin`; then node `b` starts empty with the same token.
fn a_changes_admin_then_b_starts(change: impl FnOnce(&Auth)) -> (Auth, Auth) {
    let a = node();
    assert!(a.bootstrap(&token()).unwrap());
    a.change(|s| s.with_role("root2", None, &[(ANY_KEYSPACE, Perm::Admin)]))
        .unwrap();
    change(&a);
    let b = node();
    assert!(b.bootstrap(&token()).unwrap(), "b started empty");
    sync(&a, &b);
    assert_eq!(a.state().public(), b.state().public());
    (a, b)
}

#[test]
fn a_node_started_empty_with_the_admin_token_does_not_undo_its_drop() {
    let (a, b) = a_changes_admin_then_b_starts(|a| {
        a.change(|s| s.without_role("admin")).unwrap();
    });
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("admin", "ks", Perm::Read), Decision::UnknownRole);
        assert_eq!(s.decide("root2", "ks", Perm::Admin), Decision::Allow);
    }
}

#[test]
fn a_node_started_empty_with_the_admin_token_does_not_undo_its_revoke() {
    let (a, b) = a_changes_admin_then_b_starts(|a| {
        a.change(|s| s.with_revoke("admin", ANY_KEYSPACE, Perm::Admin))
            .unwrap();
    });
    for n in [&a, &b] {
        assert_eq!(n.state().decide("admin", "ks", Perm::Read), Decision::Deny);
    }
}

#[test]
fn a_node_started_empty_with_the_admin_token_does_not_undo_its_rotation() {
    let (a, b) = a_changes_admin_then_b_starts(|a| {
        a.change(|s| s.without_role("admin")).unwrap();
        let grants = [(ANY_KEYSPACE, Perm::Admin)];
        a.change(|s| s.with_role("admin", Some("$argon2id$new".into()), &grants))
            .unwrap();
    });
    for n in [&a, &b] {
        let secret = n.state().roles()["admin"].secret.clone();
        assert_eq!(secret.as_deref(), Some("$argon2id$new"));
    }
}

#[test]
fn nodes_bootstrapped_apart_converge_on_one_admin_role() {
    let (a, b) = (node(), node());
    assert!(a.bootstrap(&token()).unwrap());
    assert!(b.bootstrap(&token()).unwrap());
    sync(&a, &b);
    assert_eq!(*a.state(), *b.state());
    assert_eq!(a.state().decide("admin", "x", Perm::Admin), Decision::Allow);
}

fn old(json: &str) -> AuthState {
    serde_json::from_str(json).unwrap()
}

const ADMIN: &str = r#""admin":{"grants":{"*":["admin"]}}"#;

fn v(version: u64, roles: &str) -> AuthState {
    old(&format!(
        r#"{{"version":{version},"roles":{{{ADMIN}{roles}}}}}"#
    ))
}

#[test]
fn a_role_dropped_in_a_newer_old_state_does_not_come_back() {
    let v7 = v(7, r#","R":{"grants":{"ks":["read"]}}"#);
    let v8 = v(8, "");
    for m in [v7.clone().merge(v8.clone()), v8.clone().merge(v7.clone())] {
        assert_eq!(m.decide("R", "ks", Perm::Read), Decision::UnknownRole);
        assert_eq!(m.public(), v8.public());
    }
    // A node upgraded with v7 learns v8 from a peer (upgraded or lagging).
    let a = Auth::new(true, v7, None);
    a.install(v8).unwrap();
    assert_eq!(
        a.state().decide("R", "ks", Perm::Read),
        Decision::UnknownRole
    );
}

#[test]
fn two_old_states_of_one_version_converge_on_one_not_their_union() {
    let x = v(8, r#","R":{"grants":{"ks":["read"]}}"#);
    let y = v(8, r#","R":{"grants":{"ks":["write"]}},"S":{"grants":{}}"#);
    let (xy, yx) = (x.clone().merge(y.clone()), y.clone().merge(x.clone()));
    assert_eq!(xy, yx);
    assert!(
        xy.public() == x.public() || xy.public() == y.public(),
        "{}",
        xy.public()
    );
}

#[test]
fn a_change_made_after_an_upgrade_wins_over_either_old_state() {
    let x = v(8, r#","R":{"grants":{"ks":["read"]}}"#);
    let y = v(8, r#","R":{"grants":{"ks":["read"]}},"S":{"grants":{}}"#);
    let (a, b) = (Auth::new(true, x, None), Auth::new(true, y, None));
    a.change(|s| s.with_revoke("R", "ks", Perm::Read)).unwrap();
    a.change(|s| s.with_role("n", None, &[])).unwrap();
    b.change(|s| s.with_grant("R", "other", Perm::Write))
        .unwrap();
    b.change(|s| s.without_role("S")).unwrap();
    sync(&a, &b);
    for n in [&a, &b] {
        let s = n.state();
        assert_eq!(s.decide("R", "ks", Perm::Read), Decision::Deny);
        assert_eq!(s.decide("R", "other", Perm::Write), Decision::Allow);
        assert_eq!(s.decide("n", "ks", Perm::Read), Decision::Deny);
        assert_eq!(s.decide("S", "ks", Perm::Read), Decision::UnknownRole);
    }
    assert_eq!(*a.state(), *b.state());
    // And it survives a round trip through `meta` and the wire.
    let back: AuthState =
        serde_json::from_slice(&serde_json::to_vec(&*a.state()).unwrap()).unwrap();
    assert_eq!(back, *a.state());
}
