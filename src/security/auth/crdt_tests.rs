//! The merge is a CRDT (issue 12): replicas that make random changes and
//! exchange states in random orders converge on one state, and that state
//! is every change replayed in stamp order (so a change is missing only
//! where a later change of its role or grant superseded it). Also: the
//! old versioned form loads, from `meta` too.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A change an administrator asks for.
#[derive(Clone, Debug)]
enum Op {
    Create(&'static str, Vec<(&'static str, Perm)>),
    Drop(&'static str),
    Grant(&'static str, &'static str, Perm),
    Revoke(&'static str, &'static str, Perm),
}

fn perm() -> impl Strategy<Value = Perm> {
    prop_oneof![Just(Perm::Read), Just(Perm::Write), Just(Perm::Admin)]
}

fn op() -> impl Strategy<Value = Op> {
    let name = prop_oneof![Just("p"), Just("q")];
    let ks = prop_oneof![Just("*"), Just("a"), Just("b")];
    let grants = proptest::collection::vec((ks.clone(), perm()), 0..3);
    prop_oneof![
        (name.clone(), grants).prop_map(|(n, g)| Op::Create(n, g)),
        name.clone().prop_map(Op::Drop),
        (name.clone(), ks.clone(), perm()).prop_map(|(n, k, p)| Op::Grant(n, k, p)),
        (name, ks, perm()).prop_map(|(n, k, p)| Op::Revoke(n, k, p)),
    ]
}

/// A step: replica `.0` makes a change at its wall time + `.1` ms (clocks
/// skewed and stalled), or replica `.0` installs replica `.1`'s state.
#[derive(Clone, Debug)]
enum Step {
    Change(usize, u64, Op),
    Merge(usize, usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0..3usize, 0..3u64, op()).prop_map(|(r, dt, o)| Step::Change(r, dt, o)),
        2 => (0..3usize, 0..3usize).prop_map(|(a, b)| Step::Merge(a, b)),
    ];
    proptest::collection::vec(step, 1..40)
}

fn apply(s: &AuthState, at: Stamp, op: &Op) -> Result<AuthState, ChangeError> {
    match op {
        Op::Create(n, g) => s.create_role(at, n, None, g),
        Op::Drop(n) => s.drop_role(at, n),
        Op::Grant(n, k, p) => s.set_grant(at, n, k, *p, true),
        Op::Revoke(n, k, p) => s.set_grant(at, n, k, *p, false),
    }
}

/// The roles after `changes` applied one after the other in stamp order: a
/// create replaces the role, a drop removes it, a grant or revoke of a role
/// that does not exist (then) does nothing.
fn replayed(mut changes: Vec<(Stamp, Op)>) -> BTreeMap<String, Role> {
    changes.sort_by_key(|(at, _)| *at);
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    for (_, op) in changes {
        match op {
            Op::Create(n, g) => {
                let mut r = Role::default();
                for (k, p) in g {
                    r.grants.entry(k.to_string()).or_default().insert(p);
                }
                roles.insert(n.to_string(), r);
            }
            Op::Drop(n) => drop(roles.remove(n)),
            Op::Grant(n, k, p) | Op::Revoke(n, k, p) => {
                let Some(r) = roles.get_mut(n) else { continue };
                let held = r.grants.entry(k.to_string()).or_default();
                match matches!(op, Op::Grant(..)) {
                    true => held.insert(p),
                    false => held.remove(&p),
                };
                r.grants.retain(|_, h| !h.is_empty());
            }
        }
    }
    roles
}

/// Runs `steps` on three replicas; returns them and every change made.
fn run(steps: &[Step]) -> (Vec<AuthState>, Vec<(Stamp, Op)>) {
    let mut reps = vec![AuthState::default(); 3];
    let mut wall = [100u64, 100, 100];
    let mut made = Vec::new();
    for step in steps {
        match step {
            Step::Change(r, dt, op) => {
                wall[*r] += dt;
                let at = reps[*r].stamp(wall[*r], *r as u64 + 1).unwrap();
                if let Ok(next) = apply(&reps[*r], at, op) {
                    reps[*r] = next;
                    made.push((at, op.clone()));
                }
            }
            Step::Merge(a, b) => reps[*a] = reps[*a].clone().merge(reps[*b].clone()),
        }
    }
    (reps, made)
}

