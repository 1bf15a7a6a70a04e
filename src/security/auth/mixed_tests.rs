//! A rolling upgrade from the build before per-cell stamps (`2b4f5c2^`):
//! old nodes beside upgraded ones. An old node refuses the new form (it has
//! no top-level `version`) and keeps enforcing its state; an upgraded node
//! takes an old node's state as the legacy snapshot, picked by the old rule
//! (higher version, then higher digest) so that both builds keep the same
//! one. What the README's emergency line rests on: a revoke made on an
//! upgraded node and on an old node holds on both kinds.
//!
//! Owns: these tests and the old model's fixture. Must not: share state.

use super::*;

/// The old build's model, copied from `git show
/// 2b4f5c2^:src/security/auth/model.rs` (the parts an old node decodes,
/// changes and merges with).
mod old {
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Perm {
        Read,
        Write,
        Admin,
    }

    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Role {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret: Option<String>,
        #[serde(default)]
        pub grants: BTreeMap<String, BTreeSet<Perm>>,
    }

    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AuthState {
        pub version: u64,
        #[serde(default)]
        pub roles: BTreeMap<String, Role>,
    }

    impl AuthState {
        pub fn digest(&self) -> u64 {
            xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(self).expect("auth state serialises"))
        }

        pub fn merge(self, other: AuthState) -> AuthState {
            use std::cmp::Ordering;
            match self.version.cmp(&other.version) {
                Ordering::Greater => self,
                Ordering::Less => other,
                Ordering::Equal if self.digest() >= other.digest() => self,
                Ordering::Equal => other,
            }
        }

        /// Version + 1 where `role` holds (`on`) or no longer holds `perm`
        /// in `keyspace` (the old `with_grant` / `with_revoke`).
        pub fn with_grant(&self, role: &str, keyspace: &str, perm: Perm, on: bool) -> AuthState {
            let mut n = self.clone();
            n.version += 1;
            let r = n.roles.get_mut(role).expect("the role exists");
            let held = r.grants.entry(keyspace.to_string()).or_default();
            if on {
                held.insert(perm);
            } else {
                held.remove(&perm);
            }
            if held.is_empty() {
                r.grants.remove(keyspace);
            }
            n
        }
    }
}

/// The cluster's state before the upgrade: version 8, `admin` and `R`
/// (read and write on `ks`).
fn v8() -> old::AuthState {
    serde_json::from_str(
        r#"{"version":8,"roles":{"admin":{"grants":{"*":["admin"]}},"R":{"grants":{"ks":["read","write"]}}}}"#,
    )
    .unwrap()
}

/// An old node's state as an upgraded node receives it.
fn offered(s: &old::AuthState) -> AuthState {
    serde_json::from_slice(&serde_json::to_vec(s).unwrap()).unwrap()
}

/// Whether the old build would let `role` do `perm` in `ks`.
fn old_allows(s: &old::AuthState, role: &str, ks: &str, perm: old::Perm) -> bool {
    let held = |k: &str| s.roles.get(role)?.grants.get(k).cloned();
    [ks, ANY_KEYSPACE]
        .iter()
        .filter_map(|k| held(k))
        .any(|ps| ps.contains(&perm) || ps.contains(&old::Perm::Admin))
}

#[test]
fn an_old_node_cannot_decode_the_new_form() {
    let upgraded = Auth::new(true, offered(&v8()), None);
    upgraded
        .change(|s| s.with_revoke("R", "ks", Perm::Read))
        .unwrap();
    let fresh = Auth::new(true, AuthState::default(), None);
    fresh
        .bootstrap(&Token::parse("admin:boot").unwrap())
        .unwrap();
    for state in [upgraded.state(), fresh.state()] {
        let wire = serde_json::to_vec(&*state).unwrap();
        let decoded = serde_json::from_slice::<old::AuthState>(&wire);
        assert!(
            decoded.is_err(),
            "an old node took {state:?} as {decoded:?}"
        );
    }
    // While the old form still decodes on both builds.
    let wire = serde_json::to_vec(&v8()).unwrap();
    assert_eq!(
        serde_json::from_slice::<old::AuthState>(&wire).unwrap(),
        v8()
    );
}

#[test]
fn both_builds_keep_the_same_of_two_old_states_of_one_version() {
    for i in 0..16 {
        let x = v8().with_grant("R", &format!("a{i}"), old::Perm::Read, true);
        let y = v8().with_grant("R", &format!("b{i}"), old::Perm::Write, true);
        let old_pick = x.clone().merge(y.clone());
        for (p, q) in [(&x, &y), (&y, &x)] {
            let node = Auth::new(true, offered(p), None);
            node.install(offered(q)).unwrap();
            assert_eq!(*node.state(), offered(&old_pick), "pair {i}");
        }
    }
}

/// The emergency revoke during an upgrade: made on an upgraded node `u`
/// and on an old node, while another old node made a change of its own at
/// the same version (`other`, `i` varies it so that either wins the old
/// rule's digest tie-break).
fn emergency_revoke(i: usize) {
    let u = Auth::new(true, offered(&v8()), None);
    u.change(|s| s.with_revoke("R", "ks", Perm::Read)).unwrap();
    let revoked = v8().with_grant("R", "ks", old::Perm::Read, false);
    let other = v8().with_grant("R", &format!("x{i}"), old::Perm::Write, true);
    // The old nodes converge by the old rule; they refuse `u`'s state.
    let old_nodes = revoked.clone().merge(other.clone());
    assert_eq!(old_nodes, other.clone().merge(revoked.clone()));
    u.install(offered(&revoked)).unwrap();
    u.install(offered(&other)).unwrap();
    assert_eq!(u.state().decide("R", "ks", Perm::Read), Decision::Deny);
    assert_eq!(u.state().decide("R", "ks", Perm::Write), Decision::Allow);
    if old_allows(&old_nodes, "R", "ks", old::Perm::Read) {
        // The concurrent old change won the tie: revoking again on an old
        // node makes the newest old version, which holds on both kinds.
        let again = old_nodes.with_grant("R", "ks", old::Perm::Read, false);
        assert!(!old_allows(&again, "R", "ks", old::Perm::Read));
        u.install(offered(&again)).unwrap();
        assert_eq!(u.state().decide("R", "ks", Perm::Read), Decision::Deny);
    }
    // Once every node is upgraded, the old nodes' state loads as the same
    // legacy snapshot and the revoke still holds.
    let later = Auth::new(true, offered(&old_nodes), None);
    later.install((*u.state()).clone()).unwrap();
    u.install((*later.state()).clone()).unwrap();
    assert_eq!(*later.state(), *u.state());
    assert_eq!(later.state().decide("R", "ks", Perm::Read), Decision::Deny);
}

#[test]
fn an_emergency_revoke_on_an_upgraded_and_an_old_node_holds_on_both() {
    let mut tie_lost = 0;
    for i in 0..16 {
        emergency_revoke(i);
        let revoked = v8().with_grant("R", "ks", old::Perm::Read, false);
        let other = v8().with_grant("R", &format!("x{i}"), old::Perm::Write, true);
        tie_lost += usize::from(revoked.merge(other.clone()) == other);
    }
    assert!(
        (1..16).contains(&tie_lost),
        "both tie-break outcomes: {tie_lost}"
    );
}