proptest! {
    #[test]
    fn replicas_converge_on_every_change_in_stamp_order(steps in steps(), order in Just(vec![0usize, 1, 2]).prop_shuffle()) {
        let (reps, made) = run(&steps);
        // Full exchange in a random order, twice round.
        let mut reps = reps;
        for _ in 0..2 {
            for &a in &order {
                for &b in &order {
                    reps[a] = reps[a].clone().merge(reps[b].clone());
                }
            }
        }
        prop_assert_eq!(&reps[0], &reps[1]);
        prop_assert_eq!(&reps[1], &reps[2]);
        prop_assert_eq!(reps[0].roles(), &replayed(made));
    }

    #[test]
    fn merge_is_commutative_associative_and_idempotent(steps in steps()) {
        let (r, _) = run(&steps);
        let m = |x: &AuthState, y: &AuthState| x.clone().merge(y.clone());
        prop_assert_eq!(m(&r[0], &r[1]), m(&r[1], &r[0]));
        prop_assert_eq!(m(&m(&r[0], &r[1]), &r[2]), m(&r[0], &m(&r[1], &r[2])));
        prop_assert_eq!(&m(&r[0], &r[0]), &r[0]);
        // And it survives the wire.
        let back: AuthState = serde_json::from_slice(&serde_json::to_vec(&r[0]).unwrap()).unwrap();
        prop_assert_eq!(&back, &r[0]);
    }
}

const OLD: &str = r#"{"version":3,"roles":{"app":{"secret":"$argon2id$x","grants":{"a":["read","write"]}},"ops":{"grants":{"*":["admin"]}}}}"#;

#[test]
fn the_old_versioned_form_loads_and_later_changes_win_over_it() {
    let s: AuthState = serde_json::from_str(OLD).unwrap();
    assert_eq!(s.decide("app", "a", Perm::Write), Decision::Allow);
    assert_eq!(s.roles()["app"].secret.as_deref(), Some("$argon2id$x"));
    assert_eq!(s.decide("ops", "z", Perm::Admin), Decision::Allow);
    assert!(!s.is_empty(), "a bootstrap must not run again");
    // From meta, as a node of the old build left it.
    let engine = crate::engine::memory::MemoryEngine::new(Default::default());
    let mut batch = crate::engine::WriteBatch::new();
    batch.put_raw(crate::engine::Cf::Meta, store::AUTH_KEY, OLD.as_bytes());
    crate::engine::Engine::write(&engine, batch).unwrap();
    assert_eq!(store::load(&engine).unwrap(), s);
    // A node upgraded from a newer old version wins whole (legacy.rs); any
    // change made since wins over both.
    let older: AuthState =
        serde_json::from_str(r#"{"version":2,"roles":{"app":{"grants":{"b":["read"]}}}}"#).unwrap();
    assert_eq!(older.clone().merge(s.clone()), s.clone().merge(older));
    assert_eq!(s.clone().merge(s.clone()).roles(), s.roles());
    let revoked = s
        .set_grant(s.stamp(0, 9).unwrap(), "app", "a", Perm::Write, false)
        .unwrap();
    let merged = s.merge(revoked);
    assert_eq!(merged.decide("app", "a", Perm::Write), Decision::Deny);
    assert_eq!(merged.decide("app", "b", Perm::Read), Decision::Deny);
    let newer = r#"{"format":3,"clock":{"ms":0,"n":0,"node":0},"roles":{}}"#;
    let err = serde_json::from_str::<AuthState>(newer).unwrap_err();
    assert!(err.to_string().contains("format 3"), "{err}");
}
